"""A user's own arrays as modalities: specs read from the data, no benchmark to register.

`specs_from_arrays(arrays, ...)` reads each modality's grid, channels, output bias and amplitudes
from `{name: [num_signals, *grid, d_out]}` arrays; `array_layout` is its check of one array (also
used by the data pipelines that read a user's `.npz`). What arrays cannot tell is a keyword with a
default (`ARRAYS_*`).
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any, Sequence

import numpy as np

from mia_jax.modalities import ModalitySpec

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
      "[num_signals, num_points] (1-D signals with one channel)."
    )
  if array.size == 0:
    raise ValueError(f"{what} is empty; every axis (signals, grid, channels) needs length >= 1.")
  finite = np.isfinite(array)
  if not finite.all():
    raise ValueError(
      f"{what} holds {int(array.size - finite.sum())} NaN or infinite values; "
      "all values must be finite."
    )
  peak = float(np.max(np.abs(array.astype(np.float64))))
  if peak > MAX_ABS_VALUE:
    raise ValueError(
      f"{what} holds values up to {peak:.3g} in magnitude, beyond "
      f"{MAX_ABS_VALUE:g}; scale the data to about [-1, 1] or [0, 1] (the "
      "learning rates assume that range, and larger values overflow float32 "
      "squared errors or diverge)."
    )
  grid = (array.shape[1],) if array.ndim == 2 else tuple(array.shape[1:-1])
  if min(grid) < 2:
    raise ValueError(
      f"{what}: its grid {grid} has an axis of length {min(grid)}; every grid "
      "axis needs at least 2 points (a coordinate axis from -1 to 1). A "
      "modality without a channel axis may need grid_ndims (e.g. "
      "--config.data.grid_ndims=NAME=2)."
    )
  return grid, 1 if array.ndim == 2 else int(array.shape[-1])


def default_ratio_bins(
  ratio_range: tuple[float, float], num_bins: int = ARRAYS_NUM_RATIO_BINS
) -> tuple[tuple[float, float], ...]:
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
      raise ValueError(
        f"{keyword} names {unknown}, which are not among the arrays' modalities; "
        f"known: {', '.join(names)}."
      )
    return {name: value.get(name) for name in names}

  ranges = per_modality("ratio_range", ratio_range)
  bins = per_modality("ratio_bins", ratio_bins)
  biases = per_modality("output_bias", output_bias)
  normalisers = per_modality("error_normaliser", error_normaliser)
  sigmas = per_modality("fourier_sigma", fourier_sigma)
  specs = []
  for name in names:
    grid, d_out = layouts[name]
    r = (
      ARRAYS_RATIO_RANGE
      if ranges[name] is None
      else _number_pair(name, "ratio_range", ranges[name])
    )
    b = default_ratio_bins(r) if bins[name] is None else _ratio_bins(name, bins[name])
    if biases[name] is None:
      bias = (
        round(float(np.mean(arrays[name], dtype=np.float64)), ARRAYS_OUTPUT_BIAS_DECIMALS) + 0.0
      )  # + 0.0: no -0.0
    else:
      bias = _number(name, "output_bias", biases[name])
    sigma = None if sigmas[name] is None else _number(name, "fourier_sigma", sigmas[name])
    if sigma is not None and sigma < 0:
      raise ValueError(f"Modality {name!r}: fourier_sigma must be >= 0, got {sigma}.")
    specs.append(
      ModalitySpec(
        name=name,
        d_in=len(grid),
        grid_shape=grid,
        d_out=d_out,
        output_bias=bias,
        error_normaliser=normalisers[name] or ARRAYS_ERROR_NORMALISER,
        ratio_range=r,
        ratio_bins=b,
        fourier_sigma=sigma,
      )
    )
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
    raise ValueError(
      f"Modality {name!r}: ratio_bins must be a non-empty sequence of (lo, hi) "
      f"pairs, got {value!r}."
    )
  bins = tuple(_number_pair(name, "ratio_bins", b) for b in items)
  for lo, hi in bins:
    if not 0.0 <= lo < hi <= 1.0:
      raise ValueError(f"Modality {name!r}: ratio bin ({lo}, {hi}) must satisfy 0 <= lo < hi <= 1.")
  return bins


def _items(value: Any) -> tuple:
  """The items of a list, tuple or array; () for a string, a number or None."""
  if isinstance(value, (str, bytes)) or value is None:
    return ()
  try:
    return tuple(value)
  except TypeError:
    return ()
