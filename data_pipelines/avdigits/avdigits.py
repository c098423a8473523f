"""TFDS builder `avdigits`: digit images paired by class with synthesised spoken digits.

The offline counterpart of AV-MNIST (same modalities, grids and ranges): images come from
scikit-learn's bundled digits and audio from the formant synthesiser in `speech` (see
`generate`), written as array_record, so they build and read without TensorFlow or a download::

  source = load_avdigits(data_dir, "train", config="small")  # source[i] -> {name: {"y", ...}}

Each config is prepared in its own directory (`data_dir/avdigits/<config>/<version>`). The
configs `8khz` and `8khz_small` synthesise the same words at 8 kHz into the same 2000 samples
(0.25 s: a word's end can be cut): the waveform is then twice as smooth per sample, which is what
lets a support of a quarter of the samples predict the rest (docs/results.md, "Audio probe").
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import tfds_loading
from data_pipelines.avdigits import generate, speech
from data_pipelines.signals import Source


@dataclasses.dataclass
class AvDigitsConfig(tfds_loading.SizeConfig):
  """A size and the waveform's sample rate in Hz (its length is always `speech.LENGTH`)."""

  sample_rate: int = speech.SAMPLE_RATE


class AvDigits(tfds_loading.GeneratedBuilder):
  """Paired digit images and spoken digits."""

  name = "avdigits"
  MODALITIES = generate.MODALITIES
  DESCRIPTION = """\
Audio-visual digits: scikit-learn's 8x8 handwritten digits upsampled to 28x28 in [0, 1] ("rgb",
1 channel), each paired by class with a spoken digit from a small formant synthesiser ("wav",
2000 samples at 4 kHz in [-1, 1]). The MIA audio-visual benchmark that needs no download.
"""
  BUILDER_CONFIGS = [
    AvDigitsConfig(
      name="default", description="2000 train / 500 test signals.", num_train=2000, num_test=500
    ),
    AvDigitsConfig(
      name="small", description="64 train / 32 test signals, for tests.", num_train=64, num_test=32
    ),
    AvDigitsConfig(
      name="8khz",
      description="2000 train / 500 test signals, audio at 8 kHz (2000 samples: 0.25 s).",
      num_train=2000,
      num_test=500,
      sample_rate=8000,
    ),
    AvDigitsConfig(
      name="8khz_small",
      description="64 train / 32 test signals, audio at 8 kHz, for tests.",
      num_train=64,
      num_test=32,
      sample_rate=8000,
    ),
  ]

  def features(self):
    """Both modalities with their class label; rgb with the scikit-learn digit shown."""
    label = lambda: tfds.features.ClassLabel(names=list(speech.DIGIT_NAMES))  # noqa: E731
    return {
      "rgb": tfds_loading.signal_features(
        generate.IMAGE_SIZE**2,
        1,
        label=label(),
        image_index=tfds.features.Tensor(shape=(), dtype=np.int64),
      ),
      "wav": tfds_loading.signal_features(speech.LENGTH, 1, label=label()),
    }

  def generate(self, num_signals: int, seed: int, split: str):
    return generate.generate_signals(
      num_signals, seed, split, sample_rate=self.builder_config.sample_rate
    )


def load_avdigits(
  data_dir: str | os.PathLike[str] | None,
  split: str,
  config: str = "default",
  modalities: Sequence[str] | None = None,
  in_memory: bool = False,
) -> Source:
  """Returns a split of `avdigits`, building it on first use (seconds).

  Arguments as `tfds_loading.load_split`'s; `config` is "default" (2000 train / 500 test
  signals) or "small" (64 / 32), or "8khz" / "8khz_small" (the same with audio at 8 kHz);
  `modalities` a subset of rgb, wav (None: both).

  Returns:
    A source of `{"rgb": {"y": float32 [784, 1] in [0, 1], "amplitude": []}, "wav": {"y":
    float32 [2000, 1] in [-1, 1], "amplitude": []}}` (amplitudes 1.0). The class labels stay in
    the tfds dataset (`AvDigits(...).as_data_source(split)[i]["rgb"]["label"]`).

  Raises:
    ValueError: an unknown config or modality name.
  """
  return tfds_loading.load_split(
    AvDigits, data_dir, split, config=config, modalities=modalities, in_memory=in_memory
  )
