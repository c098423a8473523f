"""Tests of data_pipelines' in-memory and `.npz` sources: ArraySource, to_memory, NpzSource and
save_npz."""

import numpy as np
import pytest

from data_pipelines import sources
from data_pipelines.synthetic import generate


def test_npz_round_trip_2d_and_1d(tmp_path):
  rng = np.random.default_rng(0)
  image = rng.normal(size=(5, 4, 6, 3)).astype(np.float32)
  image_amplitude = rng.uniform(1, 2, size=5).astype(np.float32)
  wave = rng.normal(size=(5, 50))  # float64, no channel axis: d_out = 1.
  path = tmp_path / "signals.npz"
  sources.save_npz(
    path,
    {
      "image": {"y": image, "amplitude": image_amplitude},
      "wave": wave,
    },
  )
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
    np.testing.assert_array_equal(element["image"]["y"][1 * 6 + 2], image[i, 1, 2])
    np.testing.assert_array_equal(element["image"]["y"], image[i].reshape(24, 3))
    assert element["image"]["amplitude"] == image_amplitude[i]
    np.testing.assert_array_equal(element["wave"]["y"][:, 0], wave[i].astype(np.float32))
    assert element["wave"]["amplitude"] == 1.0
    assert element["wave"]["amplitude"].dtype == np.float32
  np.testing.assert_array_equal(source[-1]["wave"]["y"], source[4]["wave"]["y"])
  with pytest.raises(IndexError):
    source[5]


def test_npz_round_trip_of_generated_signals(tmp_path):
  signals = generate.generate_signals(6, seed=5)
  path = tmp_path / "synthetic.npz"
  sources.save_npz(path, signals)
  source = sources.NpzSource(path, modalities=["tanh", "sine"])
  assert list(source[2]) == ["tanh", "sine"]
  for name in ("tanh", "sine"):
    np.testing.assert_array_equal(source[2][name]["y"], signals[name]["y"][2])
    np.testing.assert_array_equal(source[2][name]["amplitude"], signals[name]["amplitude"][2])


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
  np.testing.assert_array_equal(copy.arrays["relu"]["amplitude"], signals["relu"]["amplitude"])
  no_amplitude = sources.ArraySource({"m": {"y": np.zeros((2, 5, 3))}})
  assert no_amplitude[1]["m"]["amplitude"] == 1.0
  with pytest.raises(ValueError, match="'a': 2.*'b': 3"):
    sources.ArraySource({"a": {"y": np.zeros((2, 5, 1))}, "b": {"y": np.zeros((3, 5, 1))}})
  with pytest.raises(ValueError, match="shape"):
    sources.ArraySource({"a": {"y": np.zeros((2, 5))}})


def test_npz_source_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.npz"):
    sources.NpzSource(tmp_path / "missing.npz")

  path = tmp_path / "a.npz"
  sources.save_npz(path, {"rgb": np.zeros((4, 2, 2, 3)), "wav": np.zeros((4, 10))})
  with pytest.raises(ValueError) as error:
    sources.NpzSource(path, modalities=["rgb", "sketch"])
  assert "'sketch'" in str(error.value)
  assert "'rgb'" in str(error.value) and "'wav'" in str(error.value)

  mismatched = tmp_path / "b.npz"
  sources.save_npz(mismatched, {"rgb": np.zeros((4, 2, 2, 3)), "wav": np.zeros((3, 10))})
  with pytest.raises(ValueError, match="number of signals.*'rgb': 4.*'wav': 3"):
    sources.NpzSource(mismatched)
  # Selecting one of the modalities is fine.
  assert len(sources.NpzSource(mismatched, modalities=["wav"])) == 3

  bad_amplitude = tmp_path / "c.npz"
  sources.save_npz(bad_amplitude, {"wav": {"y": np.zeros((4, 10)), "amplitude": np.ones(3)}})
  with pytest.raises(ValueError, match="wav_amplitude"):
    sources.NpzSource(bad_amplitude)

  one_dim = tmp_path / "d.npz"
  sources.save_npz(one_dim, {"wav": np.zeros(10)})
  with pytest.raises(ValueError, match="shape"):
    sources.NpzSource(one_dim)
