"""Files of the real datasets as a user would put them in place, for the real-data tests.

`manual_folder` is where a dataset's raw files go in a tfds data dir; `write_celeba` writes tiny
CelebA folders in the MIA authors' layout; `assert_same_signals` compares two sources.
"""

import os

import numpy as np
from PIL import Image

from data_pipelines.celeba import celeba


def manual_folder(data_dir, name):
  return os.path.join(data_dir, "downloads", "manual", name)


def assert_same_signals(a, b):
  assert len(a) == len(b)
  for i in range(len(a)):
    assert a[i].keys() == b[i].keys()
    for m in a[i]:
      np.testing.assert_allclose(a[i][m]["y"], b[i][m]["y"], rtol=1e-6, atol=0)
      assert a[i][m]["y"].dtype == b[i][m]["y"].dtype == np.float32


# Per modality, the constant value of face i: rgb 10 + i, normal 100 + i, sketch 200 + i.
FACE_BASE = {"rgb": 10, "normal": 100, "sketch": 200}


def block_image(seed, rows, cols):
  """uint8 [rows, cols, 3] of random values, each repeated into a 2x2 block: [2r, 2c, 3]."""
  table = np.random.default_rng(seed).integers(0, 256, (rows, cols, 3), dtype=np.uint8)
  return table, np.repeat(np.repeat(table, 2, axis=0), 2, axis=1)


def write_celeba(root, names=None, size=64, extra_rgb=("zz_extra",)):
  """Writes `{train,test}/<size>/{rgb,normal,sketch}/` with constant faces.

  rgb files are named `<name>_rgb.png` (matched by name less the suffix), the others
  `<name>.png`; sketches are grayscale. Train face "b" is a non-square 64x96 image of 2x2 blocks.
  Returns the blocks table of that face (what nearest resizing + center crop must keep).
  """
  names = names or {"train": ("a", "b", "c"), "test": ("d", "e")}
  table, blocks = block_image(0, size // 2, size * 3 // 4)  # [32, 48, 3] -> [64, 96, 3]
  for split, split_names in names.items():
    for modality in celeba.MODALITIES:
      folder = os.path.join(root, split, str(size), modality)
      os.makedirs(folder)
      for i, name in enumerate(split_names):
        value = FACE_BASE[modality] + i
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
            os.path.join(folder, f"{name}.png")
          )
  return table
