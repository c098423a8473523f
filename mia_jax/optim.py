"""The outer (meta) optimiser, built from optax pieces (docs/method.md section 6).

`MetaLearner` takes any `optax.GradientTransformation` of the meta-parameters
`{"inr": ..., "rule": ..., "log_var": ...}`. Two wrappers belong to the method rather than to the
optimiser, so `MetaLearner` puts them around whichever one it is given:

* `with_outer_lr(tx, rule)`: multiplies the `rule` part of `tx`'s updates by the rule's
  per-parameter outer-rate multipliers (`UpdateRule.outer_lr`, e.g. the gradient scaler's 2x of
  the released code);
* `skip_nonfinite(tx)`: a step whose loss or gradient is not finite leaves the parameters and
  `tx`'s state as they were (like `optax.apply_if_finite`, without its counters).

Neither adds state, so an optimiser's state (and a checkpoint of it) is the same with or without
them. The default optimiser is `default_optimizer(...)`: global-norm clipping (optional), then
Adam at a constant rate or on a warm-up + cosine schedule.

    tx = optim.default_optimizer(1e-4, grad_clip=1.0)            # today's default, clipped
    tx = optax.sgd(optax.cosine_decay_schedule(1e-3, 10_000))     # any other
    learner = MetaLearner(model, rule, meta_config, optimizer=tx)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from mia_jax.rules import UpdateRule

PyTree = Any
LR_SCHEDULES = ("constant", "warmup_cosine")  # MetaConfig.lr_schedule


def learning_rate_schedule(
  learning_rate: float, schedule: str = "constant", warmup_steps: int = 0, decay_steps: int = 0
) -> optax.ScalarOrSchedule:
  """The outer learning rate: a constant, or a linear warm-up then a cosine decay to 0.

  Args:
    learning_rate: the (peak) rate, > 0.
    schedule: one of `LR_SCHEDULES`.
    warmup_steps: `warmup_cosine`: steps of the linear rise from 0 (>= 0).
    decay_steps: `warmup_cosine`: the schedule's length, warm-up included (> warmup_steps);
      the rate is 0 from there on.

  Returns:
    A float (`constant`, so Adam's state and results are as before schedules existed) or an optax
    schedule.
  """
  if schedule not in LR_SCHEDULES:
    raise ValueError(f"Unknown lr_schedule {schedule!r}; allowed: {', '.join(LR_SCHEDULES)}.")
  if not 0 < learning_rate < float("inf"):
    raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate}.")
  if schedule == "constant":
    return learning_rate
  if warmup_steps < 0 or decay_steps <= warmup_steps:
    raise ValueError(
      f"lr_schedule 'warmup_cosine' needs 0 <= warmup_steps < decay_steps, got "
      f"warmup_steps={warmup_steps}, decay_steps={decay_steps}."
    )
  return optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps, decay_steps)


def default_optimizer(
  learning_rate: float = 1e-4,
  grad_clip: float = 0.0,
  schedule: str = "constant",
  warmup_steps: int = 0,
  decay_steps: int = 0,
) -> optax.GradientTransformation:
  """Adam after an optional global-norm clip of the meta-gradient (`grad_clip` 0: none).

  The rate is `learning_rate_schedule(learning_rate, schedule, warmup_steps, decay_steps)`.
  """
  if not 0 <= grad_clip < float("inf"):
    raise ValueError(f"grad_clip must be finite and >= 0 (0: no clipping), got {grad_clip}.")
  parts = [optax.adam(learning_rate_schedule(learning_rate, schedule, warmup_steps, decay_steps))]
  if grad_clip:
    parts.insert(0, optax.clip_by_global_norm(grad_clip))
  return optax.chain(*parts)


def with_outer_lr(
  tx: optax.GradientTransformation, rule: UpdateRule
) -> optax.GradientTransformationExtraArgs:
  """`tx`, with the `rule` part of its updates multiplied by `rule.outer_lr` (if it has one).

  The multipliers act on `tx`'s output (for Adam: the step, after its rate), so a multiplier of 2
  is a doubled outer rate for those parameters. The state is `tx`'s.
  """
  tx = optax.with_extra_args_support(tx)
  if rule.outer_lr is None:
    return tx
  outer_lr = rule.outer_lr

  def update(updates, state, params=None, **extra):
    updates, state = tx.update(updates, state, params, **extra)
    scale = outer_lr(updates["rule"])
    return dict(updates, rule=jax.tree.map(jnp.multiply, updates["rule"], scale)), state

  return optax.GradientTransformationExtraArgs(tx.init, update)


def skip_nonfinite(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """`tx`, skipping a step whose gradient (or loss, passed as `value=`) is not finite.

  A skipped step returns zero updates and `tx`'s state unchanged, so the parameters and the
  optimiser stay as they were. Unlike `optax.apply_if_finite` it keeps no counters (the state is
  `tx`'s, so checkpoints do not change) and also looks at the loss.
  """
  tx = optax.with_extra_args_support(tx)

  def update(updates, state, params=None, *, value=None, **extra):
    finite = jnp.isfinite(optax.tree.norm(updates))
    if value is not None:
      finite = finite & jnp.all(jnp.isfinite(value))
    new_updates, new_state = tx.update(updates, state, params, value=value, **extra)
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
    new_updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), new_updates)
    return new_updates, new_state

  return optax.GradientTransformationExtraArgs(tx.init, update)
