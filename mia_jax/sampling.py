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

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mia_jax import _moved
from mia_jax.modalities import ModalitySpec
from mia_jax.modalities import name_hash as _name_hash

# {modality: {"idx", "mask", "ratio": [B, ...]}}: jax arrays inside a step, numpy on the host.
Episode = dict[str, dict[str, jax.Array | np.ndarray]]
SUPPORT_COUNTS = ("floor", "closed")


def check_support_counts(counts: str) -> str:
  if counts not in SUPPORT_COUNTS:
    raise ValueError(f"Unknown support_counts {counts!r}; allowed: {', '.join(SUPPORT_COUNTS)}.")
  return counts


def sample_modality_support(
  rng: jax.Array, spec: ModalitySpec, batch_size: int, counts: str = "floor"
) -> dict:
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


def sample_episode(
  rng: jax.Array, specs: Sequence[ModalitySpec], batch_size: int, counts: str = "floor"
) -> Episode:
  """Independent supports for every modality, each from `fold_in(rng, hash(name))`.

  Keyed by name, not position, so a modality sees the same training supports whichever other
  modalities are configured (paired modality-replacement studies). `counts`: "floor" or
  "closed" (the module docstring).
  """
  return {
    spec.name: sample_modality_support(
      jax.random.fold_in(rng, _name_hash(spec.name)), spec, batch_size, counts
    )
    for spec in specs
  }


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


def ratio_label(ratio: float) -> str:
  """The results-key suffix of a fixed support ratio: `ratio0.01`."""
  return f"ratio{ratio:g}"


def fixed_support_count(spec: ModalitySpec, ratio: float) -> int:
  """`floor(r' N)` with `r'` the ratio clipped to the modality's range; in [1, max_support]."""
  lo, hi = spec.ratio_range
  r = min(max(float(ratio), lo), hi)
  return int(min(max(1, np.floor(r * spec.num_points + 1e-6)), spec.max_support))


def fixed_ratio_episodes(
  episode: Mapping[str, Mapping[str, np.ndarray]],
  specs: Sequence[ModalitySpec],
  ratios: Sequence[float],
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
      ep[spec.name] = {
        "idx": idx,
        "mask": np.array(mask),
        "ratio": np.full(idx.shape[0], count / spec.num_points, np.float32),
      }
    out[ratio_label(r)] = ep
  return out


def slice_episode(episode: Episode, start: int, stop: int) -> Episode:
  return {m: {k: v[start:stop] for k, v in ep.items()} for m, ep in episode.items()}


def support_membership(idx: jax.Array, mask: jax.Array, num_points: int) -> jax.Array:
  """Scatters a support into a grid mask: `[..., S]` -> float32 `[..., N]` (1 = in support)."""
  flat_idx = idx.reshape(-1, idx.shape[-1])
  flat_mask = mask.reshape(-1, mask.shape[-1])
  grid = jax.vmap(lambda i, m: jnp.zeros((num_points,), jnp.float32).at[i].max(m))(
    flat_idx, flat_mask
  )
  return grid.reshape(idx.shape[:-1] + (num_points,))


def episode_for(episode: Mapping[str, Mapping[str, jax.Array]], names: Sequence[str]) -> Episode:
  """Restricts an episode to the given modality names (clear error if one is missing)."""
  missing = [n for n in names if n not in episode]
  if missing:
    raise ValueError(f"Episode lacks modalities {missing}; it has {sorted(episode)}.")
  return {n: dict(episode[n]) for n in names}


__getattr__ = _moved.module_getattr(
  "mia_jax.sampling",
  {
    **{
      n: f"mia_jax.episodes_file.{n}"
      for n in (
        "save_episodes",
        "load_episodes",
        "write_episode_arrays",
        "fixed_arrays",
        "check_fixed_arrays",
      )
    },
    "parse_fixed_ratios": "experiments.syntax.parse_fixed_ratios",
  },
)
