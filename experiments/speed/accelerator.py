r"""The accelerator figures: the benchmark sweeps and a short training, written into a doc.

  python -m experiments.speed.accelerator               # on a GPU or TPU machine
  python -m experiments.speed.accelerator --allow_cpu --doc=/tmp/perf.md   # a dry run

On whatever JAX finds (refused on a CPU-only machine unless `--allow_cpu`), it runs
`experiments.speed.meta_step`'s sweeps (`--sweeps`, default method, batch_size and
precision: float32 against bfloat16) on `--config`, and a short training of `--train_config`
(`--train_steps` steps, float32 then bfloat16) with `experiments.main`, and writes the tables
between `<!-- accelerator:begin -->` and `<!-- accelerator:end -->` in `--doc`
(docs/performance.md; appended if the markers are not there). The JSON rows go to
`docs/speed/accelerator_{platform}.json` beside it.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "experiments/configs/synthetic.py", "Config of the sweeps.")
flags.DEFINE_list("sweeps", ["method", "batch_size", "precision"], "meta_step sweeps to run.")
flags.DEFINE_string(
  "train_config",
  "experiments/configs/synthetic.py:cpu",
  "Config of the short training (its data must be where the config says).",
)
flags.DEFINE_integer("train_steps", 500, "Meta-steps of the short training (0: none).")
flags.DEFINE_string("data_dir", None, "The training's data.data_dir (default: the config's).")
flags.DEFINE_integer("steps", 10, "meta_step: steps per timed window.")
flags.DEFINE_integer("windows", 5, "meta_step: timed windows.")
flags.DEFINE_string("doc", None, "The doc to write (default docs/performance.md).")
flags.DEFINE_bool("allow_cpu", False, "Run on a CPU-only machine too (a dry run of the script).")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEGIN, END = "<!-- accelerator:begin -->", "<!-- accelerator:end -->"


def _run(cmd: list[str]) -> str:
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
  return out.stdout


def sweep(name: str) -> list[dict]:
  """One `meta_step` sweep's rows."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "rows.json")
    _run(
      [
        sys.executable,
        "-m",
        "experiments.speed.meta_step",
        f"--config={FLAGS.config}",
        f"--sweep={name}",
        f"--steps={FLAGS.steps}",
        f"--windows={FLAGS.windows}",
        f"--json={path}",
      ]
    )
    with open(path) as f:
      rows = json.load(f)
  return rows if isinstance(rows, list) else [rows]


def training(dtype: str) -> dict:
  """A short training at `dtype`: steps/s after the first log interval, the headline metric."""
  with tempfile.TemporaryDirectory() as workdir:
    _run(
      [
        sys.executable,
        "-m",
        "experiments.main",
        f"--workdir={workdir}",
        f"--config={FLAGS.train_config}",
        f"--config.num_train_steps={FLAGS.train_steps}",
        f"--config.compute_dtype={dtype}",
        "--config.log_reconstructions=0",
        *([f"--config.data.data_dir={FLAGS.data_dir}"] if FLAGS.data_dir else []),
      ]
    )
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rates = [json.loads(l)["steps_per_s"] for l in f if "steps_per_s" in l]
    with open(os.path.join(workdir, "results.json")) as f:
      results = json.load(f)
  k = results["config"]["inner_steps"]
  rates = sorted(rates[1:] or rates)
  return {
    "compute_dtype": dtype,
    "steps": results["step"],
    "steps_per_s": rates[len(rates) // 2],
    "generalization_mse_avg": results["metrics"][f"generalization_mse/avg/step{k}"],
  }


def markdown(device: str, sweeps: dict[str, list[dict]], runs: list[dict]) -> str:
  lines = [
    BEGIN,
    f"## On an accelerator: {device}",
    "",
    f"Written by `python -m experiments.speed.accelerator` on "
    f"{datetime.date.today().isoformat()} (sweeps of `{FLAGS.config}`; training of "
    f"`{FLAGS.train_config}`).",
    "",
  ]
  for name, rows in sweeps.items():
    lines += [
      f"Sweep `{name}`:",
      "",
      "| method | batch | K | dtype | devices | steps/s | ms/step | compile s | "
      "GFLOP/step | achieved GFLOP/s | matmul GFLOP/s |",
      "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
      f"| {r['method']} | {r['batch_size']} | {r['inner_steps']} | "
      f"{r.get('compute_dtype', 'float32')} | {r['devices']} | {r['steps_per_s']:.2f} | "
      f"{r['ms_per_step']:.1f} | {r['compile_s']:.1f} | {r['gflops_per_step']:.2f} | "
      f"{r['achieved_gflops']:.1f} | {r['matmul_gflops']:.0f} |"
      for r in rows
    ]
    lines.append("")
  if runs:
    lines += [
      f"Training, {runs[0]['steps']} meta-steps:",
      "",
      "| compute dtype | steps/s | generalization MSE (avg) |",
      "|---|---|---|",
    ]
    lines += [
      f"| {r['compute_dtype']} | {r['steps_per_s']:.2f} | {r['generalization_mse_avg']:.4f} |"
      for r in runs
    ]
    lines.append("")
  lines.append(END)
  return "\n".join(lines)


def write_section(doc: str, section: str) -> None:
  """Replaces the section between the markers in `doc`, or appends it."""
  text = open(doc).read() if os.path.isfile(doc) else ""
  pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
  text = (
    pattern.sub(lambda _: section, text)
    if pattern.search(text)
    else text.rstrip("\n") + "\n\n" + section
  )
  with open(doc, "w") as f:
    f.write(text.rstrip("\n") + "\n")


def main(argv):
  del argv
  import jax

  device = jax.devices()[0]
  if device.platform == "cpu" and not FLAGS.allow_cpu:
    raise app.UsageError(
      "No GPU or TPU here (JAX finds only CPU devices); the figures would be "
      "this CPU's, which docs/performance.md already has. Run it on an "
      "accelerator, or pass --allow_cpu for a dry run."
    )
  name = f"{jax.device_count()} x {device.device_kind} ({device.platform})"
  sweeps = {s: sweep(s) for s in FLAGS.sweeps if s}
  runs = [training(d) for d in ("float32", "bfloat16")] if FLAGS.train_steps else []
  doc = FLAGS.doc or os.path.join(ROOT, "docs", "performance.md")
  write_section(doc, markdown(name, sweeps, runs))
  rows_path = os.path.join(os.path.dirname(doc), "speed", f"accelerator_{device.platform}.json")
  os.makedirs(os.path.dirname(rows_path), exist_ok=True)
  with open(rows_path, "w") as f:
    json.dump({"device": name, "sweeps": sweeps, "training": runs}, f, indent=1)
  print(markdown(name, sweeps, runs))


if __name__ == "__main__":
  app.run(main)
