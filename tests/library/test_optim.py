"""The outer optimiser (`mia_jax.optim`): any optax transformation, the default bit-identical to the
hand-written Adam step it replaced, the rule's rate multipliers, the non-finite skip, schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mia_jax import meta_step, optim, sampling
from tests.helpers import random_batch, tiny_learner


def _reference_step(learner, tx, state, batch):
  """The outer step as `MetaLearner.train_step` wrote it before `mia_jax.optim` (v0.4): Adam (after
  an optional clip), the rule's multipliers by hand, projection, and the skip by `jnp.where`."""
  rng = jax.random.fold_in(state.rng, state.step)
  episode = sampling.sample_episode(
    rng, learner.specs, batch["sine"]["y"].shape[0], learner.meta.support_counts
  )
  (loss, _), grads = jax.value_and_grad(learner.loss_fn, has_aux=True)(
    state.params, state.buffers, batch, episode
  )
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  if learner.rule.outer_lr is not None:
    scale = learner.rule.outer_lr(updates["rule"])
    updates = dict(updates, rule=jax.tree.map(jnp.multiply, updates["rule"], scale))
  params = optax.apply_updates(state.params, updates)
  params = dict(params, rule=learner.rule.project(params["rule"]))
  finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
  if learner.meta.skip_nonfinite:
    keep = lambda new, old: jnp.where(finite, new, old)
    params = jax.tree.map(keep, params, state.params)
    opt_state = jax.tree.map(keep, opt_state, state.opt_state)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss


@pytest.mark.parametrize(
  "method,rule_cfg,meta",
  [
    ("mia", {"grad_scale": 10.0, "scaler_lr_multiplier": 2.0}, {}),  # the scaler's 2x rate
    ("metasgd", {}, {"grad_clip": 0.5}),  # clip and projection
    ("cavia", {}, {}),
    ("metasgd", {}, {"grad_clip": 0.5, "skip_nonfinite": True}),  # and the skip
  ],
)
@pytest.mark.slow
def test_the_default_optimiser_is_bit_identical_to_the_hand_written_step(method, rule_cfg, meta):
  """Bit-identical, except with `skip_nonfinite`: its `jnp.where` now stands between Adam's step
  and the addition to the parameters, where it stood after the addition, and XLA then fuses the
  multiply-add differently (1 ulp, 1e-8, on a few parameters)."""
  learner = tiny_learner(method, rule_cfg=rule_cfg, learning_rate=3e-3, **meta)
  assert (learner.rule.outer_lr is not None) == ("scaler_lr_multiplier" in rule_cfg)
  old_tx = [optax.adam(3e-3)]
  if meta.get("grad_clip"):
    old_tx.insert(0, optax.clip_by_global_norm(meta["grad_clip"]))
  old_tx = optax.chain(*old_tx)
  state = learner.init(jax.random.PRNGKey(0))
  # The optimiser state has the layout it had, so checkpoints of earlier versions restore.
  assert jax.tree.structure(state.opt_state) == jax.tree.structure(old_tx.init(state.params))
  ref = state
  step = jax.jit(learner.train_step)
  ref_step = jax.jit(lambda s, b: _reference_step(learner, old_tx, s, b))
  for i in range(4):
    batch = random_batch(learner.specs, 4, seed=i)
    if i == 2 and meta.get("skip_nonfinite"):  # a non-finite step, skipped by both
      batch["sine"]["y"][0, 0, 0] = np.nan
    state, metrics = step(state, batch)
    ref, ref_loss = ref_step(ref, batch)
    if meta.get("skip_nonfinite"):
      np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-6)
    else:
      np.testing.assert_array_equal(metrics["loss"], ref_loss)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(ref)):
    if meta.get("skip_nonfinite"):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    else:
      np.testing.assert_array_equal(a, b)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))


