"""MIA's State Fusion Transformers, the ablations, ALFA and GAP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mia_jax import adaptation
from mia_jax.modalities import group_modalities, synthetic_spec
from mia_jax.rules import ABLATIONS, Cavia, make_rule
from tests.helpers import episode, image_spec, random_batch, tiny_learner, wave_spec

SHAPE = (4, 16)
SFT_CFG = dict(sft_width=24, head_dim=8, grad_scale=10.0)
THREE = group_modalities([synthetic_spec("sine"), synthetic_spec("tanh"), wave_spec()])


def _states(groups, batch=3, seed=0):
  keys = iter(jax.random.split(jax.random.PRNGKey(seed), 2 * len(groups)))
  g = {gr.name: jax.random.normal(next(keys), (gr.size, batch) + SHAPE) for gr in groups}
  z = {gr.name: 0.2 * jax.random.normal(next(keys), (gr.size, batch) + SHAPE) for gr in groups}
  return g, z


def _rule(ablation="none", groups=THREE, **cfg):
  rule = make_rule("mia", groups, SHAPE, dict(SFT_CFG, ablation=ablation, **cfg))
  return rule, rule.init(jax.random.PRNGKey(1))


@pytest.mark.parametrize("ablation, crosses", [
    ("none", True), ("no_usft", True), ("no_fuser", True), ("grad_only", True),
    ("latent_only", True), ("no_msft", False), ("no_sft", False)])
def test_cross_modal_influence_only_through_the_msft(ablation, crosses):
  rule, params = _rule(ablation)
  g, z = _states(THREE)
  u, _ = rule.apply(params, g, z)
  # Perturb modality "sine" (group g0, member 0) only, in both state types. Not by a constant:
  # the states' LayerNorms remove a constant shift exactly.
  noise = jax.random.normal(jax.random.PRNGKey(7), g["g0"][0].shape)
  g2 = dict(g, g0=g["g0"].at[0].add(noise))
  z2 = dict(z, g0=z["g0"].at[0].add(0.5 * noise))
  u2, _ = rule.apply(params, g2, z2)
  assert not np.allclose(u["g0"][0], u2["g0"][0])             # its own update changes
  same_tanh = np.array_equal(u["g0"][1], u2["g0"][1])          # same group
  same_wav = np.array_equal(u["g1"][0], u2["g1"][0])           # other group (other signature)
  assert same_tanh == (not crosses) and same_wav == (not crosses)


def test_support_data_of_one_modality_changes_another_modalitys_adaptation():
  outs = {}
  for ablation in ("none", "no_msft", "no_sft"):
    learner = tiny_learner("mia", names=("sine", "tanh"), inner_steps=2,
                           rule_cfg=dict(SFT_CFG, ablation=ablation))
    state = learner.init(jax.random.PRNGKey(0))
    batch, ep = random_batch(learner.specs, 2), episode(learner, 2)
    run = lambda b: adaptation.adapt(learner.model, learner.rule, state.params, state.buffers,
                                     *adaptation.stack_groups(learner.groups, b, ep), 2)[0]["g0"]
    before = run(batch)
    batch["sine"]["y"] = batch["sine"]["y"] + 3.0
    after = run(batch)
    outs[ablation] = np.array_equal(before[1], after[1])  # tanh's latents unchanged?
  assert outs == {"none": False, "no_msft": True, "no_sft": True}


def test_no_sft_is_cavia_without_scaler():
  rule, params = _rule("no_sft")
  assert isinstance(rule, Cavia) and params == {}


@pytest.mark.parametrize("ablation, changes", [("grad_only", "latents"),
                                               ("latent_only", "grads")])
def test_state_type_ablations_drop_the_other_state(ablation, changes):
  rule, params = _rule(ablation)
  g, z = _states(THREE)
  u, _ = rule.apply(params, g, z)
  if changes == "latents":
    u2, _ = rule.apply(params, g, jax.tree.map(lambda x: x * 3.0 + 1.0, z))
  else:
    u2, _ = rule.apply(params, jax.tree.map(lambda x: x * 3.0 + 1.0, g), z)
  for k in u:
    np.testing.assert_array_equal(u[k], u2[k])
  full, full_params = _rule("none")
  u3, _ = full.apply(full_params, g, jax.tree.map(lambda x: x * 3.0 + 1.0, z))
  assert not np.allclose(full.apply(full_params, g, z)[0]["g0"], u3["g0"])


def test_updates_are_permutation_equivariant_over_signals():
  rule, params = _rule()
  g, z = _states(THREE, batch=5)
  perm = np.array([3, 0, 4, 1, 2])
  u, _ = rule.apply(params, g, z)
  up, _ = rule.apply(params, jax.tree.map(lambda x: x[:, perm], g),
                     jax.tree.map(lambda x: x[:, perm], z))
  for k in u:
    np.testing.assert_allclose(up[k], u[k][:, perm], rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_sft_parameter():
  learner = tiny_learner("mia", names=("sine", "tanh"), inner_steps=2, rule_cfg=SFT_CFG)
  state = learner.init(jax.random.PRNGKey(0))
  batch, ep = random_batch(learner.specs, 3), episode(learner, 3)
  grads = jax.grad(lambda p: learner.loss_fn(p, state.buffers, batch, ep)[0])(state.params)
  flat = jax.tree_util.tree_flatten_with_path(grads["rule"])[0]
  assert len(flat) > 20
  dead = [jax.tree_util.keystr(path) for path, leaf in flat
          if not np.all(np.any(np.abs(np.asarray(leaf)) > 0, axis=tuple(range(1, leaf.ndim)))
                        if leaf.ndim > 1 else np.any(np.asarray(leaf) != 0))]
  assert not dead, dead


def test_residual_option_and_config_fields_change_the_network():
  rule, params = _rule(residual=True)
  plain, _ = _rule()
  g, z = _states(THREE)
  assert not np.allclose(rule.apply(params, g, z)[0]["g0"], plain.apply(params, g, z)[0]["g0"])
  deep, deep_params = _rule(usft_depth=2, msft_depth=3)
  assert len(deep_params["usft"]["g0"]) == 2 and len(deep_params["msft"]) == 3
  assert deep_params["encoder"]["g0"]["pos_embedding"].shape == (2, 4, 24)


def test_heterogeneous_groups_join_in_one_step():
  specs = (image_spec("rgb", size=4), wave_spec("wav", n=12))
  learner = tiny_learner("mia", specs=specs, inner_steps=2, rule_cfg=SFT_CFG)
  assert [g.names for g in learner.groups] == [("rgb",), ("wav",)]
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(specs, 2)
  new_state, metrics = jax.jit(learner.train_step)(state, batch)
  assert np.isfinite(float(metrics["loss"])) and int(new_state.step) == 1
  assert new_state.params["rule"]["msft"]


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_every_ablation_takes_a_train_step(ablation):
  learner = tiny_learner("mia", inner_steps=1, rule_cfg=dict(SFT_CFG, ablation=ablation))
  state = learner.init(jax.random.PRNGKey(0))
  new_state, metrics = jax.jit(learner.train_step)(state, random_batch(learner.specs, 2))
  assert np.isfinite(float(metrics["loss"]))
  assert not np.allclose(jax.tree.leaves(new_state.params["inr"])[0],
                         jax.tree.leaves(state.params["inr"])[0])


def test_unknown_ablation_and_ablation_on_a_baseline():
  with pytest.raises(ValueError, match="Unknown ablation 'no_attention'.*allowed: none, no_sft"):
    make_rule("mia", THREE, SHAPE, {"ablation": "no_attention"})
  with pytest.raises(ValueError, match="applies to method='mia' only"):
    make_rule("cavia", THREE, SHAPE, {"ablation": "no_msft"})


# -- ALFA and GAP -------------------------------------------------------------------------------------

def test_alfa_starts_as_cavia_and_applies_decay():
  rule = make_rule("alfa", THREE, SHAPE, {"inner_lr": 0.5})
  params = rule.init(jax.random.PRNGKey(0))
  g, z = _states(THREE)
  u, z2 = rule.apply(params, g, z)
  for k in g:
    np.testing.assert_allclose(u[k], 0.5 * g[k], rtol=1e-6)
    np.testing.assert_allclose(z2[k], z[k], rtol=1e-6)
  # Set the last layer's bias to alpha'=2, beta'=0.5 for every token; beta0 = 0.8.
  p = jax.tree.map(lambda x: x, params)
  rank = SHAPE[0]
  p["mlp"]["g0"]["out"]["bias"] = jnp.tile(
      jnp.concatenate([jnp.full(rank, 2.0), jnp.full(rank, 0.5)]), (2, 1))
  p["beta0"]["g0"] = jnp.array([0.8, 0.8])
  u, z2 = rule.apply(p, g, z)
  np.testing.assert_allclose(u["g0"], 2.0 * g["g0"], rtol=1e-6)
  np.testing.assert_allclose(z2["g0"], 0.4 * z["g0"], rtol=1e-6)


def test_gap_preconditions_the_smaller_axis():
  rule = make_rule("gap", THREE, SHAPE)
  params = rule.init(jax.random.PRNGKey(0))
  np.testing.assert_allclose(np.log1p(np.exp(2 * 0.928)) / 2, 1.0, atol=2e-3)
  m = jnp.array([[0.0, 0.5, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
  params["m"]["g0"] = m
  g, z = _states(THREE)
  u, _ = rule.apply(params, g, z)
  diag = np.log1p(np.exp(2 * np.asarray(m))) / 2  # [G, rank]
  np.testing.assert_allclose(u["g0"], g["g0"] * diag[:, None, :, None], rtol=1e-5)
