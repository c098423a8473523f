"""Random-access signal sources and grain loaders that batch them.

A *source* is a random-access sequence of signals: `len(source)` and
`source[i] -> {name: {"y": float32 [N_m, d_out_m], "amplitude": float32 []}}`,
one entry per modality (`N_m` = number of grid points, the grid flattened
row-major). Provided:

* `load_synthetic`: the tfds `synthetic_functions` dataset (array_record,
  read with `tfds.data_source` machinery; no TensorFlow), built on first use;
  optionally read into memory.
* `NpzSource`: a user's own arrays in an `.npz` file (write one with
  `save_npz`); `GridSource`: the same arrays passed from Python.
* `ArraySource`: signals already in memory (`to_memory` reads any source
  into one); `ModalitySubset`: any source restricted to some modalities.

`make_loader` turns a source into a deterministic iterator of numpy batches
`{name: {"y": [B, N_m, d_out_m], "amplitude": [B]}}`, and can resume a
training run at any step (see its docstring).
"""

from collections.abc import Mapping, Sequence
import math
import os
from typing import Any, Protocol, SupportsIndex

from absl import flags
import grain
import numpy as np

from data_pipelines.synthetic import generate
from data_pipelines.synthetic import synthetic

Signal = dict[str, dict[str, np.ndarray]]

_AMPLITUDE_SUFFIX = "_amplitude"


class Source(Protocol):
  """A random-access sequence of signals."""

  def __len__(self) -> int:
    ...

  def __getitem__(self, index: SupportsIndex) -> Signal:
    ...


