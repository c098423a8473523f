"""ALFA (Baik et al., 2020) on latents: per-token learning rates and weight decay from an MLP.

From the per-token means of the (scaled) gradient and the latent, a per-modality MLP (depth 2,
width 2*rank) outputs per-token `(alpha', beta')`; the latent is decayed, `z <- beta_0 * beta' * z`
(`beta_0` learned, init 1), and the update is `u = alpha' * g`. The MLP's last layer starts at
zero weights with biases giving `alpha' = inner_lr` and `beta' = 1`, so ALFA starts as CAVIA.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from mia_jax import layers
from mia_jax.rules.base import UpdateRule, apply_stacked, init_stacked


class AlfaMLP(nn.Module):
  """`[B, rank]` x 2 -> per-token `(alpha', beta')`, each `[B, rank]`."""

  rank: int
  inner_lr: float = 1.0
  depth: int = 2

  @nn.compact
  def __call__(self, grad_means: jax.Array, latent_means: jax.Array):
    x = jnp.concatenate([grad_means, latent_means], axis=-1)
    for i in range(self.depth - 1):
      x = nn.relu(layers.TorchDense(2 * self.rank, name=f"dense_{i}")(x))
    bias = jnp.concatenate([jnp.full((self.rank,), self.inner_lr), jnp.ones((self.rank,))])
    out = nn.Dense(2 * self.rank, kernel_init=nn.initializers.zeros,
                   bias_init=lambda *_: bias, name="out")(x)
    return out[..., :self.rank], out[..., self.rank:]


class Alfa(UpdateRule):
  """ALFA. Extra config: `alfa_depth` (2)."""

  name = "alfa"

  def __init__(self, groups, latent_shape, cfg=None):
    super().__init__(groups, latent_shape, cfg)
    if self.learn_lr:
      raise ValueError("ALFA generates its learning rates; learn_lr must be False.")
    self.mlp = AlfaMLP(latent_shape[0], self.inner_lr, int(self.cfg.get("alfa_depth", 2)))

  def learning_rate(self, params, group):
    return jnp.asarray(1.0, jnp.float32)  # alpha' replaces the fixed rate

  def init_rule(self, rng):
    r = jnp.zeros((1, self.latent_shape[0]), jnp.float32)
    return {"mlp": {g.name: init_stacked(self.mlp, jax.random.fold_in(rng, i), g.size, r, r)
                    for i, g in enumerate(self.groups)},
            "beta0": {g.name: jnp.ones((g.size,), jnp.float32) for g in self.groups}}

  def transform(self, params, grads, latents):
    updates, new_latents = {}, {}
    for g in self.groups:
      gr, z = grads[g.name], latents[g.name]
      alpha, beta = apply_stacked(self.mlp, params["mlp"][g.name], gr.mean(-1), z.mean(-1))
      beta0 = params["beta0"][g.name][:, None, None, None]
      updates[g.name] = alpha[..., None] * gr
      new_latents[g.name] = beta0 * beta[..., None] * z
    return updates, new_latents
