"""The inner loop (MIA_SPEC section 4): K update-rule steps on the latents, as one `lax.scan`.

    z^0 = meta-learned initial latents
    for k in 0..K-1:   g = dL_support(z^k)/dz ;  (u, z) = rule(g, z^k) ;  z^{k+1} = z - u

Everything is batched: every group's modalities `[G]` and signals `[B]` are adapted at once, and
the update rule sees all groups together (so it can fuse modalities). The meta-gradient flows
through all K steps (second order) unless `first_order=True`, which stops the gradient through
`dL/dz`.

Group-keyed inputs (see `stack_groups`):

  batch:   {group: {"y": [G, B, N, d_out], "norm": [G, B]}}      (norm divides reported errors)
  episode: {group: {"idx": int32 [G, B, S], "mask": [G, B, S], "ratio": [G, B]}}
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from mia_jax import sampling
from mia_jax.model import MultimodalINR
from mia_jax.modalities import ModalityGroup
from mia_jax.rules.base import UpdateRule

PyTree = Any
MEASURES = ("generalization", "memorization", "full")


def error_normaliser(spec, amplitude: jax.Array) -> jax.Array:
  """Per-signal divisor of reported errors: `amplitude^2` or ones. `[B]` -> `[B]`."""
  if spec.error_normaliser == "amplitude":
    return jnp.square(amplitude)
  return jnp.ones_like(amplitude)


def stack_groups(groups: tuple[ModalityGroup, ...], batch: Mapping[str, Mapping[str, jax.Array]],
                 episode: Mapping[str, Mapping[str, jax.Array]]) -> tuple[dict, dict]:
  """Modality-keyed batch and episode -> group-keyed, stacked on a leading `[G]` axis.

  Args:
    batch: `{name: {"y": [B, N, d_out], "amplitude": [B] (optional)}}`.
    episode: `{name: {"idx": [B, S], "mask": [B, S], "ratio": [B]}}`.
  """
  gb, ge = {}, {}
  for g in groups:
    missing = [n for n in g.names if n not in batch]
    if missing:
      raise ValueError(f"Batch lacks modalities {missing}; it has {sorted(batch)}.")
    ys, norms = [], []
    for spec in g.specs:
      y = jnp.asarray(batch[spec.name]["y"], jnp.float32)
      if y.shape[1:] != (spec.num_points, spec.d_out):
        raise ValueError(f"Modality {spec.name!r}: expected values [B, {spec.num_points}, "
                         f"{spec.d_out}], got {y.shape}.")
      amp = batch[spec.name].get("amplitude")
      amp = jnp.ones(y.shape[:1], jnp.float32) if amp is None else jnp.asarray(amp, jnp.float32)
      ys.append(y)
      norms.append(error_normaliser(spec, amp))
    gb[g.name] = {"y": jnp.stack(ys), "norm": jnp.stack(norms)}
    ge[g.name] = {k: jnp.stack([jnp.asarray(episode[n][k]) for n in g.names])
                  for k in ("idx", "mask", "ratio")}
  return gb, ge


def gather_support(model: MultimodalINR, batch: dict, episode: dict) -> tuple[dict, dict]:
  """Support coordinates `{group: [G, B, S, d_in]}` and values `{group: [G, B, S, d_out]}`."""
  coords, values = {}, {}
  for g in model.groups:
    idx = episode[g.name]["idx"]
    coords[g.name] = model.coords[g.name][idx]
    values[g.name] = jnp.take_along_axis(batch[g.name]["y"], idx[..., None], axis=2)
  return coords, values


def per_signal_support_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked mean over support points of `||f - y||^2 / d_out`. `[G, B, S, d]` -> `[G, B]`."""
  sq = jnp.mean(jnp.square(pred - target), axis=-1)
  return jnp.sum(sq * mask, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)


