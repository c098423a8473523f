"""Observation files for `python -m experiments.reconstruct`: writing, reading and checking them.

The format (per modality `m` of a run) is in `experiments/reconstruct.py`'s docstring: on the grid
(`m`, `m_mask`) or as points (`m_coords`, `m_values`, `m_count`), with optional `m_amplitude`.
`parse_observations` brings both to points and checks every array against the run's modalities.
"""

from __future__ import annotations

import os
from typing import Any, Mapping
import zipfile

import numpy as np

from experiments import atomic

_DOMAIN_TOL = 1e-5  # coordinates within this of [-1, 1] are inside


def save_observations(
  path: str,
  grid: Mapping[str, Any] | None = None,
  points: Mapping[str, Any] | None = None,
  amplitude: Mapping[str, Any] | None = None,
) -> None:
  """Writes an observations file for `python -m experiments.reconstruct`.

  Args:
    path: the `.npz` to write.
    grid: `{name: (values [n, *grid, d_out], mask [n, *grid])}` (mask None: all observed);
      unobserved values are ground truth if finite, NaN if unknown.
    points: `{name: (coords [n, S, d_in], values [n, S, d_out])}` or with a third entry,
      `count [n]` (signal i observes its first count[i] points).
    amplitude: `{name: [n]}` error normalisers, for modalities that have them.
  """
  arrays = {}
  for name, item in (grid or {}).items():
    values, mask = item if isinstance(item, (tuple, list)) else (item, None)
    arrays[name] = np.asarray(values, np.float32)
    if mask is not None:
      arrays[f"{name}_mask"] = np.asarray(mask, np.float32)
  for name, item in (points or {}).items():
    if name in arrays:
      raise ValueError(f"Modality {name!r} is given both on the grid and as points; give one.")
    arrays[f"{name}_coords"] = np.asarray(item[0], np.float32)
    arrays[f"{name}_values"] = np.asarray(item[1], np.float32)
    if len(item) > 2 and item[2] is not None:
      arrays[f"{name}_count"] = np.asarray(item[2], np.int64)
  for name, a in (amplitude or {}).items():
    arrays[f"{name}_amplitude"] = np.asarray(a, np.float32)
  if not arrays:
    raise ValueError("Nothing to save: give grid= or points= observations.")
  atomic.write_npz(path, arrays)


def read_npz(path: str) -> dict[str, np.ndarray]:
  if not path:
    raise ValueError("Give --observations=FILE.npz (or --encode).")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Observations file {path!r} does not exist.")
  if not zipfile.is_zipfile(path):  # np.load would read it as a pickle and advise unpickling
    raise ValueError(
      f"{path!r} is not an .npz file (an .npz is a zip of .npy arrays, as "
      "np.savez or experiments.run.observations.save_observations write it)."
    )
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: np.asarray(data[k]) for k in data.files}
  except Exception as e:  # a truncated zip, a pickled object, not an npz at all
    raise ValueError(
      f"{path!r} is not a readable .npz of arrays ({type(e).__name__}: {e})."
    ) from None


def _channels(a: np.ndarray, lead: int, d: int, what: str, want: str) -> np.ndarray:
  """`a` with `lead` leading axes and a channel axis of size `d` (added when d == 1)."""
  if a.ndim == lead and d == 1:
    a = a[..., None]
  if a.ndim != lead + 1 or a.shape[-1] != d:
    raise ValueError(f"{what} has shape {a.shape}; expected {want}.")
  return a


