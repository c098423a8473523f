"""The real-data builders (CelebA, AV-MNIST, ERA5) on tiny datasets in their on-disk layouts.

Each test writes a few files as a user would (PNGs in the authors' folders, MNIST idx files and
FSDD wavs, ERA5 npz files) into a temporary tfds data dir, builds the dataset and checks shapes,
ranges, preprocessing against hand computations, pairing, and the errors for bad folders.
"""

import gzip
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile
import tensorflow_datasets as tfds

from data_pipelines import manual
from data_pipelines import registry
from data_pipelines.avmnist import avmnist
from data_pipelines.avmnist import load_avmnist
from data_pipelines.celeba import celeba
from data_pipelines.celeba import load_celeba
from data_pipelines.era5 import era5
from data_pipelines.era5 import load_era5
from data_pipelines.era5 import normalisation
from experiments import build
from experiments.configs import avmnist as avmnist_config
from experiments.configs import celeba as celeba_config
from experiments.configs import era5 as era5_config
from mia_jax import meta_step
from data_pipelines import benchmarks


def _manual(data_dir, name):
  return os.path.join(data_dir, "downloads", "manual", name)


def _assert_same_signals(a, b):
  assert len(a) == len(b)
  for i in range(len(a)):
    assert a[i].keys() == b[i].keys()
    for m in a[i]:
      np.testing.assert_allclose(a[i][m]["y"], b[i][m]["y"], rtol=1e-6, atol=0)
      assert a[i][m]["y"].dtype == b[i][m]["y"].dtype == np.float32


# ------------------------------------------------------------------------------------------------
# CelebA.

# Per modality, the constant value of face i: rgb 10 + i, normal 100 + i, sketch 200 + i.
_BASE = {"rgb": 10, "normal": 100, "sketch": 200}


def _blocks(seed, rows, cols):
  """uint8 [rows, cols, 3] of random values, each repeated into a 2x2 block: [2r, 2c, 3]."""
  table = np.random.default_rng(seed).integers(0, 256, (rows, cols, 3), dtype=np.uint8)
  return table, np.repeat(np.repeat(table, 2, axis=0), 2, axis=1)


