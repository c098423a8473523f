"""`load_avmnist`: a split of AV-MNIST as a source of signals."""

from __future__ import annotations

from collections.abc import Sequence
import os

import numpy as np

from data_pipelines import manual
from data_pipelines.avmnist import avmnist, fsdd

_SCALES = {"rgb": 1.0 / 255.0, "wav": 1.0 / fsdd.INT16_SCALE}


def _packed(records, modalities: Sequence[str]) -> manual.PackedSource:
  """Reads a split into memory; recordings shared by several images are stored once."""
  keys = ["wav_name"] + (["rgb"] if "rgb" in modalities else [])
  arrays = manual.read_records(records, keys)
  packed = {}
  for m in modalities:
    if m == "rgb":
      packed[m] = manual.PackedModality(manual.flat_points(arrays["rgb"]), scale=_SCALES[m])
    else:
      _, first, rows = np.unique(arrays["wav_name"], return_index=True, return_inverse=True)
      wavs = np.stack([np.asarray(records[int(i)]["wav"]) for i in first])
      packed[m] = manual.PackedModality(
        wavs[..., None], scale=_SCALES[m], rows=rows.reshape(-1).astype(np.int64)
      )
  return manual.PackedSource(packed)


DATASET = manual.ManualDataset(
  "avmnist",
  avmnist.Avmnist,
  check=lambda builder, folder: avmnist.find_sources(manual.data_dir_root(builder), folder),
  scales=_SCALES,
  pack=_packed,
)


def load_avmnist(
  data_dir: str | os.PathLike[str] | None,
  split: str,
  *,
  config: str = "default",
  modalities: Sequence[str] | None = None,
  in_memory: bool = False,
  manual_dir: str | os.PathLike[str] | None = None,
) -> manual.RecordSource | manual.PackedSource:
  """Returns a split of `avmnist`, building it on first use (see `avmnist` for the sources).

  Arguments as `manual.ManualDataset.load`'s: `data_dir` may hold prepared tfds `mnist` /
  `spoken_digit` datasets, used instead of files; `config` "default" is the only one;
  `modalities` a subset of rgb, wav (None: both); in memory images stay uint8 and each recording
  is stored once, as int16; `manual_dir` holds the MNIST idx files and FSDD recordings.

  Returns:
    A source of `{"rgb": {"y": float32 [784, 1] in [0, 1], ...}, "wav": {"y": float32
    [WAV_LENGTH, 1] in [-1, 1], ...}}` with amplitude 1.0; signal i is MNIST image i of the
    split (in the idx files' order, or the prepared tfds mnist's order).

  Raises:
    FileNotFoundError: the dataset is not built and MNIST or FSDD is missing; the message says
      which files to put where.
  """
  return DATASET.load(
    data_dir,
    split,
    config=config,
    modalities=modalities,
    in_memory=in_memory,
    manual_dir=manual_dir,
  )
