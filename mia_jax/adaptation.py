"""The inner loop (docs/method.md section 4): K update-rule steps on the latents, as one `lax.scan`.

    z^0 = meta-learned initial latents
    for k in 0..K-1:   g = dL_support(z^k)/dz ;  (u, z) = rule.apply(params, g, z^k) ;  z^{k+1} = z - u

Everything is batched: every modality and signal is adapted at once (same-signature modalities
stacked and vmapped inside `MultimodalINR`), and the update rule sees all modalities together
(so it can fuse them). The meta-gradient flows through all K steps (second order) unless
`first_order=True`, which stops the gradient through `dL/dz`.

Inputs are keyed by modality name:

  batch:   {name: {"y": [B, N, d_out], "amplitude": [B] (optional)}}
  episode: {name: {"idx": int32 [B, S], "mask": [B, S], "ratio": [B]}}
  latents: {name: [B, T, W]}  (tokens, see `mia_jax.tokens`)
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from mia_jax import sampling
from mia_jax.model import MultimodalINR, cast_floats, is_lowered
from mia_jax.rules.base import UpdateRule

PyTree = Any
ERROR_KINDS = ("generalization", "memorization", "full")  # which points an error is taken over


def error_normaliser(spec, amplitude: jax.Array) -> jax.Array:
  """Per-signal divisor of reported errors: `amplitude^2` or ones. `[B]` -> `[B]`."""
  if spec.error_normaliser == "amplitude":
    return jnp.square(amplitude)
  return jnp.ones_like(amplitude)


def prepare_batch(model: MultimodalINR, batch: Mapping[str, Mapping[str, jax.Array]]
                  ) -> dict[str, dict[str, jax.Array]]:
  """Checks a batch against the specs; returns `{name: {"y": [B, N, d_out], "norm": [B]}}`."""
  out = {}
  for spec in model.specs:
    if spec.name not in batch:
      raise ValueError(f"Batch lacks modality {spec.name!r}; it has {sorted(batch)}.")
    y = jnp.asarray(batch[spec.name]["y"], jnp.float32)
    if y.shape[1:] != (spec.num_points, spec.d_out):
      raise ValueError(f"Modality {spec.name!r}: expected values [B, {spec.num_points}, "
                       f"{spec.d_out}], got {y.shape}.")
    amp = batch[spec.name].get("amplitude")
    amp = jnp.ones(y.shape[:1], jnp.float32) if amp is None else jnp.asarray(amp, jnp.float32)
    out[spec.name] = {"y": y, "norm": error_normaliser(spec, amp)}
  return out


def per_signal_support_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked mean over support points of `||f - y||^2 / d_out`. `[..., S, d]` -> `[...]`."""
  sq = jnp.mean(jnp.square(pred - target), axis=-1)
  return jnp.sum(sq * mask, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)


