"""`load_era5`: a split of the ERA5 climate dataset as a source of signals."""

from __future__ import annotations

from collections.abc import Sequence
import os

from data_pipelines import manual
from data_pipelines.era5 import era5

DATASET = manual.ManualDataset("era5", era5.Era5, check=lambda builder, folder: era5.check(folder))


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

  Arguments as `manual.ManualDataset.load`'s: `config` "default" (46 x 90), `modalities` a
  subset of temperature, pressure, humidity (None: all three); in memory a variable takes 16 KB
  per time step at 46x90 (float32); `manual_dir` holds the `.npz` files (see
  `era5.instructions`).

  Returns:
    A source of `{name: {"y": float32 [lat * lon, 1], "amplitude": 1.0}}`, normalised with the
    training split's min/max (see `normalisation`), the grid flattened row-major (latitude
    major); signal i is the i-th time step of the split's files in name order.
  """
  return DATASET.load(
    data_dir,
    split,
    config=config,
    modalities=modalities,
    in_memory=in_memory,
    manual_dir=manual_dir,
  )


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
  metadata = DATASET.builder(data_dir, config, manual_dir).info.metadata
  return {m: dict(v) for m, v in metadata["normalisation"].items()}
