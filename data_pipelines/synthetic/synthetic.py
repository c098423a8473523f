"""TFDS builder `synthetic_functions`: the synthetic 1-D function benchmark, and its loader.

The data are generated locally by `generate.generate_signals` (nothing is downloaded) and written
as array_record, so they build and read without TensorFlow::

  train = load_synthetic(data_dir, "train", config="small")  # train[i] -> {name: {"y", ...}}

Each config is prepared in its own directory (`data_dir/synthetic_functions/<config>/<version>`),
so sizes never collide.
"""

from __future__ import annotations

from collections.abc import Sequence
import os

from data_pipelines import tfds_loading
from data_pipelines.signals import Source
from data_pipelines.synthetic import generate


class SyntheticFunctions(tfds_loading.GeneratedBuilder):
  """Synthetic multimodal 1-D function signals."""

  MODALITIES = generate.MODALITIES
  DESCRIPTION = """\
Synthetic multimodal 1-D functions (sine, tanh, gaussian, relu) sharing
jittered amplitude, frequency, phase and offset, each on 200 points of
t in [-5, 5]; the MIA benchmark that needs no download.
"""
  BUILDER_CONFIGS = tfds_loading.size_configs(1000, 200)
  NUM_POINTS = generate.NUM_POINTS

  def generate(self, num_signals: int, seed: int, split: str):
    del split  # The seed tells the splits apart.
    return generate.generate_signals(num_signals, seed)


def load_synthetic(
  data_dir: str | os.PathLike[str] | None,
  split: str,
  config: str = "default",
  modalities: Sequence[str] | None = None,
  in_memory: bool = False,
) -> Source:
  """Returns a split of the synthetic functions dataset, building it if needed.

  The first call for a `(data_dir, config)` generates the dataset (well under a second for the
  default size) into `data_dir/synthetic_functions/<config>/1.0.0`; later calls only open it.
  Arguments as `tfds_loading.load_split`'s; `config` is "default" (1000 train / 200 test
  signals) or "small" (64 / 32); `modalities` a subset of sine, tanh, gaussian, relu (None: all
  four); `in_memory` holds about 3 MB for the default train split.

  Returns:
    A source of `{name: {"y": float32 [200, 1], "amplitude": float32 []}}`. Signal i of the
    "train" ("test") split is signal i of `generate_signals(num_train, seed=0)` (`num_test`,
    seed=1).

  Raises:
    ValueError: an unknown config or modality name.
  """
  return tfds_loading.load_split(
    SyntheticFunctions, data_dir, split, config=config, modalities=modalities, in_memory=in_memory
  )
