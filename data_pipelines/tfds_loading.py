"""Loading a split of a locally generated tfds dataset as a source (shared by the loaders)."""

from __future__ import annotations

from collections.abc import Sequence
import os

import tensorflow_datasets as tfds

from data_pipelines import sources


def load_split(
    builder_class: type[tfds.core.GeneratorBasedBuilder],
    data_dir: str | os.PathLike[str] | None,
    split: str,
    *,
    config: str,
    modalities: Sequence[str] | None,
    known_modalities: Sequence[str],
    in_memory: bool,
) -> sources.ModalitySubset | sources.ArraySource:
  """Builds `builder_class` (if not built yet) and returns one split as a source.

  Args:
    builder_class: a tfds builder whose examples hold `{name: {"y", "amplitude", ...}}`.
    data_dir: tfds data directory (None: the tfds default).
    split: "train", "test", or any tfds split expression ("train[:10]").
    config: the name of one of the builder's `BUILDER_CONFIGS`.
    modalities: names to return, in order; None means all of `known_modalities`.
    known_modalities: the modalities the dataset holds.
    in_memory: read the whole split into an `ArraySource`.

  Returns:
    A source of `{name: {"y": float32 [N, d_out], "amplitude": float32 []}}`.

  Raises:
    ValueError: an unknown config, or an unknown or repeated modality.
  """
  name = builder_class.name
  config_names = [c.name for c in builder_class.BUILDER_CONFIGS]
  if config not in config_names:
    raise ValueError(f"Unknown {name} config {config!r}; allowed: {', '.join(config_names)}.")
  if modalities is None:
    modalities = tuple(known_modalities)
  if isinstance(modalities, str):
    modalities = (modalities,)
  modalities = tuple(modalities)
  if not modalities:
    raise ValueError(f"Need at least one {name} modality; allowed: {', '.join(known_modalities)}.")
  for m in modalities:
    if m not in known_modalities:
      raise ValueError(f"Unknown {name} modality {m!r}; allowed: {', '.join(known_modalities)}.")
  if len(set(modalities)) != len(modalities):
    raise ValueError(f"Modalities repeat a name: {list(modalities)}.")
  builder = builder_class(config=config, data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  source = sources.ModalitySubset(builder.as_data_source(split=split), modalities)
  return sources.to_memory(source) if in_memory else source
