"""Tests of data_pipelines: generator, tfds builder, sources and loaders."""

import os
import sys

import numpy as np
import pytest

from data_pipelines import sources
from data_pipelines.synthetic import generate
from data_pipelines.synthetic import synthetic

SMALL_TRAIN, SMALL_TEST = 64, 32


# --------------------------------------------------------------------------
# Synthetic generator.


def _reference_signal(seed, index):
  """Recomputes signal `index` of `generate_signals(.., seed)` by hand."""
  rng = np.random.default_rng(seed)
  for _ in range(index + 1):
    u1, u2 = rng.uniform(0.0, 1.0, 2)
    b, c = rng.uniform(-2.0, 2.0, 2)
    noise = rng.standard_normal((4, 4))
  a, w = np.exp(u1 - 0.5), np.exp(u2 - 0.5)
  t = np.linspace(-5.0, 5.0, 200)
  g = {
      "sine": np.sin,
      "tanh": np.tanh,
      "gaussian": lambda z: np.exp(-z * z),
      "relu": lambda z: np.where(z > 0, z, 0.0),
  }
  out = {}
  for k, name in enumerate(["sine", "tanh", "gaussian", "relu"]):
    n1, n2, n3, n4 = noise[k]
    a_m = a * np.exp(0.1 * n1)
    w_m = w * np.exp(0.1 * n2)
    b_m = b + 0.2 * n3
    c_m = c + 0.2 * n4
    out[name] = (a_m * g[name](w_m * t + b_m) + c_m, a_m)
  return out


