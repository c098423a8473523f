"""The speed commands (experiments/speed/) run and report every documented field (no timing is
asserted)."""

import json
import subprocess
import sys

from tests.paths import ROOT

KEYS = {
  "steps_per_s",
  "compile_s",
  "peak_rss_mb",
  "gflops_per_step",
  "matmul_gflops",
  "ms_per_step",
  "achieved_gflops",
  "utilisation",
}


def test_meta_step_benchmark_writes_table_and_json(tmp_path):
  out = tmp_path / "bench.json"
  cmd = [
    sys.executable,
    "-m",
    "experiments.speed.meta_step",
    "--config=experiments/configs/synthetic.py:method=mia,smoke",
    "--steps=1",
    "--windows=1",
    f"--json={out}",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads(out.read_text())
  assert KEYS <= set(row)
  assert row["method"] == "mia" and row["steps_per_s"] > 0 and row["gflops_per_step"] > 0
  # The machine: platform, device kind and count, processes (a CPU here).
  assert row["platform"] == "cpu" and row["device_kind"] and row["processes"] == 1
  assert row["devices"] >= 1 and "device_kind" in proc.stdout
  assert "steps_per_s" in proc.stdout and "mia" in proc.stdout


def test_accelerator_script_refuses_cpu_and_writes_its_section(tmp_path, synthetic_data_dir):
  base = [sys.executable, "-m", "experiments.speed.accelerator"]
  refused = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert refused.returncode != 0 and "No GPU or TPU here" in refused.stderr
  doc = tmp_path / "perf.md"
  doc.write_text("# Performance\n\nEarlier text.\n")
  # A dry run: the two short trainings (float32, bfloat16) of 2 steps; no sweep (each of those
  # is a meta_step subprocess, tested above).
  cmd = base + [
    "--allow_cpu",
    f"--doc={doc}",
    "--sweeps=",
    "--train_steps=2",
    "--train_config=experiments/configs/synthetic.py:smoke,method=cavia",
    f"--data_dir={synthetic_data_dir}",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = doc.read_text()
  assert text.startswith("# Performance\n\nEarlier text.") and "(cpu)" in text
  rows = json.loads((tmp_path / "speed" / "accelerator_cpu.json").read_text())
  assert [(r["compute_dtype"], r["steps"]) for r in rows["training"]] == [
    ("float32", 2),
    ("bfloat16", 2),
  ]
  assert "| bfloat16 | " in text and "| float32 | " in text


def test_accelerator_section_is_replaced_not_added(tmp_path):
  from experiments.speed import accelerator

  doc = str(tmp_path / "perf.md")
  accelerator.write_section(doc, f"{accelerator.BEGIN}\nfirst\n{accelerator.END}")
  with open(doc, "a") as f:
    f.write("\nAfter.\n")
  accelerator.write_section(doc, f"{accelerator.BEGIN}\nsecond\n{accelerator.END}")
  text = open(doc).read()
  assert text.count(accelerator.BEGIN) == 1 and "second" in text and "first" not in text
  assert text.rstrip().endswith("After.")
