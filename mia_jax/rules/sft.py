"""MIA's update rule: State Fusion Transformers (docs/method.md section 5.7), the piece `sft()`.

For every modality m, the latent `z_m` is read as `T` tokens of width `W` (`mia_jax.tokens`; the
composer's `[rank, hidden]` latent is `rank` tokens of width `hidden`). At each inner step:

1. state:   `s_m = ProjMLP_m([LN(g_m), LN(z_m)]) + pos_m`                      `[B, T, D]`
2. USFT:    `h_m = USFT_m(s_m)`, transformer block(s) per modality
3. MSFT:    `c = MSFT(concat_m h_m)` over the joint sequence of all modalities' tokens, split
            back into `c_m` (this is where modalities exchange information)
4. fusion:  `u_m = Linear_m(LN(MLP_m(GroupNorm_3([s_m, h_m, c_m]))))`             `[B, T, W]`

`g_m` is what the chain hands over: in MIA the support-loss gradient times the learned gradient
scaler and the learning rate (`rules.mia()`). Transformer blocks are pre-norm multi-head attention
then a pre-norm GELU feed-forward, without residual connections by default (as the released
implementation) and with them when `residual=True`.

Per-modality modules (ProjMLP, USFT, fusion) have parameters keyed by modality name; modalities
with the same token shape are stacked and vmapped. The MSFT is one module shared by all.

Ablations are switches of `sft()`: `use_usft=False` (MSFT reads the states directly, fusion over
[s, c]); `use_msft=False` (no cross-modal exchange: fusion over [s, h]); `use_fuser=False` (only
the last available state goes through LN + Linear); `use_grad=False` / `use_latent=False` (the
state is built from one of the two). Removing the whole SFT is a chain without it (CAVIA).

Replacements: `mixer="mlp_pooled"` or `"mlp"` swaps every transformer block for a per-token MLP
block (`TokenMLPBlock`: pre-norm, GELU, no attention) whose hidden width is chosen so that it has
about the block's parameter count (`mlp_hidden`). The USFT's blocks see one token at a time; the
MSFT's see each token with the mean of every modality's tokens (`"mlp_pooled"`, the only place
where modalities meet) or nothing else (`"mlp"`: no modality meets another, and tokens meet only
through the statistics of the fusion's GroupNorm, as in every variant).
"""

from __future__ import annotations

from flax import linen as nn
import jax
import jax.numpy as jnp

from mia_jax import layers
from mia_jax.rules.base import UpdateRule, apply_per_modality, modality_key

# PyTorch's LayerNorm epsilon, as the released implementation. It matters: the gradient's LayerNorm
# passes the gradient's magnitude through only while its variance is small against epsilon, which
# is what the learned gradient scaler controls.
LN_EPS = 1e-5


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
    pos = self.param("pos_embedding", nn.initializers.normal(0.2), (latents.shape[-2], self.width))
    return s + pos


class TransformerBlock(nn.Module):
  """Pre-norm multi-head self-attention, then a pre-norm GELU feed-forward. `[B, T, D]`."""

  width: int
  num_heads: int = 3
  head_dim: int = 64
  ff_width: int = 192
  residual: bool = False
  exact_gelu: bool = False  # erf GELU (the released code's); False: flax's tanh approximation

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.LayerNorm(epsilon=LN_EPS, name="ln_attn")(x)
    y = layers.Attention(self.num_heads, self.head_dim, name="attention")(y)
    x = x + y if self.residual else y
    y = nn.LayerNorm(epsilon=LN_EPS, name="ln_ff")(x)
    y = layers.MLP(self.ff_width, 1, name="ff_in")(y)
    y = layers.TorchDense(self.width, name="ff_out")(nn.gelu(y, approximate=not self.exact_gelu))
    return x + y if self.residual else y


class Transformer(nn.Module):
  """`depth` transformer blocks."""

  width: int
  depth: int = 1
  num_heads: int = 3
  head_dim: int = 64
  ff_width: int = 192
  residual: bool = False
  exact_gelu: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.depth):
      x = TransformerBlock(
        self.width,
        self.num_heads,
        self.head_dim,
        self.ff_width,
        self.residual,
        self.exact_gelu,
        name=f"block_{i}",
      )(x)
    return x


