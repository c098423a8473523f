"""Shared pieces of the datasets built from files the user supplies (tfds `manual_dir`).

CelebA, AV-MNIST and ERA5 cannot be downloaded at run time: their builders read raw files from a
local *manual folder*, by default `<data_dir>/downloads/manual/<dataset name>/` (one folder per
dataset, so the three never mix; `docs/datasets.md` gives each one's tree). This module holds

* `default_manual_dir` / `prepare`: where that folder is, and building a dataset from it once,
  with the folder checked first, so that a missing, empty or malformed folder fails with a
  message naming the folder and the files to put there, not a traceback from inside tfds;
* `ManualDataset`: what a dataset's loader needs to know (its builder, folder check, scales),
  and the loading itself (`load`), written once for the three datasets;
* `RecordSource`: a tfds data source whose records are decoded into signals on access;
* `PackedSource`: signals held in memory in their stored dtype (uint8 pixels, int16 samples) and
  converted to float32 only when read, so that e.g. the whole CelebA split fits in a quarter of
  the memory a float32 copy would take.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import dataclasses
import math
import os
from typing import Any, SupportsIndex

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import benchmarks, tfds_loading
from data_pipelines.signals import Signal, read_chunks

Record = Mapping[str, Any]


def data_dir_root(builder: tfds.core.DatasetBuilder) -> str:
  """The tfds data directory a builder lives in (`data_dir`, or the tfds default)."""
  return os.fspath(builder.data_dir_root)


def default_manual_dir(builder: tfds.core.DatasetBuilder) -> str:
  """`<data_dir>/downloads/manual/<builder name>`: where a builder's raw files go by default."""
  return os.path.join(data_dir_root(builder), "downloads", "manual", builder.name)


def prepare(
  builder: tfds.core.DatasetBuilder,
  manual_dir: str | os.PathLike[str] | None,
  check: Callable[[str], Any],
) -> str:
  """Builds `builder` from its manual folder unless it is already built.

  Args:
    builder: a builder that reads `dl_manager.manual_dir`.
    manual_dir: the folder with the raw files; None means `default_manual_dir(builder)`.
    check: `check(manual_dir)` raises FileNotFoundError / ValueError with instructions when the
      folder is missing, empty or malformed; it runs before tfds is asked to build anything.

  Returns:
    The manual folder used (also when the dataset was already built and nothing was read).
  """
  manual_dir = os.fspath(manual_dir) if manual_dir else default_manual_dir(builder)
  if builder.is_prepared():
    return manual_dir
  check(manual_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return manual_dir


def manual_dir_of(
  dl_manager: tfds.download.DownloadManager, instructions: str, required: bool = True
) -> str | None:
  """`dl_manager.manual_dir`, with tfds' "does not exist or is empty" error made ours.

  Args:
    dl_manager: the builder's download manager.
    instructions: appended to the error.
    required: when False, a missing or empty folder gives None instead of an error.
  """
  try:
    return os.fspath(dl_manager.manual_dir)
  except AssertionError as error:
    if not required:
      return None
    raise FileNotFoundError(f"{error}\n{instructions}") from None


def list_files(folder: str, suffixes: Sequence[str]) -> list[str]:
  """Sorted names of the visible files in `folder` whose suffix (any case) is in `suffixes`."""
  suffixes = tuple(s.lower() for s in suffixes)
  return sorted(
    name
    for name in os.listdir(folder)
    if not name.startswith(".")
    and name.lower().endswith(suffixes)
    and os.path.isfile(os.path.join(folder, name))
  )


class ManualBuilder(tfds_loading.InOrderBuilder, skip_registration=True):
  """A builder of the files in a manual folder: its info has `HOMEPAGE` and a metadata dict."""

  HOMEPAGE = ""

  def info_options(self) -> dict[str, Any]:
    return {"metadata": tfds.core.MetadataDict(), "homepage": self.HOMEPAGE}


class RecordSource:
  """A tfds data source whose records are decoded into signals when read.

  `source[i]` is `decode(records[i], modalities)`; `__getitems__` decodes a batch of records read
  in one call (what `sources.to_memory` and grain use).
  """

  def __init__(
    self, records: Any, decode: Callable[[Record, Sequence[str]], Signal], modalities: Sequence[str]
  ):
    """Wraps the records.

    Args:
      records: a random-access sequence of tfds records (`builder.as_data_source(split)`).
      decode: turns one record into `{name: {"y": float32 [N, d_out], "amplitude": float32 []}}`
        for the given modalities.
      modalities: names to return, in this order.
    """
    self._records = records
    self._decode = decode
    self._modalities = tuple(modalities)

  @property
  def modalities(self) -> tuple[str, ...]:
    """The names of the modalities returned, in order."""
    return self._modalities

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, index: SupportsIndex) -> Signal:
    return self._decode(self._records[index], self._modalities)

  def __getitems__(self, indices: Sequence[int]) -> list[Signal]:
    getitems = getattr(self._records, "__getitems__", None)
    records = getitems(indices) if getitems else [self._records[i] for i in indices]
    return [self._decode(r, self._modalities) for r in records]

  def __repr__(self) -> str:
    return f"RecordSource({self._records!r}, modalities={list(self._modalities)})"