def grid_errors(pred: jax.Array, target: jax.Array, in_support: jax.Array,
                norm: jax.Array) -> dict[str, jax.Array]:
  """Per-signal normalised errors on the full grid.

  Args:
    pred, target: `[B, N, d_out]`.
    in_support: `[B, N]`, 1 where the point is in the support.
    norm: `[B]` error divisors.

  Returns:
    `{"generalization", "memorization", "full"}` -> `[B]`. Generalization is 0 for a signal
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
          batch: Mapping, episode: Mapping, num_steps: int, *, first_order: bool = False,
          remat: bool = False, track: bool = False,
          unroll: int = 1, initial: bool = False,
          compute_dtype: Any = None) -> tuple[dict, dict, dict]:
  """Adapts the latents of every modality on its support set.

  Args:
    model: the multimodal INR.
    rule: the update rule (`mia_jax.rules`).
    params: meta-parameters `{"inr": model params, "rule": rule params}`.
    buffers: the model's fixed buffers.
    batch: modality-keyed values (see the module docstring).
    episode: modality-keyed supports.
    num_steps: K, static.
    first_order: stop the gradient through `dL/dz` (first-order meta-gradient).
    remat: recompute each inner step in the backward pass (`jax.checkpoint`), saving memory.
    track: also return the per-signal generalization/memorization/full errors on the full grid
      after every step 0..K (costs one full-grid prediction per step).
    unroll: inner steps per iteration of the compiled loop (`lax.scan`'s `unroll`): 1 keeps the
      program size flat in K; K unrolls fully (a little faster, compile time grows with K).
    initial: also return the full-grid prediction before adaptation (`aux["initial_prediction"]`).
    compute_dtype: e.g. `jnp.bfloat16`: the INRs and the update rule compute in it (their
      parameters, inputs and latents cast on entry, their outputs cast back to float32); the
      parameters, the latents carried from step to step and the losses stay float32. None or
      float32: everything in float32.

  Returns:
    (latents, prediction, aux):
      latents: `{name: [B, T, W]}` after K steps;
      prediction: `{name: [B, N, d_out]}` on the full grid after K steps;
      aux: `{"support_loss": {name: [K, B]}}` (the inner objective before each step), plus,
        if `track`, `{"errors": {measure: {name: [K + 1, B]}}}`, and if `initial`,
        `{"initial_prediction": {name: [B, N, d_out]}}`.
  """
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}.")
  inr_params, rule_params = params["inr"], params["rule"]
  low = is_lowered(compute_dtype)
  predict = functools.partial(model.predict_stacked, compute_dtype=compute_dtype)
  batch = prepare_batch(model, batch)
  stacked = model.stack(inr_params, buffers)  # once, outside the loop
  if low:  # cast once here, not in every inner step
    stacked, rule_params = cast_floats((stacked, rule_params), compute_dtype)

  def apply_rule(grads, latents):
    """The rule's update; with `compute_dtype`, computed in it and returned as float32."""
    if not low:
      return rule.apply(rule_params, grads, latents)
    out = rule.apply(rule_params, *cast_floats((grads, latents), compute_dtype))
    return cast_floats(out, jnp.float32)

  s_coords, s_values, in_support = {}, {}, {}
  for spec in model.specs:
    idx = episode[spec.name]["idx"]
    s_coords[spec.name] = model.coords[spec.name][idx]                       # [B, S, d_in]
    s_values[spec.name] = jnp.take_along_axis(batch[spec.name]["y"], idx[..., None], axis=1)
    in_support[spec.name] = sampling.support_membership(idx, episode[spec.name]["mask"],
                                                        spec.num_points)

  def support_loss(latents):
    pred = predict(stacked, latents, s_coords)
    per_signal = {k: per_signal_support_loss(pred[k], s_values[k], episode[k]["mask"])
                  for k in pred}
    total = sum(jnp.sum(v) for v in per_signal.values())  # signals are independent: sum is exact
    return total, per_signal

  def errors_of(pred):
    errs = {k: grid_errors(pred[k], batch[k]["y"], in_support[k], batch[k]["norm"]) for k in pred}
    return {m: {k: errs[k][m] for k in errs} for m in ERROR_KINDS}

  def step(latents, _):
    (_, per_signal), grads = jax.value_and_grad(support_loss, has_aux=True)(latents)
    if first_order:
      grads = jax.lax.stop_gradient(grads)
    updates, latents_base = apply_rule(grads, latents)
    new_latents = {k: latents_base[k] - updates[k] for k in latents}
    out = {"support_loss": per_signal}
    if track:
      out["errors"] = errors_of(predict(stacked, latents))
    return new_latents, out

  if remat:
    step = jax.checkpoint(step)
  batch_size = next(iter(batch.values()))["y"].shape[0]
  latents0 = model.initial_latents(inr_params, batch_size)
  latents, traj = jax.lax.scan(step, latents0, None, length=num_steps,
                               unroll=max(1, min(int(unroll), max(num_steps, 1))))
  prediction = predict(stacked, latents)
  aux = {"support_loss": traj["support_loss"]}
  if initial:
    aux["initial_prediction"] = predict(stacked, latents0)
  if track:
    final = errors_of(prediction)
    aux["errors"] = jax.tree.map(lambda t, f: jnp.concatenate([t, f[None]], 0),
                                 traj["errors"], final)
  return latents, prediction, aux
