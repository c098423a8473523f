"""Multimodal INR: one stacked learner per modality group, evaluated as pure functions.

Layout conventions used throughout the library (G = modalities in a group, B = signals):

* meta-parameters of a group's learners: the Flax `params` of `ComposerINR` with a leading `[G]`
  axis on every leaf (initialised with `jax.vmap` over G keys);
* fixed buffers (Fourier matrices): the same, in a separate tree;
* latents of a group: `[G, B, rank, hidden]`;
* coordinates: either shared by all signals, `[P, d_in]`, or per signal, `[G, B, P, d_in]`;
* predictions: `[G, B, P, d_out]`, output bias included.

All trees over groups are dicts keyed by group name (`ModalityGroup.name`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

from mia_jax import modalities as modalities_lib
from mia_jax.inr import BACKBONES
from mia_jax.inr.composer import batched_apply

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Backbone hyper-parameters (MIA_SPEC section 3)."""

  backbone: str = "composer"
  hidden: int = 128
  num_layers: int = 5
  rank: int = 8
  ff_dim: int = 128
  ff_sigma: float = 0.0
  latent_init_std: float = 0.2
  materialize_lowrank: bool = False
  latent_map: str = "none"
  # Per-modality Fourier sigma, "name=sigma,name=sigma" (e.g. "rgb=1,wav=30"): overrides
  # `ff_sigma` (and a spec's own sigma) for the named modalities; "" = none.
  ff_sigmas: str = ""

  def sigma_overrides(self, names: Sequence[str]) -> dict[str, float]:
    """Parses `ff_sigmas`; a name outside `names` or a malformed entry is a clear error."""
    out = {}
    for item in filter(None, (t.strip() for t in self.ff_sigmas.split(","))):
      name, sep, value = (t.strip() for t in item.partition("="))
      try:
        sigma = float(value) if sep else None
      except ValueError:
        sigma = None
      if sigma is None or sigma < 0:
        raise ValueError(f"model.ff_sigmas entry {item!r} is not name=sigma with sigma >= 0 "
                         f"(e.g. 'rgb=1,wav=30').")
      if name not in names:
        raise ValueError(f"model.ff_sigmas names modality {name!r}, which is not configured; "
                         f"configured: {', '.join(names)}.")
      out[name] = sigma
    return out

  def for_modalities(self, names: Sequence[str], known: Sequence[str]) -> "ModelConfig":
    """This config with `ff_sigmas` kept to the configured `names`.

    An entry for a modality the benchmark has (`known`) but this run leaves out is dropped, so one
    preset serves every modality subset (e.g. "rgb=1" in a wav-alone run); a name the benchmark
    does not have is still a clear error.
    """
    self.sigma_overrides(known)  # every entry well formed and naming a benchmark modality
    kept = [t for t in self.ff_sigmas.split(",") if t.partition("=")[0].strip() in names]
    return dataclasses.replace(self, ff_sigmas=",".join(kept))

  @classmethod
  def from_config(cls, cfg: Mapping[str, Any] | None) -> "ModelConfig":
    cfg = dict(cfg or {})
    unknown = set(cfg) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"Unknown model config fields {sorted(unknown)}; allowed: "
                       f"{sorted(f.name for f in dataclasses.fields(cls))}.")
    return cls(**cfg)


class MultimodalINR:
  """The per-modality INR learners of a set of modalities, grouped by signature."""

  def __init__(self, specs: Sequence[modalities_lib.ModalitySpec], config: ModelConfig):
    if config.backbone not in BACKBONES:
      raise ValueError(f"Unknown backbone {config.backbone!r}; allowed: {', '.join(BACKBONES)}.")
    overrides = config.sigma_overrides([s.name for s in specs])
    self.specs = tuple(dataclasses.replace(s, fourier_sigma=overrides[s.name])
                       if s.name in overrides else s for s in specs)
    self.config = config
    self.groups = modalities_lib.group_modalities(self.specs, config.ff_sigma)
    self.modules = {}
    for g in self.groups:
      sigma = config.ff_sigma if g.spec.fourier_sigma is None else g.spec.fourier_sigma
      self.modules[g.name] = BACKBONES[config.backbone](
          d_out=g.spec.d_out, hidden=config.hidden, num_layers=config.num_layers,
          rank=config.rank, ff_dim=config.ff_dim, ff_sigma=sigma,
          latent_init_std=config.latent_init_std,
          materialize_lowrank=config.materialize_lowrank, latent_map=config.latent_map)
    self.coords = {g.name: jnp.asarray(g.spec.coordinates()) for g in self.groups}
    self.output_bias = {g.name: jnp.asarray(g.output_bias()) for g in self.groups}

  @property
  def latent_shape(self) -> tuple[int, int]:
    return (self.config.rank, self.config.hidden)

  def init(self, rng: jax.Array) -> tuple[PyTree, PyTree]:
    """Initialises every group's stacked learners.

    Returns:
      (params, buffers): dicts keyed by group name; every leaf has a leading `[G]` axis.
    """
    params, buffers = {}, {}
    for i, g in enumerate(self.groups):
      module = self.modules[g.name]
      keys = jax.random.split(jax.random.fold_in(rng, i), g.size)
      dummy_coords = jnp.zeros((1, g.spec.d_in), jnp.float32)
      dummy_latent = jnp.zeros(self.latent_shape, jnp.float32)
      variables = jax.vmap(lambda k: module.init(k, dummy_coords, dummy_latent))(keys)
      params[g.name] = variables["params"]
      buffers[g.name] = variables.get("buffers", {})
    return params, buffers

  def initial_latents(self, params: PyTree, batch_size: int) -> dict[str, jax.Array]:
    """The meta-learned initial latents broadcast over the batch: `{group: [G, B, rank, hidden]}`."""
    return {name: jnp.broadcast_to(p["latent_init"][:, None],
                                   (p["latent_init"].shape[0], batch_size) + self.latent_shape)
            for name, p in params.items()}

  def predict(self, params: PyTree, buffers: PyTree, latents: Mapping[str, jax.Array],
              coords: Mapping[str, jax.Array] | None = None) -> dict[str, jax.Array]:
    """Evaluates every group's learners.

    Args:
      params: `{group: stacked params}`.
      buffers: `{group: stacked buffers}`.
      latents: `{group: [G, B, rank, hidden]}`.
      coords: `{group: [G, B, P, d_in]}` per-signal coordinates; None (or a missing group) means
        the group's full grid `[N, d_in]`, shared by all signals.

    Returns:
      `{group: [G, B, P, d_out]}` predictions, output bias included.
    """
    out = {}
    for g in self.groups:
      c = None if coords is None else coords.get(g.name)
      c = self.coords[g.name] if c is None else c
      pred = batched_apply(self.modules[g.name], params[g.name], buffers[g.name],
                           latents[g.name], c)
      out[g.name] = pred + self.output_bias[g.name][:, None, None, None]
    return out
