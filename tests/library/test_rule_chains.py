"""Update-rule chains (`mia_jax.rules.chain`): learned rates and scalers mixed with MIA's SFT, the
chain's bookkeeping (names, keys, projection), and argument checking of the pieces and methods."""

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
  identity,
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


def _assert_name_keyed(params, pieces):
  assert list(params) == list(pieces)
  for piece, subtrees in pieces.items():
    for sub in subtrees:
      node = params[piece][sub] if sub else params[piece]
      assert set(node) == set(NAMES), (piece, sub, sorted(node))
  paths = _paths(params)
  assert not [p for p in paths if any(k in ("g0", "g1") for k in p)]


@pytest.mark.parametrize("by", ["hand", "config"])
def test_learned_rates_with_mias_sft(by):
  rule = (
    chain(gradient_scaler(10.0), learned_learning_rate(1.0), sft(**SFT_ARGS))
    if by == "hand"
    else methods.build_rule("mia", dict(SFT, learn_lr=True))
  )
  params = rule.init(jax.random.PRNGKey(0), SHAPES)
  _assert_name_keyed(
    params, {"scale": [None], "learned_lr": [None], "sft": ["encoder", "usft", "fuser"]}
  )
  assert "block_0" in params["sft"]["msft"]  # one MSFT, shared by all modalities
  for n in NAMES:
    assert params["learned_lr"][n].shape == SHAPE
  # Random rates and scalers; the update must be the SFT applied to s * alpha * g.
  keys = jax.random.split(jax.random.PRNGKey(5), len(NAMES))
  params["learned_lr"] = {
    n: jax.random.uniform(k, SHAPE, minval=0.1, maxval=3.0) for n, k in zip(NAMES, keys)
  }
  params["scale"] = {n: jnp.log(jnp.float32(2.0 + i)) for i, n in enumerate(NAMES)}
  g, z = _states()
  u, z2 = rule.apply(params, g, z)
  scaled = {n: (2.0 + i) * params["learned_lr"][n] * g[n] for i, n in enumerate(NAMES)}
  want, _ = sft(**SFT_ARGS).apply(params["sft"], scaled, z)
  for n in NAMES:
    np.testing.assert_allclose(u[n], want[n], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(z2[n], z[n])
  # The rates are per element: changing one element of sine's rates changes sine's update.
  p2 = dict(
    params,
    learned_lr=dict(params["learned_lr"], sine=params["learned_lr"]["sine"].at[1, 3].set(0.01)),
  )
  assert not np.allclose(rule.apply(p2, g, z)[0]["sine"], u["sine"])
  # The hand-built chain and the config give the same updates from the same parameters.
  other = (
    methods.build_rule("mia", dict(SFT, learn_lr=True))
    if by == "hand"
    else chain(gradient_scaler(10.0), learned_learning_rate(1.0), sft(**SFT_ARGS))
  )
  u_other, _ = other.apply(params, g, z)
  for n in NAMES:
    np.testing.assert_array_equal(u_other[n], u[n])
  # project clips the learned rates (default clip (0, 5)) and nothing else.
  big = dict(params, learned_lr={n: v + 10.0 for n, v in params["learned_lr"].items()})
  projected = rule.project(big)
  for n in NAMES:
    np.testing.assert_array_equal(projected["learned_lr"][n], 5.0)


@pytest.mark.parametrize("by", ["hand", "config"])
def test_sft_without_the_gradient_scaler(by):
  rule = (
    chain(learning_rate(0.5), sft(**SFT_ARGS))
    if by == "hand"
    else methods.build_rule("mia", dict(sft_width=24, head_dim=8, inner_lr=0.5, grad_scale=0.0))
  )
  params = rule.init(jax.random.PRNGKey(0), SHAPES)
  _assert_name_keyed(params, {"lr": [], "sft": ["encoder", "usft", "fuser"]})
  assert params["lr"] == {}
  params = _perturbed(params)
  g, z = _states()
  u, z2 = rule.apply(params, g, z)
  want, _ = sft(**SFT_ARGS).apply(params["sft"], {n: 0.5 * g[n] for n in NAMES}, z)
  for n in NAMES:
    np.testing.assert_array_equal(u[n], want[n])
    np.testing.assert_array_equal(z2[n], z[n])
  # With a scaler of 1 in front, MIA's chain gives the same updates.
  mia = rules.mia(1.0, 0.5, **SFT_ARGS)
  mia_params = dict(scale={n: jnp.float32(0.0) for n in NAMES}, lr={}, sft=params["sft"])
  u_mia, _ = mia.apply(mia_params, g, z)
  for n in NAMES:
    np.testing.assert_allclose(u_mia[n], u[n], rtol=1e-6, atol=1e-7)


def test_identity_passes_gradients_and_latents_through():
  rule = identity()
  assert rule.name == "identity" and rule.init(jax.random.PRNGKey(0), SHAPES) == {}
  g, z = _states()
  u, z2 = rule.apply({}, g, z)
  for n in NAMES:
    np.testing.assert_array_equal(u[n], g[n])
    np.testing.assert_array_equal(z2[n], z[n])
  assert rule.project({}) == {}
  chained = chain(identity(), learning_rate(2.0), identity())
  params = chained.init(jax.random.PRNGKey(0), SHAPES)
  assert params == {"identity": {}, "lr": {}, "identity_1": {}}
  u, _ = chained.apply(params, g, z)
  for n in NAMES:
    np.testing.assert_allclose(u[n], 2.0 * g[n], rtol=1e-6)


def test_chain_needs_update_rule_pieces():
  with pytest.raises(ValueError, match="at least one"):
    chain()
  with pytest.raises(TypeError, match="UpdateRule.*function"):
    chain(learning_rate(1.0), lambda g: g)
  with pytest.raises(TypeError, match="got str"):
    chain("cavia")
  with pytest.raises(TypeError, match="got tuple"):
    chain((learning_rate(1.0).init, learning_rate(1.0).apply))


def test_duplicate_piece_names_get_unique_keys():
  rule = chain(
    learning_rate(2.0),
    learned_learning_rate(1.0),
    learning_rate(3.0),
    learned_learning_rate(1.0),
    learning_rate(0.5),
  )
  params = rule.init(jax.random.PRNGKey(0), SHAPES)
  assert list(params) == ["lr", "learned_lr", "lr_1", "learned_lr_1", "lr_2"]
  params["learned_lr"] = {n: jnp.full(SHAPE, 4.0) for n in NAMES}
  params["learned_lr_1"] = {n: jnp.full(SHAPE, 0.25) for n in NAMES}
  g, z = _states()
  u, _ = rule.apply(params, g, z)
  for n in NAMES:
    np.testing.assert_allclose(u[n], 3.0 * g[n], rtol=1e-6)  # 2 * 4 * 3 * 0.25 * 0.5
  # A chain inside a chain is a piece named "chain".
  nested = chain(chain(learning_rate(2.0)), chain(gradient_scaler(3.0)))
  params = nested.init(jax.random.PRNGKey(0), SHAPES)
  assert list(params) == ["chain", "chain_1"] and list(params["chain_1"]) == ["scale"]
  u, _ = nested.apply(params, g, z)
  np.testing.assert_allclose(u["wav"], 6.0 * g["wav"], rtol=1e-5)


def test_chain_init_keys_pieces_by_position_and_modalities_by_name():
  rule = methods.build_rule("mia", SFT)
  full = rule.init(jax.random.PRNGKey(0), SHAPES)
  two = rule.init(jax.random.PRNGKey(0), {"sine": SHAPE, "wav": SHAPE})
  for n in ("sine", "wav"):  # a modality's parameters do not depend on the other modalities
    jax.tree.map(np.testing.assert_array_equal, two["sft"]["encoder"][n], full["sft"]["encoder"][n])
    jax.tree.map(np.testing.assert_array_equal, two["sft"]["fuser"][n], full["sft"]["fuser"][n])
  a, b = (full["sft"]["encoder"][n]["pos_embedding"] for n in ("sine", "tanh"))
  assert not np.allclose(a, b)  # each modality its own initialisation


@pytest.mark.parametrize(
  "make",
  [
    lambda: learning_rate(rate=1.0),
    lambda: gradient_scaler(scale=10.0),
    lambda: learned_learning_rate(lr=1.0),
    lambda: learned_learning_rate(1.0, (0, 5), 2.0),
    lambda: sft(widht=24),
    lambda: sft(24),
    lambda: alfa(lr=0.5),
    lambda: alfa(0.5),
    lambda: gap(m=1.0),
    lambda: identity(1.0),
  ],
)
def test_pieces_reject_unknown_arguments(make):
  with pytest.raises(TypeError):
    make()


@pytest.mark.parametrize(
  "make, match",
  [
    (lambda: learning_rate(-0.1), r"learning_rate must be finite and > 0, got -0\.1"),
    (lambda: learning_rate(0.0), r"learning_rate must be finite and > 0, got 0\.0"),
    (lambda: gradient_scaler(0), r"gradient_scaler init_scale must be finite and > 0, got 0\.0"),
    (lambda: gradient_scaler(-2.0), r"got -2\.0"),
    (
      lambda: learned_learning_rate(0.0),
      r"learned_learning_rate init must be finite and > 0, got 0\.0",
    ),
    (lambda: learned_learning_rate(1.0, clip=(2.0, 5.0)), r"clip \(2\.0, 5\.0\).*init \(1\.0\)"),
    (lambda: learned_learning_rate(6.0), r"clip \(0\.0, 5\.0\).*init \(6\.0\)"),
    (lambda: sft(width=0), r"width must be >= 1, got 0"),
    (lambda: sft(head_dim=0), r"head_dim must be >= 1, got 0"),
    (lambda: sft(msft_depth=0), r"msft_depth must be >= 1, got 0"),
    (lambda: sft(use_grad=False, use_latent=False), r"use_grad or use_latent"),
    (lambda: alfa(depth=0), r"depth must be >= 1, got 0"),
  ],
)
def test_pieces_reject_bad_values(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_unknown_method_and_bad_options():
  with pytest.raises(
    ValueError, match="Unknown method 'maml'.*allowed: alfa, cavia, gap, metasgd, mia"
  ):
    methods.build_rule("maml")
  with pytest.raises(ValueError, match="Unknown lr_position 'middle'.*allowed: pre, post"):
    methods.build_rule("cavia", {"lr_position": "middle"})
  for method in ("cavia", "alfa"):
    with pytest.raises(ValueError, match="fixed learning rate"):
      methods.build_rule(method, {"learn_lr": True})
  with pytest.raises(ValueError, match="grad_scale must be > 0.*got -1"):
    methods.build_rule("mia", {"grad_scale": -1.0})
  with pytest.raises(ValueError, match="learning_rate must be finite and > 0, got -0.5"):
    methods.build_rule("cavia", {"inner_lr": -0.5})
  with pytest.raises(ValueError, match="width must be >= 1, got 0"):
    methods.build_rule("mia", {"sft_width": 0})
  assert set(METHODS) == {"mia", "cavia", "metasgd", "alfa", "gap"}
  for method in METHODS:  # every method builds from the defaults
    assert isinstance(methods.build_rule(method), UpdateRule)


def test_from_config_rejects_unknown_fields_listing_the_allowed_ones():
  with pytest.raises(
    ValueError,
    match=r"Unknown rule config fields \['sft_widht'\]; allowed: "
    r"inner_lr, lr_position, learn_lr, grad_scale, "
    r"scaler_lr_multiplier, ablation, sft_width, .*alfa_depth",
  ):
    methods.build_rule("mia", {"sft_widht": 24})
  with pytest.raises(ValueError, match=r"\['bogus', 'lr'\]"):
    methods.build_rule("cavia", {"lr": 0.1, "bogus": 1})
  # A RuleConfig is taken as it is, and equals its fields as a dict.
  cfg = methods.RuleConfig(inner_lr=0.25)
  g, z = _states()
  u = methods.build_rule("cavia", cfg).apply({"lr": {}}, g, z)[0]
  np.testing.assert_allclose(u["tanh"], 0.25 * g["tanh"], rtol=1e-6)
  assert methods.RuleConfig.from_mapping(None) == methods.RuleConfig()


def test_project_of_a_chain_clips_only_the_learned_rates():
  rule = chain(
    gradient_scaler(10.0),
    learned_learning_rate(1.0, clip=(0.5, 2.0)),
    sft(**SFT_ARGS),
    alfa(),
    gap(),
  )
  params = rule.init(jax.random.PRNGKey(0), SHAPES)
  # Everything far outside the rates' clip range, in both directions.
  big = jax.tree.map(lambda x: x * 0 + 7.0, params)
  small = jax.tree.map(lambda x: x * 0 - 7.0, params)
  for moved in (big, small):
    projected = rule.project(moved)
    assert jax.tree.structure(projected) == jax.tree.structure(moved)
    for key in ("scale", "sft", "alfa", "gap"):
      jax.tree.map(np.testing.assert_array_equal, projected[key], moved[key])
    want = 2.0 if moved is big else 0.5
    for n in NAMES:
      np.testing.assert_array_equal(projected["learned_lr"][n], np.full(SHAPE, want))
  # Rates inside the range are untouched.
  params["learned_lr"]["wav"] = jnp.linspace(0.5, 2.0, 64).reshape(SHAPE)
  np.testing.assert_array_equal(
    rule.project(params)["learned_lr"]["wav"], params["learned_lr"]["wav"]
  )
  # Pieces without a projection: identity.
  for r in (methods.build_rule("mia", SFT), methods.build_rule("alfa"), methods.build_rule("gap")):
    p = _perturbed(r.init(jax.random.PRNGKey(0), SHAPES), scale=10.0)
    jax.tree.map(np.testing.assert_array_equal, r.project(p), p)


def test_building_by_name_moved_to_the_experiments_and_an_old_import_says_where():
  for old, new in (
    ("from_config", "build_rule"),
    ("RuleConfig", "RuleConfig"),
    ("METHODS", "METHODS"),
    ("ABLATIONS", "ABLATIONS"),
  ):
    with pytest.raises(
      AttributeError,
      match=rf"mia_jax.rules.{old} moved to "
      rf"experiments.methods.{new} in 0.5.0",
    ):
      getattr(rules, old)
    assert hasattr(methods, new)  # following the message: it is there
  with pytest.raises(AttributeError, match="has no attribute 'nope'"):
    rules.nope  # noqa: B018
