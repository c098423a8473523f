"""Support/query sampling (docs/method.md section 2) and fixed meta-test episodes.

Every modality of every signal gets its own support set: a ratio `R = Rmin + Beta(Ma, Mb) *
(Rmax - Rmin)` is drawn and `floor(R * N)` grid points (at least one) are chosen uniformly without
replacement (`counts="floor"`, the paper's). With `counts="closed"` (the released code's training
supports) the count itself is drawn, `lo + floor(Beta(Ma, Mb) * (hi - lo + 1))` on the integers
`lo = ceil(Rmin N) .. hi = floor(Rmax N)`, both ends included (uniform for Beta(1, 1): on the
synthetic functions `U * 19 + 2`, {2, ..., 20}), and `R = count / N`. The query set is the full
grid. Shapes stay static under `jit`: the support is a fixed-size gather of `S = floor(Rmax * N)`
indices plus a validity mask.

An *episode* is a dict keyed by modality name:

  {name: {"idx": int32 [B, S], "mask": float32 [B, S], "ratio": float32 [B]}}

`idx[b, :count]` are distinct grid indices; entries past `count` are padding (valid indices,
masked out).

*Fixed-ratio* episodes (`fixed_ratio_episodes`) evaluate every signal at one support ratio `r`:
`floor(r' N)` points (at least 1), with `r'` the ratio clipped to the modality's range. They are
cut from the meta-test episode itself, the first `floor(r' N)` of its `idx`, so one signal's
supports are nested across the ratios (an error-vs-support curve per signal, with less variance
than independent draws) and, like the meta-test episode, a modality's fixed supports are the same
whichever other modalities or method a run has (paired).
"""

from __future__ import annotations

import os
from typing import IO, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mia_jax.modalities import ModalitySpec
from mia_jax.modalities import name_hash as _name_hash

# {modality: {"idx", "mask", "ratio": [B, ...]}}: jax arrays inside a step, numpy on the host.
Episode = dict[str, dict[str, jax.Array | np.ndarray]]
SUPPORT_COUNTS = ("floor", "closed")


def check_support_counts(counts: str) -> str:
  if counts not in SUPPORT_COUNTS:
    raise ValueError(f"Unknown support_counts {counts!r}; allowed: {', '.join(SUPPORT_COUNTS)}.")
  return counts


def sample_modality_support(rng: jax.Array, spec: ModalitySpec, batch_size: int,
                            counts: str = "floor") -> dict:
  """Draws supports for one modality and `batch_size` signals (jit-friendly, static shapes).

  `counts`: how the support size is drawn, "floor" or "closed" (see the module docstring).
  """
  check_support_counts(counts)
  k_ratio, k_perm = jax.random.split(rng)
  lo, hi = spec.ratio_range
  ma, mb = spec.ratio_beta
  u = _replicated(jax.random.beta(k_ratio, ma, mb, (batch_size,)))
  n, s = spec.num_points, spec.max_support
  if counts == "floor":
    ratio = lo + u * (hi - lo)
    count = jnp.clip(jnp.floor(ratio * n + 1e-6).astype(jnp.int32), 1, s)
  else:
    c_lo, c_hi = support_count_range(spec)
    count = jnp.minimum(c_lo + jnp.floor(u * (c_hi - c_lo + 1)).astype(jnp.int32), c_hi)
    ratio = count / n
  perm_keys = jax.random.split(k_perm, batch_size)
  idx = jax.vmap(lambda k: jax.random.permutation(k, n)[:s])(perm_keys).astype(jnp.int32)
  mask = (jnp.arange(s)[None, :] < count[:, None]).astype(jnp.float32)
  return {"idx": idx, "mask": mask, "ratio": ratio.astype(jnp.float32)}


def _replicated(x: jax.Array) -> jax.Array:
  """`x` computed whole on every device when a mesh is set (`jax.set_mesh`, as
  `meta_step.make_train_step` does). The beta draw is a rejection loop: sharded with the batch,
  every pass of it would wait for an all-reduce of "all accepted?" across the devices (processes,
  on several hosts); the values are the same either way."""
  if jax.sharding.get_abstract_mesh().empty:
    return x
  return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec())


