"""The scan inner loop against a plain Python loop, and the meta-gradient against finite
differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mia_jax import adaptation
from tests.helpers import episode, random_batch, tiny_learner


def _reference_adapt(learner, params, buffers, batch, ep, lr_of):
  """Plain loops over modalities, signals and steps, one signal's loss at a time."""
  model = learner.model
  out_latents, support_losses = {}, {}
  for spec in learner.specs:
    p = params["inr"][spec.name]
    variables = {"params": p["backbone"], **buffers[spec.name]}
    coords = np.asarray(model.coords[spec.name])
    latents, losses = [], []
    for s in range(batch[spec.name]["y"].shape[0]):
      count = int(ep[spec.name]["mask"][s].sum())
      idx = np.asarray(ep[spec.name]["idx"][s, :count])
      x, y = coords[idx], batch[spec.name]["y"][s, idx]

      def loss(z):
        pred = model.modules[spec.name].apply(variables, x, z)
        return jnp.mean(jnp.mean((pred - y) ** 2, -1))

      z = p["latent_init"]
      per_step = []
      for _ in range(learner.meta.inner_steps):
        value, grad = jax.value_and_grad(loss)(z)
        per_step.append(value)
        z = z - lr_of(spec.name) * grad
      latents.append(z)
      losses.append(per_step)
    out_latents[spec.name] = np.stack(latents)
    support_losses[spec.name] = np.array(losses).T  # [K, B]
  return out_latents, support_losses


@pytest.mark.parametrize("method", ["cavia", "metasgd"])
def test_scan_matches_python_loop(method):
  learner = tiny_learner(method, names=("sine", "relu"), inner_steps=3)
  state = learner.init(jax.random.PRNGKey(0))
  params = state.params
  if method == "metasgd":  # random per-element rates, so a wrong broadcast would show
    params = dict(
      params,
      rule={
        "learned_lr": jax.tree.map(
          lambda x: jax.random.uniform(jax.random.PRNGKey(3), x.shape, minval=0.2, maxval=2.0),
          params["rule"]["learned_lr"],
        )
      },
    )
  batch = random_batch(learner.specs, 4)
  ep = jax.tree.map(np.asarray, episode(learner, 4))
  latents, _, aux = jax.jit(
    lambda p: adaptation.adapt(learner.model, learner.rule, p, state.buffers, batch, ep, 3)
  )(params)

  def lr_of(name):
    return 1.0 if method == "cavia" else params["rule"]["learned_lr"][name]

  ref_latents, ref_losses = _reference_adapt(learner, params, state.buffers, batch, ep, lr_of)
  for name in ("sine", "relu"):
    np.testing.assert_allclose(latents[name], ref_latents[name], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(aux["support_loss"][name], ref_losses[name], rtol=2e-4)


def test_tracked_errors_match_direct_computation():
  learner = tiny_learner("cavia", names=("sine",), inner_steps=2)
  state = learner.init(jax.random.PRNGKey(1))
  batch = random_batch(learner.specs, 3)
  ep = jax.tree.map(np.asarray, episode(learner, 3))
  latents, pred, aux = adaptation.adapt(
    learner.model, learner.rule, state.params, state.buffers, batch, ep, 2, track=True
  )
  errs = aux["errors"]
  assert errs["full"]["sine"].shape == (3, 3)
  # Step K errors from the returned prediction, by hand, amplitude-normalised.
  y, amp = batch["sine"]["y"], batch["sine"]["amplitude"]
  for s in range(3):
    count = int(ep["sine"]["mask"][s].sum())
    sup = ep["sine"]["idx"][s, :count]
    sq = ((np.asarray(pred["sine"][s]) - y[s]) ** 2).mean(-1) / amp[s] ** 2
    rest = np.setdiff1d(np.arange(200), sup)
    np.testing.assert_allclose(errs["memorization"]["sine"][2, s], sq[sup].mean(), rtol=1e-4)
    np.testing.assert_allclose(errs["generalization"]["sine"][2, s], sq[rest].mean(), rtol=1e-4)
    np.testing.assert_allclose(errs["full"]["sine"][2, s], sq.mean(), rtol=1e-4)
  # Memorization before each step equals the (normalised) inner objective.
  np.testing.assert_allclose(
    errs["memorization"]["sine"][:2], aux["support_loss"]["sine"] / amp**2, rtol=1e-4
  )


def test_signals_are_adapted_independently():
  learner = tiny_learner("cavia", names=("sine",), inner_steps=2)
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 3)
  ep = episode(learner, 3)
  run = lambda b: adaptation.adapt(
    learner.model, learner.rule, state.params, state.buffers, b, ep, 2
  )[0]["sine"]
  a = run(batch)
  batch["sine"]["y"][1] += 5.0
  b = run(batch)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[2], b[2])
  assert not np.allclose(a[1], b[1])


