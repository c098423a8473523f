"""Using what was trained (issue 31): `load_run` of a finished run, and the
`experiments.reconstruct` command. Adapting to observations: `tests/library/test_observations.py`;
observation files: `test_observation_files.py`."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from data_pipelines import sources
from data_pipelines.synthetic import generate
from experiments import reconstruct
from experiments.configs import arrays as arrays_config
from experiments.configs import synthetic
from experiments.run import checkpoints, loading, train
from mia_jax import episodes_file
from tests.paths import ROOT

pytestmark = pytest.mark.slow  # trains, or runs the command line


def _close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol),
    a,
    b,
  )


@pytest.fixture(scope="module")
def mia_run(tmp_path_factory, synthetic_data_dir):
  config = synthetic.get_config("method=mia,smoke")
  config.data.data_dir = synthetic_data_dir
  workdir = str(tmp_path_factory.mktemp("mia_run"))
  results = train.train_and_evaluate(config, workdir)
  return workdir, config, results


def test_load_run_restores_the_trained_state(mia_run):
  workdir, config, _ = mia_run
  learner, state, loaded_config = loading.load_run(workdir)
  assert loaded_config.to_dict() == json.loads(config.to_json())
  assert int(state.step) == config.num_train_steps
  _, reference = checkpoints.restore_run(config, workdir)
  jax.tree.map(
    np.testing.assert_array_equal, jax.device_get(state.params), jax.device_get(reference.params)
  )
  assert [s.name for s in learner.specs] == ["sine", "tanh", "gaussian", "relu"]


def test_load_run_errors(mia_run, tmp_path):
  workdir, _, _ = mia_run
  with pytest.raises(FileNotFoundError, match="does not exist"):
    loading.load_run(str(tmp_path / "nowhere"))
  with pytest.raises(FileNotFoundError, match="no config.json"):
    loading.load_run(str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"no checkpoint of step 5; it has \[3, 6\]"):
    loading.load_run(workdir, step=5)
  copy = tmp_path / "copy"
  copy.mkdir()
  (copy / "config.json").write_text(open(os.path.join(workdir, "config.json")).read())
  with pytest.raises(FileNotFoundError, match="has no checkpoint"):
    loading.load_run(str(copy))
  # Another model than the checkpoint's (as a run of an older version would be).
  other = json.loads(open(os.path.join(workdir, "config.json")).read())
  other["model"]["hidden"] = 2 * other["model"]["hidden"]
  os.symlink(os.path.join(workdir, "checkpoints"), copy / "checkpoints")
  (copy / "config.json").write_text(json.dumps(other))
  with pytest.raises(ValueError, match="does not restore into the model this version"):
    loading.load_run(str(copy))
  (copy / "specs.json").write_text("{not json")
  with pytest.raises(ValueError, match="not a readable modality specs file"):
    loading.load_run(str(copy))


def test_reconstruct_round_trip_gives_the_runs_errors(mia_run, tmp_path):
  """The run's own meta-test signals and supports, through the command: results.json's errors."""
  workdir, _, results = mia_run
  out = tmp_path / "latents.npz"
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.reconstruct",
      f"--workdir={workdir}",
      "--encode=test",
      "--support=episodes",
      f"--output={out}",
      "--upsample=2",
      "--batch_size=5",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  table = proc.stdout[proc.stdout.index("Errors against") :]
  avg = next(line.split() for line in table.splitlines() if line.startswith("avg"))
  m = results["metrics"]
  np.testing.assert_allclose(float(avg[1]), m["generalization_mse/avg/step3"], rtol=1e-4)
  np.testing.assert_allclose(float(avg[2]), m["memorization_mse/avg/step3"], rtol=1e-4)
  with np.load(out) as data:
    n = data["sine"].shape[0]
    # The signals the run evaluated: its first num_test_signals of the test split.
    assert n == loading.read_config(workdir).data.num_test_signals == 16
    assert data["sine"].shape == (n, 200, 1) and data["sine_upsampled"].shape == (n, 399, 1)
    assert data["sine_latents"].shape[0] == n
    episodes = episodes_file.load_episodes(
      os.path.join(workdir, "episodes.npz"),
      loading.run_specs(loading.read_config(workdir), workdir),
    )
    np.testing.assert_array_equal(
      data["sine_count"], episodes["sine"]["mask"].sum(-1)[:n].astype(int)
    )
  assert (tmp_path / "latents.png").is_file()


def test_off_grid_error_is_close_to_on_grid_error(mia_run):
  """The synthetic functions' formula gives the truth at every t: the error between grid points
  is of the size of the error at them, and the fine grid's every 4th point is the grid."""
  workdir, _, _ = mia_run
  learner, state, _ = loading.load_run(workdir)
  n = 8
  coarse = generate.generate_signals(n, seed=11)
  fine = generate.generate_signals(n, seed=11, num_points=797)
  rng = np.random.default_rng(0)
  arrays = {}
  for name in coarse:
    mask = np.zeros((n, 200))
    for i in range(n):
      mask[i, rng.choice(200, 20, replace=False)] = 1
    arrays[name] = coarse[name]["y"][..., 0]
    arrays[f"{name}_mask"] = mask
    arrays[f"{name}_amplitude"] = coarse[name]["amplitude"]
  obs = reconstruct.parse_observations(arrays, learner.specs, "test")
  result = reconstruct.reconstruct(learner, state, obs, upsample=4, batch_size=8, progress=False)
  ratios = []
  for name in coarse:
    up, truth = result[name]["upsampled"][..., 0], fine[name]["y"][..., 0]
    _close(up[:, ::4], result[name]["prediction"][..., 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(truth[:, ::4], coarse[name]["y"][..., 0], atol=1e-5)
    sq = np.square(up - truth) / np.square(coarse[name]["amplitude"])[:, None]
    between = np.ones(797, bool)
    between[::4] = False
    ratios.append(sq[:, between].mean() / sq[:, ~between].mean())
  assert all(0.8 < r < 1.25 for r in ratios), ratios


@pytest.fixture(scope="module")
def image_arrays():
  rng = np.random.default_rng(3)
  x = np.linspace(0, 1, 8)

  def images(n):
    phase = rng.uniform(0, 1, (n, 1, 1, 1))
    return (
      0.5
      + 0.4
      * np.sin(6 * x[None, :, None, None] + 3 * x[None, None, :, None] + phase)
      * np.ones((1, 1, 1, 3))
    ).astype(np.float32)

  def waves(n):
    return np.sin(np.linspace(-3, 3, 30)[None] + rng.uniform(0, 3, (n, 1))).astype(np.float32)

  return {
    "train": {"img": images(16), "sig": waves(16)},
    "test": {"img": images(8), "sig": waves(8)},
  }


def test_load_run_of_arrays_and_npz_runs(tmp_path, image_arrays):
  config = arrays_config.get_config("smoke")
  arrays_dir = str(tmp_path / "arrays")
  train.train_and_evaluate(config, arrays_dir, data=image_arrays)
  learner, state, _ = loading.load_run(arrays_dir)
  assert {s.name: s.grid_shape for s in learner.specs} == {"img": (8, 8), "sig": (30,)}
  # Reconstruct an image from points between its pixels, on a 3x finer grid.
  rng = np.random.default_rng(0)
  coords = rng.uniform(-1, 1, (2, 12, 2))
  obs = reconstruct.parse_observations(
    {"img_coords": coords, "img_values": rng.uniform(0, 1, (2, 12, 3))}, learner.specs, "t"
  )
  result = reconstruct.reconstruct(learner, state, obs, upsample=3, progress=False)
  assert result["img"]["upsampled"].shape == (2, 22 * 22, 3)
  assert result["sig"]["prediction"].shape == (2, 30, 1)  # not observed: completed
  png = reconstruct.plot(learner, obs, result, str(tmp_path / "r.png"), 2, 3)
  assert png and os.path.getsize(png) > 1000
  # The split is not on disk: --encode=test says what to do instead.
  with pytest.raises(ValueError, match="save_npz"):
    reconstruct.dataset_observations(
      loading.read_config(arrays_dir), learner, "test", "full", 0, arrays_dir
    )
  # A run of before specs.json on arrays cannot rebuild its modalities: the error says how.
  os.remove(os.path.join(arrays_dir, "specs.json"))
  with pytest.raises(ValueError, match="write_specs"):
    loading.load_run(arrays_dir)

  # The same arrays as .npz files: restored from the files' specs, and specs.json is equal.
  train_path, test_path = str(tmp_path / "train.npz"), str(tmp_path / "test.npz")
  sources.save_npz(train_path, image_arrays["train"])
  sources.save_npz(test_path, image_arrays["test"])
  npz_dir = str(tmp_path / "npz")
  train.train_and_evaluate(
    arrays_config.get_config(f"train={train_path},test={test_path},smoke"), npz_dir
  )
  learner2, state2, _ = loading.load_run(npz_dir)
  assert learner2.specs == learner.specs
  os.remove(os.path.join(npz_dir, "specs.json"))  # as a run of before v0.5: rebuilt from files
  learner3, state3, _ = loading.load_run(npz_dir)
  assert learner3.specs == learner.specs
  jax.tree.map(
    np.testing.assert_array_equal, jax.device_get(state2.params), jax.device_get(state3.params)
  )


def test_reconstruct_command_errors(mia_run, tmp_path):
  workdir, _, _ = mia_run
  bad = tmp_path / "obs.npz"
  np.savez(bad, rgb=np.zeros((2, 4, 4, 3)))
  cases = [
    ([f"--workdir={tmp_path / 'none'}", f"--observations={bad}"], "does not exist"),
    ([f"--workdir={workdir}", f"--observations={bad}"], "'rgb' that names no modality of the run"),
    ([f"--workdir={workdir}", f"--observations={tmp_path / 'missing.npz'}"], "does not exist"),
    ([f"--workdir={workdir}", "--encode=test", "--support=2"], "a ratio in (0, 1]"),
    (
      [f"--workdir={workdir}", "--encode=test", f"--output={tmp_path}"],  # found by a sweep:
      "is a folder; give a file in it",
    ),  # it failed after the work, with a bare Errno 21
    (
      [f"--workdir={workdir}", f"--observations={os.path.join(ROOT, 'README.md')}"],
      "is not an .npz file",
    ),  # it advised unpickling the file
  ]
  for args, message in cases:
    proc = subprocess.run(
      [sys.executable, "-m", "experiments.reconstruct", f"--output={tmp_path / 'o.npz'}", *args],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=300,
    )
    assert proc.returncode == 2, (args, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], (args, proc.stderr[-2000:])