def support_count_range(spec: ModalitySpec) -> tuple[int, int]:
  """The smallest and largest support size of `counts="closed"`: `ceil(Rmin N)` (at least 1)
  and `floor(Rmax N)` (the static support size `max_support`)."""
  lo, hi = spec.ratio_range
  c_hi = spec.max_support
  c_lo = min(max(1, int(np.ceil(lo * spec.num_points - 1e-6))), c_hi)
  return c_lo, c_hi


def sample_episode(rng: jax.Array, specs: Sequence[ModalitySpec], batch_size: int,
                   counts: str = "floor") -> Episode:
  """Independent supports for every modality, each from `fold_in(rng, hash(name))`.

  Keyed by name, not position, so a modality sees the same training supports whichever other
  modalities are configured (paired modality-replacement studies). `counts`: "floor" or
  "closed" (the module docstring).
  """
  return {spec.name: sample_modality_support(jax.random.fold_in(rng, _name_hash(spec.name)),
                                             spec, batch_size, counts)
          for spec in specs}


def make_eval_episodes(seed: int, specs: Sequence[ModalitySpec], num_signals: int) -> Episode:
  """The fixed meta-test episode set: one support per (modality, signal), as numpy arrays.

  The supports of a modality depend only on the seed, the modality's position in the full list of
  its benchmark's modalities is NOT used: each modality is keyed by its name, so that a subset of
  modalities sees exactly the supports it would see in the full set (paired comparisons).
  """
  out: Episode = {}
  for spec in specs:
    key = jax.random.fold_in(jax.random.PRNGKey(seed), _name_hash(spec.name))
    ep = jax.jit(sample_modality_support, static_argnums=(1, 2))(key, spec, num_signals)
    out[spec.name] = {k: np.asarray(v) for k, v in ep.items()}
  return out


def parse_fixed_ratios(value: str | Sequence[float] | None) -> tuple[float, ...]:
  """`"0.01,0.1"` (or a sequence of numbers) -> the sorted distinct ratios; "" or None -> ().

  Raises:
    ValueError: a ratio that is not a number in (0, 1], named with what is allowed.
  """
  if value is None or (isinstance(value, str) and not value.strip()):
    return ()
  items = value.split(",") if isinstance(value, str) else list(value)
  out = set()
  for item in items:
    try:
      r = float(item)
    except (TypeError, ValueError):
      raise ValueError(f"eval.fixed_ratios: {item!r} is not a number; expected comma-separated "
                       "support ratios in (0, 1], e.g. '0.01,0.1,1'.") from None
    if not 0.0 < r <= 1.0:
      raise ValueError(f"eval.fixed_ratios: {item!r} is outside (0, 1]; a ratio is the fraction "
                       "of the grid in the support.")
    out.add(r)
  return tuple(sorted(out))


def ratio_label(ratio: float) -> str:
  """The results-key suffix of a fixed support ratio: `ratio0.01`."""
  return f"ratio{ratio:g}"


def fixed_support_count(spec: ModalitySpec, ratio: float) -> int:
  """`floor(r' N)` with `r'` the ratio clipped to the modality's range; in [1, max_support]."""
  lo, hi = spec.ratio_range
  r = min(max(float(ratio), lo), hi)
  return int(min(max(1, np.floor(r * spec.num_points + 1e-6)), spec.max_support))


def fixed_ratio_episodes(episode: Mapping[str, Mapping[str, np.ndarray]],
                         specs: Sequence[ModalitySpec], ratios: Sequence[float]
                         ) -> dict[str, Episode]:
  """`{ratio_label(r): episode}`: every signal's support cut to `fixed_support_count(spec, r)`
  points, the first ones of the meta-test `episode`'s `idx` (nested across ratios; see the module
  docstring). The `ratio` entry is the support's actual ratio, count / N."""
  out: dict[str, Episode] = {}
  for r in ratios:
    ep: Episode = {}
    for spec in specs:
      idx = np.asarray(episode[spec.name]["idx"])
      count = fixed_support_count(spec, r)
      mask = np.broadcast_to((np.arange(idx.shape[1]) < count).astype(np.float32), idx.shape)
      ep[spec.name] = {"idx": idx, "mask": np.array(mask),
                       "ratio": np.full(idx.shape[0], count / spec.num_points, np.float32)}
    out[ratio_label(r)] = ep
  return out


def slice_episode(episode: Episode, start: int, stop: int) -> Episode:
  return {m: {k: v[start:stop] for k, v in ep.items()} for m, ep in episode.items()}


