"""The AV-MNIST builder on tiny MNIST idx files and FSDD wavs (or prepared tfds datasets)."""

import gzip
import io
import os

import numpy as np
from PIL import Image
import pytest
from scipy.io import wavfile
import tensorflow_datasets as tfds

from data_pipelines import benchmarks, registry
from data_pipelines.avmnist import avmnist, fsdd, load_avmnist
from tests.real_data_files import assert_same_signals, manual_folder


def _write_idx(path, array):
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
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
        wavfile.write(
          os.path.join(root, "recordings", f"{digit}_{speaker}_{index}.wav"), 8000, samples
        )
  with open(os.path.join(root, "recordings", "README.wav"), "wb") as f:  # not FSDD-named
    f.write(b"ignored")


def test_avmnist_shapes_ranges_and_pairing(tmp_path):
  data_dir = str(tmp_path)
  root = manual_folder(data_dir, "avmnist")
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
      digit, _, index = fsdd.parse_fsdd_name(name)
      # The image's label, the stored label and the spoken digit agree for every pair.
      assert digit == labels[i] == record["label"]
      assert (index < 5) == (split == "test")
      names.append(name)
      # The stored waveform is the prepared recording, quantised to int16.
      rate, samples = wavfile.read(os.path.join(root, "recordings", name + ".wav"))
      expected = fsdd.prepare_waveform(samples, rate)
      np.testing.assert_allclose(wav[:, 0], expected, atol=1 / 32767)
    # Pairs are the documented seeded draw over the split's recordings in name order.
    recordings = sorted(
      f[:-4]
      for f in os.listdir(os.path.join(root, "recordings"))
      if fsdd.parse_fsdd_name(f) and fsdd.fsdd_split(f) == split
    )
    rows = avmnist.pair_by_label(
      labels, np.array([int(r[0]) for r in recordings]), avmnist.SPLIT_SEEDS[split]
    )
    assert names == [recordings[r] for r in rows]
  packed = load_avmnist(data_dir, "train", in_memory=True)
  assert len(packed.packed["wav"].values) <= 12  # each recording stored once
  assert_same_signals(load_avmnist(data_dir, "train"), packed)
  wav_only = load_avmnist(data_dir, "test", modalities="wav", in_memory=True)
  assert list(wav_only[0]) == ["wav"]
  assert registry.get_loader("avmnist") is load_avmnist


def test_prepare_waveform_by_hand():
  rate, length = 8000, benchmarks.WAV_LENGTH
  assert benchmarks.WAV_SAMPLE_RATE * 2 == rate
  # Short: decimated by 2 (a 100 Hz sine stays a 100 Hz sine), zero-padded, peak 1.
  t = np.arange(1200) / rate
  out = fsdd.prepare_waveform((3000 * np.sin(2 * np.pi * 100 * t)).astype(np.int16), rate)
  assert out.shape == (length,) and out.dtype == np.float32
  t4 = np.arange(600) / benchmarks.WAV_SAMPLE_RATE
  np.testing.assert_allclose(out[50:550], np.sin(2 * np.pi * 100 * t4)[50:550], atol=0.02)
  assert (out[600:] == 0).all() and np.isclose(np.abs(out).max(), 1.0)
  # Long: trimmed to its first `length` samples at 4 kHz; stereo averaged; silence stays zero.
  long = np.stack([np.sin(np.arange(9000) / 50.0)] * 2, axis=1)
  out = fsdd.prepare_waveform(long, rate)
  np.testing.assert_allclose(
    out[100:1900], np.sin(np.arange(9000)[::2] / 50.0)[100:1900], atol=0.02
  )
  assert (fsdd.prepare_waveform(np.zeros(100), rate) == 0).all()
  assert fsdd.fsdd_split("3_theo_4.wav") == "test"
  assert fsdd.fsdd_split("3_theo_5.wav") == "train"


class _FakeMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Stands in for a prepared tfds `mnist` (same name and features; PNG-encoded by Pillow)."""

  name = "mnist"
  VERSION = tfds.core.Version("3.0.1")

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(28, 28, 1)),
          "label": tfds.features.ClassLabel(num_classes=10),
        }
      ),
    )

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
  _write_avmnist(manual_folder(data_dir, "avmnist"), mnist=False)  # no idx files: only tfds mnist
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
  root = manual_folder(data_dir, "avmnist")
  with pytest.raises(FileNotFoundError) as error:
    load_avmnist(data_dir, "train")
  message = str(error.value)
  assert message.splitlines()[0] == (
    f"AV-MNIST sources not found: MNIST and FSDD neither prepared in {data_dir} nor in {root}"
  )
  assert "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte" in message
  assert f"there is no {root}/recordings/ folder with wav files" in message
  assert f"{root}/recordings/<digit>_<speaker>_<index>.wav" in message
  _write_avmnist(root, gz=False)  # unzipped idx files are accepted too
  with open(os.path.join(root, "t10k-labels-idx1-ubyte"), "wb") as f:
    f.write(b"\x00\x00\x0c\x01junk")
  with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte is not an idx file of unsigned"):
    load_avmnist(data_dir, "train")
