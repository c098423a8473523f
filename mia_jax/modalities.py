"""Modalities: the single place where a modality's facts live.

A modality is a function sampled on a fixed regular grid. `ModalitySpec` holds everything the rest
of the library needs to know about it (input/output dimensions, grid, output bias, how errors are
normalised, the support-ratio range and the evaluation bins). Nothing else in the library branches
on a modality's name.

Modalities whose learners have the same *signature* (same input/output dimensions, number of grid
points, support size and encoder) are stacked on a leading axis and run under `jax.vmap`; such a
stack is a `ModalityGroup`. Modalities with different signatures (an image and a waveform) form
separate groups that are adapted in the same step.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import math
from typing import Any, Callable, Hashable, Sequence

import numpy as np

ERROR_NORMALISERS = ("none", "amplitude")
RESERVED_NAMES = ("avg",)  # the mean over modalities in the results' keys


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
  """Facts about one modality.

  Attributes:
    name: unique name, e.g. "sine" or "rgb".
    d_in: coordinate dimension (1 for a waveform, 2 for an image).
    grid_shape: shape of the regular grid, e.g. (200,) or (32, 32); `len(grid_shape) == d_in`.
    d_out: number of output channels.
    output_bias: constant added to the INR output (0.5 for images in [0, 1]).
    error_normaliser: "none", or "amplitude" (errors divided by the signal's amplitude squared,
      which the data provides per signal; used by the synthetic functions).
    ratio_range: (Rmin, Rmax) of the support ratio.
    ratio_bins: evaluation bins of the support ratio, ((lo, hi), ...).
    ratio_beta: (Ma, Mb) of the Beta distribution the ratio is drawn from.
    fourier_sigma: std of the random Fourier features; 0 means a plain linear encoder. None means
      "use the model config's default".
  """

  name: str
  d_in: int
  grid_shape: tuple[int, ...]
  d_out: int
  output_bias: float = 0.0
  error_normaliser: str = "none"
  ratio_range: tuple[float, float] = (0.01, 0.1)
  ratio_bins: tuple[tuple[float, float], ...] = ((0.01, 0.02), (0.02, 0.05), (0.05, 0.1))
  ratio_beta: tuple[float, float] = (1.0, 1.0)
  fourier_sigma: float | None = None

  def __post_init__(self):
    if not isinstance(self.name, str) or not self.name.strip() or "/" in self.name:
      raise ValueError(f"Modality name {self.name!r} must be a non-empty string and contain "
                       "no '/'.")
    if self.name in RESERVED_NAMES:
      raise ValueError(f"Modality name {self.name!r} is reserved (the results' "
                       f"{'/'.join(RESERVED_NAMES)} keys); rename the modality.")
    object.__setattr__(self, "grid_shape", tuple(int(s) for s in self.grid_shape))
    if len(self.grid_shape) != self.d_in:
      raise ValueError(
          f"Modality {self.name!r}: grid_shape {self.grid_shape} has {len(self.grid_shape)} axes "
          f"but d_in={self.d_in}.")
    if self.error_normaliser not in ERROR_NORMALISERS:
      raise ValueError(
          f"Modality {self.name!r}: unknown error_normaliser {self.error_normaliser!r}; "
          f"allowed: {', '.join(ERROR_NORMALISERS)}.")
    lo, hi = self.ratio_range
    if not 0.0 <= lo <= hi <= 1.0 or hi <= 0.0:
      raise ValueError(
          f"Modality {self.name!r}: ratio_range {self.ratio_range} must satisfy "
          "0 <= Rmin <= Rmax <= 1 and Rmax > 0.")

  @property
  def num_points(self) -> int:
    """Number of grid points N."""
    return int(math.prod(self.grid_shape))

  @property
  def max_support(self) -> int:
    """Static size of the support gather, floor(Rmax * N) (at least 1)."""
    return max(1, int(math.floor(self.ratio_range[1] * self.num_points + 1e-9)))

  def coordinates(self, grid_shape: Sequence[int] | None = None) -> np.ndarray:
    """Grid coordinates in [-1, 1] per axis, row-major. Returns float32 `[N, d_in]`.

    `grid_shape`: another grid over the same domain (default: the modality's own), e.g.
    `upsampled_shape(4)` to query the INR between the training grid's points.
    """
    shape = self.grid_shape if grid_shape is None else tuple(int(s) for s in grid_shape)
    if len(shape) != self.d_in or any(s < 1 for s in shape):
      raise ValueError(f"Modality {self.name!r}: grid_shape {shape} must have d_in={self.d_in} "
                       "positive sizes.")
    axes = [np.linspace(-1.0, 1.0, s, dtype=np.float32) for s in shape]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1).astype(np.float32)

  def upsampled_shape(self, factor: int) -> tuple[int, ...]:
    """The grid with `factor - 1` points between neighbours: `(n - 1) * factor + 1` per axis.

    It holds the training grid's points (every `factor`-th point per axis), so a prediction on
    it contains the on-grid prediction.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
      raise ValueError(f"Upsampling factor must be an integer >= 1, got {factor!r}.")
    return tuple((s - 1) * int(factor) + 1 for s in self.grid_shape)


@dataclasses.dataclass(frozen=True)
class ModalityGroup:
  """Modalities with the same learner signature, stacked on a leading axis."""

  name: str
  specs: tuple[ModalitySpec, ...]

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(s.name for s in self.specs)

  @property
  def size(self) -> int:
    return len(self.specs)

  @property
  def spec(self) -> ModalitySpec:
    """The first member: every member shares its signature."""
    return self.specs[0]

  def output_bias(self) -> np.ndarray:
    """Per-member output bias, float32 [G]."""
    return np.array([s.output_bias for s in self.specs], np.float32)


def signature(spec: ModalitySpec, default_sigma: float = 0.0) -> tuple:
  """The facts that must agree for two modalities to share a stacked learner."""
  sigma = default_sigma if spec.fourier_sigma is None else spec.fourier_sigma
  return (spec.d_in, spec.grid_shape, spec.d_out, spec.max_support, float(sigma))


def group_modalities(specs: Sequence[ModalitySpec], default_sigma: float = 0.0,
                     key: Callable[[ModalitySpec], Hashable] | None = None
                     ) -> tuple[ModalityGroup, ...]:
  """Groups modalities by signature, keeping the order of first appearance.

  Args:
    specs: the configured modalities (names must be unique).
    default_sigma: Fourier sigma for specs that leave it unset.
    key: what must agree for two modalities to be stacked; default `signature(spec,
      default_sigma)`.

  Returns:
    Groups named "g0", "g1", ... in order of first appearance (internal names: parameters,
    checkpoints and results are keyed by modality name).
  """
  names = [s.name for s in specs]
  if len(set(names)) != len(names):
    raise ValueError(f"Modality names must be unique, got {names}.")
  if not specs:
    raise ValueError("At least one modality is required.")
  key = key or (lambda s: signature(s, default_sigma))
  by_sig: dict[Hashable, list[ModalitySpec]] = {}
  for s in specs:
    by_sig.setdefault(key(s), []).append(s)
  return tuple(ModalityGroup(f"g{i}", tuple(members)) for i, members in enumerate(by_sig.values()))


def name_hash(name: str) -> int:
  """A stable 31-bit hash of a modality name (Python's hash() is salted per process).

  Randomness tied to a modality (its supports, its learner's initialisation) is keyed by this, so
  a modality draws the same numbers whichever other modalities are configured.
  """
  h = 0
  for ch in name.encode():
    h = (h * 131 + ch) % (2**31 - 1)
  return h


def parse_modalities(arg: str | Sequence[str], known: Sequence[str],
                     what: str = "") -> tuple[str, ...]:
  """Parses "sine+tanh" (or a sequence) into names, checking each against `known`.

  The one check of modality names against a known list (benchmarks, datasets, configs). `what`
  names the list in errors ("celeba": "Unknown celeba modality 'x'; allowed: ...").
  """
  label = f"{what} modality" if what else "modality"
  names = tuple(n for n in (arg.split("+") if isinstance(arg, str) else arg) if n)
  if not names:
    raise ValueError(f"No {label} given; allowed: {'+'.join(known)} or a subset.")
  for n in names:
    if n not in known:
      raise ValueError(f"Unknown {label} {n!r}; allowed: {', '.join(known)}.")
  if len(set(names)) != len(names):
    raise ValueError(f"Modality listed twice in {'+'.join(names)!r}.")
  return names


# ------------------------------------------------------------------------------------------------
# A user's own arrays: specs read from the data, no benchmark to register.

# The defaults of `specs_from_arrays` for what arrays cannot tell (see its docstring).
ARRAYS_RATIO_RANGE = (0.001, 1.0)  # the paper's range for its image benchmarks
ARRAYS_NUM_RATIO_BINS = 4
ARRAYS_OUTPUT_BIAS_DECIMALS = 2
ARRAYS_ERROR_NORMALISER = "none"
# The largest magnitude `array_layout` accepts: data this far outside [-1, 1] is unscaled, and
# at about 1e19 its squared errors overflow float32.
MAX_ABS_VALUE = 1e6


def array_layout(name: str, array: np.ndarray) -> tuple[tuple[int, ...], int]:
  """The grid shape and d_out of a modality's values `[num_signals, *grid, d_out]`.

  A 2-D array `[num_signals, num_points]` is a 1-D signal with one channel; from three axes on,
  the last axis is the channels (a grayscale image is `[n, H, W, 1]`).

  Raises:
    ValueError naming the modality and the shape: not numbers, fewer than two axes, an axis of
    length 0, NaN/infinite values, or values beyond `MAX_ABS_VALUE` in magnitude.
  """
  array = np.asarray(array)
  what = f"Modality {name!r}: array of shape {array.shape}"
  if array.dtype.kind not in "biuf":
    raise ValueError(f"{what} has dtype {array.dtype}; allowed: bool, integer or float numbers.")
  if array.ndim < 2:
    raise ValueError(
        f"{what}: expected [num_signals, *grid, d_out] (e.g. [n, H, W, 3] images) or "
        "[num_signals, num_points] (1-D signals with one channel).")
  if array.size == 0:
    raise ValueError(f"{what} is empty; every axis (signals, grid, channels) needs length >= 1.")
  finite = np.isfinite(array)
  if not finite.all():
    raise ValueError(f"{what} holds {int(array.size - finite.sum())} NaN or infinite values; "
                     "all values must be finite.")
  peak = float(np.max(np.abs(array.astype(np.float64))))
  if peak > MAX_ABS_VALUE:
    raise ValueError(f"{what} holds values up to {peak:.3g} in magnitude, beyond "
                     f"{MAX_ABS_VALUE:g}; scale the data to about [-1, 1] or [0, 1] (the "
                     "learning rates assume that range, and larger values overflow float32 "
                     "squared errors or diverge).")
  grid = (array.shape[1],) if array.ndim == 2 else tuple(array.shape[1:-1])
  if min(grid) < 2:
    raise ValueError(f"{what}: its grid {grid} has an axis of length {min(grid)}; every grid "
                     "axis needs at least 2 points (a coordinate axis from -1 to 1). A "
                     "modality without a channel axis may need grid_ndims (e.g. "
                     "--config.data.grid_ndims=NAME=2).")
  return grid, 1 if array.ndim == 2 else int(array.shape[-1])


def default_ratio_bins(ratio_range: tuple[float, float],
                       num_bins: int = ARRAYS_NUM_RATIO_BINS) -> tuple[tuple[float, float], ...]:
  """Evaluation bins for a support-ratio range: the `num_bins` equal parts of [0, Rmax] that reach
  above Rmin (the last one is always kept). (0.001, 1) gives the image benchmarks' quarters."""
  lo, hi = (float(r) for r in ratio_range)
  edges = [round(hi * i / num_bins, 9) for i in range(num_bins + 1)]
  return tuple((a, b) for a, b in zip(edges[:-1], edges[1:]) if b > lo or b == edges[-1])


def specs_from_arrays(
    arrays: Mapping[str, np.ndarray],
    *,
    ratio_range: tuple[float, float] | Mapping[str, Any] | None = None,
    ratio_bins: Sequence[tuple[float, float]] | Mapping[str, Any] | None = None,
    output_bias: float | Mapping[str, Any] | None = None,
    error_normaliser: str | Mapping[str, Any] | None = None,
    fourier_sigma: float | Mapping[str, Any] | None = None,
) -> tuple[ModalitySpec, ...]:
  """The modality specs of a user's own data, read from its arrays (no benchmark to register).

  Each array holds one modality's training signals, `[num_signals, *grid, d_out]` (a 2-D
  `[num_signals, num_points]` array is a 1-D signal with d_out 1; see `array_layout`). The grid
  shape comes from the array's shape, d_out from its last axis, and the coordinates are a regular
  grid on [-1, 1] per axis (`ModalitySpec.coordinates`). What arrays cannot tell is a keyword that
  takes one value for every modality or a `{name: value}` mapping (names left out, and None
  values, get the default):

  * ratio_range: (Rmin, Rmax) of the support ratio. Default (0.001, 1.0), the paper's range for
    its image benchmarks: supports from a single point to the whole grid, so training and the
    ratio bins cover both sparse and dense observation.
  * ratio_bins: evaluation bins ((lo, hi), ...). Default `default_ratio_bins(ratio_range)`, the
    quarters of [0, Rmax] (the image benchmarks' bins for the default range).
  * output_bias: constant added to the INR's output. Default: the mean of the modality's array
    rounded to 2 decimals, the best constant prediction (least squares), so the INR fits the
    deviations from it; about 0.5 for images in [0, 1] (the benchmarks' bias), about 0 for
    zero-centred signals. Pass the training arrays, so the test split does not set it.
  * error_normaliser: "none" (default) or "amplitude" (errors divided by each signal's amplitude
    squared, which the data must then provide).
  * fourier_sigma: std of the random Fourier features (0 = a linear encoder). Default None: the
    model config's `ff_sigma`.

  Raises:
    ValueError: no arrays, a bad array (the modality, its shape and what is allowed), arrays that
      disagree on the number of signals, a mapping naming an unknown modality (listing the known
      ones), or a bad value.
  """
  if not isinstance(arrays, Mapping) or not arrays:
    got = "an empty mapping" if isinstance(arrays, Mapping) else type(arrays).__name__
    raise ValueError(f"specs_from_arrays needs a non-empty {{name: array}} mapping, got {got}.")
  names = list(arrays)
  layouts, counts = {}, {}
  for name in names:
    layouts[name] = array_layout(name, arrays[name])
    counts[name] = np.shape(arrays[name])[0]
  if len(set(counts.values())) != 1:
    raise ValueError(f"The arrays disagree on the number of signals (leading axis): {counts}.")

  def per_modality(keyword: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
      return {name: value for name in names}
    unknown = [n for n in value if n not in arrays]
    if unknown:
      raise ValueError(f"{keyword} names {unknown}, which are not among the arrays' modalities; "
                       f"known: {', '.join(names)}.")
    return {name: value.get(name) for name in names}

  ranges = per_modality("ratio_range", ratio_range)
  bins = per_modality("ratio_bins", ratio_bins)
  biases = per_modality("output_bias", output_bias)
  normalisers = per_modality("error_normaliser", error_normaliser)
  sigmas = per_modality("fourier_sigma", fourier_sigma)
  specs = []
  for name in names:
    grid, d_out = layouts[name]
    r = ARRAYS_RATIO_RANGE if ranges[name] is None else _number_pair(name, "ratio_range",
                                                                     ranges[name])
    b = default_ratio_bins(r) if bins[name] is None else _ratio_bins(name, bins[name])
    if biases[name] is None:
      bias = round(float(np.mean(arrays[name], dtype=np.float64)),
                   ARRAYS_OUTPUT_BIAS_DECIMALS) + 0.0  # + 0.0: no -0.0
    else:
      bias = _number(name, "output_bias", biases[name])
    sigma = None if sigmas[name] is None else _number(name, "fourier_sigma", sigmas[name])
    if sigma is not None and sigma < 0:
      raise ValueError(f"Modality {name!r}: fourier_sigma must be >= 0, got {sigma}.")
    specs.append(ModalitySpec(
        name=name, d_in=len(grid), grid_shape=grid, d_out=d_out, output_bias=bias,
        error_normaliser=normalisers[name] or ARRAYS_ERROR_NORMALISER, ratio_range=r,
        ratio_bins=b, fourier_sigma=sigma))
  return tuple(specs)


def _number(name: str, keyword: str, value: Any) -> float:
  try:
    out = float(value)
  except (TypeError, ValueError):
    out = math.nan
  if not math.isfinite(out):
    raise ValueError(f"Modality {name!r}: {keyword} must be a finite number, got {value!r}.")
  return out


def _number_pair(name: str, keyword: str, value: Any) -> tuple[float, float]:
  pair = _items(value) or (value,)
  if len(pair) != 2:
    raise ValueError(f"Modality {name!r}: {keyword} must be a (lo, hi) pair, got {value!r}.")
  return (_number(name, keyword, pair[0]), _number(name, keyword, pair[1]))


def _ratio_bins(name: str, value: Any) -> tuple[tuple[float, float], ...]:
  items = _items(value)
  if not items:
    raise ValueError(f"Modality {name!r}: ratio_bins must be a non-empty sequence of (lo, hi) "
                     f"pairs, got {value!r}.")
  bins = tuple(_number_pair(name, "ratio_bins", b) for b in items)
  for lo, hi in bins:
    if not 0.0 <= lo < hi <= 1.0:
      raise ValueError(f"Modality {name!r}: ratio bin ({lo}, {hi}) must satisfy "
                       "0 <= lo < hi <= 1.")
  return bins


def _items(value: Any) -> tuple:
  """The items of a list, tuple or array; () for a string, a number or None."""
  if isinstance(value, (str, bytes)) or value is None:
    return ()
  try:
    return tuple(value)
  except TypeError:
    return ()
