"""One run per workdir at a time (issue 36): the lock, its takeover after a crash, two runs started
together, and two study runners sharing a folder."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import synthetic
from experiments.run import train
from experiments.run import workdir as workdir_lib
from experiments.studies import runner
from tests.paths import ROOT


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def _write_lock(workdir, pid, host=None):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, workdir_lib.LOCK_FILE), "w") as f:
    json.dump({"pid": pid, "host": host or socket.gethostname(), "started": "then"}, f)


def test_lock_is_exclusive_reentrant_and_released(tmp_path):
  wd = str(tmp_path / "w")
  lock = workdir_lib.WorkdirLock(wd)
  with lock:
    info = json.loads((tmp_path / "w" / workdir_lib.LOCK_FILE).read_text())
    assert info["pid"] == os.getpid()
    with workdir_lib.WorkdirLock(wd):  # the same process again: nested, not refused
      pass
    assert (tmp_path / "w" / workdir_lib.LOCK_FILE).is_file()
    # Another process is refused, and told who holds it.
    code = (
      "import sys; sys.path.insert(0, %r)\n"
      "from experiments.run import workdir as w\n"
      "try:\n  w.WorkdirLock(%r).acquire()\n"
      "except w.WorkdirBusy as e:\n  print(e); sys.exit(3)\n"
    ) % (ROOT, wd)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert f"in use by another run (PID {os.getpid()}" in proc.stdout
    assert workdir_lib.lock_holder(wd)["pid"] == os.getpid()
  assert not (tmp_path / "w" / workdir_lib.LOCK_FILE).exists()
  assert workdir_lib.lock_holder(wd) is None


def test_a_stale_lock_is_taken_over_and_a_foreign_one_named(tmp_path):
  wd = str(tmp_path / "w")
  _write_lock(wd, _dead_pid())
  assert workdir_lib.lock_holder(wd) is None  # its process is gone
  with workdir_lib.WorkdirLock(wd):
    assert json.loads((tmp_path / "w" / workdir_lib.LOCK_FILE).read_text())["pid"] == os.getpid()
  # A lock from another host cannot be checked: refused, naming the host and the file to delete.
  _write_lock(wd, 12345, host="elsewhere")
  with pytest.raises(workdir_lib.WorkdirBusy, match="PID 12345 on host elsewhere.*delete"):
    workdir_lib.WorkdirLock(wd).acquire()
  # Following the advice works.
  os.remove(os.path.join(wd, workdir_lib.LOCK_FILE))
  with workdir_lib.WorkdirLock(wd):
    pass
  # Garbage in the lock file: refused with a way on, which works when followed.
  (tmp_path / "w" / workdir_lib.LOCK_FILE).write_text("{garbage")
  with pytest.raises(workdir_lib.WorkdirBusy, match="unreadable lock file.*delete that file"):
    workdir_lib.WorkdirLock(wd).acquire()
  os.remove(os.path.join(wd, workdir_lib.LOCK_FILE))
  with workdir_lib.WorkdirLock(wd):
    pass


@pytest.mark.slow  # trains
def test_two_runs_started_together_on_one_workdir(tmp_path, synthetic_data_dir):
  wd = tmp_path / "shared"
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/synthetic.py:method=cavia,smoke",
    f"--workdir={wd}",
    f"--config.data.data_dir={synthetic_data_dir}",
  ]
  procs = [
    subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(2)
  ]
  outs = [p.communicate(timeout=600) for p in procs]
  codes = sorted(p.returncode for p in procs)
  assert codes == [0, 2], [o[1][-2000:] for o in outs]
  loser = next(o for p, o in zip(procs, outs) if p.returncode == 2)
  winner = next(p for p in procs if p.returncode == 0)
  errors = [ln for ln in loser[1].splitlines() if ln.startswith("error:")]
  assert len(errors) == 1 and f"in use by another run (PID {winner.pid}" in errors[0], loser[1]
  assert not (wd / workdir_lib.LOCK_FILE).exists()
  assert not [n for n in os.listdir(wd / "checkpoints") if "tmp" in n]
  # The files are exactly a single run's.
  config = synthetic.get_config("method=cavia,smoke")
  config.data.data_dir = synthetic_data_dir
  single = train.train_and_evaluate(config, str(tmp_path / "single"))
  shared = json.loads((wd / "results.json").read_text())
  assert shared["metrics"].keys() == single["metrics"].keys()
  for key, value in single["metrics"].items():
    np.testing.assert_allclose(shared["metrics"][key], value, rtol=1e-6, err_msg=key)
  steps = [json.loads(ln)["step"] for ln in (wd / "metrics.jsonl").read_text().splitlines()]
  single_steps = [
    json.loads(ln)["step"]
    for ln in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()
  ]
  assert steps == single_steps


def test_two_study_runners_split_the_runs(tmp_path):
  """A run whose workdir another live process holds is skipped and reported, not trained."""
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    runs = [
      runner.Run(
        arm=a,
        seed=0,
        config=synthetic.get_config("method=cavia,smoke"),
        rundir=str(tmp_path / a / "seed0"),
      )
      for a in ("x", "y")
    ]
    _write_lock(runs[0].rundir, holder.pid)
    trained, lines = [], []
    busy = runner.train_runs(runs, train_fn=lambda c, w: trained.append(w), log=lines.append)
    assert trained == [runs[1].rundir] and busy == [runs[0]]
    assert any(f"being trained by PID {holder.pid}" in ln for ln in lines), lines
  finally:
    holder.kill()
    holder.wait()
  # Its holder gone, the next runner trains it.
  trained = []
  assert (
    runner.train_runs(runs[:1], train_fn=lambda c, w: trained.append(w), log=lambda s: None) == []
  )
  assert trained == [runs[0].rundir]
