"""The composer INR backbone (docs/method.md section 3): a low-rank modulated MLP.

For one modality and one signal the network maps coordinates `x` `[P, d_in]` to values
`[P, d_out]`:

1. encoder: random Fourier features `[cos(2 pi x B^T), sin(2 pi x B^T)]` with a fixed
   `B ~ N(0, sigma^2)` `[ff_dim / 2, d_in]` (sigma = 0: the raw coordinates), then Dense + ReLU;
2. the low-rank modulated layer `h <- ReLU(h W^T)` with `W = U V`, where `U` is meta-learned and
   `V` `[rank, hidden]` is the per-signal *latent* adapted in the inner loop. It is applied as
   `(h V^T) U^T`, never materialising `W` (`P * rank * hidden * 2` multiply-adds instead of
   `hidden^2 * (rank + P)`);
3. `num_layers - 3` shared Dense(hidden) + ReLU layers;
4. Dense(d_out). The modality's constant output bias is added by the caller (`model.py`), so that
   stacked modalities with different biases share one module.

The latent's shape is `latent_shape = (rank, hidden)`; the meta-learned initial latent belongs to
the learner (`model.py`), not to this module. The fixed Fourier matrix lives in the separate
`buffers` collection: it is not a meta-parameter. `batched_apply` is the backbone's optional fast
path for `[G]` stacked modalities and `[B]` signals (tested equal to the vmapped module).
"""

from __future__ import annotations

from flax import linen as nn
import jax
import jax.numpy as jnp

from mia_jax.layers import torch_bias_init, torch_kernel_init


def _dense(features: int, fan_in: int, name: str) -> nn.Dense:
  """PyTorch-default-initialised Dense (as the authors' implementation)."""
  return nn.Dense(
    features, kernel_init=torch_kernel_init, bias_init=torch_bias_init(fan_in), name=name
  )


LATENT_MAPS = ("none", "ln_linear")  # how the latent enters the modulated layer


