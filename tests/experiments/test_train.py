"""End to end: the driver trains, checkpoints, resumes and writes the results contract."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import synthetic
from experiments.run import train
from mia_jax import evaluation
from tests.paths import ROOT


def _config(data_dir, arg="method=metasgd,smoke", **overrides):
  config = synthetic.get_config(arg)
  config.data.data_dir = data_dir
  for k, v in overrides.items():
    config[k] = v
  return config


@pytest.mark.slow
def test_results_contract(tmp_path, synthetic_data_dir):
  results = train.train_and_evaluate(_config(synthetic_data_dir), str(tmp_path))
  on_disk = json.loads((tmp_path / "results.json").read_text())
  assert on_disk["step"] == 6 and on_disk["config"]["method"] == "metasgd"
  metrics = on_disk["metrics"]
  assert metrics == pytest.approx(results["metrics"])
  k = 3
  for measure in evaluation.MEASURES:
    for name in ("sine", "tanh", "gaussian", "relu", "avg"):
      for step in range(k + 1):
        assert f"{measure}/{name}/step{step}" in metrics
  assert any(key.startswith("memorization_mse/avg/R0.0") for key in metrics)
  for key in metrics:
    measure, name, suffix = key.split("/")
    assert measure in evaluation.MEASURES and (suffix.startswith("step") or suffix.startswith("R"))
  avg = np.mean([metrics[f"full_mse/{n}/step3"] for n in ("sine", "tanh", "gaussian", "relu")])
  assert metrics["full_mse/avg/step3"] == pytest.approx(avg)
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [l["step"] for l in lines] == [2, 4, 6]
  assert all(np.isfinite(l["loss"]) for l in lines)
  assert (tmp_path / "episodes.npz").exists()


@pytest.mark.slow  # trains
def test_resume_continues_exactly(tmp_path, synthetic_data_dir):
  straight = train.train_and_evaluate(_config(synthetic_data_dir), str(tmp_path / "a"))
  # "Kill" after 3 steps (a checkpoint is written at step 3), then resume to 6.
  train.train_and_evaluate(_config(synthetic_data_dir, num_train_steps=3), str(tmp_path / "b"))
  resumed = train.train_and_evaluate(_config(synthetic_data_dir), str(tmp_path / "b"))
  assert resumed["step"] == 6
  for key, value in straight["metrics"].items():
    assert resumed["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
  steps = [
    json.loads(l)["step"] for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
  ]
  assert steps == [2, 3, 4, 6]


def test_corrupt_checkpoint_gives_clear_error(tmp_path, synthetic_data_dir):
  config = _config(synthetic_data_dir, num_train_steps=3)
  train.train_and_evaluate(config, str(tmp_path))
  ckpt = tmp_path / "checkpoints" / "3"
  for root, _, files in os.walk(ckpt):
    for f in files:
      with open(os.path.join(root, f), "wb") as fh:
        fh.write(b"garbage")
  with pytest.raises(ValueError, match="Could not restore checkpoint step 3"):
    train.train_and_evaluate(_config(synthetic_data_dir), str(tmp_path))


@pytest.mark.slow
def test_npz_source_and_episode_file(tmp_path, synthetic_data_dir):
  from data_pipelines import sources
  from data_pipelines.synthetic import generate

  sources.save_npz(tmp_path / "train.npz", generate.generate_signals(16, 0, ("sine", "relu")))
  sources.save_npz(tmp_path / "test.npz", generate.generate_signals(8, 1, ("sine", "relu")))
  config = _config(synthetic_data_dir, "method=cavia,modalities=sine+relu,smoke")
  config.data.source = "npz"
  config.data.npz_train = str(tmp_path / "train.npz")
  config.data.npz_test = str(tmp_path / "test.npz")
  config.num_train_steps = 2
  first = train.train_and_evaluate(config, str(tmp_path / "w1"))
  # Evaluate a second run on the first run's episodes: identical supports.
  config.eval.episodes_path = str(tmp_path / "w1" / "episodes.npz")
  config.eval.episode_seed = 999
  second = train.train_and_evaluate(config, str(tmp_path / "w2"))
  assert first["metrics"] == pytest.approx(second["metrics"])


@pytest.mark.slow  # runs the command line
def test_cli_smoke_writes_results(tmp_path, synthetic_data_dir):
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/synthetic.py:method=metasgd,smoke",
    f"--workdir={tmp_path}",
    f"--config.data.data_dir={synthetic_data_dir}",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "metasgd on synthetic after 6 meta-steps" in proc.stdout
  assert "avg" in proc.stdout
  assert json.loads((tmp_path / "results.json").read_text())["step"] == 6


def test_cli_unknown_method_is_a_clear_error(tmp_path):
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/synthetic.py:method=maml,smoke",
    f"--workdir={tmp_path}",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert "Unknown method 'maml'; allowed: alfa, cavia, gap, metasgd, mia" in proc.stderr
