"""`load_era5`: a split of the ERA5 climate dataset as a source of signals."""

from __future__ import annotations

from collections.abc import Sequence
import os

import numpy as np

from data_pipelines import manual
from data_pipelines.era5 import era5


def _decode(record: manual.Record, modalities: Sequence[str]) -> manual.Signal:
  return {m: {"y": np.asarray(record[m], np.float32).reshape(-1, 1),
              "amplitude": np.float32(1.0)} for m in modalities}


def _builder(data_dir, config: str, manual_dir) -> era5.Era5:
  manual.validate_config(config, era5.Era5)
  builder = era5.Era5(config=config, data_dir=data_dir, file_format="array_record")
  manual.prepare(builder, manual_dir, era5.check)
  return builder


def load_era5(
    data_dir: str | os.PathLike[str] | None,
    split: str,
    *,
    config: str = "default",
    modalities: Sequence[str] | None = None,
    in_memory: bool = False,
    manual_dir: str | os.PathLike[str] | None = None,
) -> manual.RecordSource | manual.PackedSource:
  """Returns a split of `era5`, building it from the manual folder on first use.

  Args:
    data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`).
    split: "train" or "test", or a tfds split expression ("train[:100]").
    config: builder config; "default" (46 x 90).
    modalities: a subset of temperature, pressure, humidity, in the returned order; None means
      all three.
    in_memory: read the split into memory (float32, 16 KB per variable and time step at 46x90)
      instead of decoding records on every access.
    manual_dir: the folder with the `.npz` files (see `era5.instructions`); None means
      `<data_dir>/downloads/manual/era5`. Read only when the dataset is not yet built.

  Returns:
    A source of `{name: {"y": float32 [lat * lon, 1], "amplitude": 1.0}}`, normalised with the
    training split's min/max (see `normalisation`), the grid flattened row-major (latitude
    major); signal i is the i-th time step of the split's files in name order.

  Raises:
    ValueError: an unknown config or modality, or malformed files.
    FileNotFoundError: the dataset is not built and the manual folder is missing or empty; the
      message says which folders and files to create.
  """
  modalities = manual.validate_modalities(modalities, era5.MODALITIES, "era5")
  records = _builder(data_dir, config, manual_dir).as_data_source(split=split)
  if not in_memory:
    return manual.RecordSource(records, _decode, modalities)
  arrays = manual.read_records(records, modalities)
  return manual.PackedSource(
      {m: manual.PackedModality(manual.flat_points(arrays[m])) for m in modalities})


def normalisation(
    data_dir: str | os.PathLike[str] | None,
    *,
    config: str = "default",
    manual_dir: str | os.PathLike[str] | None = None,
) -> dict[str, dict[str, float]]:
  """The training min/max of each variable: `{variable: {"min": float, "max": float}}`.

  A normalised value y is `x = y * (max - min) + min` in the source files' units. Builds the
  dataset if needed (as `load_era5`).
  """
  metadata = _builder(data_dir, config, manual_dir).info.metadata
  return {m: dict(v) for m, v in metadata["normalisation"].items()}