def parse_observations(arrays: Mapping[str, np.ndarray], specs, where: str) -> dict[str, dict]:
  """Checks an observations file's arrays and brings each modality to points.

  Returns `{name: {"coords": [n, S, d_in], "values": [n, S, d_out], "mask": [n, S],
  "grid_mask": [n, N] or None, "truth": [n, N, d_out] or None, "amplitude": [n] or None}}` for
  the modalities the file observes; grid observations are gathered to their observed points.
  """
  by_name = {s.name: s for s in specs}
  suffixes = ("_mask", "_coords", "_values", "_count", "_amplitude")
  used: dict[str, list[str]] = {}
  for key in arrays:
    name = key
    for suf in suffixes:
      if key.endswith(suf) and key[: -len(suf)] in by_name:
        name = key[: -len(suf)]
        break
    if name not in by_name:
      raise ValueError(
        f"{where} has an array {key!r} that names no modality of the run; the "
        f"run's modalities are {sorted(by_name)} (keys: NAME, NAME_mask, "
        "NAME_coords, NAME_values, NAME_count, NAME_amplitude)."
      )
    used.setdefault(name, []).append(key)
  out, sizes = {}, {}
  for name, keys in used.items():
    spec = by_name[name]
    n_grid, n_pts = name in arrays, f"{name}_coords" in arrays or f"{name}_values" in arrays
    if n_grid and n_pts:
      raise ValueError(
        f"{where} gives {name!r} both on the grid ({name!r}) and as points "
        f"({name}_coords/{name}_values); give one form."
      )
    if not n_grid and not n_pts:
      raise ValueError(
        f"{where} has {sorted(keys)} but no observations of {name!r}: give "
        f"{name!r} (grid values) or {name}_coords and {name}_values."
      )
    grid = "x".join(map(str, spec.grid_shape))
    if n_grid:
      for bad in (f"{name}_coords", f"{name}_values", f"{name}_count"):
        if bad in arrays:
          raise ValueError(
            f"{where}: {bad!r} belongs to point observations, but {name!r} is given on the grid."
          )
      want = f"[n, {', '.join(map(str, spec.grid_shape))}, {spec.d_out}]"
      y = _channels(
        np.asarray(arrays[name], np.float64),
        1 + spec.d_in,
        spec.d_out,
        f"{where}: {name!r}",
        f"{want} (modality {name!r}: grid {grid}, {spec.d_out} channel(s))",
      )
      if y.shape[1:-1] != spec.grid_shape:
        raise ValueError(
          f"{where}: {name!r} has grid {y.shape[1:-1]}; the run's {name!r} is "
          f"on {spec.grid_shape} (expected {want})."
        )
      n = y.shape[0]
      y = y.reshape(n, spec.num_points, spec.d_out)
      if f"{name}_mask" in arrays:
        m = np.asarray(arrays[f"{name}_mask"], np.float64)
        if m.shape != (n,) + spec.grid_shape:
          raise ValueError(
            f"{where}: {name}_mask has shape {m.shape}; expected "
            f"{(n,) + spec.grid_shape} (one entry per grid point of {name!r})."
          )
        if not np.all((m == 0) | (m == 1)):
          raise ValueError(
            f"{where}: {name}_mask must hold 0 (unobserved) or 1 (observed); "
            f"it has {np.unique(m[(m != 0) & (m != 1)])[:5].tolist()}."
          )
        m = m.reshape(n, spec.num_points) > 0
      else:
        m = np.ones((n, spec.num_points), bool)
      if not np.isfinite(y[m]).all():
        bad = np.flatnonzero(~np.isfinite(np.where(m[..., None], y, 0)).all(axis=(1, 2)))
        raise ValueError(
          f"{where}: {name!r} has NaN or infinite values at observed points "
          f"(signals {bad[:5].tolist()}); mask them out or fix them."
        )
      counts = m.sum(1)
      s = max(int(counts.max()), 1)
      idx = np.zeros((n, s), np.int64)
      mask = np.zeros((n, s), np.float32)
      for i in range(n):
        obs = np.flatnonzero(m[i])
        idx[i, : obs.size] = obs
        mask[i, : obs.size] = 1.0
      coords = spec.coordinates()[idx]
      values = np.take_along_axis(np.nan_to_num(y), idx[..., None], axis=1)
      truth = y if np.isfinite(y).all() else None
      out[name] = dict(coords=coords, values=values, mask=mask, grid_mask=m, truth=truth)
    else:
      for part in ("coords", "values"):
        if f"{name}_{part}" not in arrays:
          raise ValueError(
            f"{where} has {name}_{'values' if part == 'coords' else 'coords'} "
            f"but no {name}_{part}; point observations need both."
          )
      if f"{name}_mask" in arrays:
        raise ValueError(
          f"{where}: {name}_mask belongs to grid observations; point "
          f"observations mark their points with {name}_count [n]."
        )
      coords = _channels(
        np.asarray(arrays[f"{name}_coords"], np.float64),
        2,
        spec.d_in,
        f"{where}: {name}_coords",
        f"[n, S, {spec.d_in}] (modality {name!r} has d_in={spec.d_in})",
      )
      n, s = coords.shape[:2]
      values = _channels(
        np.asarray(arrays[f"{name}_values"], np.float64),
        2,
        spec.d_out,
        f"{where}: {name}_values",
        f"[{n}, {s}, {spec.d_out}] (modality "
        f"{name!r} has d_out={spec.d_out}; {name}_coords is {coords.shape})",
      )
      if values.shape[:2] != (n, s):
        raise ValueError(
          f"{where}: {name}_values has shape {values.shape}; expected "
          f"[{n}, {s}, {spec.d_out}] to match {name}_coords {coords.shape}."
        )
      count = np.full((n,), s)
      if f"{name}_count" in arrays:
        count = np.asarray(arrays[f"{name}_count"])
        if (
          count.shape != (n,)
          or not np.issubdtype(count.dtype, np.number)
          or not np.all(np.isfinite(count))
          or np.any(count != np.round(count))
          or np.any(count < 0)
          or np.any(count > s)
        ):
          raise ValueError(
            f"{where}: {name}_count must be [{n}] whole numbers in 0..{s} (the "
            f"observed points of each signal); got shape {count.shape}, values "
            f"{np.asarray(count).ravel()[:5].tolist()}."
          )
        count = count.astype(np.int64)
      mask = (np.arange(s)[None] < count[:, None]).astype(np.float32)
      on = mask > 0
      if not np.isfinite(coords[on]).all() or not np.isfinite(values[on]).all():
        raise ValueError(
          f"{where}: {name}_coords or {name}_values hold NaN or infinite "
          "numbers at observed points."
        )
      outside = on & (np.abs(coords) > 1.0 + _DOMAIN_TOL).any(-1)
      if outside.any():
        i, j = np.argwhere(outside)[0]
        raise ValueError(
          f"{where}: {name}_coords[{i}, {j}] = {coords[i, j].tolist()} lies "
          f"outside the domain the run was trained on, [-1, 1] per axis "
          f"({outside.sum()} such point(s)); rescale the coordinates so the "
          "grid's corners are -1 and 1."
        )
      out[name] = dict(
        coords=np.where(on[..., None], coords, 0.0),
        values=np.where(on[..., None], values, 0.0),
        mask=mask,
        grid_mask=None,
        truth=None,
      )
    amp = arrays.get(f"{name}_amplitude")
    n = out[name]["mask"].shape[0]
    if amp is not None:
      amp = np.asarray(amp, np.float64)
      if amp.shape != (n,) or not np.all(np.isfinite(amp)) or np.any(amp <= 0):
        raise ValueError(
          f"{where}: {name}_amplitude must be [{n}] positive numbers; got shape {amp.shape}."
        )
    out[name]["amplitude"] = amp
    sizes[name] = n
  if not out:
    raise ValueError(f"{where} holds no arrays; the run's modalities are {sorted(by_name)}.")
  if len(set(sizes.values())) > 1:
    raise ValueError(
      f"{where}: the modalities hold different numbers of signals {sizes}; "
      "each signal needs an entry in every modality given (mask what is not "
      "observed)."
    )
  return out
