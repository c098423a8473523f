"""CAVIA: plain gradient descent on the latents with a fixed learning rate (1.0)."""

from mia_jax.rules.base import UpdateRule


class Cavia(UpdateRule):
  """`u = alpha * g` with a fixed scalar alpha (`rule.inner_lr`)."""

  name = "cavia"

  def __init__(self, groups, latent_shape, cfg=None):
    super().__init__(groups, latent_shape, cfg)
    if self.learn_lr:
      raise ValueError("CAVIA uses a fixed learning rate; use method=metasgd for learned rates.")

  def transform(self, params, grads, latents):
    del params
    return grads, latents
