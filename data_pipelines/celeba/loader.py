"""`load_celeba`: a split of the CelebA trimodal dataset as a source of signals."""

from __future__ import annotations

from collections.abc import Sequence
import os

from data_pipelines import manual
from data_pipelines.celeba import celeba

DATASET = manual.ManualDataset(
  "celeba",
  celeba.CelebaTrimodal,
  check=lambda builder, folder: celeba.scan(folder, builder.builder_config.image_size),
  d_out=3,
  scales=dict.fromkeys(celeba.MODALITIES, 1.0 / 255.0),
)


def load_celeba(
  data_dir: str | os.PathLike[str] | None,
  split: str,
  *,
  config: str = "default",
  modalities: Sequence[str] | None = None,
  in_memory: bool = False,
  manual_dir: str | os.PathLike[str] | None = None,
) -> manual.RecordSource | manual.PackedSource:
  """Returns a split of `celeba_trimodal`, building it from the manual folder on first use.

  Arguments as `manual.ManualDataset.load`'s: `config` "default" (32x32), `modalities` a subset of
  rgb, normal, sketch (None: all three); in memory a face takes about 9 KB (uint8); `manual_dir`
  holds the images (see `celeba.instructions`).

  Returns:
    A source of `{name: {"y": float32 [size * size, 3] in [0, 1], "amplitude": 1.0}}`, the image
    flattened row-major; signal i is the i-th matched file name in sorted order.
  """
  return DATASET.load(
    data_dir,
    split,
    config=config,
    modalities=modalities,
    in_memory=in_memory,
    manual_dir=manual_dir,
  )
