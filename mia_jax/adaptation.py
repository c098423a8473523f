"""The inner loop (docs/method.md section 4): K update-rule steps on the latents, as one `lax.scan`.

    z^0 = meta-learned initial latents
    for k in 0..K-1:
      g = dL_support(z^k)/dz ;  (u, z) = rule.apply(params, g, z^k) ;  z^{k+1} = z - u

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


def prepare_batch(
  model: MultimodalINR, batch: Mapping[str, Mapping[str, jax.Array]]
) -> dict[str, dict[str, jax.Array]]:
  """Checks a batch against the specs; returns `{name: {"y": [B, N, d_out], "norm": [B]}}`."""
  out = {}
  for spec in model.specs:
    if spec.name not in batch:
      raise ValueError(f"Batch lacks modality {spec.name!r}; it has {sorted(batch)}.")
    y = jnp.asarray(batch[spec.name]["y"], jnp.float32)
    if y.shape[1:] != (spec.num_points, spec.d_out):
      raise ValueError(
        f"Modality {spec.name!r}: expected values [B, {spec.num_points}, "
        f"{spec.d_out}], got {y.shape}."
      )
    amp = batch[spec.name].get("amplitude")
    amp = jnp.ones(y.shape[:1], jnp.float32) if amp is None else jnp.asarray(amp, jnp.float32)
    out[spec.name] = {"y": y, "norm": error_normaliser(spec, amp)}
  return out


def per_signal_support_loss(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked mean over support points of `||f - y||^2 / d_out`. `[..., S, d]` -> `[...]`."""
  sq = jnp.mean(jnp.square(pred - target), axis=-1)
  return jnp.sum(sq * mask, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)


def grid_errors(
  pred: jax.Array, target: jax.Array, in_support: jax.Array, norm: jax.Array
) -> dict[str, jax.Array]:
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


def _inner_loop(
  model: MultimodalINR,
  rule: UpdateRule,
  params: PyTree,
  buffers: PyTree,
  s_coords: Mapping,
  s_values: Mapping,
  s_mask: Mapping,
  batch_size: int,
  num_steps: int,
  *,
  first_order: bool,
  remat: bool,
  unroll: int,
  compute_dtype: Any,
  observe=None,
):
  """The scan both `adapt` and `adapt_to_observations` run.

  Args:
    s_coords, s_values, s_mask: per modality, the support's `[B, S, d_in]` coordinates,
      `[B, S, d_out]` values and `[B, S]` mask (modalities of one group share S).
    observe: optional `f(predict, latents) -> pytree`, evaluated before every step and stacked
      over the steps (`adapt`'s error tracking).

  Returns:
    (latents0, latents, traj, predict): the initial and adapted latents, the per-step outputs
    (`{"support_loss": {name: [K, B]}}` plus `"observed"` with `observe`) and
    `predict(latents, coords=None)` with the variables stacked (and cast) once.
  """
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}.")
  inr_params, rule_params = params["inr"], params["rule"]
  low = is_lowered(compute_dtype)
  stacked = model.stack(inr_params, buffers)  # once, outside the loop
  if low:  # cast once here, not in every inner step
    stacked, rule_params = cast_floats((stacked, rule_params), compute_dtype)

  def predict(latents, coords=None):
    return model.predict_stacked(stacked, latents, coords, compute_dtype=compute_dtype)

  def apply_rule(grads, latents):
    """The rule's update; with `compute_dtype`, computed in it and returned as float32."""
    if not low:
      return rule.apply(rule_params, grads, latents)
    out = rule.apply(rule_params, *cast_floats((grads, latents), compute_dtype))
    return cast_floats(out, jnp.float32)

  def support_loss(latents):
    pred = predict(latents, s_coords)
    per_signal = {k: per_signal_support_loss(pred[k], s_values[k], s_mask[k]) for k in pred}
    total = sum(jnp.sum(v) for v in per_signal.values())  # signals are independent: sum is exact
    return total, per_signal

  def step(latents, _):
    (_, per_signal), grads = jax.value_and_grad(support_loss, has_aux=True)(latents)
    if first_order:
      grads = jax.lax.stop_gradient(grads)
    updates, latents_base = apply_rule(grads, latents)
    new_latents = {k: latents_base[k] - updates[k] for k in latents}
    out = {"support_loss": per_signal}
    if observe is not None:
      out["observed"] = observe(predict, latents)
    return new_latents, out

  if remat:
    step = jax.checkpoint(step)
  latents0 = model.initial_latents(inr_params, batch_size)
  latents, traj = jax.lax.scan(
    step, latents0, None, length=num_steps, unroll=max(1, min(int(unroll), max(num_steps, 1)))
  )
  return latents0, latents, traj, predict