def _loss_and_grad(learner, params, buffers, batch, ep):
  f = lambda p: learner.loss_fn(p, buffers, batch, ep)[0]
  return f, jax.grad(f)(params)


def _direction(tree, seed):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree.unflatten(
    treedef, [jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)]
  )


def _dot(a, b):
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cavia", "metasgd"])
def test_second_order_meta_gradient_matches_finite_differences(method):
  with jax.enable_x64(True):
    learner = tiny_learner(method, names=("sine", "gaussian"), inner_steps=2)
    state = learner.init(jax.random.PRNGKey(0))
    to64 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), t)
    params, buffers = to64(state.params), to64(state.buffers)
    batch = jax.tree.map(lambda x: np.asarray(x, np.float64), random_batch(learner.specs, 3))
    ep = episode(learner, 3)
    f, grads = _loss_and_grad(learner, params, buffers, batch, ep)
    for seed in range(2):
      d = _direction(params, seed)
      eps = 1e-6  # small enough not to cross a ReLU kink on these seeds (1e-5 does)
      fd = (
        f(jax.tree.map(lambda p, v: p + eps * v, params, d))
        - f(jax.tree.map(lambda p, v: p - eps * v, params, d))
      ) / (2 * eps)
      np.testing.assert_allclose(_dot(grads, d), fd, rtol=1e-5)


@pytest.mark.slow  # two meta-gradients compiled (about 20 s)
def test_first_order_stops_the_gradient_through_the_inner_gradient():
  """First order, K=1: the meta-gradient of L(theta, z0(theta) - g) with g held constant."""
  with jax.enable_x64(True):
    second = tiny_learner("cavia", names=("tanh",), inner_steps=1)
    first = tiny_learner("cavia", names=("tanh",), inner_steps=1, first_order=True)
    state = second.init(jax.random.PRNGKey(0))
    to64 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), t)
    params, buffers = to64(state.params), to64(state.buffers)
    batch = jax.tree.map(lambda x: np.asarray(x, np.float64), random_batch(second.specs, 2))
    ep = episode(second, 2)
    model = second.model
    idx, mask = ep["tanh"]["idx"], ep["tanh"]["mask"]
    coords = {"tanh": model.coords["tanh"][idx]}
    values = np.take_along_axis(batch["tanh"]["y"], np.asarray(idx)[..., None], axis=1)

    def inner_grad(p):
      def total(z):
        pred = model.predict(p["inr"], buffers, z, coords)
        return jnp.sum(adaptation.per_signal_support_loss(pred["tanh"], values, mask))

      return jax.grad(total)(model.initial_latents(p["inr"], 2))

    g_const = jax.lax.stop_gradient(inner_grad(params))

    def frozen_loss(p):
      z = {"tanh": model.initial_latents(p["inr"], 2)["tanh"] - g_const["tanh"]}
      pred = model.predict(p["inr"], buffers, z)["tanh"]
      mse = jnp.mean((pred - batch["tanh"]["y"]) ** 2)
      v = p["log_var"]["tanh"]
      return mse / (2 * jnp.exp(v)) + v / 2

    _, g_first = _loss_and_grad(first, params, buffers, batch, ep)
    _, g_second = _loss_and_grad(second, params, buffers, batch, ep)
    g_ref = jax.grad(frozen_loss)(params)
    for a, b in zip(jax.tree.leaves(g_first), jax.tree.leaves(g_ref)):
      np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    diff = max(
      float(jnp.max(jnp.abs(a - b)))
      for a, b in zip(jax.tree.leaves(g_first), jax.tree.leaves(g_second))
    )
    assert diff > 1e-4  # the second-order terms are really there


@pytest.mark.parametrize("option", [dict(remat=True), dict(scan_unroll=3), dict(scan_unroll=2)])
def test_remat_and_unroll_give_same_loss_and_gradients(option):
  plain = tiny_learner("metasgd", inner_steps=3)
  remat = tiny_learner("metasgd", inner_steps=3, **option)
  state = plain.init(jax.random.PRNGKey(0))
  batch, ep = random_batch(plain.specs, 4), episode(plain, 4)
  la, ga = jax.jit(jax.value_and_grad(lambda p: plain.loss_fn(p, state.buffers, batch, ep)[0]))(
    state.params
  )
  lb, gb = jax.jit(jax.value_and_grad(lambda p: remat.loss_fn(p, state.buffers, batch, ep)[0]))(
    state.params
  )
  np.testing.assert_allclose(la, lb, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