@dataclasses.dataclass(frozen=True)
class PackedModality:
  """One modality of a `PackedSource`: `y[i] = values[rows[i]] * scale[rows[i]]` as float32.

  Attributes:
    values: `[R, N, d_out]` stored samples of any numeric dtype (uint8 pixels, int16 audio).
    scale: a float, or float32 `[R]` (one factor per stored row).
    rows: int `[S]`, the stored row of each signal (several signals may share a row, as paired
      AV-MNIST images share a recording); None means row i is signal i.
  """

  values: np.ndarray
  scale: float | np.ndarray = 1.0
  rows: np.ndarray | None = None

  def __post_init__(self):
    if self.values.ndim != 3:
      raise ValueError(f"values has shape {self.values.shape}; expected [rows, points, d_out].")
    if np.ndim(self.scale) not in (0, 1):
      raise ValueError(f"scale must be a float or [rows]; got shape {np.shape(self.scale)}.")
    if np.ndim(self.scale) == 1 and len(self.scale) != len(self.values):
      raise ValueError(f"scale has {len(self.scale)} entries for {len(self.values)} rows.")

  def __len__(self) -> int:
    return len(self.values) if self.rows is None else len(self.rows)

  def get(self, index: int) -> np.ndarray:
    """Signal `index` as float32 `[N, d_out]`."""
    row = index if self.rows is None else int(self.rows[index])
    scale = self.scale if np.ndim(self.scale) == 0 else self.scale[row]
    return self.values[row].astype(np.float32) * np.float32(scale)

  @property
  def nbytes(self) -> int:
    rows = 0 if self.rows is None else self.rows.nbytes
    return self.values.nbytes + np.asarray(self.scale).nbytes + rows


class PackedSource:
  """Signals in memory in their stored dtype, converted to float32 when read.

  Every signal has amplitude 1.0 (these benchmarks do not normalise errors per signal).
  """

  def __init__(self, modalities: Mapping[str, PackedModality]):
    """Stores the arrays.

    Args:
      modalities: `{name: PackedModality}`, all with the same number of signals.

    Raises:
      ValueError: no modalities, or modalities that disagree on the number of signals.
    """
    if not modalities:
      raise ValueError("Need at least one modality; got none.")
    counts = {name: len(m) for name, m in modalities.items()}
    if len(set(counts.values())) != 1:
      raise ValueError(f"The modalities disagree on the number of signals: {counts}.")
    self._modalities = dict(modalities)
    self._num_signals = next(iter(counts.values()))
    for m in self._modalities.values():
      m.values.setflags(write=False)

  @property
  def modalities(self) -> tuple[str, ...]:
    """The names of the modalities returned, in order."""
    return tuple(self._modalities)

  @property
  def packed(self) -> dict[str, PackedModality]:
    """The stored arrays, by modality."""
    return dict(self._modalities)

  @property
  def nbytes(self) -> int:
    """Memory held by the arrays."""
    return sum(m.nbytes for m in self._modalities.values())

  def __len__(self) -> int:
    return self._num_signals

  def __getitem__(self, index: SupportsIndex) -> Signal:
    """Returns signal `index` (in `[-len, len)`) as float32 arrays."""
    index = index.__index__()
    if not -self._num_signals <= index < self._num_signals:
      raise IndexError(f"Index {index} out of range for {self._num_signals} signals.")
    index %= self._num_signals
    return {
      name: {"y": m.get(index), "amplitude": np.float32(1.0)}
      for name, m in self._modalities.items()
    }

  def __repr__(self) -> str:
    return (
      f"PackedSource(modalities={list(self._modalities)}, num_signals={self._num_signals}, "
      f"{self.nbytes / 2**20:.1f} MiB)"
    )