@pytest.mark.slow
def test_a_user_optimiser_with_a_schedule_steps_as_written():
  """`optax.sgd` on a schedule: the first step is `-lr(0) * g`, the scaler's part times its
  multiplier; the second uses `lr(1)`."""
  schedule = optax.linear_schedule(0.01, 0.002, transition_steps=4)
  learner = tiny_learner(
    "mia", rule_cfg={"grad_scale": 10.0, "scaler_lr_multiplier": 2.0}, optimizer=optax.sgd(schedule)
  )
  state = learner.init(jax.random.PRNGKey(1))
  for i in range(2):
    batch = random_batch(learner.specs, 4, seed=i)
    episode = sampling.sample_episode(
      jax.random.fold_in(state.rng, state.step), learner.specs, 4, learner.meta.support_counts
    )
    grads = jax.grad(lambda p: learner.loss_fn(p, state.buffers, batch, episode)[0])(state.params)
    new, _ = learner.train_step(state, batch)
    lr = float(schedule(i))
    for part in ("inr", "log_var"):
      expected = jax.tree.map(lambda p, g: p - lr * g, state.params[part], grads[part])
      for a, b in zip(jax.tree.leaves(new.params[part]), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    scale_new, scale_old, g = (
      new.params["rule"]["scale"],
      state.params["rule"]["scale"],
      grads["rule"]["scale"],
    )
    for n in learner.names:
      np.testing.assert_allclose(scale_new[n], scale_old[n] - 2.0 * lr * g[n], rtol=1e-6)
      assert float(g[n]) != 0.0
    state = new


def test_skip_nonfinite_matches_optax_apply_if_finite_on_the_parameters():
  grads_seq = [
    {"w": jnp.array([1.0, -2.0])},
    {"w": jnp.array([jnp.nan, 1.0])},
    {"w": jnp.array([0.5, 0.5])},
  ]
  params0 = {"w": jnp.array([0.3, 0.7])}
  ours, theirs = optim.skip_nonfinite(optax.adam(0.1)), optax.apply_if_finite(optax.adam(0.1), 10)
  p1, s1, p2, s2 = params0, ours.init(params0), params0, theirs.init(params0)
  for g in grads_seq:
    u, s1 = ours.update(g, s1, p1)
    p1 = optax.apply_updates(p1, u)
    u, s2 = theirs.update(g, s2, p2)
    p2 = optax.apply_updates(p2, u)
    np.testing.assert_array_equal(p1["w"], p2["w"])
  # A non-finite loss with finite gradients is skipped too.
  u, s3 = ours.update({"w": jnp.array([1.0, 1.0])}, s1, p1, value=jnp.array(jnp.inf))
  np.testing.assert_array_equal(u["w"], 0.0)
  for a, b in zip(jax.tree.leaves(s3), jax.tree.leaves(s1)):
    np.testing.assert_array_equal(a, b)


def test_the_warmup_cosine_schedule():
  lr = optim.learning_rate_schedule(1e-3, "warmup_cosine", warmup_steps=10, decay_steps=110)
  np.testing.assert_allclose(
    [lr(0), lr(5), lr(10), lr(60), lr(110), lr(200)], [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9
  )
  assert optim.learning_rate_schedule(1e-3) == 1e-3  # constant: a float, Adam's state as before
  learner = tiny_learner("cavia", lr_schedule="warmup_cosine", warmup_steps=3, decay_steps=20)
  state = learner.init(jax.random.PRNGKey(0))
  new, _ = learner.train_step(state, random_batch(learner.specs, 4))
  for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, b)  # the rate is 0 at step 0
  new, _ = learner.train_step(new, random_batch(learner.specs, 4, seed=1))
  assert any(
    bool(jnp.any(a != b))
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params))
  )


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"lr_schedule": "cosine"}, r"Unknown lr_schedule 'cosine'; allowed: constant, warmup_cosine"),
    (
      {"lr_schedule": "warmup_cosine", "warmup_steps": 5, "decay_steps": 5},
      r"warmup_steps=5, decay_steps=5",
    ),
    ({"learning_rate": 0.0}, r"learning_rate must be finite and > 0, got 0.0"),
    ({"grad_clip": -1.0}, r"grad_clip must be finite and >= 0"),
    ({"inner_steps": -1}, r"inner_steps must be >= 0, got -1"),
    ({"compute_dtype": "float16"}, r"Unknown compute_dtype 'float16'; allowed: float32, bfloat16"),
  ],
)
def test_meta_config_checks_its_fields_when_built(kwargs, match):
  with pytest.raises(ValueError, match=match):
    meta_step.MetaConfig(**kwargs)


def test_an_optimiser_of_the_wrong_type_is_refused():
  with pytest.raises(
    TypeError,
    match=r"optimizer must be an optax.GradientTransformation.*"
    r"got function",
  ):
    tiny_learner("cavia", optimizer=optax.adam)
