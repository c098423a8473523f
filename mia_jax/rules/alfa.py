"""ALFA (Baik et al., 2020) on latents, the piece `alfa()`: per-token rates and weight decay.

From the per-token means of the incoming update `g` and the latent `z` (`[B, T]` each), a
per-modality MLP (depth 2, width 2T) outputs per-token `(alpha', beta')`; the latent is decayed,
`z <- beta_0 * beta' * z` (`beta_0` learned, init 1), and the update is `u = alpha' * g`. The MLP's
last layer starts at zero weights with biases giving `alpha' = inner_lr` and `beta' = 1`, so ALFA
starts as CAVIA with learning rate `inner_lr`.
"""

from __future__ import annotations

from flax import linen as nn
import jax
import jax.numpy as jnp

from mia_jax import layers
from mia_jax.rules.base import UpdateRule, apply_per_modality, modality_key


class AlfaMLP(nn.Module):
  """`[B, T]` x 2 -> per-token `(alpha', beta')`, each `[B, T]`."""

  num_tokens: int
  inner_lr: float = 1.0
  depth: int = 2

  @nn.compact
  def __call__(self, grad_means: jax.Array, latent_means: jax.Array):
    t = self.num_tokens
    x = jnp.concatenate([grad_means, latent_means], axis=-1)
    for i in range(self.depth - 1):
      x = nn.relu(layers.TorchDense(2 * t, name=f"dense_{i}")(x))
    bias = jnp.concatenate([jnp.full((t,), self.inner_lr), jnp.ones((t,))])
    out = nn.Dense(2 * t, kernel_init=nn.initializers.zeros, bias_init=lambda *_: bias, name="out")(
      x
    )
    return out[..., :t], out[..., t:]


def alfa(*, inner_lr: float = 1.0, depth: int = 2) -> UpdateRule:
  """ALFA's generated per-token learning rates and latent decay.

  Args:
    inner_lr: the initial generated rate `alpha'` (ALFA starts as CAVIA with this rate).
    depth: layers of the generating MLP (>= 1).

  Parameters: `{"mlp": {name: ...}, "beta0": {name: scalar}}`.
  """
  if int(depth) < 1:
    raise ValueError(f"alfa(): depth must be >= 1, got {depth}.")
  mlp = lambda t: AlfaMLP(t, float(inner_lr), int(depth))

  def init(rng, token_shapes):
    params = {"mlp": {}, "beta0": {}}
    for name, (t, _) in token_shapes.items():
      r = jnp.zeros((1, t), jnp.float32)
      params["mlp"][name] = mlp(t).init(modality_key(rng, name), r, r)["params"]
      params["beta0"][name] = jnp.ones((), jnp.float32)
    return params

  def apply(params, updates, latents):
    names = list(updates)
    by_tokens: dict[int, list[str]] = {}
    for n in names:
      by_tokens.setdefault(updates[n].shape[-2], []).append(n)
    rates = {}
    for t, members in by_tokens.items():
      rates.update(
        apply_per_modality(
          mlp(t),
          params["mlp"],
          ({n: updates[n].mean(-1) for n in members}, {n: latents[n].mean(-1) for n in members}),
          members,
        )
      )
    new_updates = {n: rates[n][0][..., None] * updates[n] for n in names}
    new_latents = {n: params["beta0"][n] * rates[n][1][..., None] * latents[n] for n in names}
    return new_updates, new_latents

  return UpdateRule(init, apply, name="alfa")
