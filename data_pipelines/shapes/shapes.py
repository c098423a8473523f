"""TFDS builder `shapes_trimodal`: rendered 3-D shapes as rgb, normal and sketch images.

The offline counterpart of the CelebA trimodal benchmark (same modalities, grid and ranges): the
images are rendered locally by `generate.generate_signals` (nothing is downloaded) and written as
array_record, so they build and read without TensorFlow::

  source = load_shapes(data_dir, "train", config="small")  # source[i] -> {name: {"y", ...}}

Each config is prepared in its own directory (`data_dir/shapes_trimodal/<config>/<version>`).
"""

from __future__ import annotations

from collections.abc import Sequence
import os

from data_pipelines import tfds_loading
from data_pipelines.shapes import generate
from data_pipelines.signals import Source


class ShapesTrimodal(tfds_loading.GeneratedBuilder):
  """Rendered shapes: rgb, normal and sketch images of the same scene."""

  MODALITIES = generate.MODALITIES
  DESCRIPTION = """\
Rendered 3-D scenes (ellipsoids, pyramids and cones on a bumpy ground, seen from above) as three
aligned 32x32 images in [0, 1]: a Lambertian-shaded rgb image, the exact surface-normal map
((n + 1) / 2) and an edge sketch (silhouettes and creases). The MIA image benchmark that needs no
download.
"""
  BUILDER_CONFIGS = tfds_loading.size_configs(2000, 500)
  NUM_POINTS = generate.IMAGE_SIZE**2  # [1024, 3] per modality
  D_OUT = 3

  def generate(self, num_signals: int, seed: int, split: str):
    del split  # The seed tells the splits apart.
    return generate.generate_signals(num_signals, seed)


def load_shapes(
  data_dir: str | os.PathLike[str] | None,
  split: str,
  config: str = "default",
  modalities: Sequence[str] | None = None,
  in_memory: bool = False,
) -> Source:
  """Returns a split of `shapes_trimodal`, building it on first use (a few seconds).

  Arguments as `tfds_loading.load_split`'s; `config` is "default" (2000 train / 500 test
  signals, about 90 MB) or "small" (64 / 32); `modalities` a subset of rgb, normal, sketch (None:
  all three).

  Returns:
    A source of `{name: {"y": float32 [1024, 3] in [0, 1], "amplitude": float32 [] (1.0)}}`;
    signal i of "train" ("test") is signal i of `generate_signals(num_train, seed=0)`
    (`num_test`, seed=1).

  Raises:
    ValueError: an unknown config or modality name.
  """
  return tfds_loading.load_split(
    ShapesTrimodal, data_dir, split, config=config, modalities=modalities, in_memory=in_memory
  )