def save_episodes(path: str | os.PathLike | IO[bytes], episode: Episode,
                  specs: Sequence[ModalitySpec] = (), fixed_ratios: Sequence[float] = ()) -> None:
  """Writes episodes to `.npz` with keys `{name}/idx`, `{name}/count`, `{name}/ratio`.

  `idx` holds the support indices (row-major grid positions), of which the first `count` per
  signal are the support; other codebases can read this file to evaluate on identical episodes.
  With `fixed_ratios` (and the `specs` of the episode's modalities), also `{name}/fixed_ratio`
  (the ratios asked for) and `{name}/fixed_count` (`fixed_support_count`): the fixed-ratio
  supports are the first `fixed_count[j]` entries of every signal's `idx`
  (`fixed_ratio_episodes`).
  The file is compressed and `idx` is stored as uint16 where the grid has at most 65,536 points
  (int32 otherwise), about a third of the plain int32 size; `load_episodes` returns int32.
  """
  arrays = {}
  for name, ep in episode.items():
    arrays[f"{name}/idx"] = np.asarray(ep["idx"])
    arrays[f"{name}/count"] = np.asarray(ep["mask"]).sum(-1).astype(np.int32)
    arrays[f"{name}/ratio"] = np.asarray(ep["ratio"], np.float32)
  if fixed_ratios:
    arrays.update(fixed_arrays(specs, fixed_ratios))
  write_episode_arrays(path, arrays)


def fixed_arrays(specs: Sequence[ModalitySpec], fixed_ratios: Sequence[float]
                 ) -> dict[str, np.ndarray]:
  """The episodes file's `{name}/fixed_ratio` and `{name}/fixed_count` arrays."""
  out = {}
  for spec in specs:
    out[f"{spec.name}/fixed_ratio"] = np.asarray(fixed_ratios, np.float32)
    out[f"{spec.name}/fixed_count"] = np.asarray(
        [fixed_support_count(spec, r) for r in fixed_ratios], np.int32)
  return out


def check_fixed_arrays(path: str, data: Mapping[str, np.ndarray], specs: Sequence[ModalitySpec],
                       fixed_ratios: Sequence[float]) -> None:
  """Raises unless an episodes file's fixed-ratio arrays, where it has them, are the ones these
  `fixed_ratios` give (a file without them gets them derived from its `idx`)."""
  for key, want in fixed_arrays(specs, fixed_ratios).items():
    if key in data and not np.array_equal(np.asarray(data[key]), want):
      show = lambda a: "[" + ", ".join(f"{x:g}" for x in np.asarray(a).tolist()) + "]"
      raise ValueError(f"Episode file {path!r}: {key} is {show(data[key])}, but "
                       f"eval.fixed_ratios gives {show(want)}; set eval.fixed_ratios to the "
                       "file's ratios, or use a file written for these.")


def write_episode_arrays(path: str | os.PathLike | IO[bytes],
                         arrays: Mapping[str, np.ndarray]) -> None:
  """Writes the arrays of an episodes file (`{name}/idx|count|ratio`) compressed, with an integer
  `idx` as uint16 where its values fit (int32 otherwise); values are never changed. `path` may be
  a binary file object (the experiments write through a temporary file, `experiments.atomic`)."""
  out = {}
  for key, value in arrays.items():
    value = np.asarray(value)
    if key.endswith("/idx") and np.issubdtype(value.dtype, np.integer):
      fits = value.size == 0 or (value.min() >= 0 and value.max() <= np.iinfo(np.uint16).max)
      value = value.astype(np.uint16 if fits else np.int32)
    out[key] = value
  if hasattr(path, "write"):
    np.savez_compressed(path, **out)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    return
  with open(path, "wb") as f:
    np.savez_compressed(f, **out)  # type: ignore[arg-type]  # numpy's stub: allow_pickle


