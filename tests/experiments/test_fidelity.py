"""The switches between the released implementation's training and the paper's
(`experiments.configs.shared.RELEASED_VS_SPEC`, docs/method.md section 9), each against a hand
computation."""

import dataclasses
import importlib
import json

import jax
import jax.numpy as jnp
from jax.scipy.special import erf
import numpy as np
import optax
import pytest

from data_pipelines.benchmarks import synthetic_spec
from experiments.configs import shared, synthetic
from experiments.run import workdir as workdir_lib
from mia_jax import adaptation, evaluation, meta_step, sampling
from mia_jax.modalities import ModalitySpec
from tests.helpers import episode, random_batch, tiny_learner

sft_lib = importlib.import_module("mia_jax.rules.sft")  # the module (`rules.sft` is the function)


# -- support sizes ---------------------------------------------------------------------------------


def _counts(spec, counts, n=19 * 4000, seed=0):
  ep = jax.jit(sampling.sample_modality_support, static_argnums=(1, 2, 3))(
    jax.random.PRNGKey(seed), spec, n, counts
  )
  return np.asarray(ep["mask"]).sum(-1).astype(int), np.asarray(ep["ratio"])


@pytest.mark.slow
def test_closed_support_counts_are_uniform_on_2_to_20():
  """The released code's `U * 19 + 2` on the synthetic functions (200 points, ratios
  0.01-0.1): every count in {2, ..., 20}, each with probability 1/19."""
  spec = synthetic_spec("sine")
  count, ratio = _counts(spec, "closed")
  values, freq = np.unique(count, return_counts=True)
  assert values.tolist() == list(range(2, 21))
  np.testing.assert_allclose(freq / count.size, 1 / 19, rtol=0.08)  # 4,000 draws per count
  np.testing.assert_allclose(ratio, count / 200)
  # The spec's floor(R N) never reaches 20.
  count, _ = _counts(spec, "floor")
  assert np.unique(count).tolist() == list(range(2, 20))


def test_closed_support_counts_follow_the_configured_bounds():
  spec = ModalitySpec(
    name="w", d_in=1, grid_shape=(100,), d_out=1, ratio_range=(0.05, 0.2), ratio_bins=((0.0, 1.0),)
  )
  assert sampling.support_count_range(spec) == (5, 20)
  count, _ = _counts(spec, "closed", n=16 * 2000)
  values, freq = np.unique(count, return_counts=True)
  assert values.tolist() == list(range(5, 21))
  np.testing.assert_allclose(freq / count.size, 1 / 16, rtol=0.1)
  with pytest.raises(ValueError, match="'open'.*floor, closed"):
    sampling.sample_modality_support(jax.random.PRNGKey(0), spec, 4, "open")


# -- the objective with the initial loss -----------------------------------------------------------


