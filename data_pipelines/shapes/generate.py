"""Rendered 3-D shapes: three aligned image modalities (rgb, normal, sketch) per signal.

Each signal is a small scene seen from straight above by an orthographic camera: a ground
height field (a gentle tilt plus a few Gaussian bumps) on which stand one to `MAX_OBJECTS`
objects, each an ellipsoid, a square pyramid or a cone with a random position, size, rotation
about the vertical axis and colour. Every pixel shows the highest surface above its centre
(point sampling, no anti-aliasing), so the three modalities agree exactly pixel by pixel:

* ``normal``: the exact unit surface normal n of the visible surface, stored as (n + 1) / 2;
* ``rgb``: Lambertian shading under one directional light l (no cast shadows, no specular),
  ``rgb = albedo * (AMBIENT + (1 - AMBIENT) * max(0, n . l))``, with the albedo of the visible
  surface;
* ``sketch``: dark lines on white, ``1 - edge`` in all three channels, lines one pixel wide:
  ``edge = 1`` on the occluding side of every boundary between two surfaces (silhouettes: the
  object in front, or the ground where it hides part of an object), and a crease line of
  strength ``clip((angle - CREASE_ANGLE) / CREASE_RAMP, 0, 1)`` where the normal turns by
  ``angle`` between a pixel and its right or lower neighbour on the same surface (a pyramid's
  ridges, a cone's apex, the rim of a steep ellipsoid).

World frame: x to the right (image columns), y up (image rows run top to bottom, so row 0 is
y = +1), z towards the camera; pixel centres span [-1, 1] on both axes, as the model's
coordinates do. All values lie in [0, 1], float32, shape ``[S, H * W, 3]`` (row-major).

The scene parameters are drawn signal by signal from ``np.random.default_rng(seed)`` in a fixed
order with a fixed number of draws per signal, so the first k signals do not depend on
`num_signals`; rendering is vectorised over signals, objects and pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_pipelines import benchmarks
from data_pipelines.names import parse_modalities

MODALITIES: tuple[str, ...] = benchmarks.SHAPES_MODALITIES
IMAGE_SIZE = benchmarks.CELEBA_GRID[0]  # the grid is square
MAX_OBJECTS = 3
NUM_BUMPS = 3
OBJECT_TYPES: tuple[str, ...] = ("ellipsoid", "pyramid", "cone")
AMBIENT = 0.25
CREASE_ANGLE = 30.0  # degrees between neighbouring normals where a crease line starts
CREASE_RAMP = 20.0  # ... and this many degrees more make it a full line

# Draws per signal (fixed, so that signal i only depends on the seed and i).
_GROUND_DRAWS = 2 + 4 * NUM_BUMPS + 3  # tilt (2), bumps (x, y, amp, width), albedo (3)
_OBJECT_DRAWS = 11  # present, type, cx, cy, size a, size b, height, lift, angle, albedo (2 more)
_LIGHT_DRAWS = 2  # azimuth, elevation


def draw_scenes(num_signals: int, seed: int) -> dict[str, np.ndarray]:
  """Draws the scene parameters of `num_signals` signals.

  Returns:
    A dict of float64 arrays with leading axis S: ``tilt [S, 2]``, ``bumps [S, NUM_BUMPS, 4]``
    (x, y, amplitude, width), ``ground_albedo [S, 3]``, ``present [S, O]`` (bool),
    ``kind [S, O]`` (int index into `OBJECT_TYPES`), ``objects [S, O, 7]`` (cx, cy, a, b,
    height, lift, angle), ``albedo [S, O, 3]``, ``light [S, 3]`` (a unit vector).
  """
  if num_signals < 0:
    raise ValueError(f"num_signals must be >= 0, got {num_signals}.")
  rng = np.random.default_rng(seed)
  per_signal = _GROUND_DRAWS + MAX_OBJECTS * _OBJECT_DRAWS + _LIGHT_DRAWS
  u = np.empty((num_signals, per_signal))
  for i in range(num_signals):  # one block of uniforms per signal: a prefix-stable stream
    u[i] = rng.uniform(0.0, 1.0, per_signal)
  g = u[:, :_GROUND_DRAWS]
  o = u[:, _GROUND_DRAWS : _GROUND_DRAWS + MAX_OBJECTS * _OBJECT_DRAWS].reshape(
    num_signals, MAX_OBJECTS, _OBJECT_DRAWS
  )
  lt = u[:, -_LIGHT_DRAWS:]

  tilt = 0.3 * (g[:, 0:2] - 0.5)
  b = g[:, 2 : 2 + 4 * NUM_BUMPS].reshape(num_signals, NUM_BUMPS, 4)
  bumps = np.stack(
    [2.4 * b[..., 0] - 1.2, 2.4 * b[..., 1] - 1.2, 0.5 * (b[..., 2] - 0.5), 0.2 + 0.4 * b[..., 3]],
    -1,
  )
  ground_albedo = 0.35 + 0.6 * g[:, -3:]

  # Object 0 is always there; the others with probability 2/3.
  present = np.concatenate([np.ones((num_signals, 1), bool), o[:, 1:, 0] < 2 / 3], axis=1)
  kind = np.minimum((o[..., 1] * len(OBJECT_TYPES)).astype(int), len(OBJECT_TYPES) - 1)
  objects = np.stack(
    [
      1.4 * o[..., 2] - 0.7,  # cx
      1.4 * o[..., 3] - 0.7,  # cy
      0.2 + 0.3 * o[..., 4],  # a: half-size along the object's first axis
      0.2 + 0.3 * o[..., 5],  # b: along its second axis (ellipsoids only)
      0.25 + 0.45 * o[..., 6],  # height (vertical semi-axis of an ellipsoid)
      -0.3 + 0.5 * o[..., 7],  # lift of the base/centre above the ground, x height
      np.pi * o[..., 8],  # angle about z
    ],
    -1,
  )
  # Colours: one channel high, the others random, so neighbouring objects differ in hue.
  albedo = 0.2 + 0.8 * np.stack([o[..., 9], o[..., 10], 1.0 - 0.5 * (o[..., 9] + o[..., 10])], -1)
  azimuth = 2 * np.pi * lt[:, 0]
  elevation = np.deg2rad(30.0 + 50.0 * lt[:, 1])
  light = np.stack(
    [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)],
    -1,
  )
  return dict(
    tilt=tilt,
    bumps=bumps,
    ground_albedo=ground_albedo,
    present=present,
    kind=kind,
    objects=objects,
    albedo=albedo,
    light=light,
  )


def _ground(scenes, x, y):
  """Ground height and gradient at points x, y `[S, ...]` (broadcasting)."""
  tilt, bumps = scenes["tilt"], scenes["bumps"]
  extra = (slice(None),) + (None,) * (x.ndim - 1)
  h = tilt[:, 0][extra] * x + tilt[:, 1][extra] * y
  hx = np.broadcast_to(tilt[:, 0][extra], h.shape).copy()
  hy = np.broadcast_to(tilt[:, 1][extra], h.shape).copy()
  for k in range(NUM_BUMPS):
    bx, by, amp, width = (bumps[:, k, j][extra] for j in range(4))
    e = amp * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * width**2))
    h = h + e
    hx = hx - e * (x - bx) / width**2
    hy = hy - e * (y - by) / width**2
  return h, hx, hy


def _normalise(v):
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def render(scenes: dict[str, np.ndarray], size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
  """Renders scenes drawn by `draw_scenes`.

  Args:
    scenes: the scene parameters.
    size: image height and width H = W.

  Returns:
    ``rgb``, ``normal``, ``sketch``: float32 ``[S, H, W, 3]`` in [0, 1]; and, for checks and
    plots, ``unit_normal`` (n, float32 ``[S, H, W, 3]``), ``albedo`` (``[S, H, W, 3]``),
    ``depth`` (z of the visible surface, ``[S, H, W]``), ``surface`` (int ``[S, H, W]``: 0 is the
    ground, j > 0 object j - 1) and ``light`` (``[S, 3]``).
  """
  s = scenes["light"].shape[0]
  axis = np.linspace(-1.0, 1.0, size)
  x = np.broadcast_to(axis[None, None, :], (s, size, size))
  y = np.broadcast_to(-axis[None, :, None], (s, size, size))  # row 0 is y = +1

  ground, gx, gy = _ground(scenes, x, y)
  depths = [ground]
  normals = [_normalise(np.stack([-gx, -gy, np.ones_like(gx)], -1))]
  cx, cy, a, b, height, lift, angle = (scenes["objects"][..., j] for j in range(7))
  base, _, _ = _ground(scenes, cx, cy)  # ground height under each object's centre [S, O]
  for j in range(MAX_OBJECTS):
    p = lambda v: v[:, j, None, None]  # noqa: E731  [S] -> [S, 1, 1]
    cos, sin = np.cos(p(angle)), np.sin(p(angle))
    dx, dy = x - p(cx), y - p(cy)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # the object's own frame
    z0 = p(base) + p(lift) * p(height)
    kind = p(scenes["kind"])

    # Ellipsoid: (u/a)^2 + (v/b)^2 + ((z - z0)/c)^2 = 1, upper half; gradient of the implicit
    # function gives the normal.
    q = (u / p(a)) ** 2 + (v / p(b)) ** 2
    root = np.sqrt(np.clip(1.0 - q, 0.0, None))
    z_ell = z0 + p(height) * root
    n_ell = np.stack([u / p(a) ** 2, v / p(b) ** 2, root / p(height)], -1)
    # At the very rim (root = 0) the normal is horizontal; keep it finite.
    n_ell[..., 2] = np.maximum(n_ell[..., 2], 1e-6)
    # Square pyramid of half-size a: z = z0 + h (1 - max(|u|, |v|) / a).
    m = np.maximum(np.abs(u), np.abs(v))
    z_pyr = z0 + p(height) * (1.0 - m / p(a))
    along_u = np.abs(u) >= np.abs(v)
    slope = p(height) / p(a)
    n_pyr = np.stack(
      [
        np.where(along_u, slope * np.sign(u), 0.0),
        np.where(along_u, 0.0, slope * np.sign(v)),
        np.ones_like(u),
      ],
      -1,
    )
    # Cone of radius a: z = z0 + h (1 - r / a).
    r = np.sqrt(u**2 + v**2)
    z_cone = z0 + p(height) * (1.0 - r / p(a))
    r_safe = np.maximum(r, 1e-9)
    n_cone = np.stack([slope * u / r_safe, slope * v / r_safe, np.ones_like(u)], -1)

    inside = np.select([kind == 0, kind == 1], [q < 1.0, m < p(a)], r < p(a))
    z = np.select([kind == 0, kind == 1], [z_ell, z_pyr], z_cone)
    n_local = np.select([kind[..., None] == 0, kind[..., None] == 1], [n_ell, n_pyr], n_cone)
    # Back to the world frame (rotate the horizontal components by +angle).
    n = np.stack(
      [
        cos * n_local[..., 0] - sin * n_local[..., 1],
        sin * n_local[..., 0] + cos * n_local[..., 1],
        n_local[..., 2],
      ],
      -1,
    )
    visible = inside & p(scenes["present"])
    depths.append(np.where(visible, z, -np.inf))
    normals.append(_normalise(n))

  depth_stack = np.stack(depths, 1)  # [S, 1 + O, H, W]
  surface = np.argmax(depth_stack, axis=1)  # ties (never in practice) -> lowest index
  rows = np.arange(s)[:, None, None]
  hh, ww = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
  depth = depth_stack[rows, surface, hh, ww]  # [S, H, W]
  normal = np.stack(normals, 1)[rows, surface, hh, ww]  # [S, H, W, 3]
  colours = np.concatenate([scenes["ground_albedo"][:, None], scenes["albedo"]], 1)  # [S,1+O,3]
  albedo = colours[rows, surface]  # [S, H, W, 3]

  light = scenes["light"]
  diffuse = np.maximum(np.einsum("shwc,sc->shw", normal, light), 0.0)
  rgb = albedo * (AMBIENT + (1.0 - AMBIENT) * diffuse)[..., None]

  # Lines one pixel wide: an outline on the occluding side of every boundary between two
  # surfaces, and a crease where the normal turns by more than CREASE_ANGLE between a pixel and
  # its right or lower neighbour on the same surface.
  edge = np.zeros((s, size, size))
  cos_crease = np.cos(np.deg2rad(CREASE_ANGLE))
  cos_full = np.cos(np.deg2rad(CREASE_ANGLE + CREASE_RAMP))
  for shift, ax in ((1, 1), (-1, 1), (1, 2), (-1, 2)):
    nd, ns = np.roll(depth, shift, ax), np.roll(surface, shift, ax)
    cos_angle = np.sum(normal * np.roll(normal, shift, ax), -1)
    outline = (surface != ns) & (depth > nd)
    crease = (surface == ns) & (shift == -1)  # the neighbour after this pixel along the axis
    e = np.where(
      outline,
      1.0,
      np.where(crease, np.clip((cos_crease - cos_angle) / (cos_crease - cos_full), 0.0, 1.0), 0.0),
    )
    # np.roll wraps around; the wrapped row/column is no neighbour.
    border = [slice(None)] * 3
    border[ax] = 0 if shift == 1 else -1
    e[tuple(border)] = 0.0
    edge = np.maximum(edge, e)
  sketch = np.repeat((1.0 - edge)[..., None], 3, -1)

  f32 = lambda v: v.astype(np.float32)  # noqa: E731
  return dict(
    rgb=f32(np.clip(rgb, 0.0, 1.0)),
    normal=f32((normal + 1.0) / 2.0),
    sketch=f32(sketch),
    unit_normal=f32(normal),
    albedo=f32(albedo),
    depth=f32(depth),
    surface=surface,
    light=f32(light),
  )


def generate_signals(
  num_signals: int,
  seed: int,
  modalities: Sequence[str] = MODALITIES,
  size: int = IMAGE_SIZE,
  chunk_size: int = 256,
) -> dict[str, dict[str, np.ndarray]]:
  """Generates rendered-shape signals.

  Args:
    num_signals: number of signals S (>= 0).
    seed: seed of `np.random.default_rng` for the scene parameters.
    modalities: which of `MODALITIES` to return, in this order.
    size: image height and width.
    chunk_size: signals rendered at once (bounds memory; does not change the result).

  Returns:
    `{name: {"y": float32 [S, size * size, 3], "amplitude": float32 [S] (ones)}}`, the grid
    flattened row-major, values in [0, 1].

  Raises:
    ValueError: unknown or repeated modality, negative `num_signals`, or `size < 2`.
  """
  modalities = parse_modalities(modalities, MODALITIES, "shapes")
  if size < 2:
    raise ValueError(f"size must be >= 2, got {size}.")
  scenes = draw_scenes(num_signals, seed)
  out = {name: np.empty((num_signals, size * size, 3), np.float32) for name in modalities}
  for start in range(0, num_signals, chunk_size):
    stop = min(start + chunk_size, num_signals)
    images = render({k: v[start:stop] for k, v in scenes.items()}, size)
    for name in modalities:
      out[name][start:stop] = images[name].reshape(stop - start, size * size, 3)
  return {
    name: {"y": y, "amplitude": np.ones((num_signals,), np.float32)} for name, y in out.items()
  }
