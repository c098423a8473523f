"""The functa INR backbone: a SIREN whose hidden layers are shift-modulated by a latent vector.

After Dupont et al. 2022, "From data to functa" (shift modulations only, one linear latent map).
For one modality and one signal the network maps coordinates `x` `[P, d_in]` in [-1, 1] and a
latent `z` `[latent_dim]` to values `[P, d_out]`. With `L = num_layers`:

1. shifts: `s = z A + a` `[(L - 1) * hidden]`, one meta-learned linear map (`latent_to_shifts`),
   read layer-major as `s_l = s[l * hidden:(l + 1) * hidden]` for `l = 0 .. L - 2`;
2. `L - 1` modulated sine layers: `h_0 = x`, `h_{l+1} = sin(w0 * (h_l W_l + b_l + s_l))`;
3. the linear output layer `y = h_{L-1} W_out + b_out`. The modality's constant output bias is
   added by the caller (`model.py`), so the module adds no offset of its own (the functa paper
   adds 0.5 here).

SIREN initialisation (Sitzmann et al. 2020): the first layer's kernel is `U(-1/fan_in, 1/fan_in)`;
every later sine layer's and the output layer's kernel is
`U(-sqrt(6/fan_in)/w0, sqrt(6/fan_in)/w0)`, so that `w0 * (h W)` has unit variance at every layer
after the first (SIREN's argument for activations whose distribution does not drift with depth);
the first layer's wider range, times w0, sets the frequencies the network starts from.
All biases, including the shift map's, start at zero: with a zero latent the shifts vanish and the
network is the plain SIREN (which is then an odd function of `x`; the shifts and the meta-learned
biases break that symmetry).

The per-signal latent `z` is an argument: the learner owns the meta-learned initial latent, so this
module holds only meta-parameters (`params`) and no buffers.
"""

from __future__ import annotations

from flax import linen as nn
import jax
import jax.numpy as jnp


def _symmetric_uniform(bound: float):
  """`U(-bound, bound)` (Flax's `uniform(scale)` samples `[0, scale)`, not symmetric)."""
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def siren_kernel_bound(fan_in: int, w0: float, is_first: bool) -> float:
  """Half-width of the SIREN uniform kernel init of a layer with `fan_in` inputs."""
  return 1.0 / fan_in if is_first else (6.0 / fan_in) ** 0.5 / w0


class FunctaINR(nn.Module):
  """Shift-modulated SIREN for one modality and one signal.

  Attributes:
    d_out: output channels.
    hidden: width of every sine layer (and of each layer's shift vector).
    num_layers: total number of layers, >= 2: `num_layers - 1` modulated sine layers, then the
      linear output layer.
    latent_dim: size of the per-signal latent vector (`latent_shape == (latent_dim,)`).
    w0: SIREN frequency `omega_0` of every sine layer, `sin(w0 * (h W + b + s))`; it also scales
      the init of the layers after the first.
  """

  d_out: int
  hidden: int = 128
  num_layers: int = 5
  latent_dim: int = 128
  w0: float = 30.0

  @property
  def latent_shape(self) -> tuple[int, ...]:
    """Shape of one signal's latent: `(latent_dim,)`."""
    return (self.latent_dim,)

  @nn.compact
  def __call__(self, coords: jax.Array, latent: jax.Array) -> jax.Array:
    """Evaluates the INR.

    Args:
      coords: `[P, d_in]` coordinates in [-1, 1].
      latent: `[latent_dim]` the per-signal latent `z`.

    Returns:
      `[P, d_out]` predictions without the output bias.
    """
    if self.num_layers < 2:
      raise ValueError(
        f"num_layers must be >= 2 (one sine layer and the output layer), got {self.num_layers}."
      )
    if latent.shape != self.latent_shape:
      # A batched latent would broadcast silently into wrong shifts; vmap for batches.
      raise ValueError(
        f"latent must have shape {self.latent_shape} (one signal), got {latent.shape}."
      )
    num_sine = self.num_layers - 1
    # Lecun-normal (variance 1 / latent_dim): a latent of unit-order entries gives unit-order
    # shifts before the w0 factor. Zero bias: a zero latent means no modulation.
    shifts = nn.Dense(
      num_sine * self.hidden,
      kernel_init=nn.initializers.lecun_normal(),
      bias_init=nn.initializers.zeros,
      name="latent_to_shifts",
    )(latent)
    shifts = shifts.reshape(num_sine, self.hidden)
    h = coords
    for l in range(num_sine):
      bound = siren_kernel_bound(h.shape[-1], self.w0, is_first=l == 0)
      pre = nn.Dense(
        self.hidden,
        kernel_init=_symmetric_uniform(bound),
        bias_init=nn.initializers.zeros,
        name=f"sine_{l}",
      )(h)
      h = jnp.sin(self.w0 * (pre + shifts[l]))
    bound = siren_kernel_bound(self.hidden, self.w0, is_first=False)
    return nn.Dense(
      self.d_out,
      kernel_init=_symmetric_uniform(bound),
      bias_init=nn.initializers.zeros,
      name="output",
    )(h)
