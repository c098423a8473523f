"""The update-rule interface shared by every method.

An update rule turns the states of every modality (the gradients of the support loss with respect
to the latents, and the latents themselves) into the inner-loop update:

    g_m = s_m * alpha_m * dL_m/dz_m        (gradient scaler s, learning rate alpha "pre")
    u, z = rule.transform(params, g, z)     (rule-specific; may look across modalities)
    u_m = alpha_m * u_m                     (learning rate "post", instead of "pre")
    z_m <- z_m - u_m                        (done by the inner loop)

`apply(params, grads, latents) -> (updates, latents)` runs the first three lines. All trees are
dicts keyed by modality-group name with arrays `[G, B, rank, hidden]` (G stacked modalities,
B signals). Rule parameters are stacked on the same leading `[G]` axis per group where they are
per-modality, so the rule stays vmappable and a group's modalities never mix by accident.

Parameter tree of every rule: `{"lr": {group: [G, rank, hidden]}}` when the learning rate is
learned, `{"log_scale": {group: [G]}}` when the gradient scaler is on, and rule-specific entries.
"""

from __future__ import annotations

import abc
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections

from mia_jax.modalities import ModalityGroup

PyTree = Any
LR_POSITIONS = ("pre", "post")


class UpdateRule(abc.ABC):
  """Base class: learning rate, gradient scaler and their position; subclasses add `transform`.

  Args:
    groups: the modality groups, in model order.
    latent_shape: `(rank, hidden)`.
    cfg: the `rule` config: `inner_lr` (float), `learn_lr` (bool), `lr_position` ("pre"|"post"),
      `grad_scale` (initial value of the learned gradient scaler; 0 or None = no scaler),
      plus rule-specific fields.
  """

  name = "base"

  def __init__(self, groups: Sequence[ModalityGroup], latent_shape: tuple[int, int],
               cfg: Mapping[str, Any] | None = None):
    cfg = ml_collections.ConfigDict(dict(cfg or {}))
    self.groups = tuple(groups)
    self.latent_shape = tuple(latent_shape)
    self.inner_lr = float(cfg.get("inner_lr", 1.0))
    self.learn_lr = bool(cfg.get("learn_lr", False))
    self.lr_position = cfg.get("lr_position", "pre")
    if self.lr_position not in LR_POSITIONS:
      raise ValueError(f"Unknown lr_position {self.lr_position!r}; allowed: {LR_POSITIONS}.")
    grad_scale = cfg.get("grad_scale", None)
    self.grad_scale = float(grad_scale) if grad_scale else None
    if self.grad_scale is not None and self.grad_scale <= 0:
      raise ValueError(f"grad_scale must be positive (or 0/None for none), got {grad_scale}.")
    self.cfg = cfg

  # -- parameters --------------------------------------------------------------------------------

  def init(self, rng: jax.Array) -> PyTree:
    """Meta-parameters of the rule (a dict; may be empty)."""
    params = {}
    if self.learn_lr:
      params["lr"] = {g.name: jnp.full((g.size,) + self.latent_shape, self.inner_lr, jnp.float32)
                      for g in self.groups}
    if self.grad_scale is not None:
      params["log_scale"] = {g.name: jnp.full((g.size,), jnp.log(self.grad_scale), jnp.float32)
                             for g in self.groups}
    params.update(self.init_rule(rng))
    return params

  def init_rule(self, rng: jax.Array) -> PyTree:
    """Rule-specific parameters (merged into `init`'s dict). Default: none."""
    del rng
    return {}

  def project(self, params: PyTree) -> PyTree:
    """Projection applied after every outer step (e.g. clipping learning rates). Default: none."""
    return params

  # -- the update ----------------------------------------------------------------------------------

  def learning_rate(self, params: PyTree, group: str) -> jax.Array:
    """`[G, 1, rank, hidden]` learned rates, or the fixed scalar."""
    if self.learn_lr:
      return params["lr"][group][:, None]
    return jnp.asarray(self.inner_lr, jnp.float32)

  def apply(self, params: PyTree, grads: Mapping[str, jax.Array],
            latents: Mapping[str, jax.Array]) -> tuple[dict, dict]:
    """Updates for every group.

    Args:
      params: this rule's parameters (from `init`).
      grads: `{group: [G, B, rank, hidden]}` raw support-loss gradients w.r.t. the latents.
      latents: `{group: [G, B, rank, hidden]}` current latents.

    Returns:
      (updates, latents): the inner loop sets `z <- latents - updates`.
    """
    scaled = {}
    for g in self.groups:
      x = grads[g.name]
      if self.grad_scale is not None:
        x = x * jnp.exp(params["log_scale"][g.name])[:, None, None, None]
      if self.lr_position == "pre":
        x = x * self.learning_rate(params, g.name)
      scaled[g.name] = x
    updates, new_latents = self.transform(params, scaled, dict(latents))
    if self.lr_position == "post":
      updates = {g.name: updates[g.name] * self.learning_rate(params, g.name) for g in self.groups}
    return updates, new_latents

  @abc.abstractmethod
  def transform(self, params: PyTree, grads: dict, latents: dict) -> tuple[dict, dict]:
    """Rule-specific map from scaled gradients and latents to (updates, latents)."""


def init_stacked(module, rng: jax.Array, size: int, *example_args) -> PyTree:
  """Initialises `size` independent copies of a Flax module, stacked on a leading axis.

  `example_args` are one member's inputs (without the leading member axis).
  """
  keys = jax.random.split(rng, size)
  return jax.vmap(lambda k: module.init(k, *example_args)["params"])(keys)


def apply_stacked(module, params: PyTree, *args) -> Any:
  """Applies stacked copies of a module: every leaf of `params` and `args` has a leading `[G]`."""
  return jax.vmap(lambda p, *a: module.apply({"params": p}, *a))(params, *args)
