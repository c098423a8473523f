"""The backbone interface: your own Flax INR meta-trained by MIA, latents of any shape read as
tokens, and the functa backbone under every method and ablation."""

import dataclasses

from flax import linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines.benchmarks import synthetic_spec
from experiments import methods
from mia_jax import (
  MetaConfig,
  MetaLearner,
  ModelConfig,
  MultimodalINR,
  adapt,
  meta_step,
  rules,
  token_shape,
)
from tests.helpers import episode, random_batch


class ConcatINR(nn.Module):
  """A user's INR, defined outside the library: an MLP on [coords, latent] (latent any shape)."""

  d_out: int
  latent_shape: tuple = (12,)
  width: int = 32

  @nn.compact
  def __call__(self, coords, latent):
    z = jnp.broadcast_to(latent.reshape(-1), (coords.shape[0], latent.size))
    h = jnp.concatenate([coords, z], axis=-1)
    h = nn.tanh(nn.Dense(self.width)(h))
    h = nn.tanh(nn.Dense(self.width)(h))
    return nn.Dense(self.d_out)(h)


def _mia(width=16):
  return rules.mia(grad_scale=10.0, inner_lr=1.0, width=width, head_dim=8)


@pytest.mark.slow
@pytest.mark.parametrize(
  "latent_shape, token_width, tokens",
  [((12,), 4, (3, 4)), ((12,), 0, (1, 12)), ((2, 6), 0, (2, 6)), ((2, 6), 3, (4, 3))],
)
def test_own_inr_meta_trained_by_mia(latent_shape, token_width, tokens):
  specs = (synthetic_spec("sine"), synthetic_spec("tanh"))
  model = MultimodalINR(
    specs,
    lambda s: ConcatINR(d_out=s.d_out, latent_shape=latent_shape),
    token_width=token_width,
    latent_init_std=0.1,
  )
  assert model.token_shapes == {"sine": tokens, "tanh": tokens}
  learner = MetaLearner(model, _mia(), MetaConfig(inner_steps=2, learning_rate=3e-3))
  mesh = meta_step.data_mesh()
  step = meta_step.make_train_step(learner, mesh, donate=False)
  state = jax.device_put(learner.init(jax.random.PRNGKey(0)), meta_step.replicated(mesh))
  sft = state.params["rule"]["sft"]
  # The SFT's tokens have the documented shape: T positions of model width, updates of width W.
  assert sft["encoder"]["sine"]["pos_embedding"].shape == (tokens[0], 16)
  assert sft["fuser"]["sine"]["out"]["linear"]["kernel"].shape == (16, tokens[1])
  assert state.params["inr"]["sine"]["latent_init"].shape == latent_shape
  from data_pipelines.synthetic import generate

  batch = meta_step.put_batch(generate.generate_signals(8, 0, ("sine", "tanh")), mesh)
  losses = []
  for _ in range(25):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
  # The adapted latents come back as tokens of that shape.
  latents, _, _ = jax.jit(
    lambda p: adapt(
      learner.model, learner.rule, p, state.buffers, jax.device_get(batch), episode(learner, 8), 2
    )
  )(state.params)
  assert latents["sine"].shape == (8,) + tokens


def test_token_view_is_a_row_major_reshape_of_the_latent():
  model = MultimodalINR(
    [synthetic_spec("sine")], ConcatINR(d_out=1, latent_shape=(2, 6)), token_width=3
  )
  params, buffers = model.init(jax.random.PRNGKey(0))
  z = jax.random.normal(jax.random.PRNGKey(1), (5, 2, 6))
  pred = model.predict(params, buffers, {"sine": z.reshape(5, 4, 3)})["sine"]
  ref = jax.vmap(
    lambda l: model.modules["sine"].apply(
      {"params": params["sine"]["backbone"]}, model.coords["sine"], l
    )
  )(z)
  np.testing.assert_allclose(pred, ref, rtol=1e-6)
  np.testing.assert_array_equal(
    model.initial_latents(params, 2)["sine"][1], params["sine"]["latent_init"].reshape(4, 3)
  )


def test_token_shape_rule_and_errors():
  assert token_shape((8, 128)) == (8, 128)
  assert token_shape((128,), 16) == (8, 16)
  assert token_shape((128,)) == (1, 128)
  assert token_shape((2, 3, 4)) == (6, 4)
  assert token_shape((2, 3, 4), 6) == (4, 6)
  with pytest.raises(ValueError, match="token_width=5 does not divide.*128"):
    token_shape((128,), 5)
  with pytest.raises(ValueError, match="token_width must be >= 0"):
    token_shape((8, 4), -1)
  with pytest.raises(ValueError, match="at least one axis"):
    token_shape(())


