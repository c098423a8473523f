"""What a source of signals is, and sources held in memory.

A *source* is a random-access sequence of signals: `len(source)` and
`source[i] -> {name: {"y": float32 [N_m, d_out_m], "amplitude": float32 []}}`,
one entry per modality (`N_m` = number of grid points, the grid flattened
row-major). Here:

* `Source`, `Signal`: the protocol and the element type;
* `ArraySource`: signals already in memory (`to_memory` reads any source
  into one); `ModalitySubset`: any source restricted to some modalities;
* `read_chunks` / `stack_signals`: reading a source a chunk at a time and
  stacking elements into batches (shared by `to_memory`, the loaders and
  `manual.read_records`).
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, SupportsIndex

import numpy as np

Signal = dict[str, dict[str, np.ndarray]]


class Source(Protocol):
  """A random-access sequence of signals."""

  def __len__(self) -> int: ...

  def __getitem__(self, index: SupportsIndex) -> Signal: ...


def _as_signal(element: Mapping[str, Mapping[str, Any]], modalities: Sequence[str]) -> Signal:
  """Keeps `modalities` of an element and casts its leaves to float32."""
  return {
    name: {
      "y": np.asarray(element[name]["y"], dtype=np.float32),
      "amplitude": np.asarray(element[name]["amplitude"], dtype=np.float32),
    }
    for name in modalities
  }


class ModalitySubset:
  """A source restricted to some of its modalities, with float32 leaves.

  Wraps any source whose elements are `{name: {"y", "amplitude"}}` (e.g. a
  `tfds.data_source`, whose scalar features come back as Python floats) and
  returns only the chosen modalities, in the chosen order, as float32 numpy
  arrays.
  """

  def __init__(self, source: Source, modalities: Sequence[str]):
    """Initializes the subset.

    Args:
      source: the wrapped source.
      modalities: names to keep, each a key of the source's elements.
    """
    self._source = source
    self._modalities = tuple(modalities)

  @property
  def modalities(self) -> tuple[str, ...]:
    """The names of the modalities returned, in order."""
    return self._modalities

  @property
  def source(self) -> Source:
    """The wrapped source."""
    return self._source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: SupportsIndex) -> Signal:
    return _as_signal(self._source[index], self._modalities)

  def __repr__(self) -> str:
    return f"ModalitySubset({self._source!r}, modalities={list(self._modalities)})"


class ArraySource:
  """Signals held in memory as stacked numpy arrays.

  `source[i]` returns read-only views of row i of the arrays.
  """

  def __init__(self, signals: Mapping[str, Mapping[str, np.ndarray]]):
    """Stores the arrays.

    Args:
      signals: `{name: {"y": [S, N_m, d_out_m], "amplitude": [S]}}` (the
        output of `generate_signals` fits); "amplitude" may be omitted
        (1.0). Cast to float32.

    Raises:
      ValueError: no modalities, arrays of the wrong rank, or modalities
        that disagree on the number of signals S.
    """
    if not signals:
      raise ValueError("Need at least one modality; got none.")
    self._ys = {}
    self._amplitudes = {}
    counts = {}
    for name, arrays in signals.items():
      y = np.array(arrays["y"], dtype=np.float32)  # A copy we own.
      if y.ndim != 3:
        raise ValueError(
          f"Modality {name!r}: 'y' has shape {y.shape}; expected [num_signals, num_points, d_out]."
        )
      counts[name] = y.shape[0]
      self._ys[name] = y
    if len(set(counts.values())) != 1:
      raise ValueError(
        f"The modalities disagree on the number of signals (leading axis): {counts}."
      )
    self._num_signals = next(iter(counts.values()))
    for name, arrays in signals.items():
      if arrays.get("amplitude") is None:
        amplitude = np.ones((self._num_signals,), np.float32)
      else:
        amplitude = np.array(arrays["amplitude"], dtype=np.float32)
      if amplitude.shape != (self._num_signals,):
        raise ValueError(
          f"Modality {name!r}: 'amplitude' has shape {amplitude.shape}; "
          f"expected [num_signals] = ({self._num_signals},)."
        )
      self._amplitudes[name] = amplitude
    # Read-only, so that the views returned by __getitem__ cannot alter the
    # source.
    for array in (*self._ys.values(), *self._amplitudes.values()):
      array.setflags(write=False)

  @property
  def modalities(self) -> tuple[str, ...]:
    """The names of the modalities returned, in order."""
    return tuple(self._ys)

  @property
  def d_outs(self) -> dict[str, int]:
    """`{name: d_out}`, the number of channels of each modality."""
    return {name: y.shape[-1] for name, y in self._ys.items()}

  @property
  def arrays(self) -> dict[str, dict[str, np.ndarray]]:
    """All signals: `{name: {"y": [S, N, d_out], "amplitude": [S]}}`."""
    return {name: {"y": self._ys[name], "amplitude": self._amplitudes[name]} for name in self._ys}

  def __len__(self) -> int:
    return self._num_signals

  def __getitem__(self, index: SupportsIndex) -> Signal:
    """Returns signal `index`.

    Args:
      index: in `[-len, len)`.

    Returns:
      `{name: {"y": float32 [N_m, d_out_m], "amplitude": float32 []}}`.
    """
    index = index.__index__()
    if not -self._num_signals <= index < self._num_signals:
      raise IndexError(f"Index {index} out of range for {self._num_signals} signals.")
    return {
      name: {"y": self._ys[name][index], "amplitude": self._amplitudes[name][index]}
      for name in self._ys
    }

  def __repr__(self) -> str:
    return f"{type(self).__name__}(modalities={list(self._ys)}, num_signals={self._num_signals})"


def read_chunks(source: Any, chunk_size: int = 1024) -> Iterator[list[Any]]:
  """Yields the elements of a random-access `source` in order, `chunk_size` at a time.

  A chunk is read in one call when the source has `__getitems__` (tfds sources do).
  """
  size = len(source)
  getitems = getattr(source, "__getitems__", None)
  for start in range(0, size, chunk_size):
    indices = list(range(start, min(start + chunk_size, size)))
    yield list(getitems(indices) if getitems is not None else [source[i] for i in indices])


def stack_signals(elements: Sequence[Any]) -> Any:
  """Stacks a list of nested dicts of arrays along a new leading axis.

  Floating leaves come out as float32 (a tfds source gives scalar features as
  Python floats, which numpy would stack as float64).
  """
  first = elements[0]
  if isinstance(first, Mapping):
    return {key: stack_signals([e[key] for e in elements]) for key in first}
  stacked = np.stack([np.asarray(e) for e in elements])
  if np.issubdtype(stacked.dtype, np.floating) and stacked.dtype != np.float32:
    stacked = stacked.astype(np.float32)
  return stacked


def to_memory(source: Source, chunk_size: int = 1024) -> ArraySource:
  """Reads a whole source into an `ArraySource`.

  Args:
    source: a source of `{name: {"y": [N_m, d_out_m], "amplitude": []}}`.
    chunk_size: elements read per call (batched when the source has
      `__getitems__`, as tfds sources do).

  Returns:
    The same signals, in the same order, in memory.
  """
  if len(source) == 0:
    raise ValueError("Cannot read an empty source into memory.")
  chunks = [stack_signals(elements) for elements in read_chunks(source, chunk_size)]
  first = chunks[0]
  return ArraySource(
    {
      name: {key: np.concatenate([chunk[name][key] for chunk in chunks]) for key in first[name]}
      for name in first
    }
  )
