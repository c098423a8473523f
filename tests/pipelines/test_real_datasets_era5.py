"""The ERA5 builder on tiny npz files: regridding, normalisation and errors."""

import os
import re

import numpy as np
import pytest

from data_pipelines import registry
from data_pipelines.era5 import era5, load_era5, normalisation
from tests.real_data_files import assert_same_signals, manual_folder


def _era5_arrays():
  """Two training files ([2, 91, 180] and a single step [91, 180]) and one test file."""
  rng = np.random.default_rng(0)
  scales = {"temperature": (280.0, 10.0), "pressure": (1e5, 1e3), "humidity": (0.5, 0.2)}
  field = lambda shape, m: scales[m][0] + scales[m][1] * rng.normal(size=shape)
  return {
    "train": {
      "a.npz": {m: field((2, 91, 180), m) for m in era5.MODALITIES},
      "b.npz": {m: field((91, 180), m) for m in era5.MODALITIES},
    },
    "test": {"c.npz": {m: field((3, 91, 180), m) for m in era5.MODALITIES}},
  }


def _write_era5(root, arrays):
  for split, files in arrays.items():
    os.makedirs(os.path.join(root, split), exist_ok=True)
    for name, fields in files.items():
      np.savez(os.path.join(root, split, name), **fields, latitude=np.zeros(91))


def test_era5_normalisation_by_hand(tmp_path):
  data_dir = str(tmp_path)
  arrays = _era5_arrays()
  _write_era5(manual_folder(data_dir, "era5"), arrays)
  # 91 x 180 -> 46 x 90: every 2nd latitude (both poles kept) and every 2nd longitude.
  sub = lambda a: (a[None] if a.ndim == 2 else a)[:, ::2, ::2]
  steps = {
    split: [
      {m: sub(f[m])[t] for m in era5.MODALITIES}
      for f in files.values()
      for t in range(sub(f["pressure"]).shape[0])
    ]
    for split, files in arrays.items()
  }
  lo = {m: min(s[m].min() for s in steps["train"]) for m in era5.MODALITIES}
  hi = {m: max(s[m].max() for s in steps["train"]) for m in era5.MODALITIES}
  stats = normalisation(data_dir)
  for m in era5.MODALITIES:
    assert stats[m]["min"] == pytest.approx(lo[m]) and stats[m]["max"] == pytest.approx(hi[m])
  for split in ("train", "test"):
    source = load_era5(data_dir, split)
    assert len(source) == len(steps[split]) == {"train": 3, "test": 3}[split]
    for i, step in enumerate(steps[split]):
      for m in era5.MODALITIES:
        y = source[i][m]["y"]
        assert y.shape == (46 * 90, 1) and y.dtype == np.float32
        expected = (step[m] - lo[m]) / (hi[m] - lo[m])  # test uses the training min/max
        np.testing.assert_allclose(y[:, 0], expected.reshape(-1), rtol=1e-5, atol=1e-6)
  train = load_era5(data_dir, "train", in_memory=True)
  for m in era5.MODALITIES:  # the training split spans [0, 1] exactly
    values = np.stack([train[i][m]["y"] for i in range(len(train))])
    assert values.min() == pytest.approx(0.0, abs=1e-7)
    assert values.max() == pytest.approx(1.0, abs=1e-6)
  assert_same_signals(load_era5(data_dir, "test"), load_era5(data_dir, "test", in_memory=True))
  assert registry.get_loader("era5") is load_era5


def test_era5_regrid_rules():
  field = np.arange(721 * 1440, dtype=np.float64).reshape(1, 721, 1440)
  out = era5.regrid(field, (46, 90))
  assert out.shape == (1, 46, 90)
  assert out[0, 1, 1] == field[0, 16, 16] and out[0, -1, -1] == field[0, 720, 1424]
  assert era5.regrid(field[:, :46, :90], (46, 90)).shape == (1, 46, 90)
  with pytest.raises(ValueError, match="x.npz: cannot bring the 50x100 grid to 46x90"):
    era5.regrid(np.zeros((1, 50, 100)), (46, 90), where="x.npz")


def test_era5_errors_name_the_folder_and_files(tmp_path):
  data_dir = str(tmp_path)
  root = manual_folder(data_dir, "era5")
  with pytest.raises(FileNotFoundError) as error:
    load_era5(data_dir, "train")
  assert f"The ERA5 folder {root} is missing or empty" in str(error.value)
  assert f"{root}/train/<name>.npz" in str(error.value)
  assert "'temperature', 'pressure' and 'humidity'" in str(error.value)
  os.makedirs(os.path.join(root, "train"))
  np.savez(os.path.join(root, "train", "a.npz"), temperature=np.zeros((46, 90)))
  with pytest.raises(FileNotFoundError, match=re.escape(f"Missing folder {root}/test")):
    load_era5(data_dir, "train")
  os.makedirs(os.path.join(root, "test"))
  np.savez(os.path.join(root, "test", "t.npz"), temperature=np.zeros((46, 90)))
  with pytest.raises(ValueError, match=r"a.npz lacks the array\(s\) \['pressure', 'humidity'\]"):
    load_era5(data_dir, "train")
  np.savez(
    os.path.join(root, "train", "a.npz"),
    temperature=np.zeros((46, 90)),
    pressure=np.zeros((46, 90)),
    humidity=np.zeros((2, 46, 90)),
  )
  with pytest.raises(ValueError, match="a.npz: the variables have different shapes"):
    load_era5(data_dir, "train")
