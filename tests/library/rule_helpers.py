"""Shared pieces of the update-rule tests: modality shapes, random states, perturbed parameters."""

from flax import traverse_util
import jax

NAMES = ("sine", "tanh", "wav")
SHAPE = (4, 16)
SHAPES = {n: SHAPE for n in NAMES}
BATCH = 3
SFT = dict(sft_width=24, head_dim=8, grad_scale=10.0)  # from_config fields
SFT_ARGS = dict(width=24, head_dim=8)  # the same as sft() arguments


def _states(shapes=SHAPES, batch=BATCH, seed=0):
  """Random `{name: [B, T, W]}` gradients and latents."""
  keys = iter(jax.random.split(jax.random.PRNGKey(seed), 2 * len(shapes)))
  g = {n: jax.random.normal(next(keys), (batch,) + tuple(s)) for n, s in shapes.items()}
  z = {n: 0.2 * jax.random.normal(next(keys), (batch,) + tuple(s)) for n, s in shapes.items()}
  return g, z


def _perturbed(params, seed=3, scale=0.1):
  """Every parameter moved off its initial value (so rates, scalers and zero inits matter).

  (The result's dicts have sorted keys, as `jax.tree.unflatten` builds them.)
  """
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), max(len(leaves), 1))
  return jax.tree.unflatten(
    treedef, [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
  )


def _paths(params):
  return list(traverse_util.flatten_dict(params, keep_empty_nodes=True))
