"""The real-data builders (CelebA, AV-MNIST, ERA5) on tiny datasets in their on-disk layouts.

Each test writes a few files as a user would (PNGs in the authors' folders, MNIST idx files and
FSDD wavs, ERA5 npz files) into a temporary tfds data dir, builds the dataset and checks shapes,
ranges, preprocessing against hand computations, pairing, and the errors for bad folders. This
file: CelebA; test_real_datasets_avmnist.py, test_real_datasets_era5.py and
test_real_datasets_configs.py the others.
"""

import os
import re

import numpy as np
from PIL import Image
import pytest

from data_pipelines import registry
from data_pipelines.celeba import celeba, load_celeba
from tests.real_data_files import (
  FACE_BASE,
  assert_same_signals,
  block_image,
  manual_folder,
  write_celeba,
)


def test_celeba_shapes_values_matching_and_skips(tmp_path):
  data_dir = str(tmp_path)
  table = write_celeba(manual_folder(data_dir, "celeba_trimodal"))
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
        np.testing.assert_allclose(y, (FACE_BASE[m] + i) / 255.0, rtol=1e-6)
      assert signal[m]["amplitude"] == 1.0
  # Nearest 64x96 -> 32x48 keeps one pixel of each 2x2 block; the crop keeps columns 8..39.
  np.testing.assert_allclose(
    train[1]["normal"]["y"].reshape(32, 32, 3), table[:, 8:40] / 255.0, rtol=1e-6
  )
  test = load_celeba(data_dir, "test", modalities=["sketch", "rgb"], in_memory=True)
  assert len(test) == 2 and list(test[0]) == ["sketch", "rgb"]
  np.testing.assert_allclose(test[1]["sketch"]["y"], 201 / 255.0, rtol=1e-6)
  metadata = celeba.CelebaTrimodal(data_dir=data_dir).info.metadata
  assert metadata["source_size"] == {"train": 64, "test": 64}
  assert metadata["unmatched"]["train"] == {"rgb": 1, "normal": 0, "sketch": 0}
  assert_same_signals(
    load_celeba(data_dir, "train"), load_celeba(data_dir, "train", in_memory=True)
  )
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
  table, blocks = block_image(1, 32, 35)  # 64x70 -> 32x35 -> crop columns round(1.5) = 2 .. 33
  out = celeba.resize_and_center_crop(Image.fromarray(blocks), 32, Image.Resampling.NEAREST)
  np.testing.assert_array_equal(out, table[:, 2:34])
  # Grayscale in, 3 equal channels out.
  gray = Image.fromarray(np.full((40, 40), 77, np.uint8), mode="L")
  out = celeba.resize_and_center_crop(gray, 32, Image.Resampling.BILINEAR)
  assert out.shape == (32, 32, 3) and (out == 77).all()


def test_celeba_picks_smallest_size_at_least_the_target(tmp_path):
  root = manual_folder(str(tmp_path), "celeba_trimodal")
  write_celeba(root, size=64)
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
          os.path.join(folder, f"{face}_{tail}.png")
        )
  files = celeba.scan(root, 32)
  assert files["test"].names == ("00001_f_0_a", "00002_f_1_b")
  assert files["test"].paths["normal"][1].endswith("test/32/normal/00002_f_1_b_normal_map.png")
  # Two files that are one face by the name rule are an error naming both.
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(
    os.path.join(root, "train", "32", "rgb", "00001_f_0_a.jpg")
  )
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(
    os.path.join(root, "train", "32", "rgb", "00001_f_0_a.png")
  )
  with pytest.raises(
    ValueError, match="two images for one face: '00001_f_0_a.jpg' and '00001_f_0_a.png'"
  ):
    celeba.scan(root, 32)


def test_celeba_errors_name_the_folder_and_files(tmp_path):
  data_dir = str(tmp_path / "tfds")
  root = manual_folder(data_dir, "celeba_trimodal")
  with pytest.raises(FileNotFoundError) as error:
    load_celeba(data_dir, "train")
  message = str(error.value)
  assert f"The CelebA folder {root} is missing or empty" in message
  assert f"{root}/train/<size>/normal/<name>.png" in message
  write_celeba(root)
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
  root = manual_folder(str(tmp_path), "celeba_trimodal")
  write_celeba(root)
  bad = os.path.join(root, "train", "64", "sketch", "c.png")
  with open(bad, "wb") as f:
    f.write(b"not a png")
  with pytest.raises(ValueError, match=re.escape(f"Cannot read the sketch image {bad}")):
    load_celeba(str(tmp_path), "train")
