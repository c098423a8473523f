"""Multimodal INR: one INR learner per modality, same-signature modalities stacked and vmapped.

A *backbone* is any Flax module for one modality and one signal,

    backbone.apply(variables, coords [P, d_in], latent [*backbone.latent_shape]) -> [P, d_out]

that declares its latent's shape (`latent_shape`). It may also provide a faster path for stacked
modalities and signals, `backbone.batched_apply(variables, latents [G, B, *latent_shape],
coords [P, d_in] or [G, B, P, d_in]) -> [G, B, P, d_out]` (variables stacked on `[G]`); without
one, `jax.vmap` over modalities and signals is used. Two backbones are built in: the composer
(`inr/composer.py`, with a batched path) and a functa-style modulated SIREN (`inr/functa.py`).

`MultimodalINR` owns what is not the backbone's: the meta-learned initial latent of every
modality, the modality's constant output bias and its coordinate grid. Trees are keyed by
modality name:

* params: `{name: {"backbone": Flax params, "latent_init": [*latent_shape]}}`;
* buffers: `{name: the backbone's other variable collections}` (e.g. fixed Fourier matrices);
* latents, as the inner loop and the update rules see them: `{name: [B, T, W]}` tokens
  (`mia_jax.tokens`); predictions `{name: [B, P, d_out]}`, output bias included.

Modalities with the same grid, output width, support size and an equal backbone module are
stacked internally (`stack`) and evaluated in one vmapped (or batched) call.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence, cast

from flax import linen as nn
import jax
import jax.numpy as jnp

from mia_jax import modalities as modalities_lib
from mia_jax import tokens as tokens_lib
from mia_jax.inr import ComposerINR, FunctaINR
from mia_jax.inr.composer import LATENT_MAPS
from mia_jax.modalities import ModalitySpec, name_hash

PyTree = Any
BACKBONES = ("composer", "functa")


def _integer(low: int, even: bool = False) -> Callable[[Any], bool]:
  return lambda v: (
    isinstance(v, int) and not isinstance(v, bool) and v >= low and (not even or v % 2 == 0)
  )


def _number(low: float, strict: bool = True) -> Callable[[Any], bool]:
  return lambda v: (
    isinstance(v, (int, float))
    and not isinstance(v, bool)
    and math.isfinite(v)
    and (v > low if strict else v >= low)
  )


# ModelConfig's numeric fields: (name, check, what is allowed).
_FIELD_CHECKS = (
  ("hidden", _integer(1), "an integer >= 1"),
  ("num_layers", _integer(3), "an integer >= 3 (encoder, modulated, output)"),
  ("rank", _integer(1), "an integer >= 1"),
  ("ff_dim", _integer(2, even=True), "an even integer >= 2 (cos and sin halves)"),
  ("ff_sigma", _number(0, strict=False), "a finite number >= 0"),
  ("latent_init_std", _number(0, strict=False), "a finite number >= 0"),
  ("latent_dim", _integer(1), "an integer >= 1"),
  ("w0", _number(0), "a finite number > 0"),
  ("token_width", _integer(0), "an integer >= 0 (0: the latent's last axis)"),
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The built-in backbones' hyper-parameters (docs/method.md section 3), by name for the configs.

  Attributes:
    backbone: "composer" (low-rank modulated MLP) or "functa" (shift-modulated SIREN).
    hidden, num_layers: width and depth of either backbone.
    rank, ff_dim, ff_sigma, materialize_lowrank, latent_map: composer only (see ComposerINR).
    ff_sigmas: per-modality Fourier sigma, `{name: sigma}` (e.g. `{"rgb": 1.0, "wav": 30.0}`):
      overrides `ff_sigma` (and a spec's own sigma) for the named modalities. Composer only.
    latent_dim, w0: functa only (see FunctaINR).
    latent_init_std: std of the meta-learned initial latent (0 = zeros).
    token_width: how the update rules see the latent (`mia_jax.tokens`); 0 = its last axis.
  """

  backbone: str = "composer"
  hidden: int = 128
  num_layers: int = 5
  rank: int = 8
  ff_dim: int = 128
  ff_sigma: float = 0.0
  latent_init_std: float = 0.2
  materialize_lowrank: bool = False
  latent_map: str = "none"
  ff_sigmas: Mapping[str, float] = dataclasses.field(default_factory=dict)
  latent_dim: int = 128
  w0: float = 30.0
  token_width: int = 0

  def __post_init__(self):
    if self.backbone not in BACKBONES:
      raise ValueError(f"Unknown backbone {self.backbone!r}; allowed: {', '.join(BACKBONES)}.")
    if self.latent_map not in LATENT_MAPS:
      raise ValueError(
        f"Unknown latent_map {self.latent_map!r}; allowed: {', '.join(LATENT_MAPS)}."
      )
    for name, ok, allowed in _FIELD_CHECKS:
      value = getattr(self, name)
      if not ok(value):
        raise ValueError(f"ModelConfig.{name}={value!r} is not allowed; expected {allowed}.")
    if not isinstance(self.ff_sigmas, Mapping):
      raise TypeError(
        f"ModelConfig.ff_sigmas must be a mapping {{modality: sigma}}, got "
        f"{self.ff_sigmas!r} (the experiments' 'rgb=1,wav=30' strings are parsed by "
        "experiments.syntax.parse_sigmas)."
      )
    for name, sigma in self.ff_sigmas.items():
      if not _number(0, strict=False)(sigma):
        raise ValueError(
          f"ModelConfig.ff_sigmas[{name!r}]={sigma!r} is not allowed; expected a "
          "finite number >= 0."
        )

  def backbone_for(self, spec: ModalitySpec) -> nn.Module:
    """The configured backbone module of one modality."""
    if self.backbone == "composer":
      sigma = self.ff_sigma if spec.fourier_sigma is None else spec.fourier_sigma
      return ComposerINR(
        d_out=spec.d_out,
        hidden=self.hidden,
        num_layers=self.num_layers,
        rank=self.rank,
        ff_dim=self.ff_dim,
        ff_sigma=sigma,
        materialize_lowrank=self.materialize_lowrank,
        latent_map=self.latent_map,
      )
    if self.backbone == "functa":
      return FunctaINR(
        d_out=spec.d_out,
        hidden=self.hidden,
        num_layers=self.num_layers,
        latent_dim=self.latent_dim,
        w0=self.w0,
      )
    raise ValueError(f"Unknown backbone {self.backbone!r}; allowed: {', '.join(BACKBONES)}.")


