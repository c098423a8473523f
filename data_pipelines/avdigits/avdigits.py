"""TFDS builder `avdigits`: digit images paired by class with synthesised spoken digits.

The offline counterpart of AV-MNIST (same modalities, grids and ranges): images come from
scikit-learn's bundled digits and audio from the formant synthesiser in `speech` (see
`generate`), written as array_record, so they build and read without TensorFlow or a download::

  source = load_avdigits(data_dir, "train", config="small")  # source[i] -> {name: {"y", ...}}

Each config is prepared in its own directory (`data_dir/avdigits/<config>/<version>`).
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import sources
from data_pipelines import tfds_loading
from data_pipelines.avdigits import generate
from data_pipelines.avdigits import speech

_DESCRIPTION = """\
Audio-visual digits: scikit-learn's 8x8 handwritten digits upsampled to 28x28 in [0, 1] ("rgb",
1 channel), each paired by class with a spoken digit from a small formant synthesiser ("wav",
2000 samples at 4 kHz in [-1, 1]). The MIA audio-visual benchmark that needs no download.
"""

# Seeds of `generate_signals` for each split.
SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass
class AvDigitsConfig(tfds.core.BuilderConfig):
  """A dataset size.

  Attributes:
    num_train: number of meta-train signals (seed 0, train images).
    num_test: number of meta-test signals (seed 1, test images).
  """

  num_train: int = 2000
  num_test: int = 500


class AvDigits(tfds.core.GeneratorBasedBuilder):
  """Paired digit images and spoken digits."""

  name = "avdigits"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      AvDigitsConfig(name="default", description="2000 train / 500 test signals.",
                     num_train=2000, num_test=500),
      AvDigitsConfig(name="small", description="64 train / 32 test signals, for tests.",
                     num_train=64, num_test=32),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def _info(self) -> tfds.core.DatasetInfo:
    def modality(points, extra):
      return tfds.features.FeaturesDict({
          "y": tfds.features.Tensor(shape=(points, 1), dtype=np.float32),
          "amplitude": tfds.features.Tensor(shape=(), dtype=np.float32),
          "label": tfds.features.ClassLabel(names=list(speech.DIGIT_NAMES)),
          **extra,
      })
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "rgb": modality(generate.IMAGE_SIZE ** 2, {
                "image_index": tfds.features.Tensor(shape=(), dtype=np.int64)}),
            "wav": modality(speech.LENGTH, {}),
        }),
        supervised_keys=None,
        # Example i of a split is signal i of `generate_signals(num_signals, seed, split)`.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    sizes = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    return {split: self._generate_examples(sizes[split], SPLIT_SEEDS[split], split)
            for split in SPLIT_SEEDS}

  def _generate_examples(self, num_signals: int, seed: int, split: str):
    """Yields `(index, {"rgb": {...}, "wav": {...}})`."""
    signals = generate.generate_signals(num_signals, seed, split)
    for i in range(num_signals):
      yield i, {name: {key: value[i] for key, value in arrays.items()}
                for name, arrays in signals.items()}


def load_avdigits(
    data_dir: str | os.PathLike[str] | None,
    split: str,
    config: str = "default",
    modalities: Sequence[str] | None = None,
    in_memory: bool = False,
) -> sources.ModalitySubset | sources.ArraySource:
  """Returns a split of `avdigits`, building it on first use (seconds).

  Args:
    data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`).
    split: "train" or "test", or any tfds split expression ("train[:10]").
    config: "default" (2000 train / 500 test signals) or "small" (64 / 32).
    modalities: names to return, a subset of rgb, wav, in the returned order; None means both.
    in_memory: read the whole split into an `ArraySource`.

  Returns:
    A source of `{"rgb": {"y": float32 [784, 1] in [0, 1], "amplitude": []}, "wav": {"y":
    float32 [2000, 1] in [-1, 1], "amplitude": []}}` (amplitudes 1.0). The class labels stay in
    the tfds dataset (`AvDigits(...).as_data_source(split)[i]["rgb"]["label"]`).

  Raises:
    ValueError: an unknown config or modality name.
  """
  return tfds_loading.load_split(AvDigits, data_dir, split, config=config,
                                 modalities=modalities, known_modalities=generate.MODALITIES,
                                 in_memory=in_memory)
