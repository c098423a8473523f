import jax
import numpy as np
import pytest

from data_pipelines.benchmarks import synthetic_spec
from mia_jax import episodes_file, sampling
from tests.helpers import image_spec


def test_supports_are_distinct_in_range_and_counted():
  spec = synthetic_spec("sine")
  ep = sampling.sample_modality_support(jax.random.PRNGKey(0), spec, 256)
  idx, mask, ratio = map(np.asarray, (ep["idx"], ep["mask"], ep["ratio"]))
  assert idx.shape == (256, 20) and mask.shape == (256, 20)
  assert ratio.min() >= 0.01 and ratio.max() <= 0.1
  count = mask.sum(-1)
  np.testing.assert_array_equal(count, np.clip(np.floor(ratio * 200 + 1e-6), 1, 20))
  for row in idx:
    assert len(set(row.tolist())) == 20 and row.min() >= 0 and row.max() < 200
  # mask is a prefix: valid entries first.
  assert np.all(np.diff(mask, axis=-1) <= 0)
  # uniform ratio: the mean is close to the middle of [0.01, 0.1].
  assert abs(ratio.mean() - 0.055) < 0.01


def test_support_indices_are_uniform_over_the_grid():
  spec = image_spec(size=4)
  ep = sampling.sample_modality_support(jax.random.PRNGKey(1), spec, 4000)
  idx, mask = np.asarray(ep["idx"]), np.asarray(ep["mask"])
  hits = np.bincount(idx[mask > 0], minlength=16)
  assert hits.min() > 0.8 * hits.mean() and hits.max() < 1.2 * hits.mean()


def test_membership_scatter():
  idx = np.array([[3, 1, 0]])
  mask = np.array([[1.0, 1.0, 0.0]])
  np.testing.assert_array_equal(sampling.support_membership(idx, mask, 5), [[0, 1, 0, 1, 0]])


def test_eval_episodes_fixed_and_subset_invariant(tmp_path):
  specs = [synthetic_spec(n) for n in ("sine", "tanh", "relu")]
  full = sampling.make_eval_episodes(7, specs, 10)
  again = sampling.make_eval_episodes(7, specs, 10)
  sub = sampling.make_eval_episodes(7, specs[1:2], 10)
  other = sampling.make_eval_episodes(8, specs, 10)
  np.testing.assert_array_equal(full["tanh"]["idx"], again["tanh"]["idx"])
  np.testing.assert_array_equal(full["tanh"]["idx"], sub["tanh"]["idx"])
  assert not np.array_equal(full["tanh"]["idx"], other["tanh"]["idx"])
  assert not np.array_equal(full["tanh"]["idx"], full["sine"]["idx"])

  path = tmp_path / "ep.npz"
  episodes_file.save_episodes(path, full)
  loaded = episodes_file.load_episodes(path, specs)
  for n in full:
    for k in ("idx", "mask", "ratio"):
      np.testing.assert_array_equal(loaded[n][k], full[n][k])
    assert loaded[n]["idx"].dtype == np.int32
  with np.load(path) as f:  # stored compactly: a 200-point grid's indices fit uint16
    assert f["tanh/idx"].dtype == np.uint16
  # Indices past uint16 stay int32, with their values.
  big = np.array([[0, 70_000, 65_535]], np.int64)
  episodes_file.write_episode_arrays(tmp_path / "big.npz", {"x/idx": big, "x/count": np.array([3])})
  with np.load(tmp_path / "big.npz") as f:
    assert f["x/idx"].dtype == np.int32
    np.testing.assert_array_equal(f["x/idx"], big)


def test_load_episodes_errors(tmp_path):
  specs = [synthetic_spec("sine")]
  with pytest.raises(FileNotFoundError, match="missing.npz"):
    episodes_file.load_episodes(tmp_path / "missing.npz", specs)
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"not a zip file")
  with pytest.raises(ValueError, match="Could not read"):
    episodes_file.load_episodes(bad, specs)
  other = tmp_path / "other.npz"
  episodes_file.save_episodes(other, sampling.make_eval_episodes(0, [synthetic_spec("tanh")], 3))
  with pytest.raises(ValueError, match="lacks.*sine/idx"):
    episodes_file.load_episodes(other, specs)


def test_training_supports_are_keyed_by_name_not_position():
  specs = [synthetic_spec(n) for n in ("sine", "tanh")]
  full = sampling.sample_episode(jax.random.PRNGKey(3), specs, 4)
  alone = sampling.sample_episode(jax.random.PRNGKey(3), specs[1:], 4)
  np.testing.assert_array_equal(full["tanh"]["idx"], alone["tanh"]["idx"])
  assert not np.array_equal(full["tanh"]["idx"], full["sine"]["idx"])


def test_episode_files_with_bad_counts_or_repeated_points_are_refused(tmp_path):
  from mia_jax import sampling as sp

  spec = synthetic_spec("sine")
  episodes = sp.make_eval_episodes(0, [spec], 4)
  path = str(tmp_path / "ep.npz")
  episodes_file.save_episodes(path, episodes)
  assert episodes_file.load_episodes(path, [spec])["sine"]["idx"].shape == (4, spec.max_support)
  arrays = dict(np.load(path))
  for change, match in (
    (
      lambda a: a["sine/count"].__setitem__(1, spec.max_support + 1),
      r"count must be integers in \[1, 20\].*signals \[1\]",
    ),
    (lambda a: a["sine/count"].__setitem__(2, -1), r"signals \[2\]"),
    (
      lambda a: a["sine/idx"].__setitem__((0, 1), a["sine/idx"][0, 0]),
      r"repeats a point within the support of signals \[0\]",
    ),
    (lambda a: a["sine/ratio"].__setitem__(0, np.nan), "ratio must be"),
  ):
    bad = {k: v.copy() for k, v in arrays.items()}
    bad["sine/count"] = np.maximum(bad["sine/count"], 2)  # room for the repeated point
    change(bad)
    np.savez(str(tmp_path / "bad.npz"), **bad)
    with pytest.raises(ValueError, match=match):
      episodes_file.load_episodes(str(tmp_path / "bad.npz"), [spec])