def grid_errors(pred: jax.Array, target: jax.Array, in_support: jax.Array,
                norm: jax.Array) -> dict[str, jax.Array]:
  """Per-signal normalised errors on the full grid.

  Args:
    pred, target: `[G, B, N, d_out]`.
    in_support: `[G, B, N]`, 1 where the point is in the support.
    norm: `[G, B]` error divisors.

  Returns:
    `{"generalization", "memorization", "full"}` -> `[G, B]`. Generalization is 0 for a signal
    whose support is the whole grid (see `evaluation` for how such signals are excluded).
  """
  sq = jnp.mean(jnp.square(pred - target), axis=-1) / norm[..., None]
  out_support = 1.0 - in_support
  return {
      "generalization": jnp.sum(sq * out_support, -1) / jnp.maximum(jnp.sum(out_support, -1), 1.0),
      "memorization": jnp.sum(sq * in_support, -1) / jnp.maximum(jnp.sum(in_support, -1), 1.0),
      "full": jnp.mean(sq, -1),
  }


def adapt(model: MultimodalINR, rule: UpdateRule, params: PyTree, buffers: PyTree,
          batch: dict, episode: dict, num_steps: int, *, first_order: bool = False,
          remat: bool = False, track: bool = False,
          unroll: int = 1) -> tuple[dict, dict, dict]:
  """Adapts the latents of every modality on its support set.

  Args:
    model: the multimodal INR.
    rule: the update rule.
    params: meta-parameters `{"inr": ..., "rule": ...}`.
    buffers: the model's fixed buffers.
    batch: group-keyed values (see module docstring).
    episode: group-keyed supports.
    num_steps: K, static.
    first_order: stop the gradient through `dL/dz` (first-order meta-gradient).
    remat: recompute each inner step in the backward pass (`jax.checkpoint`), saving memory.
    track: also return the per-signal generalization/memorization/full errors on the full grid
      after every step 0..K (costs one full-grid prediction per step).
    unroll: inner steps per iteration of the compiled loop (`lax.scan`'s `unroll`): 1 keeps the
      program size flat in K; K unrolls fully (a little faster, compile time grows with K).

  Returns:
    (latents, prediction, aux):
      latents: `{group: [G, B, rank, hidden]}` after K steps;
      prediction: `{group: [G, B, N, d_out]}` on the full grid after K steps;
      aux: `{"support_loss": {group: [K, G, B]}}` (the inner objective before each step), plus,
        if `track`, `{"errors": {measure: {group: [K + 1, G, B]}}}`.
  """
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}.")
  inr_params, rule_params = params["inr"], params["rule"]
  s_coords, s_values = gather_support(model, batch, episode)
  in_support = {g.name: sampling.support_membership(
      episode[g.name]["idx"], episode[g.name]["mask"], g.spec.num_points) for g in model.groups}

  def support_loss(latents):
    pred = model.predict(inr_params, buffers, latents, s_coords)
    per_signal = {k: per_signal_support_loss(pred[k], s_values[k], episode[k]["mask"])
                  for k in pred}
    total = sum(jnp.sum(v) for v in per_signal.values())  # signals are independent: sum is exact
    return total, per_signal

  def errors_of(pred):
    errs = {k: grid_errors(pred[k], batch[k]["y"], in_support[k], batch[k]["norm"]) for k in pred}
    return {m: {k: errs[k][m] for k in errs} for m in MEASURES}

  def step(latents, _):
    (_, per_signal), grads = jax.value_and_grad(support_loss, has_aux=True)(latents)
    if first_order:
      grads = jax.lax.stop_gradient(grads)
    updates, latents_base = rule.apply(rule_params, grads, latents)
    new_latents = jax.tree.map(lambda z, u: z - u, latents_base, updates)
    out = {"support_loss": per_signal}
    if track:
      out["errors"] = errors_of(model.predict(inr_params, buffers, latents))
    return new_latents, out

  if remat:
    step = jax.checkpoint(step)
  latents0 = model.initial_latents(inr_params, _batch_size(batch))
  latents, traj = jax.lax.scan(step, latents0, None, length=num_steps,
                               unroll=max(1, min(int(unroll), max(num_steps, 1))))
  prediction = model.predict(inr_params, buffers, latents)
  aux = {"support_loss": traj["support_loss"]}
  if track:
    final = errors_of(prediction)
    aux["errors"] = jax.tree.map(lambda t, f: jnp.concatenate([t, f[None]], 0),
                                 traj["errors"], final)
  return latents, prediction, aux


def _batch_size(batch: dict) -> int:
  return next(iter(batch.values()))["y"].shape[1]