MIXERS = ("attention", "mlp_pooled", "mlp")


def transformer_block_params(width: int, num_heads: int, head_dim: int, ff_width: int) -> int:
  """Parameters of one `TransformerBlock`: 2 LayerNorms, bias-free qkv, the biased output and the
  feed-forward (`4 D + 4 D I + D + D F + F + F D + D` with `I = heads x head_dim`, `F = ff`)."""
  d, inner = width, num_heads * head_dim
  return 4 * d + 3 * d * inner + inner * d + d + d * ff_width + ff_width + ff_width * d + d


def mlp_hidden(width: int, d_in: int, target: int) -> int:
  """The hidden width `H` of a `TokenMLPBlock` (`2 d_in + d_in H + H + H D + D` parameters)
  nearest `target` parameters (at least 1)."""
  return max(1, round((target - 2 * d_in - width) / (d_in + 1 + width)))


class TokenMLPBlock(nn.Module):
  """Pre-norm per-token GELU MLP, `[B, T, D]` -> `[B, T, D]`, with no attention. `pooled`: every
  token also reads the mean over the sequence's tokens (`[x, mean_t x]`, one LayerNorm)."""

  width: int
  hidden: int
  pooled: bool = False
  residual: bool = False
  exact_gelu: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = x
    if self.pooled:
      y = jnp.concatenate([x, jnp.broadcast_to(x.mean(-2, keepdims=True), x.shape)], axis=-1)
    y = nn.LayerNorm(epsilon=LN_EPS, name="ln")(y)
    y = nn.gelu(layers.MLP(self.hidden, 1, name="mlp_in")(y), approximate=not self.exact_gelu)
    y = layers.TorchDense(self.width, name="mlp_out")(y)
    return x + y if self.residual else y


class TokenMLP(nn.Module):
  """`depth` `TokenMLPBlock`s (the transformer's per-token replacement)."""

  width: int
  hidden: int
  depth: int = 1
  pooled: bool = False
  residual: bool = False
  exact_gelu: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.depth):
      x = TokenMLPBlock(
        self.width, self.hidden, self.pooled, self.residual, self.exact_gelu, name=f"block_{i}"
      )(x)
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


