"""MIA's update rule: State Fusion Transformers (MIA_SPEC section 4).

For every modality m, the latent `z_m` `[B, rank, hidden]` is a sequence of `rank` tokens. At each
inner step:

1. state:   `s_m = ProjMLP_m([LN(g_m), LN(z_m)]) + pos_m`                      `[B, rank, D]`
2. USFT:    `h_m = USFT_m(s_m)`, transformer block(s) per modality
3. MSFT:    `c = MSFT(concat_m h_m)` over the joint sequence of all modalities' tokens, split
            back into `c_m` (this is where modalities exchange information)
4. fusion:  `u_m = Linear_m(LN(MLP_m(GroupNorm_3([s_m, h_m, c_m]))))`             `[B, rank, hidden]`

`g_m` is the support-loss gradient already multiplied by the learned gradient scaler
`s_m = exp(log_s_m)` (base class). Transformer blocks are pre-norm multi-head attention then a
pre-norm GELU feed-forward, without residual connections by default (as the released
implementation) and with them when `residual=True`.

Per-modality modules (ProjMLP, USFT, fusion) are stacked on the group axis `[G]` and vmapped; the
MSFT is one module shared by all modalities.

Ablations (`ablation`): `none`; `no_usft` (MSFT reads the states directly, fusion over [s, c]);
`no_msft` (no cross-modal exchange: fusion over [s, h]); `no_fuser` (only the last available state
goes through LN + Linear); `grad_only` / `latent_only` (the state is built from one of the two).
`no_sft` (remove the whole rule) is handled by `make_rule`, which returns CAVIA.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from mia_jax import layers
from mia_jax.rules.base import UpdateRule, apply_stacked, init_stacked

# PyTorch's LayerNorm epsilon, as the released implementation. It matters: the gradient's LayerNorm
# passes the gradient's magnitude through only while its variance is small against epsilon, which
# is what the learned gradient scaler controls.
LN_EPS = 1e-5

ABLATIONS = ("none", "no_sft", "no_usft", "no_msft", "no_fuser", "grad_only", "latent_only")


class StateEncoder(nn.Module):
  """`[LN(g), LN(z)]` -> MLP -> + positional embedding. `[B, T, hidden]` x 2 -> `[B, T, D]`."""

  width: int
  mlp_depth: int = 2
  use_grad: bool = True
  use_latent: bool = True

  @nn.compact
  def __call__(self, grads: jax.Array, latents: jax.Array) -> jax.Array:
    parts = []
    if self.use_grad:
      parts.append(nn.LayerNorm(epsilon=LN_EPS, name="ln_grad")(grads))
    if self.use_latent:
      parts.append(nn.LayerNorm(epsilon=LN_EPS, name="ln_latent")(latents))
    s = layers.MLP(self.width, self.mlp_depth, name="proj")(layers.concat(parts))
    pos = self.param("pos_embedding", nn.initializers.normal(0.2),
                     (latents.shape[-2], self.width))
    return s + pos


class TransformerBlock(nn.Module):
  """Pre-norm multi-head self-attention, then a pre-norm GELU feed-forward. `[B, T, D]`."""

  width: int
  num_heads: int = 3
  head_dim: int = 64
  ff_width: int = 192
  residual: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.LayerNorm(epsilon=LN_EPS, name="ln_attn")(x)
    y = layers.Attention(self.num_heads, self.head_dim, name="attention")(y)
    x = x + y if self.residual else y
    y = nn.LayerNorm(epsilon=LN_EPS, name="ln_ff")(x)
    y = layers.MLP(self.ff_width, 1, name="ff_in")(y)
    y = layers.TorchDense(self.width, name="ff_out")(nn.gelu(y))
    return x + y if self.residual else y


class Transformer(nn.Module):
  """`depth` transformer blocks."""

  width: int
  depth: int = 1
  num_heads: int = 3
  head_dim: int = 64
  ff_width: int = 192
  residual: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.depth):
      x = TransformerBlock(self.width, self.num_heads, self.head_dim, self.ff_width,
                           self.residual, name=f"block_{i}")(x)
    return x


class Fuser(nn.Module):
  """Fuses the available states into the update: GroupNorm -> MLP -> LN -> Linear(hidden)."""

  width: int
  out_dim: int
  mlp_depth: int = 2
  use_mlp: bool = True
  out_scale: float = 1.0

  @nn.compact
  def __call__(self, *states: jax.Array) -> jax.Array:
    if self.use_mlp:
      x = layers.GroupNorm(len(states), name="group_norm")(layers.concat(states))
      x = layers.MLP(self.width, self.mlp_depth, name="mlp")(x)
    else:
      x = states[-1]
    x = nn.LayerNorm(epsilon=LN_EPS, name="ln_out")(x)
    return layers.TorchDense(self.out_dim, kernel_scale=self.out_scale, name="out")(x)


class SFT(UpdateRule):
  """State Fusion Transformers.

  Extra config fields: `sft_width` (D, 192), `usft_depth` (1), `msft_depth` (1), `num_heads` (3),
  `head_dim` (64), `mlp_depth` (2), `residual` (False), `ablation` (see ABLATIONS),
  `out_init_scale` (scale of the output layer's init; 0 = zeros, 1 = PyTorch default).
  """

  name = "mia"

  def __init__(self, groups, latent_shape, cfg=None):
    super().__init__(groups, latent_shape, cfg)
    c = self.cfg
    self.ablation = c.get("ablation", "none")
    if self.ablation not in ABLATIONS:
      raise ValueError(f"Unknown ablation {self.ablation!r}; allowed: {', '.join(ABLATIONS)}.")
    if self.ablation == "no_sft":
      raise ValueError("ablation='no_sft' removes the SFTs: build it with make_rule('mia', ...), "
                       "which returns the CAVIA rule.")
    width = int(c.get("sft_width", 192))
    heads, head_dim = int(c.get("num_heads", 3)), int(c.get("head_dim", 64))
    mlp_depth = int(c.get("mlp_depth", 2))
    residual = bool(c.get("residual", False))
    self.use_usft = self.ablation != "no_usft"
    self.use_msft = self.ablation != "no_msft"
    self.encoder = StateEncoder(width, mlp_depth, use_grad=self.ablation != "latent_only",
                                use_latent=self.ablation != "grad_only")
    self.usft = Transformer(width, int(c.get("usft_depth", 1)), heads, head_dim, width, residual)
    self.msft = Transformer(width, int(c.get("msft_depth", 1)), heads, head_dim, width, residual)
    self.fuser = Fuser(width, latent_shape[1], mlp_depth, use_mlp=self.ablation != "no_fuser",
                       out_scale=float(c.get("out_init_scale", 1.0)))
    self.width = width
    self.num_states = 1 + self.use_usft + self.use_msft

  def init_rule(self, rng):
    rank, hidden = self.latent_shape
    z = jnp.zeros((1, rank, hidden), jnp.float32)
    s = jnp.zeros((1, rank, self.width), jnp.float32)
    params = {"encoder": {}, "usft": {}, "fuser": {}}
    for i, g in enumerate(self.groups):
      k = jax.random.split(jax.random.fold_in(rng, i), 3)
      params["encoder"][g.name] = init_stacked(self.encoder, k[0], g.size, z, z)
      if self.use_usft:
        params["usft"][g.name] = init_stacked(self.usft, k[1], g.size, s)
      params["fuser"][g.name] = init_stacked(self.fuser, k[2], g.size, *[s] * self.num_states)
    if not self.use_usft:
      del params["usft"]
    if self.use_msft:
      params["msft"] = self.msft.init(jax.random.fold_in(rng, len(self.groups)), s)["params"]
    return params

  def transform(self, params, grads, latents):
    states = {g.name: [apply_stacked(self.encoder, params["encoder"][g.name], grads[g.name],
                                     latents[g.name])] for g in self.groups}
    if self.use_usft:
      for g in self.groups:
        states[g.name].append(apply_stacked(self.usft, params["usft"][g.name], states[g.name][-1]))
    if self.use_msft:
      # Join every modality's tokens into one sequence per signal: [G, B, T, D] -> [B, G*T, D].
      seqs, sizes = [], []
      for g in self.groups:
        x = states[g.name][-1]
        gsize, b, t, d = x.shape
        seqs.append(jnp.transpose(x, (1, 0, 2, 3)).reshape(b, gsize * t, d))
        sizes.append(gsize * t)
      joint = self.msft.apply({"params": params["msft"]}, jnp.concatenate(seqs, axis=1))
      start = 0
      for g, n in zip(self.groups, sizes):
        part = joint[:, start:start + n]
        start += n
        b = part.shape[0]
        states[g.name].append(
            jnp.transpose(part.reshape(b, g.size, -1, self.width), (1, 0, 2, 3)))
    updates = {g.name: apply_stacked(self.fuser, params["fuser"][g.name], *states[g.name])
               for g in self.groups}
    return updates, latents
