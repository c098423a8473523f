"""The SFT-replacement arms of the sft_removal study: per-token MLPs of the SFTs' size (`sft_mlp`,
`sft_mlp_local`) and the baselines' update modules in MIA's chain (`rule_alfa`, `rule_gap`,
`rule_metasgd`): one train step each, their parameter counts and what they let meet."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import methods
from experiments.configs import synthetic
from mia_jax import meta_step
from tests.helpers import tiny_learner

pytestmark = pytest.mark.slow  # trains, or runs the command line

sft_lib = importlib.import_module("mia_jax.rules.sft")  # the module (`rules.sft` is the piece)
SMALL_SFT = dict(sft_width=24, head_dim=8, num_heads=3, grad_scale=10.0)
REPLACEMENTS = ("sft_mlp", "sft_mlp_local", "rule_alfa", "rule_gap", "rule_metasgd")


def _count(tree) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def test_block_parameter_formula_and_mlp_width():
  block = sft_lib.TransformerBlock(24, 3, 8, 24)
  params = block.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 24)))["params"]
  target = sft_lib.transformer_block_params(24, 3, 8, 24)
  assert _count(params) == target
  for d_in in (24, 48):
    hidden = sft_lib.mlp_hidden(24, d_in, target)
    mlp = sft_lib.TokenMLPBlock(24, hidden, pooled=d_in == 48)
    n = _count(mlp.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 24)))["params"])
    assert abs(n - target) <= d_in + 1 + 24, (d_in, n, target)  # within one hidden unit


@pytest.mark.parametrize("ablation", REPLACEMENTS)
def test_one_train_step_and_parameter_count(ablation):
  learner = tiny_learner("mia", rule_cfg={**SMALL_SFT, "ablation": ablation})
  mia = tiny_learner("mia", rule_cfg=SMALL_SFT)
  mesh = meta_step.data_mesh()
  step = meta_step.make_train_step(learner, mesh, donate=False)
  state0 = meta_step.put_replicated(learner.init(jax.random.PRNGKey(0)), mesh)
  from data_pipelines.synthetic import generate

  batch = meta_step.put_batch(generate.generate_signals(4, 0, ("sine", "tanh")), mesh)
  state, metrics = step(state0, batch)
  assert np.isfinite(float(metrics["loss"])) and int(state.step) == 1
  moved = jax.tree.map(
    lambda a, b: bool(jnp.any(a != b)), state0.params["rule"], state.params["rule"]
  )
  assert any(jax.tree.leaves(moved)), ablation  # the replacement module is meta-learned
  n_rule = _count(state.params["rule"])
  n_mia = _count(mia.init(jax.random.PRNGKey(0)).params["rule"])
  if ablation.startswith("sft_mlp"):
    assert abs(n_rule - n_mia) / n_mia < 0.01, (n_rule, n_mia)
  else:  # the method's own module plus the gradient scaler (one scalar per modality)
    method = ablation.removeprefix("rule_")
    n_method = _count(tiny_learner(method).init(jax.random.PRNGKey(0)).params["rule"])
    assert n_rule == n_method + 2, (n_rule, n_method)
    assert set(state.params["rule"]) == {"scale"} | set(
      tiny_learner(method).init(jax.random.PRNGKey(0)).params["rule"]
    )


@pytest.mark.parametrize("method", ("alfa", "gap", "metasgd"))
def test_rule_arm_starts_as_its_method(method):
  """With the scaler at its initial 1, MIA's chain with the method's module gives the method's
  update: `rule_{method}` differs from the method only by the learned scalar."""
  arm = methods.build_rule("mia", {"grad_scale": 10.0, "ablation": f"rule_{method}"})
  own = methods.build_rule(method, {})
  shapes = {"a": (4, 6), "b": (3, 6)}
  params = arm.init(jax.random.PRNGKey(1), shapes)
  for leaf in jax.tree.leaves(params["scale"]):  # log s = 0: the scaler starts at 1
    np.testing.assert_allclose(np.exp(leaf), 1.0)
  rng = np.random.default_rng(0)
  g = {n: jnp.asarray(rng.normal(size=(2, t, w)), jnp.float32) for n, (t, w) in shapes.items()}
  z = {n: jnp.asarray(rng.normal(size=(2, t, w)), jnp.float32) for n, (t, w) in shapes.items()}
  u_arm, z_arm = arm.apply(params, g, z)
  u_own, z_own = own.apply({k: v for k, v in params.items() if k != "scale"}, g, z)
  for n in shapes:
    np.testing.assert_allclose(u_arm[n], u_own[n], rtol=1e-6)
    np.testing.assert_allclose(z_arm[n], z_own[n], rtol=1e-6)


def test_what_meets_what():
  """`sft_mlp`: a modality's update depends on the other modality (through the pooled summary);
  `sft_mlp_local`: not on the other modality, and not on its own other tokens either once the
  fusion's GroupNorm (statistics over the tokens, in every variant) is left out. The SFT's
  depends on both."""
  shapes = {"a": (4, 6), "b": (4, 6)}
  rng = np.random.default_rng(0)
  draw = lambda: {
    n: jnp.asarray(rng.normal(size=(2, t, w)), jnp.float32) for n, (t, w) in shapes.items()
  }
  g, z, noise = draw(), draw(), draw()  # (a constant shift would vanish in the LayerNorm)
  g_other = {"a": g["a"], "b": g["b"] + noise["b"]}  # only modality b changes
  g_token = {"a": g["a"].at[:, 1:].add(noise["a"][:, 1:]), "b": g["b"]}  # a's other tokens

  def effects(mixer, **switches):
    rule = sft_lib.sft(width=12, num_heads=2, head_dim=4, mixer=mixer, **switches)
    p = rule.init(jax.random.PRNGKey(0), shapes)
    base = rule.apply(p, g, z)[0]["a"]
    other = float(jnp.abs(rule.apply(p, g_other, z)[0]["a"] - base).max())
    token = float(jnp.abs(rule.apply(p, g_token, z)[0]["a"][:, 0] - base[:, 0]).max())
    return other, token

  assert min(effects("attention")) > 1e-4
  other, _ = effects("mlp_pooled")
  assert other > 1e-4
  assert effects("mlp")[0] == 0.0
  assert effects("mlp", use_fuser=False) == (0.0, 0.0)
  assert min(effects("attention", use_fuser=False)) > 1e-4
  with pytest.raises(ValueError, match="unknown mixer 'conv'; allowed: attention, mlp_pooled"):
    sft_lib.sft(mixer="conv")


def test_sft_removal_study_has_the_replacement_arms():
  study = synthetic.studies()["sft_removal"]
  for arm in REPLACEMENTS:
    assert study["arms"][arm] == {"method": "mia", "ablation": arm}
