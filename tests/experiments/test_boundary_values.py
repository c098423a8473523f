"""Every value checked at the boundary (issue 36): seeds, amplitudes, grids, names, episode files,
data smaller than a batch, an empty --arms. Each is refused before anything is written, with a
message naming the value and what is allowed."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import sources
from experiments import cli
from experiments.configs import arrays as arrays_config
from experiments.configs import synthetic
from experiments.run import build, train, validate
from experiments.studies import runner
from mia_jax import episodes_file
from mia_jax.arrays import array_layout
from mia_jax.modalities import ModalitySpec
from tests.paths import ROOT


@pytest.mark.parametrize(
  "field, value, ok",
  [
    ("seed", 2**32 - 1, True),
    ("seed", 2**32, False),
    ("seed", -1, False),
    ("eval.episode_seed", 0, True),
    ("eval.episode_seed", 2**32, False),
  ],
)
def test_seeds_in_range(field, value, ok):
  config = synthetic.get_config("smoke")
  if "." in field:
    config.eval.episode_seed = value
  else:
    config.seed = value
  if ok:
    validate.validate_config(config)
  else:
    with pytest.raises(
      ValueError,
      match=rf"config.{field}={value} is not allowed; expected an "
      r"integer in \[0, 2\^32\)",
    ):
      validate.validate_config(config)


@pytest.mark.parametrize(
  "amplitude, shown",
  [
    ([1.0, np.nan, 1.0], "[nan]"),
    ([1.0, 0.0, 2.0], "[0.0]"),
    ([1.0, 2.0, -3.0], "[-3.0]"),
    ([1.0, np.inf, 1.0], "[inf]"),
  ],
)
def test_amplitudes_must_be_finite_and_positive(amplitude, shown):
  y = np.zeros((3, 10), np.float32)
  with pytest.raises(ValueError, match=r"\(sig_amplitude\) must be finite numbers > 0") as e:
    sources.GridSource({"sig": {"y": y, "amplitude": np.array(amplitude)}})
  assert shown in str(e.value)
  sources.GridSource({"sig": {"y": y, "amplitude": np.array([1.0, 0.5, 2.0])}})  # fine


def test_amplitudes_in_both_splits_or_neither(tmp_path):
  y = np.zeros((4, 10), np.float32)
  data = {"train": {"sig": {"y": y, "amplitude": np.ones(4)}}, "test": {"sig": y}}
  config = arrays_config.get_config("smoke")
  with pytest.raises(ValueError, match="amplitudes .* in the arrays passed but not in"):
    build.own_data_sources(config, data)
  data["test"] = {"sig": {"y": y, "amplitude": np.ones(4)}}
  build.own_data_sources(config, data)


def test_grids_need_two_points_per_axis():
  with pytest.raises(ValueError, match=r"grid \(1,\) has an axis of length 1"):
    array_layout("sig", np.zeros((4, 1)))
  with pytest.raises(ValueError, match=r"grid \(5, 1\).*grid_ndims"):
    array_layout("img", np.zeros((4, 5, 1, 3)))
  assert array_layout("img", np.zeros((4, 5, 2, 3))) == ((5, 2), 3)


@pytest.mark.parametrize(
  "name, match",
  [
    ("", "non-empty string"),
    ("  ", "non-empty string"),
    ("a/b", "contain no '/'"),
    ("avg", "reserved"),
  ],
)
def test_reserved_and_empty_modality_names(name, match):
  with pytest.raises(ValueError, match=match):
    ModalitySpec(name=name, d_in=1, grid_shape=(5,), d_out=1)


def test_episode_indices_must_be_integers(tmp_path):
  spec = ModalitySpec(
    name="sig", d_in=1, grid_shape=(20,), d_out=1, ratio_range=(0.1, 0.2), ratio_bins=((0.1, 0.2),)
  )
  path = str(tmp_path / "ep.npz")
  idx = np.tile(np.arange(spec.max_support), (3, 1))
  np.savez(
    path,
    **{"sig/idx": idx.astype(np.float64), "sig/count": np.full(3, 2), "sig/ratio": np.full(3, 0.1)},
  )
  with pytest.raises(ValueError, match="sig/idx must hold integers.*float64"):
    episodes_file.load_episodes(path, [spec])
  np.savez(path, **{"sig/idx": idx, "sig/count": np.full(3, 2), "sig/ratio": np.full(3, 0.1)})
  assert episodes_file.load_episodes(path, [spec])["sig"]["idx"].shape == (3, spec.max_support)


def test_data_smaller_than_a_batch_is_refused_before_writing(tmp_path):
  rng = np.random.default_rng(0)
  data = {
    "train": {"sig": rng.normal(size=(5, 30)).astype(np.float32)},
    "test": {"sig": rng.normal(size=(4, 30)).astype(np.float32)},
  }
  config = arrays_config.get_config("smoke")
  config.batch_size = 8
  workdir = tmp_path / "w"
  with pytest.raises(
    ValueError,
    match=r"hold 5 signals, fewer than one batch \(batch_size=8\); "
    r"lower --config.batch_size to at most (\d+)",
  ) as e:
    train.prepare(config, str(workdir), data)
  assert not workdir.exists()
  config.batch_size = int(re.search(r"at most (\d+)", str(e.value)).group(1))  # the advice
  assert 1 <= config.batch_size <= 5
  train.prepare(config, str(workdir), data)


def test_empty_arms_is_refused():
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.ablate",
      "--config=experiments/configs/synthetic.py:smoke",
      "--study=sft_removal",
      "--arms=",
      "--workdir=/tmp/never_written_arms",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "error: --arms is empty; name some of the study's arms (" in proc.stderr
  assert not os.path.exists("/tmp/never_written_arms")


# ------------------------------------------------------------------------------------------------
# Files in the workdir read defensively.


def test_a_half_written_metrics_line_is_dropped_on_resume(tmp_path):
  from experiments.run import workdir as workdir_lib

  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n{"step": 3, "lo')
  said = []
  workdir_lib.trim_metrics(str(path), 2, log=said.append)
  assert path.read_text() == '{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n'
  assert len(said) == 1 and "dropped 1 line(s)" in said[0]


def test_corrupt_run_files_name_the_file_and_the_way_on(tmp_path):
  rundir = tmp_path / "arm" / "seed0"
  rundir.mkdir(parents=True)
  config = synthetic.get_config("method=cavia,smoke")
  run = runner.Run(arm="arm", seed=0, config=config, rundir=str(rundir))
  (rundir / "config.json").write_text(config.to_json()[:40])
  with pytest.raises(
    ValueError,
    match=r"config.json \(a study run's config\) is not readable "
    r"JSON .*delete that run's folder",
  ):
    runner.run_status(run)
  (rundir / "config.json").write_text(config.to_json())
  (rundir / "results.json").write_text('{"step": ')
  with pytest.raises(
    ValueError,
    match=r"results.json \(a study run's results\) is not readable "
    "JSON.*delete that file",
  ):
    runner.run_status(run)
  os.remove(rundir / "results.json")  # following the advice
  assert runner.run_status(run) == "new"
  # The driver's own check of a workdir's config.json.
  from experiments.run import workdir as workdir_lib

  os.makedirs(rundir / "checkpoints" / "3")  # a run with a checkpoint (else: a failed start)
  (rundir / "config.json").write_text("[1, 2")
  with pytest.raises(ValueError, match=r"config.json \(the run's config\) is not readable JSON"):
    workdir_lib.check_restart(config, str(rundir))


@pytest.mark.parametrize(
  "arg, match",
  [
    ("--config=README.md", "is not a Python config file"),
    ("--config=setup.py", r"defines no get_config\(\), so it is not a config file"),
    ("--config=experiments/configs/nope.py:smoke", "does not exist"),
  ],
)
def test_a_config_that_is_not_a_config_file(arg, match):
  """Checked before the file runs (a setup.py would parse the command line itself)."""
  cwd = os.getcwd()
  os.chdir(ROOT)
  try:
    with pytest.raises(ValueError, match=match):
      cli.check_config_file(["main", arg, "--workdir=/tmp/x"])
    cli.check_config_file(["main", "--config=experiments/configs/synthetic.py:cpu"])
  finally:
    os.chdir(cwd)


def test_a_workdir_that_is_a_dangling_link(tmp_path):
  link = tmp_path / "w"
  os.symlink(tmp_path / "gone", link)
  with pytest.raises(ValueError, match=r"is a symbolic link to .*gone, which does not exist"):
    validate.check_writable_dir(str(link), "workdir")
  (tmp_path / "gone").mkdir()  # following the advice: create the target
  validate.check_writable_dir(str(link), "workdir")


def test_unscaled_values_and_blank_names_in_arrays_are_refused(tmp_path):
  # Found by tests/end_to_end/test_properties.py: values of 1e30 trained into a "lower the
  # learning rate" divergence, and a blank name gave "No modality given; allowed:  or a subset".
  y = np.zeros((4, 5, 1), np.float32)
  assert array_layout("sig", y + 1e6) == ((5,), 1)  # the limit itself is accepted
  with pytest.raises(ValueError, match=r"'sig'.*values up to 1e\+30.*scale the data"):
    array_layout("sig", y + 1e30)
  with pytest.raises(ValueError, match=r"values up to -?2e\+06"):
    array_layout("sig", y - 2e6)
  config = arrays_config.get_config("smoke")
  w = str(tmp_path / "w")
  for name in ("", "  "):
    with pytest.raises(ValueError, match=f"the modality name {name!r} is blank"):
      train.prepare(config, w, data={"train": {name: y}, "test": {name: y}})
  assert not os.path.exists(w)
