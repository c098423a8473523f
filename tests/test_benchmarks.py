"""The benchmark command runs and reports every documented field (no timing is asserted)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"steps_per_s", "compile_s", "peak_rss_mb", "gflops_per_step", "matmul_gflops",
        "ms_per_step", "achieved_gflops", "utilisation"}


def test_meta_step_benchmark_writes_table_and_json(tmp_path):
  out = tmp_path / "bench.json"
  cmd = [sys.executable, "-m", "experiments.benchmarks.meta_step",
         "--config=experiments/configs/synthetic.py:method=mia,smoke", "--steps=1", "--windows=1",
         f"--json={out}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads(out.read_text())
  assert KEYS <= set(row)
  assert row["method"] == "mia" and row["steps_per_s"] > 0 and row["gflops_per_step"] > 0
  # The machine: platform, device kind and count, processes (a CPU here).
  assert row["platform"] == "cpu" and row["device_kind"] and row["processes"] == 1
  assert row["devices"] >= 1 and "device_kind" in proc.stdout
  assert "steps_per_s" in proc.stdout and "mia" in proc.stdout
