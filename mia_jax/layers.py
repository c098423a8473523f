"""Small Flax building blocks shared by the INR backbones and the update rules."""

from __future__ import annotations

from typing import Callable, Sequence

from flax import linen as nn
import jax
import jax.numpy as jnp

# PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, as in
# the authors' implementation. Flax's lecun_normal (3x the variance) makes the inner loop with
# lr 1.0 diverge at initialisation.
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int):
  bound = 1.0 / max(fan_in, 1) ** 0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class TorchDense(nn.Module):
  """Dense with PyTorch's default init (the fan-in is read from the input)."""

  features: int
  kernel_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel_init = (
      nn.initializers.variance_scaling(self.kernel_scale**2 / 3.0, "fan_in", "uniform")
      if self.kernel_scale
      else (nn.initializers.zeros)
    )
    return nn.Dense(
      self.features,
      kernel_init=kernel_init,
      bias_init=(torch_bias_init(fan_in) if self.kernel_scale else nn.initializers.zeros),
      name="linear",
    )(x)


class MLP(nn.Module):
  """`depth` Dense layers of `width` with `activation` between them (not after the last)."""

  width: int
  depth: int = 2
  activation: Callable = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.depth):
      if i:
        x = self.activation(x)
      x = TorchDense(self.width, name=f"dense_{i}")(x)
    return x


class GroupNorm(nn.Module):
  """Normalises each of `num_groups` equal slices of the last (channel) axis separately.

  `over_tokens=True` (PyTorch's `nn.GroupNorm` on `[B, C, T]`, as the released implementation
  uses it): the statistics of a group are taken over its channels and all `T` tokens of the
  sequence (axis -2), so relative magnitudes across tokens survive. `over_tokens=False`: per
  token, over the group's channels only.
  """

  num_groups: int
  epsilon: float = 1e-5
  over_tokens: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    if d % self.num_groups:
      raise ValueError(f"GroupNorm: width {d} is not divisible by {self.num_groups} groups.")
    y = x.reshape(x.shape[:-1] + (self.num_groups, d // self.num_groups))
    axes = (-3, -1) if self.over_tokens else (-1,)
    mean = jnp.mean(y, axes, keepdims=True)
    var = jnp.var(y, axes, keepdims=True)
    y = ((y - mean) * jax.lax.rsqrt(var + self.epsilon)).reshape(x.shape)
    scale = self.param("scale", nn.initializers.ones, (d,))
    bias = self.param("bias", nn.initializers.zeros, (d,))
    return y * scale + bias


class Attention(nn.Module):
  """Multi-head self-attention as the released implementation: bias-free query/key/value
  projections, a biased output projection, PyTorch's default init. `[B, T, D]` -> `[B, T, D]`."""

  num_heads: int
  head_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    *lead, t, d = x.shape
    inner = self.num_heads * self.head_dim
    qkv = nn.Dense(3 * inner, use_bias=False, kernel_init=torch_kernel_init, name="qkv")(x)
    q, k, v = jnp.split(qkv.reshape(*lead, t, 3, self.num_heads, self.head_dim), 3, axis=-3)
    q, k, v = q[..., 0, :, :], k[..., 0, :, :], v[..., 0, :, :]  # [..., T, H, hd]
    logits = jnp.einsum("...qhd,...khd->...hqk", q, k) * self.head_dim**-0.5
    out = jnp.einsum("...hqk,...khd->...qhd", jax.nn.softmax(logits, -1), v)
    return TorchDense(d, name="out")(out.reshape(*lead, t, inner))


def concat(parts: Sequence[jax.Array]) -> jax.Array:
  return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
