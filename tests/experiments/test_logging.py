"""The driver logs through absl at the default verbosity: its own INFO lines ("Config: ...",
"Resumed from step N"), and none of the libraries' INFO records (orbax logs every file it
writes, tfds every dataset it opens, jax the backends it cannot find)."""

import logging as py_logging
import os
import re
import subprocess
import sys

import pytest

from experiments import cli
from tests.paths import ROOT

pytestmark = pytest.mark.slow  # trains, or runs the command line

INFO = re.compile(r"^I\d{4} [\d:.]+ +\d+ (\S+\.py):\d+\] (.*)$")


def _info_records(stderr):
  return [m.groups() for m in map(INFO.match, stderr.splitlines()) if m]


def test_a_resumed_run_says_so_at_the_default_verbosity(tmp_path, synthetic_data_dir):
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/synthetic.py:method=cavia,smoke",
    f"--config.data.data_dir={synthetic_data_dir}",
    "--config.data.num_test_signals=8",
    f"--workdir={tmp_path / 'w'}",
  ]
  first = subprocess.run(
    [*cmd, "--config.num_train_steps=3"], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert first.returncode == 0, first.stderr[-3000:]
  records = _info_records(first.stderr)
  assert (
    "main.py",
    f"Config: method=cavia on synthetic, preset smoke, seed 0, 3 meta-steps; "
    f"every field in {tmp_path / 'w' / 'config.json'}",
  ) in records, records
  assert not [r for r in records if "Resumed" in r[1]]
  again = subprocess.run(
    [*cmd, "--config.num_train_steps=6"], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert again.returncode == 0, again.stderr[-3000:]
  records = _info_records(again.stderr)
  assert ("train.py", f"Resumed from step 3 in {tmp_path / 'w'}") in records, records
  # Only the project's own INFO records: no orbax, tfds or jax ones.
  assert {f for f, _ in records} <= {"main.py", "train.py"}, records
  # --verbosity=0 shows everything at INFO, the libraries' records too.
  loud = subprocess.run(
    [*cmd, "--config.num_train_steps=6", "--verbosity=0"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert loud.returncode == 0, loud.stderr[-3000:]
  assert any(f == "checkpoint_manager.py" for f, _ in _info_records(loud.stderr))


def test_the_filter_keeps_warnings_from_everywhere_and_only_our_info():
  own = cli.OwnInfoOnly()
  here = os.path.join(ROOT, "experiments", "train.py")
  elsewhere = os.path.join(sys.prefix, "lib", "orbax", "checkpoint_manager.py")
  record = lambda level, path: py_logging.LogRecord("absl", level, path, 1, "m", (), None)
  assert own.filter(record(py_logging.INFO, here))
  assert not own.filter(record(py_logging.INFO, elsewhere))
  assert own.filter(record(py_logging.WARNING, elsewhere))
  assert not own.filter(record(py_logging.INFO, os.path.join(ROOT, "tests", "x.py")))
