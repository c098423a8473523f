"""Shared pieces of the datasets built from files the user supplies (tfds `manual_dir`).

CelebA, AV-MNIST and ERA5 cannot be downloaded at run time: their builders read raw files from a
local *manual folder*, by default `<data_dir>/downloads/manual/<dataset name>/` (one folder per
dataset, so the three never mix; `docs/datasets.md` gives each one's tree). This module holds

* `default_manual_dir` / `prepare`: where that folder is, and building a dataset from it once,
  with the folder checked first, so that a missing, empty or malformed folder fails with a
  message naming the folder and the files to put there, not a traceback from inside tfds;
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

Signal = dict[str, dict[str, np.ndarray]]
Record = Mapping[str, Any]


def data_dir_root(builder: tfds.core.DatasetBuilder) -> str:
  """The tfds data directory a builder lives in (`data_dir`, or the tfds default)."""
  return os.fspath(builder.data_dir_root)


def default_manual_dir(builder: tfds.core.DatasetBuilder) -> str:
  """`<data_dir>/downloads/manual/<builder name>`: where a builder's raw files go by default."""
  return os.path.join(data_dir_root(builder), "downloads", "manual", builder.name)


def prepare(builder: tfds.core.DatasetBuilder, manual_dir: str | os.PathLike[str] | None,
            check: Callable[[str], Any]) -> str:
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
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return manual_dir


def manual_dir_of(dl_manager: tfds.download.DownloadManager, instructions: str,
                  required: bool = True) -> str | None:
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


def validate_modalities(modalities: Sequence[str] | str | None, known: Sequence[str],
                        dataset: str) -> tuple[str, ...]:
  """Checks modality names of `dataset` against `known`; None means all of them, in order.

  Raises:
    ValueError: no name, an unknown name or a repeated one (the message lists the allowed ones).
  """
  if modalities is None:
    return tuple(known)
  names = tuple(modalities.split("+") if isinstance(modalities, str) else modalities)
  if not names:
    raise ValueError(f"Need at least one {dataset} modality; allowed: {', '.join(known)}.")
  for name in names:
    if name not in known:
      raise ValueError(f"Unknown {dataset} modality {name!r}; allowed: {', '.join(known)}.")
  if len(set(names)) != len(names):
    raise ValueError(f"Modalities repeat a name: {list(names)}.")
  return names


def validate_config(config: str, builder_class: type[tfds.core.DatasetBuilder]) -> None:
  """Raises ValueError naming the allowed configs when `config` is not one of the builder's."""
  names = [c.name for c in builder_class.BUILDER_CONFIGS]
  if config not in names:
    raise ValueError(f"Unknown {builder_class.name} config {config!r}; allowed: {names}.")


def list_files(folder: str, suffixes: Sequence[str]) -> list[str]:
  """Sorted names of the visible files in `folder` whose suffix (any case) is in `suffixes`."""
  suffixes = tuple(s.lower() for s in suffixes)
  return sorted(name for name in os.listdir(folder)
                if not name.startswith(".") and name.lower().endswith(suffixes)
                and os.path.isfile(os.path.join(folder, name)))


class RecordSource:
  """A tfds data source whose records are decoded into signals when read.

  `source[i]` is `decode(records[i], modalities)`; `__getitems__` decodes a batch of records read
  in one call (what `sources.to_memory` and grain use).
  """

  def __init__(self, records: Any, decode: Callable[[Record, Sequence[str]], Signal],
               modalities: Sequence[str]):
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
    return {name: {"y": m.get(index), "amplitude": np.float32(1.0)}
            for name, m in self._modalities.items()}

  def __repr__(self) -> str:
    return (f"PackedSource(modalities={list(self._modalities)}, num_signals={self._num_signals}, "
            f"{self.nbytes / 2**20:.1f} MiB)")


def read_records(records: Any, keys: Sequence[str],
                 chunk_size: int = 1024) -> dict[str, np.ndarray]:
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
  size = len(records)
  if size == 0:
    raise ValueError("Cannot read an empty split into memory.")
  getitems = getattr(records, "__getitems__", None)
  columns: dict[str, list[Any]] = {key: [] for key in keys}
  for start in range(0, size, chunk_size):
    indices = list(range(start, min(start + chunk_size, size)))
    chunk = getitems(indices) if getitems else [records[i] for i in indices]
    for record in chunk:
      for key in keys:
        value = record[key]
        columns[key].append(value.decode() if isinstance(value, bytes) else value)
  return {key: (np.array(values, dtype=object) if isinstance(values[0], str)
                else np.stack([np.asarray(v) for v in values]))
          for key, values in columns.items()}


def flat_points(array: np.ndarray) -> np.ndarray:
  """`[S, *grid, d_out]` -> `[S, prod(grid), d_out]` (row-major; no copy when contiguous)."""
  return array.reshape(array.shape[0], math.prod(array.shape[1:-1]), array.shape[-1])