def adapt(
  model: MultimodalINR,
  rule: UpdateRule,
  params: PyTree,
  buffers: PyTree,
  batch: Mapping,
  episode: Mapping,
  num_steps: int,
  *,
  first_order: bool = False,
  remat: bool = False,
  track: bool = False,
  unroll: int = 1,
  initial: bool = False,
  compute_dtype: Any = None,
) -> tuple[dict, dict, dict]:
  """Adapts the latents of every modality on its support set (grid points of known signals).

  For observations that are not grid points, or signals known only where observed, use
  `adapt_to_observations`; both run the same loop.

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
  batch = prepare_batch(model, batch)
  s_coords, s_values, s_mask, in_support = {}, {}, {}, {}
  for spec in model.specs:
    idx = episode[spec.name]["idx"]
    s_coords[spec.name] = model.coords[spec.name][idx]  # [B, S, d_in]
    s_values[spec.name] = jnp.take_along_axis(batch[spec.name]["y"], idx[..., None], axis=1)
    s_mask[spec.name] = episode[spec.name]["mask"]
    in_support[spec.name] = sampling.support_membership(
      idx, episode[spec.name]["mask"], spec.num_points
    )

  def errors_of(pred):
    errs = {k: grid_errors(pred[k], batch[k]["y"], in_support[k], batch[k]["norm"]) for k in pred}
    return {m: {k: errs[k][m] for k in errs} for m in ERROR_KINDS}

  observe = (lambda predict, latents: errors_of(predict(latents))) if track else None
  batch_size = next(iter(batch.values()))["y"].shape[0]
  latents0, latents, traj, predict = _inner_loop(
    model,
    rule,
    params,
    buffers,
    s_coords,
    s_values,
    s_mask,
    batch_size,
    num_steps,
    first_order=first_order,
    remat=remat,
    unroll=unroll,
    compute_dtype=compute_dtype,
    observe=observe,
  )
  prediction = predict(latents)
  aux = {"support_loss": traj["support_loss"]}
  if initial:
    aux["initial_prediction"] = predict(latents0)
  if track:
    final = errors_of(prediction)
    aux["errors"] = jax.tree.map(
      lambda t, f: jnp.concatenate([t, f[None]], 0), traj["observed"], final
    )
  return latents, prediction, aux


def check_observations(
  model: MultimodalINR, observations: Mapping[str, Mapping]
) -> tuple[int, dict[str, dict[str, jax.Array]]]:
  """Checks observations against the model's modalities and fills in what may be left out.

  Returns `(batch_size, {name: {"coords", "values", "mask"}})` for every modality of the
  model: a modality absent from `observations` (or given with `S = 0` points) gets one masked
  point, so it has no observation in any signal; a missing mask means every point is observed.
  Modalities adapted together (one `model.groups` entry) are padded with masked points to the
  same `S`.

  Raises:
    ValueError: an unknown modality, a missing or misshapen array, batch sizes that differ,
      or no observed modality at all.
  """
  known = [s.name for s in model.specs]
  if not isinstance(observations, Mapping):
    raise ValueError(
      f"observations must be a dict {{modality: {{'coords', 'values', 'mask'}}}}; "
      f"got {type(observations).__name__}."
    )
  unknown = [n for n in observations if n not in known]
  if unknown:
    raise ValueError(
      f"Observations name modalities {unknown} the model does not have; it has {known}."
    )
  if not observations:
    raise ValueError(f"No observations: give at least one of the modalities {known}.")
  out, sizes = {}, {}
  for spec in model.specs:
    if spec.name not in observations:
      continue
    obs = observations[spec.name]
    if not isinstance(obs, Mapping) or "coords" not in obs or "values" not in obs:
      raise ValueError(
        f"Observations of {spec.name!r} need 'coords' [B, S, {spec.d_in}] and "
        f"'values' [B, S, {spec.d_out}] (and optionally 'mask' [B, S]); got "
        f"{sorted(obs) if isinstance(obs, Mapping) else type(obs).__name__}."
      )
    coords = jnp.asarray(obs["coords"], jnp.float32)
    values = jnp.asarray(obs["values"], jnp.float32)
    if coords.ndim != 3 or coords.shape[-1] != spec.d_in:
      raise ValueError(
        f"Observations of {spec.name!r}: coords must be [B, S, {spec.d_in}] "
        f"(the modality's coordinate dimension d_in={spec.d_in}); got "
        f"{tuple(coords.shape)}."
      )
    if values.shape != coords.shape[:2] + (spec.d_out,):
      raise ValueError(
        f"Observations of {spec.name!r}: values must be [B, S, {spec.d_out}] "
        f"= {coords.shape[:2] + (spec.d_out,)} to match coords "
        f"{tuple(coords.shape)} and d_out={spec.d_out}; got "
        f"{tuple(values.shape)}."
      )
    mask = obs.get("mask")
    mask = (
      jnp.ones(coords.shape[:2], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    )
    if mask.shape != coords.shape[:2]:
      raise ValueError(
        f"Observations of {spec.name!r}: mask must be [B, S] = "
        f"{coords.shape[:2]}; got {tuple(mask.shape)}."
      )
    out[spec.name] = {"coords": coords, "values": values, "mask": mask}
    sizes[spec.name] = coords.shape[0]
  if len(set(sizes.values())) > 1:
    raise ValueError(
      f"Observations hold different numbers of signals per modality: {sizes}; "
      "every modality needs the same batch B (mask out what is not observed)."
    )
  batch_size = next(iter(sizes.values()))
  for spec in model.specs:
    if spec.name not in out or out[spec.name]["coords"].shape[1] == 0:
      out[spec.name] = {
        "coords": jnp.zeros((batch_size, 1, spec.d_in), jnp.float32),
        "values": jnp.zeros((batch_size, 1, spec.d_out), jnp.float32),
        "mask": jnp.zeros((batch_size, 1), jnp.float32),
      }
  for group in model.groups:
    s_max = max(out[n]["coords"].shape[1] for n in group.names)
    for n in group.names:
      pad = s_max - out[n]["coords"].shape[1]
      if pad:
        out[n] = {
          k: jnp.pad(v, [(0, 0), (0, pad)] + [(0, 0)] * (v.ndim - 2)) for k, v in out[n].items()
        }
  return batch_size, out


def adapt_to_observations(
  model: MultimodalINR,
  rule: UpdateRule,
  params: PyTree,
  buffers: PyTree,
  observations: Mapping[str, Mapping],
  num_steps: int,
  *,
  query: Mapping[str, jax.Array] | None = None,
  first_order: bool = False,
  remat: bool = False,
  unroll: int = 1,
  compute_dtype: Any = None,
) -> tuple[dict, dict, dict]:
  """Adapts the latents to observations alone: a few points of each signal, anywhere.

  The inner loop of `adapt` (the same K rule steps on the same support loss) with the support
  given as coordinates and values instead of grid indices into known signals, so it reconstructs
  signals nobody has on the grid. Coordinates are in the model's domain, [-1, 1] per axis (the
  grid's corners are -1 and 1; see `ModalitySpec.coordinates`); the INR can be evaluated outside
  it, but was never trained there.

  Args:
    model, rule, params, buffers, num_steps: as `adapt`.
    observations: `{name: {"coords": [B, S, d_in], "values": [B, S, d_out], "mask": [B, S]}}`;
      `mask` (1 = observed, 0 = padding) defaults to all ones. A modality may be left out, or
      masked out in some signals: its loss is then zero, and only a rule that fuses modalities
      (MIA's SFTs) moves its latents, from the other modalities' states (cross-modal
      completion, docs/results.md); with a per-modality rule (CAVIA, MetaSGD, ...) its latents
      stay at the learned initialisation.
    query: `{name: [B, P, d_in]}` coordinates to predict at after adaptation; None (or a
      modality left out) means the modality's training grid.
    first_order, remat, unroll, compute_dtype: as `adapt`.

  Returns:
    (latents, prediction, aux): the adapted latents `{name: [B, T, W]}`, the predictions
    `{name: [B, P, d_out]}` at `query` (`[B, N, d_out]` on the grid), and
    `{"support_loss": {name: [K, B]}}` (the masked mean squared error on the observations
    before each step).
  """
  batch_size, obs = check_observations(model, observations)
  latents0, latents, traj, predict = _inner_loop(
    model,
    rule,
    params,
    buffers,
    {k: v["coords"] for k, v in obs.items()},
    {k: v["values"] for k, v in obs.items()},
    {k: v["mask"] for k, v in obs.items()},
    batch_size,
    num_steps,
    first_order=first_order,
    remat=remat,
    unroll=unroll,
    compute_dtype=compute_dtype,
  )
  del latents0
  return latents, predict(latents, query), {"support_loss": traj["support_loss"]}