def load_episodes(path: str | os.PathLike, specs: Sequence[ModalitySpec],
                  fixed_ratios: Sequence[float] = ()) -> Episode:
  """Reads episodes written by `save_episodes`, checking them against the modality specs (and
  its fixed-ratio arrays, where it has them, against `fixed_ratios`: `check_fixed_arrays`)."""
  try:
    data = np.load(path)
  except FileNotFoundError:
    raise FileNotFoundError(f"Episode file {os.fspath(path)!r} does not exist.") from None
  except Exception as e:  # a corrupt or non-npz file
    raise ValueError(f"Could not read episode file {os.fspath(path)!r}: {e}") from e
  out = {}
  for spec in specs:
    keys = [f"{spec.name}/{k}" for k in ("idx", "count", "ratio")]
    missing = [k for k in keys if k not in data.files]
    if missing:
      raise ValueError(f"Episode file {os.fspath(path)!r} lacks {missing}; it has {data.files}.")
    idx, count, ratio = (data[k] for k in keys)
    if idx.ndim != 2 or idx.shape[1] != spec.max_support:
      raise ValueError(f"Episode file {os.fspath(path)!r}: {spec.name}/idx has shape {idx.shape}, "
                       f"expected [num_signals, {spec.max_support}].")
    if idx.dtype.kind not in "iu":
      raise ValueError(f"Episode file {os.fspath(path)!r}: {spec.name}/idx must hold integers "
                       f"(grid point indices); it has dtype {idx.dtype}.")
    if idx.min() < 0 or idx.max() >= spec.num_points:
      raise ValueError(f"Episode file {os.fspath(path)!r}: {spec.name}/idx outside "
                       f"[0, {spec.num_points}).")
    _check_episode_arrays(os.fspath(path), spec, idx, count, ratio)
    if fixed_ratios:
      check_fixed_arrays(os.fspath(path), data, [spec], fixed_ratios)
    mask = (np.arange(spec.max_support)[None] < count[:, None]).astype(np.float32)
    out[spec.name] = {"idx": idx.astype(np.int32), "mask": mask, "ratio": ratio.astype(np.float32)}
  sizes = {n: e["idx"].shape[0] for n, e in out.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(f"Episode file {os.fspath(path)!r}: the modalities have different numbers "
                     f"of signals {sizes}.")
  return out


def _check_episode_arrays(path: str, spec: ModalitySpec, idx, count, ratio) -> None:
  """Counts in [1, max_support], distinct support indices within each count, ratios in [0, 1]."""
  where = f"Episode file {path!r}: {spec.name}"
  n = idx.shape[0]
  if count.shape != (n,) or ratio.shape != (n,):
    raise ValueError(f"{where}/count and /ratio must have shape [{n}] (one per signal); got "
                     f"{count.shape} and {ratio.shape}.")
  if count.dtype.kind not in "iu" or count.min() < 1 or count.max() > spec.max_support:
    bad = np.flatnonzero((count < 1) | (count > spec.max_support))[:5].tolist()
    raise ValueError(f"{where}/count must be integers in [1, {spec.max_support}] (the support "
                     f"size); signals {bad} have {count[bad].tolist()} (dtype {count.dtype}).")
  if not (np.isfinite(ratio).all() and ratio.min() >= 0 and ratio.max() <= 1):
    raise ValueError(f"{where}/ratio must be finite and in [0, 1].")
  inside = np.arange(spec.max_support)[None] < count[:, None]
  ordered = np.sort(np.where(inside, idx, -1 - np.arange(spec.max_support)[None]), axis=1)
  repeated = np.flatnonzero((np.diff(ordered, axis=1) == 0).any(axis=1))
  if repeated.size:
    raise ValueError(f"{where}/idx repeats a point within the support of signals "
                     f"{repeated[:5].tolist()}; a support holds distinct points.")


def support_membership(idx: jax.Array, mask: jax.Array, num_points: int) -> jax.Array:
  """Scatters a support into a grid mask: `[..., S]` -> float32 `[..., N]` (1 = in support)."""
  flat_idx = idx.reshape(-1, idx.shape[-1])
  flat_mask = mask.reshape(-1, mask.shape[-1])
  grid = jax.vmap(lambda i, m: jnp.zeros((num_points,), jnp.float32).at[i].max(m))(
      flat_idx, flat_mask)
  return grid.reshape(idx.shape[:-1] + (num_points,))


def episode_for(episode: Mapping[str, Mapping[str, jax.Array]], names: Sequence[str]) -> Episode:
  """Restricts an episode to the given modality names (clear error if one is missing)."""
  missing = [n for n in names if n not in episode]
  if missing:
    raise ValueError(f"Episode lacks modalities {missing}; it has {sorted(episode)}.")
  return {n: dict(episode[n]) for n in names}
