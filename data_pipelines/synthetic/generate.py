"""Synthetic 1-D function signals: four aligned modalities per signal.

Every signal draws shared parameters and each modality jitters them (docs/method.md,
section 1)::

  a = exp(u1 - 0.5),  w = exp(u2 - 0.5),  b, c ~ U(-2, 2),  u ~ U(0, 1)
  a_m = a * exp(0.1 * n1),  w_m = w * exp(0.1 * n2)
  b_m = b + 0.2 * n3,       c_m = c + 0.2 * n4,        n ~ N(0, 1)
  y_m(t) = a_m * g_m(w_m * t + b_m) + c_m,  t on 200 regular points in [-5, 5]

with g = sin, tanh, exp(-z^2), max(z, 0) for sine, tanh, gaussian, relu.

Random draws (a fixed order, so results are reproducible and comparable):
signal by signal, ``rng.uniform(0, 1, 2)`` for (u1, u2), then
``rng.uniform(-2, 2, 2)`` for (b, c), then ``rng.standard_normal((4, 4))`` for
the jitter, row k belonging to the k-th function of `MODALITIES` and columns
(n1, n2, n3, n4). The jitter of all four functions is always drawn, so
  * a subset of modalities has exactly the values of the full set, and
  * the first k signals do not depend on `num_signals` (a smaller dataset with
    the same seed is a prefix of a larger one).
"""

from collections.abc import Callable, Mapping, Sequence
import types

import numpy as np

from data_pipelines import benchmarks
from data_pipelines.names import parse_modalities

# The canonical order of the four functions; it fixes the order of the draws.
MODALITIES: tuple[str, ...] = benchmarks.SYNTHETIC_FUNCTIONS

FUNCTIONS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = types.MappingProxyType(
  {
    "sine": np.sin,
    "tanh": np.tanh,
    "gaussian": lambda z: np.exp(-np.square(z)),
    "relu": lambda z: np.maximum(z, 0.0),
  }
)

NUM_POINTS = benchmarks.SYNTHETIC_NUM_POINTS
T_MIN, T_MAX = -5.0, 5.0
# The sampling grid of `t` (the model sees `t / 5`, in [-1, 1]). Shape [200].
T_GRID: np.ndarray = np.linspace(T_MIN, T_MAX, NUM_POINTS)
T_GRID.setflags(write=False)

_NUM_JITTERED_PARAMS = 4  # (a, w, b, c).


def generate_signals(
  num_signals: int,
  seed: int,
  modalities: Sequence[str] = MODALITIES,
  num_points: int = NUM_POINTS,
) -> dict[str, dict[str, np.ndarray]]:
  """Generates synthetic multimodal 1-D function signals.

  Args:
    num_signals: number of signals S (>= 0).
    seed: seed of `np.random.default_rng`.
    modalities: which of `MODALITIES` to return, in this order.
    num_points: grid size N; t = `np.linspace(-5, 5, num_points)`.

  Returns:
    `{name: {"y": float32 [S, N, 1], "amplitude": float32 [S]}}` where
    `amplitude` is a_m, the modality's jittered amplitude (errors on this
    benchmark are divided by a_m^2).

  Raises:
    ValueError: unknown or repeated modality name, negative `num_signals`,
      or `num_points < 1`.
  """
  modalities = parse_modalities(modalities, MODALITIES, "synthetic")
  if num_signals < 0:
    raise ValueError(f"num_signals must be >= 0, got {num_signals}.")
  if num_points < 1:
    raise ValueError(f"num_points must be >= 1, got {num_points}.")

  rng = np.random.default_rng(seed)
  # shared[i] = (u1, u2, b, c); jitter[i, k] = (n1, n2, n3, n4) of function k.
  shared = np.empty((num_signals, 4))
  jitter = np.empty((num_signals, len(MODALITIES), _NUM_JITTERED_PARAMS))
  for i in range(num_signals):
    shared[i, :2] = rng.uniform(0.0, 1.0, 2)
    shared[i, 2:] = rng.uniform(-2.0, 2.0, 2)
    jitter[i] = rng.standard_normal((len(MODALITIES), _NUM_JITTERED_PARAMS))

  a = np.exp(shared[:, 0] - 0.5)
  w = np.exp(shared[:, 1] - 0.5)
  b = shared[:, 2]
  c = shared[:, 3]
  t = np.linspace(T_MIN, T_MAX, num_points)

  signals = {}
  for name in modalities:
    n = jitter[:, MODALITIES.index(name)]  # [S, 4]
    a_m = a * np.exp(0.1 * n[:, 0])
    w_m = w * np.exp(0.1 * n[:, 1])
    b_m = b + 0.2 * n[:, 2]
    c_m = c + 0.2 * n[:, 3]
    z = w_m[:, None] * t[None, :] + b_m[:, None]  # [S, N]
    y = a_m[:, None] * FUNCTIONS[name](z) + c_m[:, None]
    signals[name] = {
      "y": y[..., None].astype(np.float32),
      "amplitude": a_m.astype(np.float32),
    }
  return signals
