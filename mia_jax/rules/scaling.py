"""Elementwise pieces: the learned gradient scaler and the learning rates (fixed or learned)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mia_jax.rules.base import UpdateRule


def _check_positive(what: str, value: float) -> float:
  value = float(value)
  if not 0 < value < float("inf"):
    raise ValueError(f"{what} must be finite and > 0, got {value}.")
  return value


def gradient_scaler(init_scale: float = 10.0, outer_lr: float = 1.0) -> UpdateRule:
  """`u_m <- s_m * u_m` with a meta-learned scalar `s_m = exp(log_s_m)` per modality (MIA).

  Args:
    init_scale: the initial `s_m` (> 0).
    outer_lr: multiplier of the outer learning rate of `log_s_m` (> 0): its meta-update is
      `outer_lr` times the optimiser's. The released code steps this parameter with two Adam
      optimisers of the same rate, i.e. 2 (the experiments' default); the paper's is 1
      (docs/method.md section 9).

  Parameters: `{name: log_s_m}` (scalars).
  """
  init_scale = _check_positive("gradient_scaler init_scale", init_scale)

  def init(rng, token_shapes):
    del rng
    return {n: jnp.asarray(jnp.log(init_scale), jnp.float32) for n in token_shapes}

  def apply(params, updates, latents):
    return {n: u * jnp.exp(params[n]) for n, u in updates.items()}, dict(latents)

  outer_lr = _check_positive("gradient_scaler outer_lr", outer_lr)
  multipliers = None
  if outer_lr != 1.0:
    multipliers = lambda params: jax.tree.map(lambda _: outer_lr, params)
  return UpdateRule(init, apply, name="scale", outer_lr=multipliers)


def learning_rate(value: float = 1.0) -> UpdateRule:
  """`u <- alpha * u` with a fixed scalar `alpha` (CAVIA's inner learning rate). No parameters."""
  value = _check_positive("learning_rate", value)

  def apply(params, updates, latents):
    del params
    return {n: u * value for n, u in updates.items()}, dict(latents)

  return UpdateRule(lambda rng, shapes: {}, apply, name="lr")


def learned_learning_rate(init: float = 1.0, clip: tuple[float, float] = (0.0, 5.0)) -> UpdateRule:
  """`u <- alpha_m * u` with a meta-learned per-element rate `alpha_m` `[T, W]` (MetaSGD).

  Args:
    init: the initial rate of every element (> 0).
    clip: `(min, max)`; `project` clips the rates into it after every outer step.

  Parameters: `{name: [T, W]}`.
  """
  init_value = _check_positive("learned_learning_rate init", init)
  lo, hi = (float(c) for c in clip)
  if not lo <= init_value <= hi:
    raise ValueError(
      f"learned_learning_rate clip {clip} must satisfy min <= init ({init_value}) <= max."
    )

  def init_fn(rng, token_shapes):
    del rng
    return {n: jnp.full(tuple(s), init_value, jnp.float32) for n, s in token_shapes.items()}

  def apply(params, updates, latents):
    return {n: u * params[n] for n, u in updates.items()}, dict(latents)

  def project(params):
    return {n: jnp.clip(v, lo, hi) for n, v in params.items()}

  return UpdateRule(init_fn, apply, project, name="learned_lr")
