"""MetaSGD: a learned per-element learning rate, clipped to [lr_min, lr_max] after each outer step."""

import jax.numpy as jnp

from mia_jax.rules.base import UpdateRule


class MetaSGD(UpdateRule):
  """`u = alpha * g` with alpha a meta-learned tensor `[G, rank, hidden]` per group (init inner_lr).

  Extra config: `lr_clip` = (min, max), default (0, 5).
  """

  name = "metasgd"

  def __init__(self, groups, latent_shape, cfg=None):
    cfg = dict(cfg or {})
    cfg["learn_lr"] = True
    super().__init__(groups, latent_shape, cfg)
    self.lr_clip = tuple(self.cfg.get("lr_clip", (0.0, 5.0)))

  def transform(self, params, grads, latents):
    del params
    return grads, latents

  def project(self, params):
    params = dict(params)
    params["lr"] = {k: jnp.clip(v, *self.lr_clip) for k, v in params["lr"].items()}
    return params