def _write_celeba(root, names=None, size=64, extra_rgb=("zz_extra",)):
  """Writes `{train,test}/<size>/{rgb,normal,sketch}/` with constant faces.

  rgb files are named `<name>_rgb.png` (matched by name less the suffix), the others
  `<name>.png`; sketches are grayscale. Train face "b" is a non-square 64x96 image of 2x2 blocks.
  Returns the blocks table of that face (what nearest resizing + center crop must keep).
  """
  names = names or {"train": ("a", "b", "c"), "test": ("d", "e")}
  table, blocks = _blocks(0, size // 2, size * 3 // 4)  # [32, 48, 3] -> [64, 96, 3]
  for split, split_names in names.items():
    for modality in celeba.MODALITIES:
      folder = os.path.join(root, split, str(size), modality)
      os.makedirs(folder)
      for i, name in enumerate(split_names):
        value = _BASE[modality] + i
        if modality == "sketch":
          image = Image.fromarray(np.full((size, size), value, np.uint8), mode="L")
        else:
          image = Image.fromarray(np.full((size, size, 3), value, np.uint8))
        if split == "train" and name == "b" and modality == "normal":
          image = Image.fromarray(blocks)
        file_name = f"{name}_rgb.png" if modality == "rgb" else f"{name}.png"
        image.save(os.path.join(folder, file_name))
      if modality == "rgb" and split == "train":
        for name in extra_rgb:  # no normal or sketch partner: skipped and counted
          Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(
              os.path.join(folder, f"{name}.png"))
  return table


def test_celeba_shapes_values_matching_and_skips(tmp_path):
  data_dir = str(tmp_path)
  table = _write_celeba(_manual(data_dir, "celeba_trimodal"))
  train = load_celeba(data_dir, "train")
  assert len(train) == 3 and train.modalities == celeba.MODALITIES
  for i, name in enumerate(("a", "b", "c")):
    signal = train[i]
    for m in celeba.MODALITIES:
      y = signal[m]["y"]
      assert y.shape == (32 * 32, 3) and y.dtype == np.float32
      assert 0.0 <= y.min() and y.max() <= 1.0
      if not (name == "b" and m == "normal"):
        # A constant image stays constant through any resize; grayscale becomes 3 channels.
        np.testing.assert_allclose(y, (_BASE[m] + i) / 255.0, rtol=1e-6)
      assert signal[m]["amplitude"] == 1.0
  # Nearest 64x96 -> 32x48 keeps one pixel of each 2x2 block; the crop keeps columns 8..39.
  np.testing.assert_allclose(train[1]["normal"]["y"].reshape(32, 32, 3),
                             table[:, 8:40] / 255.0, rtol=1e-6)
  test = load_celeba(data_dir, "test", modalities=["sketch", "rgb"], in_memory=True)
  assert len(test) == 2 and list(test[0]) == ["sketch", "rgb"]
  np.testing.assert_allclose(test[1]["sketch"]["y"], 201 / 255.0, rtol=1e-6)
  metadata = celeba.CelebaTrimodal(data_dir=data_dir).info.metadata
  assert metadata["source_size"] == {"train": 64, "test": 64}
  assert metadata["unmatched"]["train"] == {"rgb": 1, "normal": 0, "sketch": 0}
  _assert_same_signals(load_celeba(data_dir, "train"), load_celeba(data_dir, "train",
                                                                   in_memory=True))
  assert registry.get_loader("celeba_trimodal") is load_celeba


def test_resize_and_center_crop_by_hand():
  # Already at the target height: no resampling, the 48 columns are cropped to 8..39.
  pattern = np.zeros((32, 48, 3), np.uint8)
  pattern[..., 0] = np.arange(48)[None, :] * 5
  pattern[..., 1] = np.arange(32)[:, None] * 7
  out = celeba.resize_and_center_crop(Image.fromarray(pattern), 32, Image.Resampling.BICUBIC)
  np.testing.assert_array_equal(out, pattern[:, 8:40])
  # Tall image: rows 8..39.
  tall = np.ascontiguousarray(pattern.transpose(1, 0, 2))
  out = celeba.resize_and_center_crop(Image.fromarray(tall), 32, Image.Resampling.BILINEAR)
  np.testing.assert_array_equal(out, tall[8:40])
  # Nearest halving of 2x2 blocks returns the block table exactly; odd crops round half to even.
  table, blocks = _blocks(1, 32, 35)  # 64x70 -> 32x35 -> crop columns round(1.5) = 2 .. 33
  out = celeba.resize_and_center_crop(Image.fromarray(blocks), 32, Image.Resampling.NEAREST)
  np.testing.assert_array_equal(out, table[:, 2:34])
  # Grayscale in, 3 equal channels out.
  gray = Image.fromarray(np.full((40, 40), 77, np.uint8), mode="L")
  out = celeba.resize_and_center_crop(gray, 32, Image.Resampling.BILINEAR)
  assert out.shape == (32, 32, 3) and (out == 77).all()


def test_celeba_picks_smallest_size_at_least_the_target(tmp_path):
  root = _manual(str(tmp_path), "celeba_trimodal")
  _write_celeba(root, size=64)
  for split in ("train", "test"):  # a 16 and a 128 copy with other names must be ignored
    for size in (16, 128):
      for m in celeba.MODALITIES:
        os.makedirs(os.path.join(root, split, str(size), m))
  files = celeba.scan(root, 32)
  assert files["train"].size == 64 and files["train"].names == ("a", "b", "c")
  assert files["train"].unmatched["rgb"] == ("zz_extra",)


def test_celeba_matches_the_release_naming(tmp_path):
  """Files of one face may differ after their first four `_`-parts (the authors' release)."""
  root = str(tmp_path)
  tails = {"rgb": "rgb", "normal": "normal_map", "sketch": "sketch_v2"}
  for split in ("train", "test"):
    for m, tail in tails.items():
      folder = os.path.join(root, split, "32", m)
      os.makedirs(folder)
      for face in ("00001_f_0_a", "00002_f_1_b"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(
            os.path.join(folder, f"{face}_{tail}.png"))
  files = celeba.scan(root, 32)
  assert files["test"].names == ("00001_f_0_a", "00002_f_1_b")
  assert files["test"].paths["normal"][1].endswith("test/32/normal/00002_f_1_b_normal_map.png")
  # Two files that are one face by the name rule are an error naming both.
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(
      os.path.join(root, "train", "32", "rgb", "00001_f_0_a.jpg"))
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(
      os.path.join(root, "train", "32", "rgb", "00001_f_0_a.png"))
  with pytest.raises(ValueError, match="two images for one face: '00001_f_0_a.jpg' and "
                                       "'00001_f_0_a.png'"):
    celeba.scan(root, 32)


def test_celeba_errors_name_the_folder_and_files(tmp_path):
  data_dir = str(tmp_path / "tfds")
  root = _manual(data_dir, "celeba_trimodal")
  with pytest.raises(FileNotFoundError) as error:
    load_celeba(data_dir, "train")
  message = str(error.value)
  assert f"The CelebA folder {root} is missing or empty" in message
  assert f"{root}/train/<size>/normal/<name>.png" in message
  _write_celeba(root)
  os.rename(os.path.join(root, "test", "64", "sketch"), os.path.join(root, "test", "64", "skt"))
  with pytest.raises(FileNotFoundError, match=re.escape(f"Missing folder {root}/test/64/sketch")):
    load_celeba(data_dir, "train")
  os.rename(os.path.join(root, "test", "64", "skt"), os.path.join(root, "test", "64", "sketch"))
  normal = os.path.join(root, "test", "64", "normal")
  for f in os.listdir(normal):
    os.rename(os.path.join(normal, f), os.path.join(normal, "x" + f))
  with pytest.raises(ValueError, match="No image name of .*test/64 is in all of rgb, normal"):
    load_celeba(data_dir, "train")
  with pytest.raises(ValueError, match="Unknown celeba modality 'depth'; allowed: rgb, normal"):
    load_celeba(data_dir, "train", modalities=["rgb", "depth"])


def test_celeba_unreadable_image_is_named(tmp_path):
  root = _manual(str(tmp_path), "celeba_trimodal")
  _write_celeba(root)
  bad = os.path.join(root, "train", "64", "sketch", "c.png")
  with open(bad, "wb") as f:
    f.write(b"not a png")
  with pytest.raises(ValueError, match=re.escape(f"Cannot read the sketch image {bad}")):
    load_celeba(str(tmp_path), "train")


# ------------------------------------------------------------------------------------------------
# AV-MNIST.


def _write_idx(path, array):
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big")
                                                   for s in array.shape)
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def _mnist_arrays():
  """Labels 0..3 repeated; image k is constant 3 * k + 1 (train) or 200 + k (test)."""
  out = {}
  for split, n, base, step in (("train", 8, 1, 3), ("test", 4, 200, 1)):
    labels = np.arange(n) % 4
    images = np.stack([np.full((28, 28), base + step * k, np.uint8) for k in range(n)])
    out[split] = (images, labels)
  return out


def _write_avmnist(root, mnist=True, gz=True):
  os.makedirs(os.path.join(root, "recordings"), exist_ok=True)
  if mnist:
    for split, (images, labels) in _mnist_arrays().items():
      images_name, labels_name = avmnist.MNIST_FILES[split]
      suffix = ".gz" if gz else ""
      _write_idx(os.path.join(root, images_name + suffix), images)
      _write_idx(os.path.join(root, labels_name + suffix), labels)
  rng = np.random.default_rng(0)
  for digit in range(4):
    for speaker in ("ann", "bob"):
      for index in (1, 7, 12):  # index 1 is FSDD's test split, 7 and 12 train
        n = int(rng.integers(300, 6000))
        samples = (rng.normal(size=n) * 1000 * (digit + 1)).astype(np.int16)
        wavfile.write(os.path.join(root, "recordings", f"{digit}_{speaker}_{index}.wav"), 8000,
                      samples)
  with open(os.path.join(root, "recordings", "README.wav"), "wb") as f:  # not FSDD-named
    f.write(b"ignored")


def test_avmnist_shapes_ranges_and_pairing(tmp_path):
  data_dir = str(tmp_path)
  root = _manual(data_dir, "avmnist")
  _write_avmnist(root)
  mnist = _mnist_arrays()
  length = benchmarks.WAV_LENGTH
  for split in ("train", "test"):
    source = load_avmnist(data_dir, split)
    images, labels = mnist[split]
    assert len(source) == len(labels)
    records = avmnist.Avmnist(data_dir=data_dir).as_data_source(split)
    names = []
    for i in range(len(source)):
      signal = source[i]
      rgb, wav = signal["rgb"]["y"], signal["wav"]["y"]
      assert rgb.shape == (784, 1) and wav.shape == (length, 1)
      np.testing.assert_allclose(rgb[:, 0], images[i].reshape(-1) / 255.0, rtol=1e-6)
      assert -1.0 <= wav.min() and wav.max() <= 1.0 and np.abs(wav).max() == 1.0
      record = records[i]
      name = record["wav_name"].decode()
      digit, _, index = avmnist.parse_fsdd_name(name)
      # The image's label, the stored label and the spoken digit agree for every pair.
      assert digit == labels[i] == record["label"]
      assert (index < 5) == (split == "test")
      names.append(name)
      # The stored waveform is the prepared recording, quantised to int16.
      rate, samples = wavfile.read(os.path.join(root, "recordings", name + ".wav"))
      expected = avmnist.prepare_waveform(samples, rate)
      np.testing.assert_allclose(wav[:, 0], expected, atol=1 / 32767)
    # Pairs are the documented seeded draw over the split's recordings in name order.
    recordings = sorted(f[:-4] for f in os.listdir(os.path.join(root, "recordings"))
                        if avmnist.parse_fsdd_name(f) and avmnist.fsdd_split(f) == split)
    rows = avmnist.pair_by_label(labels, np.array([int(r[0]) for r in recordings]),
                                 avmnist.SPLIT_SEEDS[split])
    assert names == [recordings[r] for r in rows]
  packed = load_avmnist(data_dir, "train", in_memory=True)
  assert len(packed.packed["wav"].values) <= 12  # each recording stored once
  _assert_same_signals(load_avmnist(data_dir, "train"), packed)
  wav_only = load_avmnist(data_dir, "test", modalities="wav", in_memory=True)
  assert list(wav_only[0]) == ["wav"]
  assert registry.get_loader("avmnist") is load_avmnist


def test_prepare_waveform_by_hand():
  rate, length = 8000, benchmarks.WAV_LENGTH
  assert benchmarks.WAV_SAMPLE_RATE * 2 == rate
  # Short: decimated by 2 (a 100 Hz sine stays a 100 Hz sine), zero-padded, peak 1.
  t = np.arange(1200) / rate
  out = avmnist.prepare_waveform((3000 * np.sin(2 * np.pi * 100 * t)).astype(np.int16), rate)
  assert out.shape == (length,) and out.dtype == np.float32
  t4 = np.arange(600) / benchmarks.WAV_SAMPLE_RATE
  np.testing.assert_allclose(out[50:550], np.sin(2 * np.pi * 100 * t4)[50:550], atol=0.02)
  assert (out[600:] == 0).all() and np.isclose(np.abs(out).max(), 1.0)
  # Long: trimmed to its first `length` samples at 4 kHz; stereo averaged; silence stays zero.
  long = np.stack([np.sin(np.arange(9000) / 50.0)] * 2, axis=1)
  out = avmnist.prepare_waveform(long, rate)
  np.testing.assert_allclose(out[100:1900], np.sin(np.arange(9000)[::2] / 50.0)[100:1900],
                             atol=0.02)
  assert (avmnist.prepare_waveform(np.zeros(100), rate) == 0).all()
  assert avmnist.fsdd_split("3_theo_4.wav") == "test"
  assert avmnist.fsdd_split("3_theo_5.wav") == "train"


class _FakeMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Stands in for a prepared tfds `mnist` (same name and features; PNG-encoded by Pillow)."""

  name = "mnist"
  VERSION = tfds.core.Version("3.0.1")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(28, 28, 1)),
        "label": tfds.features.ClassLabel(num_classes=10)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(*arrays) for split, arrays in _mnist_arrays().items()}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      buffer = io.BytesIO()
      Image.fromarray(image).save(buffer, format="PNG")
      yield i, {"image": buffer.getvalue(), "label": int(label)}


def test_avmnist_uses_a_prepared_tfds_mnist(tmp_path):
  data_dir = str(tmp_path)
  _FakeMnist(data_dir=data_dir, file_format="array_record").download_and_prepare()
  _write_avmnist(_manual(data_dir, "avmnist"), mnist=False)  # no idx files: only tfds mnist
  source = load_avmnist(data_dir, "test")
  images, _ = _mnist_arrays()["test"]
  records = avmnist.Avmnist(data_dir=data_dir).as_data_source("test")
  assert len(source) == 4
  # Images come in the tfds dataset's order (tfds shuffles mnist when it builds it).
  values = []
  for i in range(4):
    rgb = source[i]["rgb"]["y"]
    assert (rgb == rgb[0]).all()
    values.append(round(float(rgb[0, 0]) * 255))
    label = values[-1] - 200
    assert records[i]["label"] == label % 4 == int(records[i]["wav_name"].decode()[0])
  assert sorted(values) == sorted(int(image[0, 0]) for image in images)
  assert avmnist.Avmnist(data_dir=data_dir).info.metadata["sources"]["mnist"] == "tfds:mnist"


def test_avmnist_errors_name_the_files(tmp_path):
  data_dir = str(tmp_path)
  root = _manual(data_dir, "avmnist")
  with pytest.raises(FileNotFoundError) as error:
    load_avmnist(data_dir, "train")
  message = str(error.value)
  assert "AV-MNIST sources not found" in message
  assert "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte" in message
  assert f"there is no {root}/recordings/ folder with wav files" in message
  assert f"{root}/recordings/<digit>_<speaker>_<index>.wav" in message
  _write_avmnist(root, gz=False)  # unzipped idx files are accepted too
  with open(os.path.join(root, "t10k-labels-idx1-ubyte"), "wb") as f:
    f.write(b"\x00\x00\x0c\x01junk")
  with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte is not an idx file of unsigned"):
    load_avmnist(data_dir, "train")


# ------------------------------------------------------------------------------------------------
# ERA5.


def _era5_arrays():
  """Two training files ([2, 91, 180] and a single step [91, 180]) and one test file."""
  rng = np.random.default_rng(0)
  scales = {"temperature": (280.0, 10.0), "pressure": (1e5, 1e3), "humidity": (0.5, 0.2)}
  field = lambda shape, m: scales[m][0] + scales[m][1] * rng.normal(size=shape)
  return {
      "train": {"a.npz": {m: field((2, 91, 180), m) for m in era5.MODALITIES},
                "b.npz": {m: field((91, 180), m) for m in era5.MODALITIES}},
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
  _write_era5(_manual(data_dir, "era5"), arrays)
  # 91 x 180 -> 46 x 90: every 2nd latitude (both poles kept) and every 2nd longitude.
  sub = lambda a: (a[None] if a.ndim == 2 else a)[:, ::2, ::2]
  steps = {split: [{m: sub(f[m])[t] for m in era5.MODALITIES}
                   for f in files.values() for t in range(sub(f["pressure"]).shape[0])]
           for split, files in arrays.items()}
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
  _assert_same_signals(load_era5(data_dir, "test"), load_era5(data_dir, "test", in_memory=True))
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
  root = _manual(data_dir, "era5")
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
  np.savez(os.path.join(root, "train", "a.npz"), temperature=np.zeros((46, 90)),
           pressure=np.zeros((46, 90)), humidity=np.zeros((2, 46, 90)))
  with pytest.raises(ValueError, match="a.npz: the variables have different shapes"):
    load_era5(data_dir, "train")


# ------------------------------------------------------------------------------------------------
# Configs.

_CONFIGS = {"celeba": celeba_config, "avmnist": avmnist_config, "era5": era5_config}


@pytest.mark.parametrize("benchmark", sorted(_CONFIGS))
@pytest.mark.parametrize("arg", [
    "", "method=mia", "smoke", "cpu", "method=cavia,inner_steps=5,seed=2",
    "ablation=no_msft,first_order=true", "method=metasgd,batch_size=8,num_train_steps=10",
    "data_dir=/tmp/x,remat=1",
])
def test_configs_load_and_build(benchmark, arg):
  module = _CONFIGS[benchmark]
  config = module.get_config(arg)
  learner = build.learner_from_config(config)
  assert [s.name for s in learner.specs] == module.MODALITIES.split("+")
  assert config.benchmark == benchmark
  if config.preset == "full":  # the paper's image settings
    assert config.batch_size == (8 if "batch_size=8" in arg else 32)
    assert config.model.rank == 64
    assert (config.model.ff_sigma, config.model.ff_dim) == (30.0, 128)
  if arg == "cpu":  # as the offline sets' cpu presets: image sigma 1 (wav keeps 30), lr 1e-3
    sigmas = {n: m.ff_sigma for n, m in learner.model.modules.items()}
    assert sigmas == {n: (30.0 if n == "wav" else 1.0) for n in module.MODALITIES.split("+")}
    assert config.learning_rate == 1e-3
  if "data_dir=" in arg:
    assert config.data.data_dir == "/tmp/x"
  first = module.MODALITIES.split("+")[0]
  alone = build.learner_from_config(module.get_config(f"modalities={first}"))
  assert [s.name for s in alone.specs] == [first]


@pytest.mark.parametrize("benchmark", sorted(_CONFIGS))
def test_configs_define_modality_replacement(benchmark):
  from experiments import studies as studies_lib
  builder = studies_lib.ConfigBuilder.from_spec(f"experiments/configs/{benchmark}.py:smoke")
  study = builder.study("modality_replacement")
  names = _CONFIGS[benchmark].MODALITIES.split("+")
  assert study.reference == "multimodal"
  assert list(study.arms) == ["multimodal", *(f"{m}_alone" for m in names)]
  for arm in study.arms:  # every arm's config builds a learner on its modalities
    config = builder.build(study.arms[arm], seed=0)
    learner = build.learner_from_config(config)
    assert [s.name for s in learner.specs] == (names if arm == "multimodal" else [arm[:-6]])


def test_celeba_smoke_trains_end_to_end(tmp_path):
  """The celeba config trains and evaluates on a tiny CelebA (cheapest method: CAVIA, one step)."""
  from experiments import train
  data_dir = str(tmp_path / "tfds")
  _write_celeba(_manual(data_dir, "celeba_trimodal"))
  config = celeba_config.get_config(
      f"method=cavia,inner_steps=1,smoke,batch_size=2,num_train_steps=2,data_dir={data_dir}")
  config.eval.batch_size = 2
  workdir = str(tmp_path / "work")
  train.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert results["step"] == 2
  assert np.isfinite(results["metrics"]["generalization_mse/rgb/step1"])
