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

import dataclasses
import math
from typing import Callable, Hashable, Sequence

import numpy as np

from mia_jax import _moved

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
      raise ValueError(
        f"Modality name {self.name!r} must be a non-empty string and contain no '/'."
      )
    if self.name in RESERVED_NAMES:
      raise ValueError(
        f"Modality name {self.name!r} is reserved (the results' "
        f"{'/'.join(RESERVED_NAMES)} keys); rename the modality."
      )
    object.__setattr__(self, "grid_shape", tuple(int(s) for s in self.grid_shape))
    if len(self.grid_shape) != self.d_in:
      raise ValueError(
        f"Modality {self.name!r}: grid_shape {self.grid_shape} has {len(self.grid_shape)} axes "
        f"but d_in={self.d_in}."
      )
    if self.error_normaliser not in ERROR_NORMALISERS:
      raise ValueError(
        f"Modality {self.name!r}: unknown error_normaliser {self.error_normaliser!r}; "
        f"allowed: {', '.join(ERROR_NORMALISERS)}."
      )
    lo, hi = self.ratio_range
    if not 0.0 <= lo <= hi <= 1.0 or hi <= 0.0:
      raise ValueError(
        f"Modality {self.name!r}: ratio_range {self.ratio_range} must satisfy "
        "0 <= Rmin <= Rmax <= 1 and Rmax > 0."
      )

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
      raise ValueError(
        f"Modality {self.name!r}: grid_shape {shape} must have d_in={self.d_in} positive sizes."
      )
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


def group_modalities(
  specs: Sequence[ModalitySpec],
  default_sigma: float = 0.0,
  key: Callable[[ModalitySpec], Hashable] | None = None,
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


__getattr__ = _moved.module_getattr(
  "mia_jax.modalities",
  {
    **{
      n: f"mia_jax.arrays.{n}"
      for n in ("specs_from_arrays", "array_layout", "default_ratio_bins", "MAX_ABS_VALUE")
    },
    "parse_modalities": "data_pipelines.names.parse_modalities",
  },
)
