"""GAP (Kang et al., 2023) on latents, the piece `gap()`: a learned diagonal preconditioner.

`M = softplus(m, beta=2) = log(1 + exp(2 m)) / 2` (m init 0.928, so M starts at 1.0) scales the
incoming update along the smaller of the token view's two axes (tokens when T <= W):
`u <- u @ diag(M)`. In GAP the chain puts the fixed inner learning rate before it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mia_jax.rules.base import UpdateRule

M_INIT = 0.928


def softplus_beta(x: jax.Array, beta: float = 2.0) -> jax.Array:
  return jax.nn.softplus(beta * x) / beta


def gap(*, m_init: float = M_INIT) -> UpdateRule:
  """GAP's preconditioner, one `M` per modality. Parameters: `{name: m [min(T, W)]}`."""

  def init(rng, token_shapes):
    del rng
    return {
      n: jnp.full((min(t, w),), float(m_init), jnp.float32) for n, (t, w) in token_shapes.items()
    }

  def apply(params, updates, latents):
    out = {}
    for n, u in updates.items():
      t, w = u.shape[-2:]
      m = softplus_beta(params[n])
      out[n] = u * (m[:, None] if t <= w else m)
    return out, dict(latents)

  return UpdateRule(init, apply, name="gap")
