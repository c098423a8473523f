"""`load_celeba`: a split of the CelebA trimodal dataset as a source of signals."""

from __future__ import annotations

from collections.abc import Sequence
import os

import numpy as np

from data_pipelines import manual
from data_pipelines.celeba import celeba

_SCALE = 1.0 / 255.0


def _decode(record: manual.Record, modalities: Sequence[str]) -> manual.Signal:
  return {m: {"y": np.asarray(record[m], np.float32).reshape(-1, 3) * np.float32(_SCALE),
              "amplitude": np.float32(1.0)} for m in modalities}


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

  Args:
    data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`).
    split: "train" or "test", or a tfds split expression ("train[:100]").
    config: builder config; "default" (32x32).
    modalities: a subset of rgb, normal, sketch, in the returned order; None means all three.
    in_memory: read the split into a `PackedSource` (uint8, about 9 KB a face) instead of
      decoding records on every access.
    manual_dir: the folder with the images (see `celeba.instructions`); None means
      `<data_dir>/downloads/manual/celeba_trimodal`. Read only when the dataset is not yet built.

  Returns:
    A source of `{name: {"y": float32 [size * size, 3] in [0, 1], "amplitude": 1.0}}`, the image
    flattened row-major; signal i is the i-th matched file name in sorted order.

  Raises:
    ValueError: an unknown config or modality, or malformed image folders.
    FileNotFoundError: the dataset is not built and the manual folder is missing or empty; the
      message says which folders and files to create.
  """
  manual.validate_config(config, celeba.CelebaTrimodal)
  modalities = manual.validate_modalities(modalities, celeba.MODALITIES, "celeba")
  builder = celeba.CelebaTrimodal(config=config, data_dir=data_dir, file_format="array_record")
  manual.prepare(builder, manual_dir,
                 lambda d: celeba.scan(d, builder.builder_config.image_size))
  records = builder.as_data_source(split=split)
  if not in_memory:
    return manual.RecordSource(records, _decode, modalities)
  arrays = manual.read_records(records, modalities)
  return manual.PackedSource({
      m: manual.PackedModality(manual.flat_points(arrays[m]), scale=_SCALE) for m in modalities})
