"""Shared pieces of the ablation-study tests: the smoke config, a training stand-in, file checks."""

import csv
import json
import os

import numpy as np

from experiments.studies import definitions as studies

CONFIG = "experiments/configs/synthetic.py:smoke"
NAMES = ("sine", "tanh", "gaussian", "relu")


def make_builder(data_dir, spec=CONFIG):
  return studies.ConfigBuilder.from_spec(spec, {"data.data_dir": data_dir})


def read_csv(path):
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def is_png(path):
  with open(path, "rb") as f:
    return f.read(8) == b"\x89PNG\r\n\x1a\n"


def fake_train(config, workdir):
  """Writes what a finished run writes, instantly (module-level: picklable for parallel runs)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  names = config.modalities.split("+")
  value = 1.0 + config.seed + 0.5 * (config.rule.ablation != "none") + config.inner_steps
  metrics = {
    f"{m}/{n}/step{k}": value / (k + 1)
    for m in studies.DEFAULT_MEASURES
    for n in names + ["avg"]
    for k in range(config.inner_steps + 1)
  }
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump({"config": config.to_dict(), "step": config.num_train_steps, "metrics": metrics}, f)
  np.savez(
    os.path.join(workdir, "episodes.npz"),
    **{f"{n}/{k}": np.zeros(4) for n in names for k in ("idx", "count", "ratio")},
  )
  with open(os.path.join(workdir, "calls.txt"), "a") as f:
    f.write("train\n")


def run_calls(w):
  """`{run folder: number of fake_train calls}` under `w`."""
  out = {}
  for root, _, files in os.walk(w):
    if "calls.txt" in files:
      with open(os.path.join(root, "calls.txt")) as f:
        out[os.path.relpath(root, w)] = len(f.read().split())
  return out