@pytest.mark.parametrize("index", [0, 5])
def test_generate_matches_hand_computed_formula(index):
  signals = generate.generate_signals(8, seed=3)
  reference = _reference_signal(seed=3, index=index)
  for name, (y, a_m) in reference.items():
    np.testing.assert_allclose(
        signals[name]["y"][index, :, 0], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(signals[name]["amplitude"][index], a_m,
                               rtol=1e-6)


def test_generate_shapes_dtypes_and_grid():
  signals = generate.generate_signals(5, seed=0)
  assert list(signals) == list(generate.MODALITIES)
  for arrays in signals.values():
    assert arrays["y"].shape == (5, 200, 1)
    assert arrays["y"].dtype == np.float32
    assert arrays["amplitude"].shape == (5,)
    assert arrays["amplitude"].dtype == np.float32
  assert generate.T_GRID.shape == (200,)
  assert generate.T_GRID[0] == -5.0 and generate.T_GRID[-1] == 5.0
  assert generate.generate_signals(3, 0, num_points=17)["tanh"]["y"].shape == (
      3, 17, 1)


def test_generate_is_deterministic_and_seed_dependent():
  first = generate.generate_signals(20, seed=11)
  second = generate.generate_signals(20, seed=11)
  other = generate.generate_signals(20, seed=12)
  for name in generate.MODALITIES:
    np.testing.assert_array_equal(first[name]["y"], second[name]["y"])
    np.testing.assert_array_equal(first[name]["amplitude"],
                                  second[name]["amplitude"])
    assert not np.allclose(first[name]["y"], other[name]["y"])


def test_generate_subset_equals_full_set():
  full = generate.generate_signals(10, seed=4)
  subset = generate.generate_signals(10, seed=4, modalities=("relu", "sine"))
  assert list(subset) == ["relu", "sine"]
  for name in subset:
    np.testing.assert_array_equal(subset[name]["y"], full[name]["y"])
    np.testing.assert_array_equal(subset[name]["amplitude"],
                                  full[name]["amplitude"])


def test_generate_smaller_size_is_prefix():
  large = generate.generate_signals(30, seed=2)
  small = generate.generate_signals(10, seed=2)
  for name in generate.MODALITIES:
    np.testing.assert_array_equal(small[name]["y"], large[name]["y"][:10])


def test_generate_value_ranges():
  signals = generate.generate_signals(200, seed=0)
  # a in [e^-0.5, e^0.5] times a jitter exp(0.1 n); 200 * 4 draws stay within
  # 5 standard deviations.
  for arrays in signals.values():
    amplitude = arrays["amplitude"]
    assert np.all(amplitude > np.exp(-0.5 - 0.5))
    assert np.all(amplitude < np.exp(0.5 + 0.5))
  spread = lambda name: np.ptp(signals[name]["y"][..., 0], axis=1)
  tolerance = 1e-5
  # |sin|, |tanh| <= 1 and exp(-z^2) in (0, 1]: bounded by the amplitude.
  assert np.all(spread("sine") <= 2 * signals["sine"]["amplitude"] + tolerance)
  assert np.all(spread("tanh") <= 2 * signals["tanh"]["amplitude"] + tolerance)
  assert np.all(
      spread("gaussian") <= signals["gaussian"]["amplitude"] + tolerance)
  # a_m > 0 and w_m > 0, so tanh and relu increase with t.
  assert np.all(np.diff(signals["tanh"]["y"][..., 0], axis=1) >= -1e-5)
  assert np.all(np.diff(signals["relu"]["y"][..., 0], axis=1) >= -1e-5)
  for arrays in signals.values():
    assert np.all(np.isfinite(arrays["y"]))


@pytest.mark.parametrize("modalities", [("sine", "cosine"), ("SINE",)])
def test_generate_rejects_unknown_modality(modalities):
  with pytest.raises(ValueError) as error:
    generate.generate_signals(2, seed=0, modalities=modalities)
  message = str(error.value)
  assert repr(modalities[-1]) in message
  for name in generate.MODALITIES:
    assert name in message


def test_generate_rejects_repeated_or_empty_modalities():
  with pytest.raises(ValueError, match="repeat"):
    generate.generate_signals(2, seed=0, modalities=("tanh", "tanh"))
  with pytest.raises(ValueError, match="at least one"):
    generate.generate_signals(2, seed=0, modalities=())


# --------------------------------------------------------------------------
# tfds builder and load_synthetic.


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  # Builds the "small" config once for the module.
  sources.load_synthetic(path, "train", config="small")
  return path


@pytest.mark.parametrize("split,size,seed",
                         [("train", SMALL_TRAIN, 0), ("test", SMALL_TEST, 1)])
def test_tfds_source_equals_generated(data_dir, split, size, seed):
  source = sources.load_synthetic(data_dir, split, config="small")
  assert sources.dataset_size(source) == size
  expected = generate.generate_signals(size, seed)
  for i in range(size):
    element = source[i]
    assert list(element) == list(generate.MODALITIES)
    for name in generate.MODALITIES:
      assert element[name]["y"].dtype == np.float32
      assert element[name]["amplitude"].dtype == np.float32
      assert element[name]["amplitude"].shape == ()
      np.testing.assert_array_equal(element[name]["y"], expected[name]["y"][i])
      np.testing.assert_array_equal(element[name]["amplitude"],
                                    expected[name]["amplitude"][i])


def test_tfds_builds_and_reads_without_tensorflow(data_dir):
  source = sources.load_synthetic(data_dir, "test", config="small")
  batch = next(iter(sources.make_loader(source, 8, shuffle=True, seed=0)))
  assert batch["sine"]["y"].shape == (8, 200, 1)
  assert "tensorflow" not in sys.modules


def test_tfds_reads_through_tfds_data_source(data_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  raw = tfds.data_source("synthetic_functions/small", data_dir=data_dir,
                         split="test", download=False)
  expected = generate.generate_signals(SMALL_TEST, 1)
  np.testing.assert_array_equal(raw[7]["gaussian"]["y"],
                                expected["gaussian"]["y"][7])


def test_tfds_configs_are_separate_and_not_rebuilt(data_dir):
  builder = synthetic.SyntheticFunctions(
      config="small", data_dir=data_dir, file_format="array_record")
  assert builder.info.splits["train"].num_examples == SMALL_TRAIN
  assert builder.info.splits["test"].num_examples == SMALL_TEST
  assert "small" in os.fspath(builder.data_dir)
  default = synthetic.SyntheticFunctions(
      config="default", data_dir=data_dir, file_format="array_record")
  assert default.data_dir != builder.data_dir
  assert default.builder_config.num_train == 1000
  assert default.builder_config.num_test == 200
  files = sorted(os.listdir(builder.data_dir))
  mtimes = [os.path.getmtime(os.path.join(builder.data_dir, f)) for f in files]
  sources.load_synthetic(data_dir, "train", config="small")
  assert mtimes == [
      os.path.getmtime(os.path.join(builder.data_dir, f)) for f in files]


def test_load_synthetic_modality_subset(data_dir):
  source = sources.load_synthetic(
      data_dir, "train", config="small", modalities=["relu", "tanh"])
  element = source[3]
  assert list(element) == ["relu", "tanh"]
  expected = generate.generate_signals(SMALL_TRAIN, 0)
  np.testing.assert_array_equal(element["relu"]["y"], expected["relu"]["y"][3])


def test_load_synthetic_in_memory(data_dir):
  source = sources.load_synthetic(data_dir, "test", config="small",
                                  modalities=["gaussian", "sine"],
                                  in_memory=True)
  assert isinstance(source, sources.ArraySource)
  assert len(source) == SMALL_TEST
  assert source.modalities == ("gaussian", "sine")
  expected = generate.generate_signals(SMALL_TEST, 1, ("gaussian", "sine"))
  for name in expected:
    np.testing.assert_array_equal(source.arrays[name]["y"], expected[name]["y"])
    np.testing.assert_array_equal(source[17][name]["amplitude"],
                                  expected[name]["amplitude"][17])


def test_load_synthetic_errors(data_dir):
  with pytest.raises(ValueError, match="'cosine'.*sine"):
    sources.load_synthetic(data_dir, "train", config="small",
                           modalities=["cosine"])
  with pytest.raises(ValueError, match="'huge'.*default.*small"):
    sources.load_synthetic(data_dir, "train", config="huge")


# --------------------------------------------------------------------------
# NpzSource and save_npz.


def test_npz_round_trip_2d_and_1d(tmp_path):
  rng = np.random.default_rng(0)
  image = rng.normal(size=(5, 4, 6, 3)).astype(np.float32)
  image_amplitude = rng.uniform(1, 2, size=5).astype(np.float32)
  wave = rng.normal(size=(5, 50))  # float64, no channel axis: d_out = 1.
  path = tmp_path / "signals.npz"
  sources.save_npz(path, {
      "image": {"y": image, "amplitude": image_amplitude},
      "wave": wave,
  })
  assert path.exists()  # No ".npz" appended twice.

  source = sources.NpzSource(path)
  assert len(source) == 5
  assert source.modalities == ("image", "wave")
  assert source.grid_shapes == {"image": (4, 6), "wave": (50,)}
  assert source.d_outs == {"image": 3, "wave": 1}
  for i in range(5):
    element = source[i]
    assert element["image"]["y"].shape == (24, 3)
    assert element["image"]["y"].dtype == np.float32
    # Row-major flattening: point (r, c) is row r * 6 + c.
    np.testing.assert_array_equal(element["image"]["y"][1 * 6 + 2],
                                  image[i, 1, 2])
    np.testing.assert_array_equal(element["image"]["y"],
                                  image[i].reshape(24, 3))
    assert element["image"]["amplitude"] == image_amplitude[i]
    np.testing.assert_array_equal(element["wave"]["y"][:, 0],
                                  wave[i].astype(np.float32))
    assert element["wave"]["amplitude"] == 1.0
    assert element["wave"]["amplitude"].dtype == np.float32
  np.testing.assert_array_equal(source[-1]["wave"]["y"], source[4]["wave"]["y"])
  with pytest.raises(IndexError):
    source[5]  # pylint: disable=pointless-statement


def test_npz_round_trip_of_generated_signals(tmp_path):
  signals = generate.generate_signals(6, seed=5)
  path = tmp_path / "synthetic.npz"
  sources.save_npz(path, signals)
  source = sources.NpzSource(path, modalities=["tanh", "sine"])
  assert list(source[2]) == ["tanh", "sine"]
  for name in ("tanh", "sine"):
    np.testing.assert_array_equal(source[2][name]["y"], signals[name]["y"][2])
    np.testing.assert_array_equal(source[2][name]["amplitude"],
                                  signals[name]["amplitude"][2])


def test_npz_grid_ndims_without_channel_axis(tmp_path):
  path = tmp_path / "gray.npz"
  gray = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
  sources.save_npz(path, {"gray": gray})
  source = sources.NpzSource(path, grid_ndims={"gray": 2})
  assert source.grid_shapes == {"gray": (4, 5)}
  np.testing.assert_array_equal(source[1]["gray"]["y"][:, 0], gray[1].ravel())
  # Without the hint the last axis is the channels.
  assert sources.NpzSource(path).d_outs == {"gray": 5}


def test_array_source_and_to_memory():
  signals = generate.generate_signals(7, seed=9, modalities=("relu",))
  source = sources.ArraySource(signals)
  assert len(source) == 7 and source.d_outs == {"relu": 1}
  np.testing.assert_array_equal(source[3]["relu"]["y"], signals["relu"]["y"][3])
  with pytest.raises(ValueError):  # Views are read-only.
    source[3]["relu"]["y"][0] = 1.0
  # Chunked reads of an element-wise source give back the same arrays.
  copy = sources.to_memory([source[i] for i in range(7)], chunk_size=3)
  np.testing.assert_array_equal(copy.arrays["relu"]["y"], signals["relu"]["y"])
  np.testing.assert_array_equal(copy.arrays["relu"]["amplitude"],
                                signals["relu"]["amplitude"])
  no_amplitude = sources.ArraySource({"m": {"y": np.zeros((2, 5, 3))}})
  assert no_amplitude[1]["m"]["amplitude"] == 1.0
  with pytest.raises(ValueError, match="'a': 2.*'b': 3"):
    sources.ArraySource({"a": {"y": np.zeros((2, 5, 1))},
                         "b": {"y": np.zeros((3, 5, 1))}})
  with pytest.raises(ValueError, match="shape"):
    sources.ArraySource({"a": {"y": np.zeros((2, 5))}})


def test_npz_source_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.npz"):
    sources.NpzSource(tmp_path / "missing.npz")

  path = tmp_path / "a.npz"
  sources.save_npz(path, {"rgb": np.zeros((4, 2, 2, 3)),
                          "wav": np.zeros((4, 10))})
  with pytest.raises(ValueError) as error:
    sources.NpzSource(path, modalities=["rgb", "sketch"])
  assert "'sketch'" in str(error.value)
  assert "'rgb'" in str(error.value) and "'wav'" in str(error.value)

  mismatched = tmp_path / "b.npz"
  sources.save_npz(mismatched, {"rgb": np.zeros((4, 2, 2, 3)),
                                "wav": np.zeros((3, 10))})
  with pytest.raises(ValueError, match="number of signals.*'rgb': 4.*'wav': 3"):
    sources.NpzSource(mismatched)
  # Selecting one of the modalities is fine.
  assert len(sources.NpzSource(mismatched, modalities=["wav"])) == 3

  bad_amplitude = tmp_path / "c.npz"
  sources.save_npz(bad_amplitude, {
      "wav": {"y": np.zeros((4, 10)), "amplitude": np.ones(3)}})
  with pytest.raises(ValueError, match="wav_amplitude"):
    sources.NpzSource(bad_amplitude)

  one_dim = tmp_path / "d.npz"
  sources.save_npz(one_dim, {"wav": np.zeros(10)})
  with pytest.raises(ValueError, match="shape"):
    sources.NpzSource(one_dim)


# --------------------------------------------------------------------------
# Loaders.


def _index_source(num_signals):
  """A source whose signal i has y = i everywhere (to track indices)."""
  return [{"m": {"y": np.full((3, 1), i, np.float32),
                 "amplitude": np.float32(1.0)}}
          for i in range(num_signals)]


def _indices(batch):
  return batch["m"]["y"][:, 0, 0].astype(int).tolist()


def _take(loader, count):
  iterator = iter(loader)
  return [next(iterator) for _ in range(count)]


def test_loader_batch_shapes(data_dir):
  source = sources.load_synthetic(data_dir, "train", config="small",
                                  modalities=["sine", "relu"])
  batches = _take(sources.make_loader(source, 16, shuffle=True, seed=0), 5)
  for batch in batches:
    assert list(batch) == ["sine", "relu"]
    for arrays in batch.values():
      assert arrays["y"].shape == (16, 200, 1)
      assert arrays["y"].dtype == np.float32
      assert arrays["amplitude"].shape == (16,)
      assert arrays["amplitude"].dtype == np.float32


def test_loader_casts_raw_floats_to_float32(data_dir):
  # A raw tfds source gives scalar features as Python floats.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  raw = tfds.data_source("synthetic_functions/small", data_dir=data_dir,
                         split="train", download=False)
  batch = next(iter(sources.make_loader(raw, 4, shuffle=False)))
  assert batch["relu"]["amplitude"].dtype == np.float32
  expected = generate.generate_signals(4, 0)["relu"]["amplitude"]
  np.testing.assert_array_equal(batch["relu"]["amplitude"], expected)
  float64 = [{"m": {"y": np.zeros((3, 1)), "amplitude": 2.0}}] * 2
  batch = next(iter(sources.make_loader(float64, 2, shuffle=False)))
  assert batch["m"]["y"].dtype == np.float32


def test_eval_loader_visits_every_signal_once_in_order(data_dir):
  loader = sources.make_loader(_index_source(10), 4, shuffle=False,
                               num_epochs=1, drop_remainder=False)
  batches = list(loader)
  assert [_indices(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

  source = sources.load_synthetic(data_dir, "test", config="small")
  batches = list(sources.make_loader(source, 10, shuffle=False, num_epochs=1,
                                     drop_remainder=False))
  assert [b["tanh"]["y"].shape[0] for b in batches] == [10, 10, 10, 2]
  expected = generate.generate_signals(SMALL_TEST, 1)
  for name in generate.MODALITIES:
    for key in ("y", "amplitude"):
      np.testing.assert_array_equal(
          np.concatenate([b[name][key] for b in batches]), expected[name][key])


def test_train_loader_epochs_are_permutations():
  num_signals, batch_size = 10, 4  # 2 batches an epoch, 2 signals dropped.
  batches = _take(sources.make_loader(_index_source(num_signals), batch_size,
                                      shuffle=True, seed=1), 8)
  epochs = [sum((_indices(b) for b in batches[e:e + 2]), [])
            for e in range(0, 8, 2)]
  for epoch in epochs:
    assert len(set(epoch)) == 8  # No repeats within an epoch.
  assert len({tuple(epoch) for epoch in epochs}) == 4  # Reshuffled each epoch.
  assert epochs[0] != list(range(8))


def test_train_loader_is_deterministic():
  source = _index_source(20)
  first = _take(sources.make_loader(source, 6, shuffle=True, seed=7), 10)
  second = _take(sources.make_loader(source, 6, shuffle=True, seed=7,
                                     num_threads=1), 10)
  other = _take(sources.make_loader(source, 6, shuffle=True, seed=8), 10)
  assert [_indices(b) for b in first] == [_indices(b) for b in second]
  assert [_indices(b) for b in first] != [_indices(b) for b in other]


@pytest.mark.parametrize("skip", [1, 3, 7])
def test_train_loader_resumes_with_skip(skip):
  source = _index_source(20)
  full = _take(sources.make_loader(source, 6, shuffle=True, seed=3), 12)
  resumed = _take(sources.make_loader(source, 6, shuffle=True, seed=3,
                                      skip_batches=skip), 12 - skip)
  assert [_indices(b) for b in resumed] == [_indices(b) for b in full[skip:]]


def test_finite_epochs_stop():
  loader = sources.make_loader(_index_source(10), 3, shuffle=True, seed=0,
                               num_epochs=2)
  batches = list(loader)
  assert len(batches) == 2 * 3
  assert all(len(_indices(b)) == 3 for b in batches)
  assert sources.num_batches(10, 3) == 3
  assert sources.num_batches(10, 3, drop_remainder=False) == 4


def test_loader_with_worker_processes_matches(tmp_path):
  path = tmp_path / "signals.npz"
  sources.save_npz(path, generate.generate_signals(24, seed=0))
  source = sources.NpzSource(path, modalities=["gaussian"])
  expected = _take(sources.make_loader(source, 8, shuffle=True, seed=2), 4)
  iterator = iter(sources.make_loader(source, 8, shuffle=True, seed=2,
                                      worker_count=2))
  try:
    for want in expected:
      got = next(iterator)
      np.testing.assert_array_equal(got["gaussian"]["y"],
                                    want["gaussian"]["y"])
      np.testing.assert_array_equal(got["gaussian"]["amplitude"],
                                    want["gaussian"]["amplitude"])
      del got  # Worker batches live in shared memory; release before close.
  finally:
    iterator.close()


def test_loader_argument_errors():
  source = _index_source(5)
  with pytest.raises(ValueError, match="seed"):
    sources.make_loader(source, 2, shuffle=True)
  with pytest.raises(ValueError, match="No batch of 8 .* 5 signals"):
    sources.make_loader(source, 8, shuffle=False)
  with pytest.raises(ValueError, match="batch_size"):
    sources.make_loader(source, 0, shuffle=False)
  with pytest.raises(ValueError, match="num_epochs"):
    sources.make_loader(source, 2, shuffle=False, num_epochs=0)
  # A partial batch is allowed without drop_remainder.
  batches = list(sources.make_loader(source, 8, shuffle=False, num_epochs=1,
                                     drop_remainder=False))
  assert [_indices(b) for b in batches] == [[0, 1, 2, 3, 4]]
