"""MIA's State Fusion Transformers (the `sft()` piece and MIA's chains), the ablations,
ALFA and GAP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines.benchmarks import synthetic_spec
from experiments import methods
from experiments.methods import ABLATIONS
from mia_jax import MetaConfig, MetaLearner, MultimodalINR, adaptation, rules, sampling
from mia_jax.rules import (
  chain,
  gradient_scaler,
  learned_learning_rate,
  learning_rate,
  sft,
)
from tests.helpers import TINY, image_spec, random_batch, wave_spec

SHAPE = (4, 16)
SFT_CFG = dict(sft_width=24, head_dim=8, grad_scale=10.0)  # from_config fields
SFT_ARGS = dict(width=24, head_dim=8)  # sft() arguments
THREE = {"sine": SHAPE, "tanh": SHAPE, "wav": SHAPE}
# sine and tanh stacked inside the SFT's per-modality modules, wav on its own (other token shape).
MIXED = {"sine": SHAPE, "tanh": SHAPE, "wav": (8, 8)}
HETERO = {"a": (4, 16), "b": (4, 16), "c": (8, 8)}


def _states(shapes=THREE, batch=3, seed=0):
  keys = iter(jax.random.split(jax.random.PRNGKey(seed), 2 * len(shapes)))
  g = {n: jax.random.normal(next(keys), (batch,) + tuple(s)) for n, s in shapes.items()}
  z = {n: 0.2 * jax.random.normal(next(keys), (batch,) + tuple(s)) for n, s in shapes.items()}
  return g, z


def _rule(ablation="none", shapes=THREE, **cfg):
  rule = methods.build_rule("mia", dict(SFT_CFG, ablation=ablation, **cfg))
  return rule, rule.init(jax.random.PRNGKey(1), shapes)


def _learner(rule, specs=None, inner_steps=2):
  specs = specs or (synthetic_spec("sine"), synthetic_spec("tanh"))
  return MetaLearner(
    MultimodalINR.from_config(specs, TINY), rule, MetaConfig(inner_steps=inner_steps)
  )


@pytest.mark.parametrize("shapes", [THREE, MIXED], ids=["same_shapes", "mixed_shapes"])
@pytest.mark.parametrize(
  "ablation, crosses",
  [
    ("none", True),
    ("no_usft", True),
    ("no_fuser", True),
    ("grad_only", True),
    ("latent_only", True),
    ("no_msft", False),
    ("no_sft", False),
  ],
)
def test_cross_modal_influence_only_through_the_msft(ablation, crosses, shapes):
  rule, params = _rule(ablation, shapes)
  assert ("msft" in params.get("sft", {})) == crosses
  g, z = _states(shapes)
  u, _ = rule.apply(params, g, z)
  # Perturb modality "sine" only, in both state types. Not by a constant: the states' LayerNorms
  # remove a constant shift exactly.
  noise = jax.random.normal(jax.random.PRNGKey(7), g["sine"].shape)
  u2, _ = rule.apply(params, dict(g, sine=g["sine"] + noise), dict(z, sine=z["sine"] + 0.5 * noise))
  assert not np.allclose(u["sine"], u2["sine"])  # its own update changes
  same_tanh = np.array_equal(u["tanh"], u2["tanh"])  # stacked with sine
  same_wav = np.array_equal(u["wav"], u2["wav"])  # same or other token shape
  assert same_tanh == (not crosses) and same_wav == (not crosses)


@pytest.mark.parametrize("use_msft", [True, False])
def test_sft_on_modalities_with_different_token_shapes(use_msft):
  piece = sft(**SFT_ARGS, use_msft=use_msft)
  params = piece.init(jax.random.PRNGKey(0), HETERO)
  assert set(params) == {"encoder", "usft", "fuser"} | ({"msft"} if use_msft else set())
  for sub in ("encoder", "usft", "fuser"):
    assert set(params[sub]) == set(HETERO)
  for n, (t, w) in HETERO.items():
    assert params["encoder"][n]["pos_embedding"].shape == (t, 24)
    assert params["fuser"][n]["out"]["linear"]["kernel"].shape == (24, w)
  g, z = _states(HETERO)
  u, z2 = piece.apply(params, g, z)
  for n, (t, w) in HETERO.items():
    assert u[n].shape == g[n].shape == (3, t, w)
    assert np.all(np.isfinite(u[n]))
    np.testing.assert_array_equal(z2[n], z[n])
  # The MSFT joins them: perturbing c changes a's (and b's) update, and a's changes c's.
  noise = jax.random.normal(jax.random.PRNGKey(7), g["c"].shape)
  u_c, _ = piece.apply(params, dict(g, c=g["c"] + noise), dict(z, c=z["c"] - 0.5 * noise))
  assert not np.allclose(u_c["c"], u["c"])
  for n in ("a", "b"):
    assert np.array_equal(u_c[n], u[n]) == (not use_msft), n
  noise = jax.random.normal(jax.random.PRNGKey(8), g["a"].shape)
  u_a, _ = piece.apply(params, dict(g, a=g["a"] + noise), z)
  assert np.array_equal(u_a["c"], u["c"]) == (not use_msft)
  assert np.array_equal(u_a["b"], u["b"]) == (not use_msft)
  # Same-shaped modalities are stacked and vmapped: the same as applying each on its own (without
  # the MSFT a modality's update depends on nothing else).
  if not use_msft:
    for n in HETERO:
      alone, _ = piece.apply(params, {n: g[n]}, {n: z[n]})
      np.testing.assert_allclose(alone[n], u[n], rtol=1e-5, atol=1e-6)
  # The MSFT is order-free over modalities except for the split: the dict order does not matter.
  rev = lambda d: {n: d[n] for n in reversed(list(d))}
  u_rev, _ = piece.apply(params, rev(g), rev(z))
  for n in HETERO:
    np.testing.assert_allclose(u_rev[n], u[n], rtol=1e-5, atol=1e-6)


def _mixture():
  return chain(gradient_scaler(10.0), learned_learning_rate(1.0), sft(**SFT_ARGS))


RULES_FOR_SUPPORT_TEST = {  # name: (rule builder, does one modality's data reach another's?)
  "none": (lambda: methods.build_rule("mia", SFT_CFG), True),
  "no_msft": (lambda: methods.build_rule("mia", dict(SFT_CFG, ablation="no_msft")), False),
  "no_sft": (lambda: methods.build_rule("mia", dict(SFT_CFG, ablation="no_sft")), False),
  "learned_lr_sft": (_mixture, True),
  "sft_no_scaler": (lambda: chain(learning_rate(1.0), sft(**SFT_ARGS)), True),
  "sft_no_scaler_no_msft": (
    lambda: chain(learning_rate(1.0), sft(**SFT_ARGS, use_msft=False)),
    False,
  ),
}


@pytest.mark.parametrize("name", RULES_FOR_SUPPORT_TEST)
def test_support_data_of_one_modality_changes_another_modalitys_adaptation(name):
  make, crosses = RULES_FOR_SUPPORT_TEST[name]
  learner = _learner(make())
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 2)
  ep = sampling.sample_episode(jax.random.PRNGKey(0), learner.specs, 2)
  run = jax.jit(
    lambda b: adaptation.adapt(learner.model, learner.rule, state.params, state.buffers, b, ep, 2)[
      0
    ]
  )
  before = run(batch)
  batch["sine"]["y"] = batch["sine"]["y"] + 3.0
  after = run(batch)
  assert not np.allclose(before["sine"], after["sine"]), name
  assert np.array_equal(before["tanh"], after["tanh"]) == (not crosses), name


def test_no_sft_is_cavia_without_scaler():
  rule, params = _rule("no_sft", inner_lr=0.7)
  assert params == {"lr": {}} == rules.cavia(0.7).init(jax.random.PRNGKey(0), THREE)
  g, z = _states()
  u, z2 = rule.apply(params, g, z)
  for n in THREE:
    np.testing.assert_allclose(u[n], 0.7 * g[n], rtol=1e-6)
    np.testing.assert_array_equal(z2[n], z[n])


@pytest.mark.parametrize("ablation, changes", [("grad_only", "latents"), ("latent_only", "grads")])
def test_state_type_ablations_drop_the_other_state(ablation, changes):
  rule, params = _rule(ablation)
  g, z = _states()
  u, _ = rule.apply(params, g, z)
  if changes == "latents":
    u2, _ = rule.apply(params, g, jax.tree.map(lambda x: x * 3.0 + 1.0, z))
  else:
    u2, _ = rule.apply(params, jax.tree.map(lambda x: x * 3.0 + 1.0, g), z)
  for k in u:
    np.testing.assert_array_equal(u[k], u2[k])
  full, full_params = _rule("none")
  u3, _ = full.apply(full_params, g, jax.tree.map(lambda x: x * 3.0 + 1.0, z))
  assert not np.allclose(full.apply(full_params, g, z)[0]["sine"], u3["sine"])


@pytest.mark.slow
def test_updates_are_permutation_equivariant_over_signals():
  rule, params = _rule(shapes=MIXED)
  g, z = _states(MIXED, batch=5)
  perm = np.array([3, 0, 4, 1, 2])
  u, _ = rule.apply(params, g, z)
  up, _ = rule.apply(params, jax.tree.map(lambda x: x[perm], g), jax.tree.map(lambda x: x[perm], z))
  for k in u:
    np.testing.assert_allclose(up[k], u[k][perm], rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_sft_parameter():
  learner = _learner(methods.build_rule("mia", SFT_CFG))
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 3)
  ep = sampling.sample_episode(jax.random.PRNGKey(0), learner.specs, 3)
  grads = jax.grad(lambda p: learner.loss_fn(p, state.buffers, batch, ep)[0])(state.params)
  assert set(grads["rule"]) == {"scale", "lr", "sft"}
  flat = jax.tree_util.tree_flatten_with_path(grads["rule"])[0]
  assert len(flat) > 20
  # Every leaf of every modality (leaves are per modality name now, nothing stacked).
  dead = [jax.tree_util.keystr(path) for path, leaf in flat if not np.any(np.asarray(leaf) != 0)]
  assert not dead, dead
  names = {p[2].key for p, _ in flat if p[0].key == "sft" and p[1].key != "msft"}
  assert names == {"sine", "tanh"}


def test_residual_option_and_config_fields_change_the_network():
  rule, params = _rule(residual=True)
  plain, _ = _rule()
  g, z = _states()
  assert not np.allclose(rule.apply(params, g, z)[0]["sine"], plain.apply(params, g, z)[0]["sine"])
  deep, deep_params = _rule(usft_depth=2, msft_depth=3)
  assert len(deep_params["sft"]["usft"]["sine"]) == 2 and len(deep_params["sft"]["msft"]) == 3
  assert deep_params["sft"]["encoder"]["sine"]["pos_embedding"].shape == (4, 24)
  assert np.all(np.isfinite(deep.apply(deep_params, g, z)[0]["wav"]))


@pytest.mark.slow
def test_heterogeneous_modalities_join_in_one_step():
  specs = (image_spec("rgb", size=4), wave_spec("wav", n=12))
  learner = _learner(methods.build_rule("mia", SFT_CFG), specs)
  assert [g.names for g in learner.model.groups] == [("rgb",), ("wav",)]
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(specs, 2)
  new_state, metrics = jax.jit(learner.train_step)(state, batch)
  assert np.isfinite(float(metrics["loss"])) and int(new_state.step) == 1
  assert new_state.params["rule"]["sft"]["msft"]
  assert set(new_state.params["rule"]["sft"]["encoder"]) == {"rgb", "wav"}


@pytest.mark.parametrize(
  "ablation", [a if a == "none" else pytest.param(a, marks=pytest.mark.slow) for a in ABLATIONS]
)
def test_every_ablation_takes_a_train_step(ablation):
  learner = _learner(methods.build_rule("mia", dict(SFT_CFG, ablation=ablation)), inner_steps=1)
  state = learner.init(jax.random.PRNGKey(0))
  new_state, metrics = jax.jit(learner.train_step)(state, random_batch(learner.specs, 2))
  assert np.isfinite(float(metrics["loss"]))
  assert not np.allclose(
    jax.tree.leaves(new_state.params["inr"])[0], jax.tree.leaves(state.params["inr"])[0]
  )


def test_unknown_ablation_and_ablation_on_a_baseline():
  with pytest.raises(ValueError, match="Unknown ablation 'no_attention'.*allowed: none, no_sft"):
    methods.build_rule("mia", {"ablation": "no_attention"})
  with pytest.raises(ValueError, match="applies to method='mia' only"):
    methods.build_rule("cavia", {"ablation": "no_msft"})


# -- ALFA and GAP ----------------------------------------------------------------------------------


def test_alfa_starts_as_cavia_and_applies_decay():
  rule = methods.build_rule("alfa", {"inner_lr": 0.5})
  params = rule.init(jax.random.PRNGKey(0), MIXED)
  assert list(params) == ["alfa"] and set(params["alfa"]) == {"mlp", "beta0"}
  g, z = _states(MIXED)
  u, z2 = rule.apply(params, g, z)
  for k in g:
    np.testing.assert_allclose(u[k], 0.5 * g[k], rtol=1e-6)
    np.testing.assert_allclose(z2[k], z[k], rtol=1e-6)
  # Set sine's last layer's bias to alpha'=2, beta'=0.5 for every token; beta0 = 0.8.
  p = jax.tree.map(lambda x: x, params)
  t = SHAPE[0]
  p["alfa"]["mlp"]["sine"]["out"]["bias"] = jnp.concatenate([jnp.full(t, 2.0), jnp.full(t, 0.5)])
  p["alfa"]["beta0"]["sine"] = jnp.float32(0.8)
  u, z2 = rule.apply(p, g, z)
  np.testing.assert_allclose(u["sine"], 2.0 * g["sine"], rtol=1e-6)
  np.testing.assert_allclose(z2["sine"], 0.4 * z["sine"], rtol=1e-6)
  for k in ("tanh", "wav"):  # the other modalities keep their own (initial) rates
    np.testing.assert_allclose(u[k], 0.5 * g[k], rtol=1e-6)
    np.testing.assert_allclose(z2[k], z[k], rtol=1e-6)
  # With the gradient scaler in front: CAVIA with rate scale * inner_lr.
  scaled = methods.build_rule("alfa", {"inner_lr": 0.5, "grad_scale": 3.0})
  sp = scaled.init(jax.random.PRNGKey(0), MIXED)
  assert list(sp) == ["scale", "alfa"]
  u, _ = scaled.apply(sp, g, z)
  for k in g:
    np.testing.assert_allclose(u[k], 1.5 * g[k], rtol=1e-5)


def test_gap_preconditions_the_smaller_axis():
  shapes = {"sine": SHAPE, "tanh": SHAPE, "tall": (16, 4)}
  rule = methods.build_rule("gap", {"inner_lr": 0.5})
  params = rule.init(jax.random.PRNGKey(0), shapes)
  assert list(params) == ["lr", "gap"]
  np.testing.assert_allclose(np.log1p(np.exp(2 * 0.928)) / 2, 1.0, atol=2e-3)
  for n in shapes:
    assert params["gap"][n].shape == (4,)
  g, z = _states(shapes)
  u, _ = rule.apply(params, g, z)
  for n in shapes:  # starts (nearly) as CAVIA
    np.testing.assert_allclose(u[n], 0.5 * g[n], rtol=2e-3)
  m = jnp.array([0.0, 0.5, 1.0, -1.0])
  params["gap"]["sine"] = m
  params["gap"]["tall"] = m
  u, _ = rule.apply(params, g, z)
  diag = np.log1p(np.exp(2 * np.asarray(m))) / 2
  np.testing.assert_allclose(u["sine"], 0.5 * g["sine"] * diag[:, None], rtol=1e-5)  # tokens
  np.testing.assert_allclose(u["tall"], 0.5 * g["tall"] * diag[None, :], rtol=1e-5)  # width
  np.testing.assert_allclose(
    u["tanh"], 0.5 * g["tanh"] * np.log1p(np.exp(2 * 0.928)) / 2, rtol=1e-5
  )
