"""GAP (Kang et al., 2023) on latents: a learned diagonal preconditioner.

`M = softplus(m, beta=2) = log(1 + exp(2 m)) / 2` (m init 0.928, so M starts at 1.0) scales the
gradient along the smaller of the latent's two axes (rows when rank <= hidden):
`u = alpha * (g @ diag(M))`, alpha the fixed inner learning rate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mia_jax.rules.base import UpdateRule

M_INIT = 0.928


def softplus_beta(x: jax.Array, beta: float = 2.0) -> jax.Array:
  return jax.nn.softplus(beta * x) / beta


class Gap(UpdateRule):
  """GAP preconditioner, one `M` per modality."""

  name = "gap"

  def __init__(self, groups, latent_shape, cfg=None):
    super().__init__(groups, latent_shape, cfg)
    rank, hidden = self.latent_shape
    self.axis = -2 if rank <= hidden else -1  # the smaller axis
    self.size = min(rank, hidden)

  def init_rule(self, rng):
    del rng
    return {"m": {g.name: jnp.full((g.size, self.size), M_INIT, jnp.float32) for g in self.groups}}

  def transform(self, params, grads, latents):
    updates = {}
    for g in self.groups:
      m = softplus_beta(params["m"][g.name])  # [G, size]
      m = m[:, None, :, None] if self.axis == -2 else m[:, None, None, :]
      updates[g.name] = grads[g.name] * m
    return updates, latents
