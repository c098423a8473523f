"""Update-rule pieces (`mia_jax.rules`): CAVIA, MetaSGD, the gradient scaler and the rate's
position against hand-computed updates, and every method and ablation by name against the chain
built by hand. Mixtures, the chain's bookkeeping and argument checks: `test_rule_chains.py`; MIA's
SFT itself: `test_sft.py`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import methods
from experiments.methods import METHODS
from mia_jax import rules
from mia_jax.rules import (
  UpdateRule,
  alfa,
  chain,
  gap,
  gradient_scaler,
  learned_learning_rate,
  learning_rate,
  sft,
)
from tests.library.rule_helpers import (
  NAMES,
  SFT,
  SFT_ARGS,
  SHAPE,
  SHAPES,
  _paths,
  _perturbed,
  _states,
)

# -- CAVIA, MetaSGD, the gradient scaler and the rate's position -----------------------------------


def test_cavia_update_is_lr_times_grad():
  rule = methods.build_rule("cavia", {"inner_lr": 0.3})
  params = rule.init(jax.random.PRNGKey(0), SHAPES)
  assert params == {"lr": {}}
  g, z = _states()
  u, z2 = rule.apply(params, g, z)
  assert set(u) == set(z2) == set(NAMES)
  for n in NAMES:
    np.testing.assert_allclose(u[n], 0.3 * g[n], rtol=1e-6)
    np.testing.assert_array_equal(z2[n], z[n])


def test_metasgd_per_element_lr_and_clipping():
  rule = methods.build_rule("metasgd")
  params = rule.init(jax.random.PRNGKey(0), SHAPES)
  assert list(params) == ["learned_lr"] and set(params["learned_lr"]) == set(NAMES)
  for n in NAMES:
    assert params["learned_lr"][n].shape == SHAPE and np.all(params["learned_lr"][n] == 1.0)
  keys = jax.random.split(jax.random.PRNGKey(1), len(NAMES))
  lr = {n: jax.random.uniform(k, SHAPE, minval=-3, maxval=9) for n, k in zip(NAMES, keys)}
  g, z = _states()
  u, z2 = rule.apply({"learned_lr": lr}, g, z)
  for n in NAMES:
    np.testing.assert_allclose(u[n], lr[n][None] * g[n], rtol=1e-6)  # per element, every signal
    np.testing.assert_array_equal(z2[n], z[n])
  clipped = rule.project({"learned_lr": lr})["learned_lr"]
  for n in NAMES:
    np.testing.assert_allclose(clipped[n], np.clip(lr[n], 0, 5))
    assert float(lr[n].min()) < 0 and float(lr[n].max()) > 5


def test_grad_scaler_and_lr_position():
  pre = methods.build_rule("metasgd", {"grad_scale": 10.0})
  post = methods.build_rule("metasgd", {"grad_scale": 10.0, "lr_position": "post"})
  params = pre.init(jax.random.PRNGKey(0), SHAPES)
  assert list(params) == ["scale", "learned_lr"]
  assert jax.tree.structure(post.init(jax.random.PRNGKey(0), SHAPES)) == jax.tree.structure(params)
  for n in NAMES:
    assert params["scale"][n].shape == ()
    np.testing.assert_allclose(jnp.exp(params["scale"][n]), 10.0, rtol=1e-6)
  params["learned_lr"] = {n: v * 0.5 for n, v in params["learned_lr"].items()}
  g, z = _states()
  u_pre, _ = pre.apply(params, g, z)
  u_post, _ = post.apply(params, g, z)
  for n in NAMES:
    np.testing.assert_allclose(u_pre[n], 5.0 * g[n], rtol=1e-5)
    np.testing.assert_allclose(u_post[n], u_pre[n], rtol=1e-5)  # no core: the same rule


def test_lr_position_places_the_rate_before_or_after_the_sft():
  pre = methods.build_rule("mia", dict(SFT, inner_lr=0.5))
  post = methods.build_rule("mia", dict(SFT, inner_lr=0.5, lr_position="post"))
  params = pre.init(jax.random.PRNGKey(0), SHAPES)
  assert list(params) == ["scale", "lr", "sft"]
  params = _perturbed(params)
  assert list(post.init(jax.random.PRNGKey(0), SHAPES)) == ["scale", "sft", "lr"]
  piece = sft(**SFT_ARGS)
  g, z = _states()
  s = {n: jnp.exp(params["scale"][n]) for n in NAMES}
  want_pre = piece.apply(params["sft"], {n: 0.5 * s[n] * g[n] for n in NAMES}, z)[0]
  want_post = piece.apply(params["sft"], {n: s[n] * g[n] for n in NAMES}, z)[0]
  u_pre, _ = pre.apply(params, g, z)
  u_post, _ = post.apply(params, g, z)
  for n in NAMES:
    np.testing.assert_allclose(u_pre[n], want_pre[n], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(u_post[n], 0.5 * want_post[n], rtol=1e-5, atol=1e-6)
    assert not np.allclose(u_pre[n], u_post[n])


# -- the methods by name equal the same chains built by hand ---------------------------------------

_SFT_OFF = {
  "none": {},
  "no_usft": dict(use_usft=False),
  "no_msft": dict(use_msft=False),
  "no_fuser": dict(use_fuser=False),
  "grad_only": dict(use_latent=False),
  "latent_only": dict(use_grad=False),
  "sft_mlp": dict(mixer="mlp_pooled"),
  "sft_mlp_local": dict(mixer="mlp"),
}
BY_HAND = {
  "cavia": (
    ("cavia", dict(inner_lr=0.3)),
    lambda: chain(learning_rate(0.3)),
    lambda: rules.cavia(0.3),
  ),
  "metasgd": (
    ("metasgd", dict(inner_lr=0.5)),
    lambda: chain(learned_learning_rate(0.5)),
    lambda: rules.metasgd(0.5),
  ),
  "metasgd_scaled_post": (
    ("metasgd", dict(grad_scale=10.0, lr_position="post")),
    lambda: chain(gradient_scaler(10.0), learned_learning_rate(1.0)),
    None,
  ),
  "mia": (
    ("mia", SFT),
    lambda: chain(gradient_scaler(10.0), learning_rate(1.0), sft(**SFT_ARGS)),
    lambda: rules.mia(10.0, **SFT_ARGS),
  ),
  "mia_post": (
    ("mia", dict(SFT, lr_position="post", inner_lr=0.5)),
    lambda: chain(gradient_scaler(10.0), sft(**SFT_ARGS), learning_rate(0.5)),
    None,
  ),
  "mia_residual_deep": (
    ("mia", dict(SFT, residual=True, usft_depth=2, msft_depth=2)),
    lambda: chain(
      gradient_scaler(10.0),
      learning_rate(1.0),
      sft(**SFT_ARGS, residual=True, usft_depth=2, msft_depth=2),
    ),
    None,
  ),
  **{
    f"mia_{ab}": (
      ("mia", dict(SFT, ablation=ab)),
      lambda off=off: chain(gradient_scaler(10.0), learning_rate(1.0), sft(**SFT_ARGS, **off)),
      lambda off=off: rules.mia(10.0, **SFT_ARGS, **off),
    )
    for ab, off in _SFT_OFF.items()
    if ab != "none"
  },
  "mia_no_sft": (
    ("mia", dict(SFT, ablation="no_sft", inner_lr=0.7)),
    lambda: chain(learning_rate(0.7)),
    lambda: rules.cavia(0.7),
  ),
  # The SFT replaced by a method's module: the scaler stays, starting at 1.
  "mia_rule_alfa": (
    ("mia", dict(SFT, ablation="rule_alfa", inner_lr=0.5)),
    lambda: chain(gradient_scaler(1.0), alfa(inner_lr=0.5)),
    None,
  ),
  "mia_rule_gap": (
    ("mia", dict(SFT, ablation="rule_gap", inner_lr=0.5)),
    lambda: chain(gradient_scaler(1.0), learning_rate(0.5), gap()),
    None,
  ),
  "mia_rule_metasgd": (
    ("mia", dict(SFT, ablation="rule_metasgd", lr_position="post")),
    lambda: chain(gradient_scaler(1.0), learned_learning_rate(1.0)),
    None,
  ),
  "alfa": (
    ("alfa", dict(inner_lr=0.5, grad_scale=3.0)),
    lambda: chain(gradient_scaler(3.0), alfa(inner_lr=0.5)),
    None,
  ),
  "gap": (("gap", dict(inner_lr=0.5)), lambda: chain(learning_rate(0.5), gap()), None),
}


def test_every_ablation_has_a_by_hand_case():
  assert {"mia" if a == "none" else f"mia_{a}" for a in methods.ABLATIONS} <= set(BY_HAND)
  assert set(METHODS) <= {v[0][0] for v in BY_HAND.values()}


@pytest.mark.parametrize("case", sorted(BY_HAND))
def test_method_by_name_equals_the_chain_built_by_hand(case):
  (method, cfg), *builders = BY_HAND[case]
  by_name = methods.build_rule(method, cfg)
  params = by_name.init(jax.random.PRNGKey(0), SHAPES)
  g, z = _states()
  moved = _perturbed(params)
  want_u, want_z = by_name.apply(moved, g, z)
  for build in filter(None, builders):
    rule = build()
    assert isinstance(rule, UpdateRule)
    mine = rule.init(jax.random.PRNGKey(0), SHAPES)
    assert _paths(mine) == _paths(params)
    jax.tree.map(np.testing.assert_array_equal, mine, params)  # same init from the same key
    u, z2 = rule.apply(moved, g, z)
    for n in NAMES:
      np.testing.assert_array_equal(u[n], want_u[n], err_msg=case)
      np.testing.assert_array_equal(z2[n], want_z[n], err_msg=case)
    jax.tree.map(np.testing.assert_array_equal, rule.project(moved), by_name.project(moved))
  # Not a trivial rule: the update is not the gradient (except a plain rate of 1).
  assert not np.allclose(want_u["sine"], g["sine"])
