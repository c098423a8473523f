"""The tfds side of the datasets: configs, modality selection, and locally generated builders.

* `check_config` / `select_modalities`: the checks every loader runs on its arguments (the
  modality names through `data_pipelines.names.parse_modalities`);
* `InOrderBuilder`: what every builder here shares (version, default config, examples in order);
* `GeneratedBuilder`: a tfds builder whose splits are generated locally from a seed per split
  (`SPLIT_SEEDS`), in `SizeConfig` sizes: the synthetic functions, the rendered shapes and the
  audio-visual digits;
* `load_split`: one split of such a builder as a source, built on first use.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.names import parse_modalities
from data_pipelines.signals import ArraySource, ModalitySubset, to_memory

# The seed (or pairing seed) of each split of the datasets made or paired here.
SPLIT_SEEDS = {"train": 0, "test": 1}


def check_config(builder_class: type[tfds.core.DatasetBuilder], config: str) -> None:
  """Raises ValueError naming the allowed configs when `config` is not one of the builder's."""
  names = [c.name for c in builder_class.BUILDER_CONFIGS]
  if config not in names:
    raise ValueError(
      f"Unknown {builder_class.name} config {config!r}; allowed: {', '.join(names)}."
    )


def select_modalities(
  modalities: str | Sequence[str] | None, known: Sequence[str], dataset: str
) -> tuple[str, ...]:
  """The names to load: None means all of `known`, in order; else checked against `known`
  (`parse_modalities`: "rgb+wav" or a sequence, at least one, none unknown or twice)."""
  return parse_modalities(tuple(known) if modalities is None else modalities, known, dataset)


class InOrderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder of this package: version 1.0.0, a "default" config, examples kept in key order
  (example i of a split is signal i), described by `DESCRIPTION` and `features()`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  DEFAULT_CONFIG_NAME = "default"
  MODALITIES: tuple[str, ...] = ()
  DESCRIPTION = ""

  @abc.abstractmethod
  def features(self) -> Mapping[str, tfds.features.FeatureConnector]:
    """The features of an example: `{modality or field: its feature}`."""

  def info_options(self) -> dict[str, Any]:
    """More arguments of `dataset_info_from_configs` (a homepage, a metadata dict)."""
    return {}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=self.DESCRIPTION,
      features=tfds.features.FeaturesDict(dict(self.features())),
      supervised_keys=None,
      disable_shuffling=True,
      **self.info_options(),
    )


@dataclasses.dataclass
class SizeConfig(tfds.core.BuilderConfig):
  """A dataset size.

  Attributes:
    num_train: number of meta-train signals (seed `SPLIT_SEEDS["train"]`).
    num_test: number of meta-test signals (seed `SPLIT_SEEDS["test"]`).
  """

  num_train: int = 0
  num_test: int = 0


def size_configs(num_train: int, num_test: int) -> list[SizeConfig]:
  """A "default" config of the given sizes, and a "small" one (64 / 32 signals) for tests."""
  return [
    SizeConfig(
      name="default",
      description=f"{num_train} train / {num_test} test signals.",
      num_train=num_train,
      num_test=num_test,
    ),
    SizeConfig(
      name="small", description="64 train / 32 test signals, for tests.", num_train=64, num_test=32
    ),
  ]


def signal_features(points: int, d_out: int, **extra: Any) -> tfds.features.FeaturesDict:
  """The features of one modality: float32 `y [points, d_out]`, `amplitude []`, and `extra`."""
  return tfds.features.FeaturesDict(
    {
      "y": tfds.features.Tensor(shape=(points, d_out), dtype=np.float32),
      "amplitude": tfds.features.Tensor(shape=(), dtype=np.float32),
      **extra,
    }
  )


class GeneratedBuilder(InOrderBuilder, skip_registration=True):
  """A builder whose examples are generated here (nothing is downloaded).

  Example i of a split is signal i of `self.generate(num_signals, SPLIT_SEEDS[split], split)`.
  A subclass sets `MODALITIES`, `DESCRIPTION`, `BUILDER_CONFIGS` (`size_configs`) and defines
  `generate`; by default every modality has `NUM_POINTS` points of `D_OUT` channels.
  """

  NUM_POINTS = 0
  D_OUT = 1

  def features(self) -> Mapping[str, tfds.features.FeaturesDict]:
    return {name: signal_features(self.NUM_POINTS, self.D_OUT) for name in self.MODALITIES}

  @abc.abstractmethod
  def generate(self, num_signals: int, seed: int, split: str) -> dict[str, dict[str, np.ndarray]]:
    """`{modality: {feature: [num_signals, ...]}}`, the signals of a split."""

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    sizes = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    return {
      split: self._generate_examples(sizes[split], seed, split)
      for split, seed in SPLIT_SEEDS.items()
    }

  def _generate_examples(self, num_signals: int, seed: int, split: str):
    """Yields `(index, {name: {feature: value}})`."""
    signals = self.generate(num_signals, seed, split)
    for i in range(num_signals):
      yield (
        i,
        {
          name: {key: value[i] for key, value in arrays.items()} for name, arrays in signals.items()
        },
      )


def load_split(
  builder_class: type[GeneratedBuilder],
  data_dir: str | os.PathLike[str] | None,
  split: str,
  *,
  config: str,
  modalities: str | Sequence[str] | None,
  in_memory: bool,
) -> ModalitySubset | ArraySource:
  """Builds `builder_class` (if not built yet) and returns one split as a source.

  Args:
    builder_class: a `GeneratedBuilder`.
    data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`).
    split: "train" or "test", or any tfds split expression ("train[:10]").
    config: the name of one of the builder's `BUILDER_CONFIGS`.
    modalities: names to return, in order ("a+b" or a sequence); None means all of the
      builder's `MODALITIES`.
    in_memory: read the whole split into an `ArraySource` instead of decoding records on every
      access; reads are then much faster.

  Returns:
    A source of `{name: {"y": float32 [N, d_out], "amplitude": float32 []}}`.

  Raises:
    ValueError: an unknown config, or an unknown or repeated modality.
  """
  check_config(builder_class, config)
  modalities = select_modalities(modalities, builder_class.MODALITIES, builder_class.name)
  builder = builder_class(config=config, data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  source = ModalitySubset(builder.as_data_source(split=split), modalities)
  return to_memory(source) if in_memory else source
