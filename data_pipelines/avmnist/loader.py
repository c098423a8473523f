"""`load_avmnist`: a split of AV-MNIST as a source of signals."""

from __future__ import annotations

from collections.abc import Sequence
import os

import numpy as np

from data_pipelines import manual
from data_pipelines.avmnist import avmnist

_PIXEL_SCALE = 1.0 / 255.0
_WAV_SCALE = 1.0 / avmnist.INT16_SCALE


def _decode(record: manual.Record, modalities: Sequence[str]) -> manual.Signal:
  out = {}
  for m in modalities:
    if m == "rgb":
      y = np.asarray(record["rgb"], np.float32).reshape(-1, 1) * np.float32(_PIXEL_SCALE)
    else:
      y = np.asarray(record["wav"], np.float32).reshape(-1, 1) * np.float32(_WAV_SCALE)
    out[m] = {"y": y, "amplitude": np.float32(1.0)}
  return out


def _packed(records, modalities: Sequence[str]) -> manual.PackedSource:
  """Reads a split into memory; recordings shared by several images are stored once."""
  keys = ["wav_name"] + (["rgb"] if "rgb" in modalities else [])
  arrays = manual.read_records(records, keys)
  packed = {}
  for m in modalities:
    if m == "rgb":
      packed[m] = manual.PackedModality(manual.flat_points(arrays["rgb"]), scale=_PIXEL_SCALE)
    else:
      _, first, rows = np.unique(arrays["wav_name"], return_index=True, return_inverse=True)
      wavs = np.stack([np.asarray(records[int(i)]["wav"]) for i in first])
      packed[m] = manual.PackedModality(wavs[..., None], scale=_WAV_SCALE,
                                        rows=rows.reshape(-1).astype(np.int64))
  return manual.PackedSource(packed)


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

  Args:
    data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`); prepared
      tfds `mnist` / `spoken_digit` datasets there are used instead of files.
    split: "train" or "test", or a tfds split expression ("train[:100]").
    config: builder config; "default" is the only one.
    modalities: a subset of rgb, wav, in the returned order; None means both.
    in_memory: read the split into a `PackedSource` (uint8 images; each recording stored once,
      as int16) instead of decoding records on every access.
    manual_dir: the folder with the MNIST idx files and FSDD recordings; None means
      `<data_dir>/downloads/manual/avmnist`. Read only when the dataset is not yet built.

  Returns:
    A source of `{"rgb": {"y": float32 [784, 1] in [0, 1], ...}, "wav": {"y": float32
    [WAV_LENGTH, 1] in [-1, 1], ...}}` with amplitude 1.0; signal i is MNIST image i of the
    split (in the idx files' order, or the prepared tfds mnist's order).

  Raises:
    ValueError: an unknown config or modality, or malformed source files.
    FileNotFoundError: the dataset is not built and MNIST or FSDD is missing; the message says
      which files to put where.
  """
  manual.validate_config(config, avmnist.Avmnist)
  modalities = manual.validate_modalities(modalities, avmnist.MODALITIES, "avmnist")
  builder = avmnist.Avmnist(config=config, data_dir=data_dir, file_format="array_record")
  root = manual.data_dir_root(builder)
  manual.prepare(builder, manual_dir, lambda d: avmnist.find_sources(root, d))
  records = builder.as_data_source(split=split)
  if in_memory:
    return _packed(records, modalities)
  return manual.RecordSource(records, _decode, modalities)