class ComposerINR(nn.Module):
  """Low-rank modulated MLP for one modality and one signal.

  Attributes:
    d_out: output channels.
    hidden: hidden width (also the latent's row width).
    num_layers: total number of layers (encoder, modulated, num_layers - 3 shared, output).
    rank: rows of the latent (and columns of U).
    ff_dim: number of Fourier features (cos and sin halves together).
    ff_sigma: std of the Fourier matrix; 0 means a plain linear encoder.
      materialize_lowrank: compute `W = U V` explicitly (reference path for tests/benchmarks).
    latent_map: "none" (V is the latent, as in the paper, docs/method.md section 3, and the
      released code's composer) or "ln_linear" (V = Linear(LayerNorm(latent)), a meta-learned
      map; an option of ours, not the released composer's).
  """

  d_out: int
  hidden: int = 128
  num_layers: int = 5
  rank: int = 8
  ff_dim: int = 128
  ff_sigma: float = 0.0
  materialize_lowrank: bool = False
  latent_map: str = "none"

  @property
  def latent_shape(self) -> tuple[int, int]:
    """The per-signal latent V: `rank` rows of width `hidden`."""
    return (self.rank, self.hidden)

  def batched_apply(self, variables, latents: jax.Array, coords: jax.Array) -> jax.Array:
    """The fast path for stacked modalities and signals (`variables` stacked on `[G]`); see the
    module-level `batched_apply`."""
    return batched_apply(self, variables["params"], variables.get("buffers", {}), latents, coords)

  @nn.compact
  def __call__(self, coords: jax.Array, latent: jax.Array) -> jax.Array:
    """Evaluates the INR.

    Args:
      coords: `[P, d_in]` coordinates in [-1, 1].
      latent: `[rank, hidden]` the per-signal latent V.

    Returns:
      `[P, d_out]` predictions without the output bias.
    """
    if self.num_layers < 3:
      raise ValueError(
        f"num_layers must be >= 3 (encoder, modulated, output), got {self.num_layers}."
      )
    if self.ff_sigma > 0:
      fourier = self.variable(
        "buffers",
        "fourier_B",
        lambda: (
          self.ff_sigma
          * jax.random.normal(self.make_rng("params"), (self.ff_dim // 2, coords.shape[-1]))
        ),
      )
      proj = 2.0 * jnp.pi * coords @ fourier.value.T
      feats = jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1)
    else:
      feats = coords
    h = nn.relu(_dense(self.hidden, feats.shape[-1], "encoder")(feats))
    # U is stored transposed, `[rank, hidden]`, so that h V^T U^T = (h @ latent.T) @ u_t.
    u_t = self.param("U", torch_kernel_init, (self.rank, self.hidden))
    if self.latent_map == "ln_linear":
      latent = _dense(self.hidden, latent.shape[-1], "latent_map")(
        nn.LayerNorm(epsilon=1e-5, name="latent_norm")(latent)
      )
    elif self.latent_map != "none":
      raise ValueError(
        f"Unknown latent_map {self.latent_map!r}; allowed: {', '.join(LATENT_MAPS)}."
      )
    if self.materialize_lowrank:
      h = nn.relu(h @ (latent.T @ u_t))
    else:
      h = nn.relu((h @ latent.T) @ u_t)
    for i in range(self.num_layers - 3):
      h = nn.relu(_dense(self.hidden, self.hidden, f"hidden_{i}")(h))
    return _dense(self.d_out, self.hidden, "output")(h)


def _layer_norm(x, scale, bias, eps=1e-5):
  mean = jnp.mean(x, -1, keepdims=True)
  var = jnp.var(x, -1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias


def batched_apply(
  module: ComposerINR, params, buffers, latents: jax.Array, coords: jax.Array
) -> jax.Array:
  """`module` for a stack of G modalities and B signals at once, without `vmap`.

  The same function as `jax.vmap(jax.vmap(module.apply))`, written with explicit einsums so that
  coordinates shared by every signal are encoded once and never broadcast over the batch (vmap
  turns `h @ latent.T` into a batched matmul that materialises the shared features B times).

  Args:
    module: the (static) module whose parameters these are.
    params: its `params`, every leaf with a leading `[G]` axis.
    buffers: its `buffers` (Fourier matrices), leading `[G]`; may be empty.
    latents: `[G, B, rank, hidden]`.
    coords: `[P, d_in]` shared by all signals, or `[G, B, P, d_in]` per signal.

  Returns:
    `[G, B, P, d_out]` predictions without the output bias.
  """
  shared = coords.ndim == 2
  pre = "g" if shared else "gb"  # leading axes of the coordinate-dependent activations
  if module.ff_sigma > 0:
    fb = buffers["fourier_B"]  # [G, F, d_in]
    if shared:
      proj = 2.0 * jnp.pi * jnp.einsum("nd,gfd->gnf", coords, fb)
    else:
      proj = 2.0 * jnp.pi * jnp.einsum("gbnd,gfd->gbnf", coords, fb)
    feats = jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1)
  else:
    g = latents.shape[0]
    feats = jnp.broadcast_to(coords, (g,) + coords.shape) if shared else coords

  def dense(x, p, lead):
    bias = p["bias"].reshape(p["bias"].shape[:1] + (1,) * (len(lead) - 1) + p["bias"].shape[1:])
    return jnp.einsum(f"{lead}nh,ghk->{lead}nk", x, p["kernel"]) + bias[..., None, :]

  h = jax.nn.relu(dense(feats, params["encoder"], pre))
  if module.latent_map == "ln_linear":
    ln = params["latent_norm"]
    z = _layer_norm(latents, ln["scale"][:, None, None], ln["bias"][:, None, None])
    latents = (
      jnp.einsum("gbrh,ghk->gbrk", z, params["latent_map"]["kernel"])
      + (params["latent_map"]["bias"][:, None, None])
    )
  if module.materialize_lowrank:
    w = jnp.einsum("gbrh,grk->gbhk", latents, params["U"])  # W^T = V^T U^T per signal
    h = jax.nn.relu(jnp.einsum(f"{pre}nh,gbhk->gbnk", h, w))
  else:
    t = jnp.einsum(f"{pre}nh,gbrh->gbnr", h, latents)  # h V^T
    h = jax.nn.relu(jnp.einsum("gbnr,grk->gbnk", t, params["U"]))
  for i in range(module.num_layers - 3):
    h = jax.nn.relu(dense(h, params[f"hidden_{i}"], "gb"))
  return dense(h, params["output"], "gb")