def _as_signal(element: Mapping[str, Mapping[str, Any]],
               modalities: Sequence[str]) -> Signal:
  """Keeps `modalities` of an element and casts its leaves to float32."""
  return {
      name: {
          "y": np.asarray(element[name]["y"], dtype=np.float32),
          "amplitude": np.asarray(element[name]["amplitude"],
                                  dtype=np.float32),
      } for name in modalities
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
    return (f"ModalitySubset({self._source!r}, "
            f"modalities={list(self._modalities)})")


def load_synthetic(
    data_dir: str | os.PathLike[str] | None,
    split: str,
    config: str = "default",
    modalities: Sequence[str] | None = None,
    in_memory: bool = False,
) -> "ModalitySubset | ArraySource":
  """Returns a split of the synthetic functions dataset, building it if needed.

  The first call for a `(data_dir, config)` generates the dataset (well under
  a second for the default size) into
  `data_dir/synthetic_functions/<config>/1.0.0`; later calls only open it.

  Args:
    data_dir: tfds data directory (None: the tfds default,
      `~/tensorflow_datasets`).
    split: "train" or "test", or any tfds split expression ("train[:10]").
    config: builder config, "default" (1000 train / 200 test signals) or
      "small" (64 / 32).
    modalities: names to return, a subset of `generate.MODALITIES`, in the
      returned order; None means all four.
    in_memory: read the whole split into an `ArraySource` (about 3 MB for
      the default train split) instead of decoding records on every access;
      reads are then much faster.

  Returns:
    A source of `{name: {"y": float32 [200, 1], "amplitude": float32 []}}`.
    Signal i of the "train" ("test") split is signal i of
    `generate_signals(num_train, seed=0)` (`num_test`, seed=1).

  Raises:
    ValueError: an unknown config or modality name.
  """
  config_names = [c.name for c in synthetic.SyntheticFunctions.BUILDER_CONFIGS]
  if config not in config_names:
    raise ValueError(
        f"Unknown synthetic_functions config {config!r}; allowed: "
        f"{config_names}.")
  modalities = generate.validate_modalities(
      generate.MODALITIES if modalities is None else modalities)
  builder = synthetic.SyntheticFunctions(
      config=config, data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  source = ModalitySubset(builder.as_data_source(split=split), modalities)
  return to_memory(source) if in_memory else source


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
            f"Modality {name!r}: 'y' has shape {y.shape}; expected "
            "[num_signals, num_points, d_out].")
      counts[name] = y.shape[0]
      self._ys[name] = y
    if len(set(counts.values())) != 1:
      raise ValueError(
          "The modalities disagree on the number of signals (leading axis): "
          f"{counts}.")
    self._num_signals = next(iter(counts.values()))
    for name, arrays in signals.items():
      if arrays.get("amplitude") is None:
        amplitude = np.ones((self._num_signals,), np.float32)
      else:
        amplitude = np.array(arrays["amplitude"], dtype=np.float32)
      if amplitude.shape != (self._num_signals,):
        raise ValueError(
            f"Modality {name!r}: 'amplitude' has shape {amplitude.shape}; "
            f"expected [num_signals] = ({self._num_signals},).")
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
    return {name: {"y": self._ys[name], "amplitude": self._amplitudes[name]}
            for name in self._ys}

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
      raise IndexError(
          f"Index {index} out of range for {self._num_signals} signals.")
    return {name: {"y": self._ys[name][index],
                   "amplitude": self._amplitudes[name][index]}
            for name in self._ys}

  def __repr__(self) -> str:
    return (f"{type(self).__name__}(modalities={list(self._ys)}, "
            f"num_signals={self._num_signals})")


def to_memory(source: Source, chunk_size: int = 1024) -> ArraySource:
  """Reads a whole source into an `ArraySource`.

  Args:
    source: a source of `{name: {"y": [N_m, d_out_m], "amplitude": []}}`.
    chunk_size: elements read per call (batched when the source has
      `__getitems__`, as tfds sources do).

  Returns:
    The same signals, in the same order, in memory.
  """
  size = len(source)
  if size == 0:
    raise ValueError("Cannot read an empty source into memory.")
  getitems = getattr(source, "__getitems__", None)
  chunks = []
  for start in range(0, size, chunk_size):
    indices = list(range(start, min(start + chunk_size, size)))
    elements = (getitems(indices) if getitems is not None
                else [source[i] for i in indices])
    chunks.append(_stack(list(elements)))
  first = chunks[0]
  return ArraySource({
      name: {key: np.concatenate([chunk[name][key] for chunk in chunks])
             for key in first[name]}
      for name in first
  })


class GridSource(ArraySource):
  """Signals given as arrays on their grids, in the `.npz` format's conventions.

  Each modality's values are `[num_signals, *grid, d_out]`; a 2-D array
  `[num_signals, num_points]` means a 1-D grid with `d_out = 1`. An array
  whose grid has more than one axis and a single channel, such as grayscale
  images `[n, 28, 28]`, needs either an explicit channel axis
  (`[n, 28, 28, 1]`) or `grid_ndims={"name": 2}`. An optional amplitude
  `[num_signals]` per modality gives the error normaliser a_m (default 1.0).

  `source[i]` returns `{name: {"y": float32 [prod(grid), d_out],
  "amplitude": float32 []}}`, the grid flattened row-major; `grid_shapes`
  and `grid_arrays` give the grids back.
  """

  def __init__(
      self,
      signals: Mapping[str, np.ndarray | Mapping[str, np.ndarray]],
      modalities: Sequence[str] | None = None,
      grid_ndims: Mapping[str, int] | None = None,
      *,
      where: str = "the arrays",
  ):
    """Stores the arrays.

    Args:
      signals: `{name: y}` or `{name: {"y": y, "amplitude": a}}` (the input of
        `save_npz`), `y` as above and `a` of shape `[num_signals]` or None.
      modalities: names to return, in this order; None means every modality
        of `signals`, in their order.
      grid_ndims: optional number of grid axes per modality; lets
        `[n, *grid]` arrays without a channel axis mean `d_out = 1`.
      where: how error messages name the data (e.g. a file's path).

    Raises:
      ValueError: no modalities, a requested modality that `signals` lacks,
        modalities that disagree on the number of signals, or an array of a
        shape or dtype that the format does not allow.
    """
    if not isinstance(signals, Mapping) or not signals:
      raise ValueError(f"No modality arrays in {where}.")
    available = list(signals)
    if modalities is None:
      modalities = available
    elif isinstance(modalities, str):
      modalities = (modalities,)
    modalities = tuple(modalities)
    if not modalities:
      raise ValueError(f"Need at least one modality; {where}: {available}.")
    for name in modalities:
      if name not in available:
        raise ValueError(
            f"Modality {name!r} is not in {where}, which has {available}.")
    if len(set(modalities)) != len(modalities):
      raise ValueError(f"Modalities repeat a name: {list(modalities)}.")
    grid_ndims = dict(grid_ndims or {})
    unknown = sorted(set(grid_ndims) - set(modalities))
    if unknown:
      raise ValueError(f"grid_ndims names {unknown}, which are not among the "
                       f"selected modalities {list(modalities)}.")

    flat = {}
    self._grid_shapes = {}
    self._has_amplitude = {}
    for name in modalities:
      value = signals[name]
      if isinstance(value, Mapping):
        if "y" not in value:
          raise ValueError(
              f"Modality {name!r} lacks 'y'; keys: {list(value)}.")
        y, amplitude = value["y"], value.get("amplitude")
      else:
        y, amplitude = value, None
      y, self._grid_shapes[name] = _flatten_grid(
          name, np.asarray(y), grid_ndims.get(name))
      self._has_amplitude[name] = amplitude is not None
      flat[name] = {"y": y, "amplitude": amplitude}
    try:
      super().__init__(flat)
    except ValueError as error:
      raise ValueError(f"In {where}: {error}") from None

  @property
  def grid_shapes(self) -> dict[str, tuple[int, ...]]:
    """`{name: grid shape}` before flattening, e.g. `(32, 32)` or `(200,)`."""
    return dict(self._grid_shapes)

  @property
  def grid_arrays(self) -> dict[str, np.ndarray]:
    """`{name: float32 [num_signals, *grid, d_out]}`: read-only views, channel
    axis always present (the layout `mia_jax.modalities.specs_from_arrays`
    reads without hints)."""
    return {name: y.reshape(len(self), *self._grid_shapes[name], y.shape[-1])
            for name, y in self._ys.items()}

  @property
  def has_amplitude(self) -> dict[str, bool]:
    """`{name: whether the data gave its amplitude}` (else it is 1.0)."""
    return dict(self._has_amplitude)


class NpzSource(GridSource):
  """Signals stored as numpy arrays in an `.npz` file.

  File format: one array per modality, keyed by the modality's name, of shape
  `[num_signals, *grid, d_out]`; a 2-D array `[num_signals, num_points]`
  means a 1-D grid with `d_out = 1`. Optional arrays `"<name>_amplitude"` of
  shape `[num_signals]` give the error normaliser a_m (default 1.0). An array
  whose grid has more than one axis and a single channel, such as grayscale
  images `[n, 28, 28]`, needs either an explicit channel axis
  (`[n, 28, 28, 1]`) or `grid_ndims={"name": 2}` (see `GridSource`).

  The whole file is read into memory when the source is created;
  `source[i]` returns `{name: {"y": float32 [prod(grid), d_out],
  "amplitude": float32 []}}`, the grid flattened row-major.
  """

  def __init__(
      self,
      path: str | os.PathLike[str],
      modalities: Sequence[str] | None = None,
      grid_ndims: Mapping[str, int] | None = None,
  ):
    """Reads the file.

    Args:
      path: the `.npz` file.
      modalities: names to return, in this order; None means every modality
        in the file, in file order.
      grid_ndims: optional number of grid axes per modality; lets
        `[n, *grid]` arrays without a channel axis mean `d_out = 1`.

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: a requested modality is not in the file, the arrays of the
        modalities disagree on the number of signals, or an array has a shape
        that the format does not allow.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"No such .npz file: {path!r}.")
    with np.load(path, allow_pickle=False) as npz:
      arrays = {key: npz[key] for key in npz.files}
    available = [key for key in arrays if not _is_amplitude_key(key, arrays)]
    if not available:
      raise ValueError(f"{path!r} holds no modality arrays; keys: "
                       f"{list(arrays)}.")
    selected = ((modalities,) if isinstance(modalities, str)
                else available if modalities is None else modalities)
    signals = {}
    for name in available:
      amplitude = arrays.get(name + _AMPLITUDE_SUFFIX)
      if (name in selected and amplitude is not None
          and amplitude.shape != arrays[name].shape[:1]):
        raise ValueError(
            f"{name + _AMPLITUDE_SUFFIX!r} in {path!r} has shape "
            f"{amplitude.shape}; expected [num_signals] = "
            f"{arrays[name].shape[:1]}.")
      signals[name] = {"y": arrays[name], "amplitude": amplitude}
    self._path = path
    super().__init__(signals, modalities, grid_ndims, where=repr(path))

  @property
  def path(self) -> str:
    """The file read."""
    return self._path

  def __repr__(self) -> str:
    return (f"NpzSource({self._path!r}, modalities={list(self.modalities)}, "
            f"num_signals={len(self)})")


def _is_amplitude_key(key: str, arrays: Mapping[str, np.ndarray]) -> bool:
  return (key.endswith(_AMPLITUDE_SUFFIX)
          and key[:-len(_AMPLITUDE_SUFFIX)] in arrays)


def _flatten_grid(
    name: str, array: np.ndarray, grid_ndim: int | None
) -> tuple[np.ndarray, tuple[int, ...]]:
  """Reshapes `[n, *grid(, d_out)]` to float32 `[n, prod(grid), d_out]`."""
  if grid_ndim is not None and grid_ndim < 1:
    raise ValueError(f"grid_ndims[{name!r}] must be >= 1, got {grid_ndim}.")
  if grid_ndim is None:
    has_channels = array.ndim >= 3
    grid_ndim = array.ndim - 1 - has_channels
  else:
    if array.ndim not in (grid_ndim + 1, grid_ndim + 2):
      raise ValueError(
          f"Modality {name!r} has shape {array.shape}; with grid_ndims "
          f"{grid_ndim} expected {grid_ndim + 1} or {grid_ndim + 2} axes "
          "([num_signals, *grid] or [num_signals, *grid, d_out]).")
    has_channels = array.ndim == grid_ndim + 2
  if array.ndim < 2 or grid_ndim < 1:
    raise ValueError(
        f"Modality {name!r} has shape {array.shape}; expected "
        "[num_signals, *grid, d_out] or [num_signals, num_points].")
  if not (np.issubdtype(array.dtype, np.floating)
          or np.issubdtype(array.dtype, np.integer)
          or array.dtype == np.bool_):
    raise ValueError(f"Modality {name!r} has non-numeric dtype {array.dtype}.")
  grid = tuple(array.shape[1:1 + grid_ndim])
  d_out = array.shape[-1] if has_channels else 1
  y = np.asarray(array, dtype=np.float32).reshape(
      array.shape[0], math.prod(grid), d_out)
  return y, grid


def save_npz(
    path: str | os.PathLike[str],
    signals: Mapping[str, np.ndarray | Mapping[str, np.ndarray]],
) -> None:
  """Writes signals in the format `NpzSource` reads.

  Args:
    path: the file to write (written as given; no ".npz" is appended).
    signals: `{name: y}` or `{name: {"y": y, "amplitude": a}}` (the output of
      `generate_signals` fits) with `y` of shape `[num_signals, *grid, d_out]`
      or `[num_signals, num_points]` and `a` of shape `[num_signals]`.

  Raises:
    ValueError: no signals, a modality name that would read back as an
      amplitude key, or a mapping without "y".
  """
  if not signals:
    raise ValueError("No modalities to save.")
  arrays = {}
  for name, value in signals.items():
    if isinstance(value, Mapping):
      if "y" not in value:
        raise ValueError(f"Modality {name!r} lacks 'y'; keys: {list(value)}.")
      arrays[name] = np.asarray(value["y"])
      if value.get("amplitude") is not None:
        arrays[name + _AMPLITUDE_SUFFIX] = np.asarray(value["amplitude"])
    else:
      arrays[name] = np.asarray(value)
  for name in signals:
    if name.endswith(_AMPLITUDE_SUFFIX) and name[:-len(_AMPLITUDE_SUFFIX)] in (
        arrays):
      raise ValueError(
          f"Modality name {name!r} would be read back as the amplitude of "
          f"{name[:-len(_AMPLITUDE_SUFFIX)]!r}; rename it.")
  with open(path, "wb") as f:
    np.savez(f, **arrays)


def dataset_size(source: Source) -> int:
  """Returns the number of signals in `source`."""
  return len(source)


def num_batches(num_signals: int, batch_size: int,
                drop_remainder: bool = True) -> int:
  """Returns the number of batches in one epoch of `num_signals` signals."""
  if drop_remainder:
    return num_signals // batch_size
  return math.ceil(num_signals / batch_size)


def _stack(elements: Sequence[Any]) -> Any:
  """Stacks a list of nested dicts of arrays along a new leading axis.

  Floating leaves come out as float32 (a tfds source gives scalar features as
  Python floats, which numpy would stack as float64).
  """
  first = elements[0]
  if isinstance(first, Mapping):
    return {key: _stack([e[key] for e in elements]) for key in first}
  stacked = np.stack([np.asarray(e) for e in elements])
  if np.issubdtype(stacked.dtype, np.floating) and stacked.dtype != np.float32:
    stacked = stacked.astype(np.float32)
  return stacked


def make_loader(
    source: Source,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int | None = None,
    num_epochs: int | None = None,
    drop_remainder: bool = True,
    skip_batches: int = 0,
    worker_count: int = 0,
    num_threads: int = 1,
    prefetch_buffer_size: int = 8,
) -> grain.IterDataset:
  """Returns a deterministic iterator of batches of `source`.

  The pipeline is `shuffle -> batch -> repeat`: each epoch is a fresh
  permutation (the seed folded with the epoch number), cut into batches that
  never span two epochs. The b-th batch depends only on `(source, batch_size,
  shuffle, seed, drop_remainder, b)`, so

  * the same arguments give the same batches, whatever the number of threads
    or workers, and
  * a training run resumed after `step` batches continues exactly where it
    stopped when it passes `skip_batches=step`: skipping is an index offset
    (grain `MapDataset` slicing), nothing is read to get there.

  For evaluation use `shuffle=False, num_epochs=1, drop_remainder=False`:
  every signal exactly once, in order; the last batch may be smaller.

  Args:
    source: random-access signals (`len`, `source[i]`).
    batch_size: signals per batch B.
    shuffle: whether to permute the signals (each epoch differently).
    seed: shuffle seed, in [0, 2**32); required when `shuffle`.
    num_epochs: passes over the data; None repeats forever.
    drop_remainder: drop each epoch's last batch if it has fewer than B
      signals (keeps shapes static under `jit`).
    skip_batches: number of batches to skip at the start (the training step
      to resume from).
    worker_count: worker processes for reading and batching; 0 reads in this
      process (with `num_threads` threads). Outside `absl.app.run`, a value
      > 0 marks the absl flags as parsed (grain reads one of them).
    num_threads: reader threads per process; 0 reads on demand in the
      calling thread. One background thread overlaps reading with the
      training step; more rarely help, since decoding holds the GIL.
    prefetch_buffer_size: batches read ahead per process.

  Returns:
    A grain `IterDataset` yielding `{name: {"y": float32 [B, N_m, d_out_m],
    "amplitude": float32 [B]}}` (the structure of `source`'s elements). Its
    iterators support grain's `get_state`/`set_state` checkpointing too.

  Raises:
    ValueError: a bad batch size, seed, epoch count or skip, or
      `drop_remainder` with fewer signals than one batch.
  """
  size = len(source)
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  if shuffle and seed is None:
    raise ValueError("A shuffled loader needs a seed; got seed=None.")
  if seed is not None and not 0 <= seed < 2**32:
    raise ValueError(f"seed must be in [0, 2**32), got {seed}.")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}.")
  if skip_batches < 0:
    raise ValueError(f"skip_batches must be >= 0, got {skip_batches}.")
  if worker_count < 0:
    raise ValueError(f"worker_count must be >= 0, got {worker_count}.")
  if num_batches(size, batch_size, drop_remainder) == 0:
    raise ValueError(
        f"No batch of {batch_size} can be made from {size} signals "
        f"(drop_remainder={drop_remainder}).")

  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder, batch_fn=_stack)
  if num_epochs != 1:
    ds = ds.repeat(num_epochs)
  if skip_batches:
    ds = ds.slice(slice(skip_batches, None))
  loader = ds.to_iter_dataset(grain.ReadOptions(
      num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size))
  if worker_count > 0:
    if not flags.FLAGS.is_parsed():
      # grain reads an absl flag when it starts worker processes and fails
      # with UnparsedFlagAccessError outside `absl.app.run` (tests,
      # notebooks); marking the flags parsed makes it see their defaults.
      flags.FLAGS.mark_as_parsed()
    loader = loader.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=worker_count))
  return loader
