"""Tests of data_pipelines' synthetic benchmark: generator, tfds builder and load_synthetic.

The `.npz` sources are tested in test_data_pipelines_npz.py, the loaders in
test_data_pipelines_loader.py.
"""

import os
import sys

import numpy as np
import pytest

from data_pipelines import sources
from data_pipelines.synthetic import generate, synthetic

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
    np.testing.assert_allclose(signals[name]["y"][index, :, 0], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(signals[name]["amplitude"][index], a_m, rtol=1e-6)


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
  assert generate.generate_signals(3, 0, num_points=17)["tanh"]["y"].shape == (3, 17, 1)


def test_generate_is_deterministic_and_seed_dependent():
  first = generate.generate_signals(20, seed=11)
  second = generate.generate_signals(20, seed=11)
  other = generate.generate_signals(20, seed=12)
  for name in generate.MODALITIES:
    np.testing.assert_array_equal(first[name]["y"], second[name]["y"])
    np.testing.assert_array_equal(first[name]["amplitude"], second[name]["amplitude"])
    assert not np.allclose(first[name]["y"], other[name]["y"])


def test_generate_subset_equals_full_set():
  full = generate.generate_signals(10, seed=4)
  subset = generate.generate_signals(10, seed=4, modalities=("relu", "sine"))
  assert list(subset) == ["relu", "sine"]
  for name in subset:
    np.testing.assert_array_equal(subset[name]["y"], full[name]["y"])
    np.testing.assert_array_equal(subset[name]["amplitude"], full[name]["amplitude"])


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
  assert np.all(spread("gaussian") <= signals["gaussian"]["amplitude"] + tolerance)
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
  with pytest.raises(ValueError, match="twice"):
    generate.generate_signals(2, seed=0, modalities=("tanh", "tanh"))
  with pytest.raises(ValueError, match="No synthetic modality given"):
    generate.generate_signals(2, seed=0, modalities=())


# --------------------------------------------------------------------------
# tfds builder and load_synthetic.


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  # Builds the "small" config once for the module.
  sources.load_synthetic(path, "train", config="small")
  return path


@pytest.mark.parametrize("split,size,seed", [("train", SMALL_TRAIN, 0), ("test", SMALL_TEST, 1)])
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
      np.testing.assert_array_equal(element[name]["amplitude"], expected[name]["amplitude"][i])


def test_tfds_builds_and_reads_without_tensorflow(data_dir):
  source = sources.load_synthetic(data_dir, "test", config="small")
  batch = next(iter(sources.make_loader(source, 8, shuffle=True, seed=0)))
  assert batch["sine"]["y"].shape == (8, 200, 1)
  assert "tensorflow" not in sys.modules


def test_tfds_reads_through_tfds_data_source(data_dir):
  import tensorflow_datasets as tfds

  raw = tfds.data_source(
    "synthetic_functions/small", data_dir=data_dir, split="test", download=False
  )
  expected = generate.generate_signals(SMALL_TEST, 1)
  np.testing.assert_array_equal(raw[7]["gaussian"]["y"], expected["gaussian"]["y"][7])


def test_tfds_configs_are_separate_and_not_rebuilt(data_dir):
  builder = synthetic.SyntheticFunctions(
    config="small", data_dir=data_dir, file_format="array_record"
  )
  assert builder.info.splits["train"].num_examples == SMALL_TRAIN
  assert builder.info.splits["test"].num_examples == SMALL_TEST
  assert "small" in os.fspath(builder.data_dir)
  default = synthetic.SyntheticFunctions(
    config="default", data_dir=data_dir, file_format="array_record"
  )
  assert default.data_dir != builder.data_dir
  assert default.builder_config.num_train == 1000
  assert default.builder_config.num_test == 200
  files = sorted(os.listdir(builder.data_dir))
  mtimes = [os.path.getmtime(os.path.join(builder.data_dir, f)) for f in files]
  sources.load_synthetic(data_dir, "train", config="small")
  assert mtimes == [os.path.getmtime(os.path.join(builder.data_dir, f)) for f in files]


def test_load_synthetic_modality_subset(data_dir):
  source = sources.load_synthetic(data_dir, "train", config="small", modalities=["relu", "tanh"])
  element = source[3]
  assert list(element) == ["relu", "tanh"]
  expected = generate.generate_signals(SMALL_TRAIN, 0)
  np.testing.assert_array_equal(element["relu"]["y"], expected["relu"]["y"][3])


def test_load_synthetic_in_memory(data_dir):
  source = sources.load_synthetic(
    data_dir, "test", config="small", modalities=["gaussian", "sine"], in_memory=True
  )
  assert isinstance(source, sources.ArraySource)
  assert len(source) == SMALL_TEST
  assert source.modalities == ("gaussian", "sine")
  expected = generate.generate_signals(SMALL_TEST, 1, ("gaussian", "sine"))
  for name in expected:
    np.testing.assert_array_equal(source.arrays[name]["y"], expected[name]["y"])
    np.testing.assert_array_equal(source[17][name]["amplitude"], expected[name]["amplitude"][17])


def test_load_synthetic_errors(data_dir):
  with pytest.raises(ValueError, match="'cosine'.*sine"):
    sources.load_synthetic(data_dir, "train", config="small", modalities=["cosine"])
  with pytest.raises(ValueError, match="'huge'.*default.*small"):
    sources.load_synthetic(data_dir, "train", config="huge")
