"""A user's own signals as arrays on their grids: the `.npz` file format.

* `NpzSource`: a user's own arrays in an `.npz` file (write one with
  `save_npz`); `GridSource`: the same arrays passed from Python.

Format: one array per modality, keyed by the modality's name, of shape
`[num_signals, *grid, d_out]` (a 2-D array `[num_signals, num_points]` is a
1-D grid with `d_out = 1`), and optional amplitudes `"<name>_amplitude"` of
shape `[num_signals]`.
"""

from collections.abc import Mapping, Sequence
import math
import os

import numpy as np

from data_pipelines.names import parse_modalities
from data_pipelines.signals import ArraySource

_AMPLITUDE_SUFFIX = "_amplitude"


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
    for name in modalities:  # named with the data, which the own-data driver's errors quote
      if name not in available:
        raise ValueError(f"Modality {name!r} is not in {where}, which has {available}.")
    for name in available:
      if not isinstance(name, str) or not name.strip():
        raise ValueError(
          f"In {where}: the modality name {name!r} is blank; give every "
          "modality a name (e.g. 'img')."
        )
    modalities = parse_modalities(modalities, available)  # at least one, none twice
    grid_ndims = dict(grid_ndims or {})
    unknown = sorted(set(grid_ndims) - set(modalities))
    if unknown:
      raise ValueError(
        f"grid_ndims names {unknown}, which are not among the "
        f"selected modalities {list(modalities)}."
      )

    flat = {}
    self._grid_shapes = {}
    self._has_amplitude = {}
    for name in modalities:
      value = signals[name]
      if isinstance(value, Mapping):
        if "y" not in value:
          raise ValueError(f"Modality {name!r} lacks 'y'; keys: {list(value)}.")
        y, amplitude = value["y"], value.get("amplitude")
      else:
        y, amplitude = value, None
      y, self._grid_shapes[name] = _flatten_grid(name, np.asarray(y), grid_ndims.get(name))
      self._has_amplitude[name] = amplitude is not None
      if amplitude is not None:
        amp = np.asarray(amplitude)
        bad = (
          np.flatnonzero(~(np.isfinite(amp) & (amp > 0)))
          if amp.dtype.kind in "biuf"
          else np.arange(amp.size)
        )
        if bad.size:
          raise ValueError(
            f"In {where}: the amplitudes of modality {name!r} ({name}_amplitude) must be "
            "finite numbers > 0 (errors are divided "
            f"by amplitude^2); signals {bad[:5].tolist()} have "
            f"{amp.ravel()[bad[:5]].tolist()}."
          )
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
    axis always present (the layout `mia_jax.specs_from_arrays`
    reads without hints)."""
    return {
      name: y.reshape(len(self), *self._grid_shapes[name], y.shape[-1])
      for name, y in self._ys.items()
    }

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
    try:
      with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    except Exception as e:  # not an .npz, truncated, pickled
      raise ValueError(f"Could not read .npz file {path!r}: {e}") from None
    available = [key for key in arrays if not _is_amplitude_key(key, arrays)]
    if not available:
      raise ValueError(f"{path!r} holds no modality arrays; keys: {list(arrays)}.")
    selected = (
      (modalities,)
      if isinstance(modalities, str)
      else available
      if modalities is None
      else modalities
    )
    signals = {}
    for name in available:
      amplitude = arrays.get(name + _AMPLITUDE_SUFFIX)
      if name in selected and amplitude is not None and amplitude.shape != arrays[name].shape[:1]:
        raise ValueError(
          f"{name + _AMPLITUDE_SUFFIX!r} in {path!r} has shape "
          f"{amplitude.shape}; expected [num_signals] = "
          f"{arrays[name].shape[:1]}."
        )
      signals[name] = {"y": arrays[name], "amplitude": amplitude}
    self._path = path
    super().__init__(signals, modalities, grid_ndims, where=repr(path))

  @property
  def path(self) -> str:
    """The file read."""
    return self._path

  def __repr__(self) -> str:
    return f"NpzSource({self._path!r}, modalities={list(self.modalities)}, num_signals={len(self)})"


def _is_amplitude_key(key: str, arrays: Mapping[str, np.ndarray]) -> bool:
  return key.endswith(_AMPLITUDE_SUFFIX) and key[: -len(_AMPLITUDE_SUFFIX)] in arrays


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
        "([num_signals, *grid] or [num_signals, *grid, d_out])."
      )
    has_channels = array.ndim == grid_ndim + 2
  if array.ndim < 2 or grid_ndim < 1:
    raise ValueError(
      f"Modality {name!r} has shape {array.shape}; expected "
      "[num_signals, *grid, d_out] or [num_signals, num_points]."
    )
  if not (
    np.issubdtype(array.dtype, np.floating)
    or np.issubdtype(array.dtype, np.integer)
    or array.dtype == np.bool_
  ):
    raise ValueError(f"Modality {name!r} has non-numeric dtype {array.dtype}.")
  grid = tuple(array.shape[1 : 1 + grid_ndim])
  d_out = array.shape[-1] if has_channels else 1
  y = np.asarray(array, dtype=np.float32).reshape(array.shape[0], math.prod(grid), d_out)
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
    if name.endswith(_AMPLITUDE_SUFFIX) and name[: -len(_AMPLITUDE_SUFFIX)] in (arrays):
      raise ValueError(
        f"Modality name {name!r} would be read back as the amplitude of "
        f"{name[: -len(_AMPLITUDE_SUFFIX)]!r}; rename it."
      )
  with open(path, "wb") as f:
    np.savez(f, **arrays)
