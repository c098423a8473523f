"""TFDS builder `shapes_trimodal`: rendered 3-D shapes as rgb, normal and sketch images.

The offline counterpart of the CelebA trimodal benchmark (same modalities, grid and ranges): the
images are rendered locally by `generate.generate_signals` (nothing is downloaded) and written as
array_record, so they build and read without TensorFlow::

  source = load_shapes(data_dir, "train", config="small")  # source[i] -> {name: {"y", ...}}

Each config is prepared in its own directory (`data_dir/shapes_trimodal/<config>/<version>`).
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import sources
from data_pipelines import tfds_loading
from data_pipelines.shapes import generate

_DESCRIPTION = """\
Rendered 3-D scenes (ellipsoids, pyramids and cones on a bumpy ground, seen from above) as three
aligned 32x32 images in [0, 1]: a Lambertian-shaded rgb image, the exact surface-normal map
((n + 1) / 2) and an edge sketch (silhouettes and creases). The MIA image benchmark that needs no
download.
"""

# Seeds of `generate_signals` for each split.
SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass
class ShapesTrimodalConfig(tfds.core.BuilderConfig):
  """A dataset size.

  Attributes:
    num_train: number of meta-train signals (seed 0).
    num_test: number of meta-test signals (seed 1).
  """

  num_train: int = 2000
  num_test: int = 500


class ShapesTrimodal(tfds.core.GeneratorBasedBuilder):
  """Rendered shapes: rgb, normal and sketch images of the same scene."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      ShapesTrimodalConfig(name="default", description="2000 train / 500 test signals.",
                           num_train=2000, num_test=500),
      ShapesTrimodalConfig(name="small", description="64 train / 32 test signals, for tests.",
                           num_train=64, num_test=32),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def _info(self) -> tfds.core.DatasetInfo:
    points = generate.IMAGE_SIZE ** 2
    modality = lambda: tfds.features.FeaturesDict({  # noqa: E731
        "y": tfds.features.Tensor(shape=(points, 3), dtype=np.float32),
        "amplitude": tfds.features.Tensor(shape=(), dtype=np.float32),
    })
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({name: modality() for name in generate.MODALITIES}),
        supervised_keys=None,
        # Example i of a split is signal i of `generate_signals(num_signals, seed)`.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    sizes = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    return {split: self._generate_examples(sizes[split], SPLIT_SEEDS[split])
            for split in SPLIT_SEEDS}

  def _generate_examples(self, num_signals: int, seed: int):
    """Yields `(index, {name: {"y": [1024, 3], "amplitude": []}})`."""
    signals = generate.generate_signals(num_signals, seed)
    for i in range(num_signals):
      yield i, {name: {"y": arrays["y"][i], "amplitude": arrays["amplitude"][i]}
                for name, arrays in signals.items()}


def load_shapes(
    data_dir: str | os.PathLike[str] | None,
    split: str,
    config: str = "default",
    modalities: Sequence[str] | None = None,
    in_memory: bool = False,
) -> sources.ModalitySubset | sources.ArraySource:
  """Returns a split of `shapes_trimodal`, building it on first use (a few seconds).

  Args:
    data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`).
    split: "train" or "test", or any tfds split expression ("train[:10]").
    config: "default" (2000 train / 500 test signals, about 90 MB) or "small" (64 / 32).
    modalities: names to return, a subset of rgb, normal, sketch, in the returned order; None
      means all three.
    in_memory: read the whole split into an `ArraySource`.

  Returns:
    A source of `{name: {"y": float32 [1024, 3] in [0, 1], "amplitude": float32 [] (1.0)}}`;
    signal i of "train" ("test") is signal i of `generate_signals(num_train, seed=0)`
    (`num_test`, seed=1).

  Raises:
    ValueError: an unknown config or modality name.
  """
  return tfds_loading.load_split(ShapesTrimodal, data_dir, split, config=config,
                                 modalities=modalities, known_modalities=generate.MODALITIES,
                                 in_memory=in_memory)
