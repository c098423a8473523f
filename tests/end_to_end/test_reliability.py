"""The bad-input sweep of docs/reliability.md: bad configs, data, episode files, checkpoints,
workdirs and study arguments, each driven through `experiments.main` / `experiments.ablate`.

For every case the test checks the exit code (2: a usage error found before anything is
written; 1: an error while training), that the output is at most a few lines with exactly one
`error: ...` line, that this line names the bad value (and what is allowed, where there is a
list), and that nothing in the workdir was lost or rewritten. `test_sweep_count` states how many
cases end in one clear line (all of them, unless a case is marked as known-bad here).
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import benchmarks, sources
from experiments.configs import synthetic
from experiments.run import checkpoints, train
from mia_jax import episodes_file, sampling
from tests.end_to_end.reliability_cases import CASES, KNOWN_BAD, NAMES, Case
from tests.paths import ROOT


def _images(rng, n, grid=(20, 30), channels=3):
  return rng.uniform(0.1, 0.9, (n, *grid, channels)).astype(np.float32)


def _signals(rng, n, length=150):
  return np.sin(np.linspace(0, 6, length)[None] * rng.uniform(1, 3, (n, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  """The bad files the cases read: arrays, episode files, a file where a folder should be."""
  d = tmp_path_factory.mktemp("inputs")
  rng = np.random.default_rng(0)
  (d / "file.txt").write_text("not a folder, not an npz")
  (d / "corrupt.npz").write_bytes(b"PK\x03\x04" + bytes(range(200)))
  good = {"img": _images(rng, 6), "sig": _signals(rng, 6)}
  sources.save_npz(d / "train.npz", good)
  sources.save_npz(d / "test.npz", {"img": _images(rng, 4), "sig": _signals(rng, 4)})
  nan = {k: v.copy() for k, v in good.items()}
  nan["sig"][2, 5] = np.nan
  sources.save_npz(d / "nan.npz", nan)
  sources.save_npz(d / "grid.npz", {"img": _images(rng, 4, grid=(20, 31)), "sig": _signals(rng, 4)})
  sources.save_npz(
    d / "channels.npz", {"img": _images(rng, 4, channels=1), "sig": _signals(rng, 4)}
  )
  sources.save_npz(d / "img_only.npz", {"img": _images(rng, 4)})
  np.savez(
    d / "empty.npz", img=np.zeros((0, 20, 30, 3), np.float32), sig=np.zeros((0, 150), np.float32)
  )
  # Episode files for the synthetic smoke run (16 meta-test signals, 200 points).
  specs = benchmarks.benchmark_specs("synthetic", "+".join(NAMES))
  episodes_file.save_episodes(d / "ep_good.npz", sampling.make_eval_episodes(0, specs, 16))
  base = dict(np.load(d / "ep_good.npz"))

  def variant(name, change):
    arrays = {k: v.copy() for k, v in base.items()}
    change(arrays)
    episodes_file.write_episode_arrays(d / name, arrays)

  variant("ep_count_big.npz", lambda a: a["sine/count"].__setitem__(3, 500))
  variant("ep_count_neg.npz", lambda a: a["tanh/count"].__setitem__(0, -2))
  variant(
    "ep_repeat.npz",
    lambda a: (
      a["gaussian/count"].__setitem__(1, 10),
      a["gaussian/idx"][1].__setitem__(1, a["gaussian/idx"][1, 0]),
    ),
  )
  variant("ep_ratio.npz", lambda a: a["relu/ratio"].__setitem__(0, 1.5))
  variant("ep_no_relu.npz", lambda a: [a.pop(f"relu/{k}") for k in ("idx", "count", "ratio")])
  variant("ep_few.npz", lambda a: a.update({k: v[:4] for k, v in a.items()}))
  return str(d)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_data_dir):
  """A finished run of the `TRAINED` command, trained in-process once."""
  w = str(tmp_path_factory.mktemp("trained"))
  config = synthetic.get_config("method=cavia,smoke")
  config.data.data_dir = synthetic_data_dir
  config.data.num_test_signals = 8
  config.num_train_steps = 4
  train.train_and_evaluate(config, w)
  return w


def _damage(workdir, how):
  if how == "corrupt_config":
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write('{"method": "cavia", ')
  elif how == "no_checkpoints":
    shutil.rmtree(os.path.join(workdir, "checkpoints"))
  elif how == "corrupt_checkpoint":
    step = os.path.join(workdir, "checkpoints", "4")
    for root, _, files in os.walk(step):
      for name in files:
        path = os.path.join(root, name)
        if os.path.getsize(path) > 64:
          with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)


def _snapshot(workdir):
  """{relative path: sha1} of every file under `workdir`."""
  out = {}
  for root, _, files in os.walk(workdir):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, workdir)] = hashlib.sha1(f.read()).hexdigest()
  return out


def message_lines(proc):
  """The output lines a person reads: without absl's log records (the driver's INFO lines, absl/jax
  warnings) and progress bars."""
  lines = (proc.stdout + proc.stderr).replace("\r", "\n").splitlines()
  return [
    l
    for l in lines
    if l.strip()
    and not re.match(r"[IW]\d{4} |WARNING:", l)
    and not re.search(r"\d+/\d+ \[[\d:<?]+", l)
  ]


def run_case(case: Case, tmp_path, data_dir, inputs_dir, trained_dir):
  if case.workdir == "file":
    workdir = tmp_path / "file.txt"
    workdir.write_text("a file")
  elif case.workdir.startswith("trained"):
    workdir = tmp_path / "w"
    shutil.copytree(trained_dir, workdir)
    _damage(str(workdir), case.workdir.partition(":")[2])
  else:
    workdir = tmp_path / "w"
  before = _snapshot(workdir) if workdir.is_dir() else {}
  fill = lambda a: a.replace("{data}", data_dir).replace("{inputs}", inputs_dir)
  cmd = [
    sys.executable,
    "-m",
    f"experiments.{case.module}",
    *map(fill, case.args),
    f"--workdir={workdir}",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  return proc, workdir, before


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, synthetic_data_dir, inputs, trained):
  case = CASES[name]
  proc, workdir, before = run_case(case, tmp_path, synthetic_data_dir, inputs, trained)
  lines = message_lines(proc)
  if name in KNOWN_BAD:
    pytest.xfail(KNOWN_BAD[name])
  assert proc.returncode == case.code, (proc.returncode, proc.stderr[-3000:])
  if case.code == 0:
    assert not [l for l in lines if l.startswith("error:")]
    return
  errors = [l for l in lines if l.startswith("error: ")]
  assert len(errors) == 1 and len(lines) <= 3, lines
  for text in case.expect:
    assert text in errors[0], (text, errors[0])
  if case.workdir == "file":
    return
  after = _snapshot(workdir) if workdir.is_dir() else {}
  if case.code == 2:  # a usage error: nothing written, nothing changed
    assert after == before
  else:  # an error while training: nothing that was there is lost or changed
    assert {k: after.get(k) for k in before} == before
  if name == "diverging_run":  # the last good checkpoint is step 1, finite, and nothing later
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1"]
    config = synthetic.get_config("method=cavia,smoke")
    config.data.data_dir = synthetic_data_dir
    _, state = checkpoints.restore_run(config, str(workdir))
    import jax

    assert int(state.step) == 1
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_sweep_count():
  """The sweep's size and its share of one-line outcomes (docs/reliability.md quotes them)."""
  kinds = {c.kind for c in CASES.values()}
  assert kinds == {"config", "data", "episodes", "checkpoint", "workdir", "ablate"}
  assert len(CASES) >= 80 and sum(c.code != 0 for c in CASES.values()) == 86
  assert (len(CASES) - len(KNOWN_BAD)) / len(CASES) >= 0.9