def test_backbone_errors_are_clear():
  specs = [synthetic_spec("sine")]
  with pytest.raises(TypeError, match="Flax module with a `latent_shape`"):
    MultimodalINR(specs, nn.Dense(3))
  with pytest.raises(ValueError, match=r"No backbone given for modalities \['sine'\]"):
    MultimodalINR(specs, {"tanh": ConcatINR(d_out=1)})
  wrong = MultimodalINR(specs, ConcatINR(d_out=3))
  with pytest.raises(ValueError, match=r"modality 'sine' maps \[1, 1\] coordinates to \(1, 3\)"):
    wrong.init(jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="Unknown backbone 'siren'; allowed: composer, functa"):
    MultimodalINR.from_config(specs, ModelConfig(backbone="siren"))


FUNCTA = ModelConfig(
  backbone="functa", hidden=16, num_layers=3, latent_dim=16, token_width=4, latent_init_std=0.01
)
CASES = [(m, "none") for m in methods.METHODS] + [
  ("mia", a) for a in methods.ABLATIONS if a != "none"
]


@pytest.mark.slow
@pytest.mark.parametrize("method, ablation", CASES)
def test_functa_backbone_with_every_method_and_ablation(method, ablation):
  specs = (synthetic_spec("sine"), synthetic_spec("relu"))
  cfg = dict(
    ablation=ablation,
    sft_width=16,
    head_dim=8,
    inner_lr=0.1,
    grad_scale=10.0 if method == "mia" else 0.0,
  )
  learner = MetaLearner(
    MultimodalINR.from_config(specs, FUNCTA),
    methods.build_rule(method, cfg),
    MetaConfig(inner_steps=2),
  )
  assert learner.model.token_shapes["sine"] == (4, 4)
  state = learner.init(jax.random.PRNGKey(0))
  batch, ep = random_batch(specs, 3), episode(learner, 3)
  (loss, aux), grads = jax.jit(
    jax.value_and_grad(lambda p: learner.loss_fn(p, state.buffers, batch, ep), has_aux=True)
  )(state.params)
  assert np.isfinite(float(loss))
  # Adaptation changes the support loss, and every meta-parameter receives a gradient.
  sl = aux["support_loss"]["sine"]
  assert float(sl[0]) != float(sl[1])
  norms = jax.tree.map(lambda g: float(jnp.abs(g).max()), grads)
  assert all(v > 0 for v in jax.tree.leaves(norms["inr"])), norms["inr"]
  # Zero by construction at initialisation: ALFA's hidden layer (its output layer starts at zero
  # weights, so ALFA starts as CAVIA) and, with latent_only, the gradient scaler (the SFT never
  # reads the gradient it scales).
  exempt = lambda path: (
    ("alfa" in (method, ablation.removeprefix("rule_")) and "dense_0" in path)
    or (ablation == "latent_only" and path[0] == "scale")
  )
  rule_norms = traverse_util.flatten_dict(norms["rule"])
  assert bool(rule_norms) == (method != "cavia" and ablation != "no_sft")  # a fixed rate: none
  assert all(v > 0 for k, v in rule_norms.items() if not exempt(k)), rule_norms


@pytest.mark.slow
@pytest.mark.parametrize(
  "config, tokens",
  [
    (ModelConfig(hidden=16, rank=4), (4, 16)),  # composer: rank tokens of hidden
    (ModelConfig(hidden=16, rank=4, token_width=8), (8, 8)),  # ... or re-cut into width 8
    (FUNCTA, (4, 4)),  # functa [16] in tokens of 4
    (dataclasses.replace(FUNCTA, token_width=0), (1, 16)),
  ],
)
def test_built_in_backbones_tokens_reach_the_sft(config, tokens):
  specs = (synthetic_spec("sine"), synthetic_spec("tanh"))
  model = MultimodalINR.from_config(specs, config)
  assert model.token_shapes == {"sine": tokens, "tanh": tokens}
  rule = _mia(width=16)
  params = rule.init(jax.random.PRNGKey(0), model.token_shapes)
  assert params["sft"]["encoder"]["tanh"]["pos_embedding"].shape == (tokens[0], 16)
  inr, buffers = model.init(jax.random.PRNGKey(1))
  z = model.initial_latents(inr, 3)
  g = jax.tree.map(jnp.ones_like, z)
  updates, _ = rule.apply(params, g, z)
  assert updates["sine"].shape == (3,) + tokens