def sft(
  *,
  width: int = 192,
  usft_depth: int = 1,
  msft_depth: int = 1,
  num_heads: int = 3,
  head_dim: int = 64,
  mlp_depth: int = 2,
  residual: bool = False,
  out_init_scale: float = 1.0,
  exact_gelu: bool = False,
  use_usft: bool = True,
  use_msft: bool = True,
  use_fuser: bool = True,
  use_grad: bool = True,
  use_latent: bool = True,
  mixer: str = "attention",
) -> UpdateRule:
  """MIA's State Fusion Transformers as an update-rule piece.

  It maps the incoming updates `g_m` (the gradient, usually already scaled by a learning rate and
  the gradient scaler earlier in the chain) and the latents `z_m`, both `{name: [B, T, W]}`, to
  the updates `u_m` `[B, T, W]`; the latents pass through unchanged.

  Args:
    width: D, the SFTs' token width.
    usft_depth, msft_depth: transformer blocks of the per-modality USFT and the joint MSFT.
    num_heads, head_dim: attention heads and their width.
    mlp_depth: layers of the state-encoder and fusion MLPs.
    residual: residual connections in the transformer blocks (off, as the released code).
    out_init_scale: scale of the output layer's PyTorch-default init (0 = zeros).
    exact_gelu: the transformer blocks' GELU computed exactly (erf), as the released code's
      `torch.nn.GELU()`; False (the default, the paper's; docs/method.md section 9) uses flax's
      tanh approximation.
    use_usft, use_msft, use_fuser, use_grad, use_latent: the ablation switches (False removes the
      USFT, the MSFT, the fusion MLP, the gradient or the latent from the state).
    mixer: "attention" (the SFTs), or their blocks replaced by per-token MLPs of about the same
      parameter count: "mlp_pooled" (modalities meet only through the MSFT's pooled summary) or
      "mlp" (no interaction); see the module docstring.

  Parameters: `{"encoder": {name: ...}, "usft": {name: ...}, "msft": ..., "fuser": {name: ...}}`
  (`usft` / `msft` only when used).
  """
  if not (use_grad or use_latent):
    raise ValueError("sft(): the state needs the gradient or the latent (use_grad or use_latent).")
  for what, value in (
    ("width", width),
    ("num_heads", num_heads),
    ("head_dim", head_dim),
    ("mlp_depth", mlp_depth),
    ("usft_depth", usft_depth),
    ("msft_depth", msft_depth),
  ):
    if int(value) < 1:
      raise ValueError(f"sft(): {what} must be >= 1, got {value}.")
  if mixer not in MIXERS:
    raise ValueError(f"sft(): unknown mixer {mixer!r}; allowed: {', '.join(MIXERS)}.")
  encoder = StateEncoder(width, mlp_depth, use_grad=use_grad, use_latent=use_latent)
  usft: nn.Module
  msft: nn.Module
  if mixer == "attention":
    usft = Transformer(width, usft_depth, num_heads, head_dim, width, residual, exact_gelu)
    msft = Transformer(width, msft_depth, num_heads, head_dim, width, residual, exact_gelu)
  else:
    block = transformer_block_params(width, num_heads, head_dim, width)
    pooled = mixer == "mlp_pooled"
    usft = TokenMLP(width, mlp_hidden(width, width, block), usft_depth, False, residual, exact_gelu)
    msft = TokenMLP(
      width,
      mlp_hidden(width, 2 * width if pooled else width, block),
      msft_depth,
      pooled,
      residual,
      exact_gelu,
    )
  num_states = 1 + use_usft + use_msft
  fuser = lambda out_dim: Fuser(
    width, out_dim, mlp_depth, use_mlp=use_fuser, out_scale=out_init_scale
  )

  def init(rng, token_shapes):
    params = {"encoder": {}, "fuser": {}}
    if use_usft:
      params["usft"] = {}
    for name, (t, w) in token_shapes.items():
      z = jnp.zeros((1, t, w), jnp.float32)
      s = jnp.zeros((1, t, width), jnp.float32)
      params["encoder"][name] = encoder.init(modality_key(jax.random.fold_in(rng, 0), name), z, z)[
        "params"
      ]
      if use_usft:
        params["usft"][name] = usft.init(modality_key(jax.random.fold_in(rng, 1), name), s)[
          "params"
        ]
      params["fuser"][name] = fuser(w).init(
        modality_key(jax.random.fold_in(rng, 2), name), *[s] * num_states
      )["params"]
    if use_msft:
      s = jnp.zeros((1, 1, width), jnp.float32)
      params["msft"] = msft.init(jax.random.fold_in(rng, 3), s)["params"]
    return params

  def apply(params, updates, latents):
    names = list(updates)
    states = {
      n: [x]
      for n, x in apply_per_modality(encoder, params["encoder"], (updates, latents), names).items()
    }
    if use_usft:
      h = apply_per_modality(usft, params["usft"], ({n: states[n][-1] for n in names},), names)
      for n in names:
        states[n].append(h[n])
    if use_msft:
      # One sequence per signal of every modality's tokens: [B, sum_m T_m, D].
      joint = msft.apply(
        {"params": params["msft"]}, jnp.concatenate([states[n][-1] for n in names], axis=-2)
      )
      start = 0
      for n in names:
        t = states[n][-1].shape[-2]
        states[n].append(joint[..., start : start + t, :])
        start += t
    out = {}
    by_width: dict[int, list[str]] = {}
    for n in names:
      by_width.setdefault(updates[n].shape[-1], []).append(n)
    for w, members in by_width.items():
      out.update(
        apply_per_modality(
          fuser(w),
          params["fuser"],
          tuple({n: states[n][i] for n in members} for i in range(num_states)),
          members,
        )
      )
    return {n: out[n] for n in names}, dict(latents)

  return UpdateRule(init, apply, name="sft")
