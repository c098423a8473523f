"""A full disk: one `error:` line naming the path, and the rerun resumes once space is freed (or
the workdir is moved), each piece of the message's advice followed (docs/reliability.md).

The disk is a small tmpfs mounted for the test; where mounting is not allowed (no root), the
tests are skipped.
"""

import gc
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import pytest

from experiments.configs import synthetic
from experiments.run import disk, train
from tests.paths import ROOT as REPO

pytestmark = pytest.mark.slow  # trains, or runs the command line


@pytest.fixture
def small_disk(tmp_path):
  mount = tmp_path / "disk"
  mount.mkdir()
  try:
    subprocess.run(
      ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
      check=True,
      capture_output=True,
      timeout=30,
    )
  except (OSError, subprocess.SubprocessError):
    pytest.skip("mounting a tmpfs needs root")
  try:
    yield str(mount)
  finally:
    subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def _config(data_dir, steps):
  config = synthetic.get_config("method=cavia,smoke")
  config.data.data_dir = data_dir
  config.data.num_test_signals = 8
  config.num_train_steps = steps
  return config


def _fill(path, leave):
  """Writes a ballast file so that about `leave` bytes stay free on `path`'s disk."""
  ballast = os.path.join(path, "ballast")
  free = shutil.disk_usage(path).free
  with open(ballast, "wb") as f:
    f.write(b"\0" * max(free - leave, 0))
  return ballast


def _logged_steps(workdir):
  return [
    json.loads(l)["step"] for l in open(os.path.join(workdir, "metrics.jsonl")) if "loss" in l
  ]


def test_full_disk_is_one_line_and_each_piece_of_advice_resumes(
  small_disk, tmp_path, synthetic_data_dir
):
  workdir = os.path.join(small_disk, "run")
  train.train_and_evaluate(_config(synthetic_data_dir, 3), workdir)  # checkpoint 3 saved
  ballast = _fill(small_disk, 600 << 10)  # less than a checkpoint plus the spare room
  env = {**os.environ, "PYTHONPATH": REPO}
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.main",
      "--config=experiments/configs/synthetic.py:method=cavia,smoke",
      f"--config.data.data_dir={synthetic_data_dir}",
      "--config.data.num_test_signals=8",
      f"--workdir={workdir}",
    ],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  lines = [
    l
    for l in proc.stderr.replace("\r", "\n").splitlines()  # not the progress bar, nor
    if l.strip() and not re.match(r"^\w+: +\d+%\||I\d{4} ", l)
  ]  # absl's INFO lines
  assert proc.returncode == 1, proc.stderr[-3000:]
  assert len(lines) == 1 and lines[0].startswith("error: No space left on the disk of "), lines
  assert os.path.join(workdir, "checkpoints") in lines[0]
  assert "it resumes from step 3, the last checkpoint" in lines[0], lines[0]

  # "move the workdir to a larger disk and rerun with --workdir there"
  moved = str(tmp_path / "moved")
  shutil.copytree(workdir, moved)
  out = train.train_and_evaluate(_config(synthetic_data_dir, 6), moved)
  assert out["step"] == 6 and _logged_steps(moved) == [2, 3, 4, 6]

  # "free space there and rerun the same command": the same results as the moved run
  os.remove(ballast)
  again = train.train_and_evaluate(_config(synthetic_data_dir, 6), workdir)
  assert _logged_steps(workdir) == [2, 3, 4, 6]
  assert again["metrics"] == out["metrics"]
  assert not [n for n in os.listdir(os.path.join(workdir, "checkpoints")) if "tmp" in n]


def test_a_save_that_fails_midway_is_one_error_and_resumable(
  small_disk, synthetic_data_dir, monkeypatch
):
  # Without the check before each save, orbax's own write fails (asynchronously, in threads):
  # the error still becomes DiskFull, and the records it logs are the ones QuietDiskFull drops.
  workdir = os.path.join(small_disk, "run")
  ballast = _fill(small_disk, 160 << 10)  # room for the run's files, not for a checkpoint
  monkeypatch.setattr(disk, "check_free_space", lambda *a: None)
  records, quiet = [], disk.QuietDiskFull()
  handler = logging.Handler()
  handler.emit = records.append
  logging.getLogger().addHandler(handler)
  # asyncio logs the failed writes' tasks when they are collected, after the test: kept quiet
  logging.getLogger("asyncio").addFilter(quiet)
  try:
    with pytest.raises(disk.DiskFull, match="No space left on the disk of .*from step 0"):
      train.train_and_evaluate(_config(synthetic_data_dir, 3), workdir)
    gc.collect()
  finally:
    logging.getLogger().removeHandler(handler)
  errors = [r for r in records if r.levelno >= logging.ERROR]
  assert errors and all(not quiet.filter(r) for r in errors), [r.getMessage()[:200] for r in errors]
  assert quiet.filter(logging.LogRecord("x", logging.ERROR, "f", 1, "another error", (), None))
  monkeypatch.undo()
  os.remove(ballast)
  out = train.train_and_evaluate(_config(synthetic_data_dir, 3), workdir)
  assert out["step"] == 3 and _logged_steps(workdir) == [2, 3]
  assert not [n for n in os.listdir(os.path.join(workdir, "checkpoints")) if "tmp" in n]


def test_disk_full_is_recognised_through_wrappers():
  import errno

  assert disk.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
  wrapped = ValueError("RESOURCE_EXHAUSTED: Failed writing [os_error_code='28']")
  assert disk.is_disk_full(wrapped)
  try:
    try:
      raise OSError(errno.ENOSPC, "x")
    except OSError as e:
      raise RuntimeError("save failed") from e
  except RuntimeError as outer:
    assert disk.is_disk_full(outer)
  assert not disk.is_disk_full(OSError(errno.EACCES, "Permission denied"))
  assert not disk.is_disk_full(ValueError("RESOURCE_EXHAUSTED: out of memory"))