class MultimodalINR:
  """The INR learners of a set of modalities.

  Args:
    specs: the modalities.
    backbone: one Flax module for every modality, a `{name: module}` mapping, or a function
      `spec -> module` (each module's output width must be the modality's `d_out`).
    token_width: how the update rules see each latent (`mia_jax.tokens`); 0 = its last axis.
    latent_init_std: std of the meta-learned initial latents at initialisation (0 = zeros).
  """

  def __init__(
    self,
    specs: Sequence[ModalitySpec],
    backbone: nn.Module | Mapping[str, nn.Module] | Callable[[ModalitySpec], nn.Module],
    *,
    token_width: int = 0,
    latent_init_std: float = 0.2,
  ):
    self.specs = tuple(specs)
    names = [s.name for s in self.specs]
    if isinstance(backbone, nn.Module):
      self.modules = {n: backbone for n in names}
    elif isinstance(backbone, Mapping):
      missing = [n for n in names if n not in backbone]
      if missing:
        raise ValueError(f"No backbone given for modalities {missing}; given: {sorted(backbone)}.")
      self.modules = {n: backbone[n] for n in names}
    else:
      self.modules = {s.name: backbone(s) for s in self.specs}
    for s in self.specs:
      m = self.modules[s.name]
      if not isinstance(m, nn.Module) or not hasattr(m, "latent_shape"):
        raise TypeError(
          f"The backbone of modality {s.name!r} must be a Flax module with a "
          f"`latent_shape`; got {type(m).__name__}."
        )
    if latent_init_std < 0:
      raise ValueError(f"latent_init_std must be >= 0, got {latent_init_std}.")
    self.latent_init_std = float(latent_init_std)
    self.latent_shapes = {n: tuple(int(d) for d in m.latent_shape) for n, m in self.modules.items()}
    self.token_shapes = {
      n: tokens_lib.token_shape(shape, token_width) for n, shape in self.latent_shapes.items()
    }
    self.groups = modalities_lib.group_modalities(
      self.specs, key=lambda s: (s.d_in, s.grid_shape, s.d_out, s.max_support, self.modules[s.name])
    )
    self.coords = {s.name: jnp.asarray(s.coordinates()) for s in self.specs}
    self._bias = {s.name: float(s.output_bias) for s in self.specs}

  @classmethod
  def from_config(cls, specs: Sequence[ModalitySpec], config: ModelConfig) -> "MultimodalINR":
    """The built-in backbone named by `config`, with its per-modality Fourier sigmas."""
    names = [s.name for s in specs]
    unknown = [n for n in config.ff_sigmas if n not in names]
    if unknown:
      raise ValueError(
        f"ModelConfig.ff_sigmas names modality {unknown[0]!r}, which is not among "
        f"the specs; the specs have: {', '.join(names)}."
      )
    overrides = {n: float(s) for n, s in config.ff_sigmas.items()}
    specs = tuple(
      dataclasses.replace(s, fourier_sigma=overrides[s.name]) if s.name in overrides else s
      for s in specs
    )
    return cls(
      specs,
      config.backbone_for,
      token_width=config.token_width,
      latent_init_std=config.latent_init_std,
    )

  # -- parameters ----------------------------------------------------------------------------------

  def init(self, rng: jax.Array) -> tuple[PyTree, PyTree]:
    """Initialises every modality's learner from `fold_in(rng, hash(name))`.

    Returns:
      (params, buffers), keyed by modality name (see the module docstring).
    """
    params, buffers = {}, {}
    for s in self.specs:
      module = self.modules[s.name]
      k_backbone, k_latent = jax.random.split(jax.random.fold_in(rng, name_hash(s.name)))
      coords = jnp.zeros((1, s.d_in), jnp.float32)
      latent = jnp.zeros(self.latent_shapes[s.name], jnp.float32)
      variables = dict(module.init(k_backbone, coords, latent))
      out = jax.eval_shape(lambda v: module.apply(v, coords, latent), variables)
      if out.shape != (1, s.d_out):
        raise ValueError(
          f"The backbone of modality {s.name!r} maps [1, {s.d_in}] coordinates to "
          f"{out.shape}; expected [1, {s.d_out}] ([P, d_out])."
        )
      params[s.name] = {
        "backbone": variables.pop("params", {}),
        "latent_init": self.latent_init_std
        * jax.random.normal(k_latent, self.latent_shapes[s.name], jnp.float32),
      }
      buffers[s.name] = variables
    return params, buffers

  def stack(self, params: PyTree, buffers: PyTree) -> dict:
    """Each group's backbone variables stacked on a leading `[G]` axis (done once per step)."""
    stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)
    return {
      g.name: stack([{"params": params[n]["backbone"], **buffers[n]} for n in g.names])
      for g in self.groups
    }

  def initial_latents(self, params: PyTree, batch_size: int) -> dict[str, jax.Array]:
    """The meta-learned initial latents as tokens, broadcast over the batch: `{name: [B, T, W]}`."""
    return {
      n: jnp.broadcast_to(
        params[n]["latent_init"].reshape(self.token_shapes[n]), (batch_size,) + self.token_shapes[n]
      )
      for n in self.latent_shapes
    }

  # -- evaluation ----------------------------------------------------------------------------------

  def predict(
    self,
    params: PyTree,
    buffers: PyTree,
    latents: Mapping[str, jax.Array],
    coords: Mapping[str, jax.Array] | None = None,
  ) -> dict[str, jax.Array]:
    """Evaluates every modality's learner.

    Args:
      params, buffers: from `init`.
      latents: `{name: [B, T, W]}` tokens (or `[B, *latent_shape]`).
      coords: `{name: [B, P, d_in]}` per-signal coordinates, anywhere (the grid spans [-1, 1]
        per axis; `ModalitySpec.coordinates(grid_shape)` gives a finer grid); None (or a
        missing name) means the modality's full grid `[N, d_in]`, shared by all signals.
        Modalities may have different `P`.

    Returns:
      `{name: [B, P, d_out]}` predictions, output bias included.
    """
    return self.predict_stacked(self.stack(params, buffers), latents, coords)

  def predict_stacked(
    self,
    stacked: Mapping[str, PyTree],
    latents: Mapping[str, jax.Array],
    coords: Mapping[str, jax.Array] | None = None,
    compute_dtype: Any = None,
  ) -> dict[str, jax.Array]:
    """`predict` with the variables already `stack`ed (the inner loop stacks them once).

    `compute_dtype` (e.g. `jnp.bfloat16`): the backbones run in it (variables, latents and
    coordinates cast on entry; mixed precision) and the predictions come back as float32.
    """
    low = is_lowered(compute_dtype)
    coords = {} if coords is None else coords  # no query: every modality on its grid
    if low:
      stacked, latents = cast_floats((stacked, latents), compute_dtype)
    out = {}
    for g in self.groups:
      module = self.modules[g.names[0]]
      b = latents[g.names[0]].shape[0]
      z = jnp.stack([latents[n].reshape((b,) + self.latent_shapes[n]) for n in g.names])
      given = [n for n in g.names if coords.get(n) is not None]
      sizes = None
      if not given:  # the grid, shared by all signals
        c = self.coords[g.names[0]]
      elif len(given) == len(g.names) and len({coords[n].shape for n in g.names}) == 1:
        c = jnp.stack([coords[n] for n in g.names])
      else:  # some on the grid or different point counts: pad to one [G, B, P, d_in]
        per = {
          n: (
            jnp.asarray(coords[n])
            if n in given
            else jnp.broadcast_to(self.coords[n], (b,) + self.coords[n].shape)
          )
          for n in g.names
        }
        sizes = {n: per[n].shape[1] for n in g.names}
        p_max = max(sizes.values())
        c = jnp.stack([jnp.pad(per[n], [(0, 0), (0, p_max - sizes[n]), (0, 0)]) for n in g.names])
      if low:
        c = c.astype(compute_dtype)
      if hasattr(module, "batched_apply"):
        pred = module.batched_apply(stacked[g.name], z, c)
      else:
        pred = vmapped_apply(module, stacked[g.name], z, c)
      for i, n in enumerate(g.names):
        p = pred[i] if sizes is None else pred[i][:, : sizes[n]]
        out[n] = (p.astype(jnp.float32) if low else p) + self._bias[n]
    return out