def read_records(
  records: Any, keys: Sequence[str], chunk_size: int = 1024
) -> dict[str, np.ndarray]:
  """Reads fields `keys` of every record of a tfds data source into stacked numpy arrays.

  Args:
    records: a random-access sequence of tfds records.
    keys: the top-level fields to keep.
    chunk_size: records read per call.

  Returns:
    `{key: [num_records, ...]}` in record order (text fields as an object array of str).

  Raises:
    ValueError: the source is empty.
  """
  if len(records) == 0:
    raise ValueError("Cannot read an empty split into memory.")
  columns: dict[str, list[Any]] = {key: [] for key in keys}
  for chunk in read_chunks(records, chunk_size):
    for record in chunk:
      for key in keys:
        value = record[key]
        columns[key].append(value.decode() if isinstance(value, bytes) else value)
  return {
    key: (
      np.array(values, dtype=object)
      if isinstance(values[0], str)
      else np.stack([np.asarray(v) for v in values])
    )
    for key, values in columns.items()
  }


def flat_points(array: np.ndarray) -> np.ndarray:
  """`[S, *grid, d_out]` -> `[S, prod(grid), d_out]` (row-major; no copy when contiguous)."""
  return array.reshape(array.shape[0], math.prod(array.shape[1:-1]), array.shape[-1])


@dataclasses.dataclass(frozen=True)
class ManualDataset:
  """A dataset built from a manual folder, and how its records become signals.

  Attributes:
    benchmark: its name in `benchmarks.BENCHMARKS` (which gives its modalities); errors say
      "Unknown <benchmark> modality".
    builder_class: the tfds builder, which reads `dl_manager.manual_dir`.
    check: `check(builder, manual_dir)` raises FileNotFoundError / ValueError with instructions
      when the folder is missing, empty or malformed (see `prepare`).
    d_out: the channels of every modality.
    scales: `{modality: factor}` from the stored values (uint8 pixels, int16 samples) to the
      signal's range; 1.0 where absent.
    pack: `pack(records, modalities) -> PackedSource`, how a split is held in memory; None: each
      modality's stored values, scaled by `scales`.
  """

  benchmark: str
  builder_class: type[tfds.core.DatasetBuilder]
  check: Callable[[tfds.core.DatasetBuilder, str], Any]
  d_out: int = 1
  scales: Mapping[str, float] = dataclasses.field(default_factory=dict)
  pack: Callable[[Any, Sequence[str]], PackedSource] | None = None

  @property
  def modalities(self) -> tuple[str, ...]:
    """The dataset's modality names, in order."""
    return tuple(benchmarks.BENCHMARKS[self.benchmark][0])

  def decode(self, record: Record, modalities: Sequence[str]) -> Signal:
    """One record as `{name: {"y": float32 [N, d_out] (scaled), "amplitude": 1.0}}`."""
    return {
      m: {
        "y": (
          np.asarray(record[m], np.float32).reshape(-1, self.d_out)
          * np.float32(self.scales.get(m, 1.0))
        ),
        "amplitude": np.float32(1.0),
      }
      for m in modalities
    }

  def builder(
    self,
    data_dir: str | os.PathLike[str] | None,
    config: str,
    manual_dir: str | os.PathLike[str] | None,
  ) -> tfds.core.DatasetBuilder:
    """The builder of `config`, built from the manual folder unless it already is."""
    tfds_loading.check_config(self.builder_class, config)
    builder = self.builder_class(config=config, data_dir=data_dir, file_format="array_record")
    prepare(builder, manual_dir, lambda folder: self.check(builder, folder))
    return builder

  def load(
    self,
    data_dir: str | os.PathLike[str] | None,
    split: str,
    *,
    config: str,
    modalities: str | Sequence[str] | None,
    in_memory: bool,
    manual_dir: str | os.PathLike[str] | None,
  ) -> RecordSource | PackedSource:
    """Returns a split, building the dataset from the manual folder on first use.

    Args:
      data_dir: tfds data directory (None: the tfds default, `~/tensorflow_datasets`).
      split: "train" or "test", or a tfds split expression ("train[:100]").
      config: the name of one of the builder's `BUILDER_CONFIGS`.
      modalities: names to return, in order ("a+b" or a sequence); None means all of them.
      in_memory: read the split into a `PackedSource` (the stored dtype, converted on access)
        instead of decoding records on every access.
      manual_dir: the folder with the raw files; None means
        `<data_dir>/downloads/manual/<builder name>`. Read only when the dataset is not built.

    Raises:
      ValueError: an unknown config or modality, or malformed raw files.
      FileNotFoundError: the dataset is not built and the manual folder is missing or empty; the
        message says which folders and files to create.
    """
    modalities = tfds_loading.select_modalities(modalities, self.modalities, self.benchmark)
    records = self.builder(data_dir, config, manual_dir).as_data_source(split=split)
    if not in_memory:
      return RecordSource(records, self.decode, modalities)
    if self.pack is not None:
      return self.pack(records, modalities)
    arrays = read_records(records, modalities)
    return PackedSource(
      {m: PackedModality(flat_points(arrays[m]), scale=self.scales.get(m, 1.0)) for m in modalities}
    )