@pytest.mark.slow
def test_objective_with_initial_loss_by_hand():
  """(sg(L0) + LK) / (2 e^v) + v per modality; L0 carries no gradient to the INR."""
  on = tiny_learner("cavia", inner_steps=2, initial_loss=True)
  off = tiny_learner("cavia", inner_steps=2)
  state = on.init(jax.random.PRNGKey(0))
  params = dict(state.params, log_var={"sine": jnp.array(0.3), "tanh": jnp.array(-0.7)})
  batch, ep = random_batch(on.specs, 3), episode(on, 3)
  loss, aux = on.loss_fn(params, state.buffers, batch, ep)
  _, pred0, _ = adaptation.adapt(on.model, on.rule, params, state.buffers, batch, ep, 0)
  _, pred_k, _ = adaptation.adapt(on.model, on.rule, params, state.buffers, batch, ep, 2)
  total = 0.0
  for name in ("sine", "tanh"):
    l0 = np.mean((np.asarray(pred0[name]) - batch[name]["y"]) ** 2)
    lk = np.mean((np.asarray(pred_k[name]) - batch[name]["y"]) ** 2)
    v = float(params["log_var"][name])
    total += (l0 + lk) / (2 * np.exp(v)) + v
    np.testing.assert_allclose(aux["query_mse"][name], lk, rtol=1e-5)
    assert abs(l0 - lk) > 1e-5  # the two terms differ
  np.testing.assert_allclose(loss, total, rtol=1e-5)
  # Detached: the INR's meta-gradient is the spec objective's; v's gains -L0 / (2 e^v) + 1/2.
  g_on = jax.grad(lambda p: on.loss_fn(p, state.buffers, batch, ep)[0])(params)
  g_off = jax.grad(lambda p: off.loss_fn(p, state.buffers, batch, ep)[0])(params)
  for a, b in zip(jax.tree.leaves(g_on["inr"]), jax.tree.leaves(g_off["inr"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  for name in ("sine", "tanh"):
    l0 = np.mean((np.asarray(pred0[name]) - batch[name]["y"]) ** 2)
    v = float(params["log_var"][name])
    np.testing.assert_allclose(
      g_on["log_var"][name] - g_off["log_var"][name], -l0 / (2 * np.exp(v)) + 0.5, rtol=1e-4
    )


# -- the gradient scaler's outer learning rate -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("multiplier", [1.0, 2.0])
def test_scaler_update_is_multiplier_times_adams(multiplier):
  lr = 1e-3
  learner = tiny_learner(
    "mia",
    rule_cfg=dict(grad_scale=10.0, scaler_lr_multiplier=multiplier, sft_width=8, head_dim=4),
    learning_rate=lr,
  )
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 4)
  new, _ = learner.train_step(state, batch)
  # By hand: the step's episode, the meta-gradient, optax's Adam.
  rng = jax.random.fold_in(state.rng, state.step)
  ep = sampling.sample_episode(rng, learner.specs, 4, learner.meta.support_counts)
  grads = jax.grad(lambda p: learner.loss_fn(p, state.buffers, batch, ep)[0])(state.params)
  adam, _ = optax.adam(lr).update(grads, optax.adam(lr).init(state.params), state.params)
  for name in ("sine", "tanh"):
    moved = new.params["rule"]["scale"][name] - state.params["rule"]["scale"][name]
    assert abs(float(adam["rule"]["scale"][name])) > 1e-4
    np.testing.assert_allclose(moved, multiplier * adam["rule"]["scale"][name], rtol=1e-3)
  # Everything else moves by Adam's update.
  for a, b, u in zip(
    jax.tree.leaves(state.params["inr"]),
    jax.tree.leaves(new.params["inr"]),
    jax.tree.leaves(adam["inr"]),
  ):
    np.testing.assert_allclose(b - a, u, rtol=1e-3, atol=1e-8)


# -- GELU ------------------------------------------------------------------------------------------


def test_exact_gelu_is_the_erf_formula(monkeypatch):
  block = lambda exact: sft_lib.TransformerBlock(
    width=8, num_heads=2, head_dim=4, ff_width=8, exact_gelu=exact
  )
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 8))
  params = block(True).init(jax.random.PRNGKey(0), x)
  exact = block(True).apply(params, x)
  approx = block(False).apply(params, x)
  assert float(jnp.max(jnp.abs(exact - approx))) > 1e-6  # the two GELUs differ here
  # The same block with the activation replaced by the erf formula, by hand.
  seen = []

  def by_hand(v, approximate=True):
    seen.append(approximate)
    return 0.5 * v * (1 + erf(v / np.sqrt(2.0)))

  monkeypatch.setattr(sft_lib.nn, "gelu", by_hand)
  np.testing.assert_allclose(block(True).apply(params, x), exact, rtol=1e-6, atol=1e-7)
  assert seen == [False]


# -- bins ------------------------------------------------------------------------------------------


def test_closed_bins_count_an_edge_ratio_in_both_bins():
  spec = dataclasses.replace(
    synthetic_spec("sine"), ratio_bins=((0.0, 0.25), (0.25, 0.5), (0.5, 1.0))
  )
  errs = np.array([[9.0, 9.0, 9.0], [1.0, 2.0, 4.0]])  # step 0, step 1
  per = {
    "sine": {
      "generalization": errs,
      "memorization": errs,
      "full": errs,
      "ratio": np.array([0.1, 0.25, 0.4]),
      "has_gen": np.ones(3, bool),
    }
  }
  half_open = evaluation.summarize(per, [spec], 1)
  closed = evaluation.summarize(per, [spec], 1, closed_bins=True)
  key = "generalization_mse/sine/"
  assert half_open[key + "R0-0.25"] == 1.0 and half_open[key + "R0.25-0.5"] == 3.0
  assert closed[key + "R0-0.25"] == 1.5 and closed[key + "R0.25-0.5"] == 3.0
  assert closed[key + "step1"] == half_open[key + "step1"] == pytest.approx(7 / 3)


# -- configs ---------------------------------------------------------------------------------------


def test_released_defaults_spec_variant_and_old_runs():
  released, spec = synthetic.get_config("cpu"), synthetic.get_config("cpu,variant=spec")
  for field, (want_released, want_spec) in shared.RELEASED_VS_SPEC.items():
    get = lambda c: c[field] if "." not in field else c[field.split(".")[0]][field.split(".")[1]]
    assert get(released) == want_released and get(spec) == want_spec, field
  with pytest.raises(ValueError, match="'paper'.*released, spec"):
    synthetic.get_config("variant=paper")
  # A run stored before these fields existed computed the spec's variant: it matches the spec
  # variant's config and differs from the released defaults.
  old = json.loads(spec.to_json())
  for field in shared.RELEASED_VS_SPEC:
    head, _, tail = field.rpartition(".")
    (old[head] if head else old).pop(tail)
  assert workdir_lib.config_differences(old, json.loads(spec.to_json())) == []
  diff = workdir_lib.config_differences(old, json.loads(released.to_json()))
  assert "support_counts: 'floor' != 'closed'" in diff and len(diff) == 5
  learner = meta_step.MetaLearner  # the learner reads the switches from the config
  from experiments.run import build

  built = build.learner_from_config(released)
  assert isinstance(built, learner)
  assert built.meta.support_counts == "closed" and built.meta.initial_loss
  assert built.rule.outer_lr is not None
  assert build.learner_from_config(spec).rule.outer_lr is None