def is_lowered(compute_dtype: Any) -> bool:
  """Whether `compute_dtype` (None, a name or a dtype) asks for other than float32 compute."""
  return compute_dtype is not None and jnp.dtype(compute_dtype) != jnp.float32


def cast_floats(tree: PyTree, dtype: Any) -> PyTree:
  """`tree` with its floating-point leaves cast to `dtype` (integer leaves kept)."""
  return jax.tree.map(
    lambda x: x.astype(dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x, tree
  )


def vmapped_apply(
  module: nn.Module, variables: PyTree, latents: jax.Array, coords: jax.Array
) -> jax.Array:
  """A backbone over `[G]` stacked modalities and `[B]` signals by `jax.vmap` (the plain path).

  Args:
    module: the backbone (one modality, one signal).
    variables: its variables, every leaf stacked on `[G]`.
    latents: `[G, B, *latent_shape]`.
    coords: `[P, d_in]` shared by all signals, or `[G, B, P, d_in]` per signal.

  Returns:
    `[G, B, P, d_out]`.
  """
  if coords.ndim == 2:
    shared = lambda v, z: module.apply(v, coords, z)
    return cast(jax.Array, jax.vmap(jax.vmap(shared, in_axes=(None, 0)))(variables, latents))
  per_signal = lambda v, c, z: module.apply(v, c, z)
  return cast(
    jax.Array, jax.vmap(jax.vmap(per_signal, in_axes=(None, 0, 0)))(variables, coords, latents)
  )
