"""The functa backbone (mia_jax/inr/functa.py): forward equations, SIREN init, latent modulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mia_jax.inr.functa import FunctaINR


def _numpy_forward(p, coords, latent, w0):
  """Hand-written reference of the module docstring's equations, in float64."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  coords = np.asarray(coords, np.float64)
  latent = np.asarray(latent, np.float64)
  num_sine = sum(1 for k in p if k.startswith("sine_"))
  hidden = p["sine_0"]["kernel"].shape[1]
  s = latent @ p["latent_to_shifts"]["kernel"] + p["latent_to_shifts"]["bias"]
  h = coords
  for l in range(num_sine):
    shift = s[l * hidden : (l + 1) * hidden]  # layer-major layout of the shift vector
    h = np.sin(w0 * (h @ p[f"sine_{l}"]["kernel"] + p[f"sine_{l}"]["bias"] + shift))
  return h @ p["output"]["kernel"] + p["output"]["bias"]


def _init(module, d_in, seed=0, num_points=5):
  coords = jnp.zeros((num_points, d_in), jnp.float32)
  return module.init(jax.random.PRNGKey(seed), coords, jnp.zeros(module.latent_shape))


def _coords(num_points, d_in, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (num_points, d_in)), jnp.float32)


def _with_random_biases(params, seed):
  """The init's biases are all zero; random ones make a reference that drops a bias fail."""
  leaves, treedef = jax.tree.flatten_with_path(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  new = [
    0.1 * jax.random.normal(k, v.shape) if path[-1].key == "bias" else v
    for k, (path, v) in zip(keys, leaves)
  ]
  return jax.tree.unflatten(treedef, new)


@pytest.mark.parametrize("d_in,d_out,num_layers", [(1, 1, 4), (2, 3, 3), (2, 1, 2), (1, 3, 5)])
def test_forward_matches_hand_written_equations(d_in, d_out, num_layers):
  module = FunctaINR(d_out=d_out, hidden=16, num_layers=num_layers, latent_dim=6)
  variables = _init(module, d_in)
  assert set(variables) == {"params"}  # no buffers; the initial latent is the learner's
  params = _with_random_biases(variables["params"], seed=3)
  assert set(params) == {"latent_to_shifts", "output"} | {
    f"sine_{l}" for l in range(num_layers - 1)
  }
  coords = _coords(9, d_in)
  latent = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (6,))
  out = module.apply({"params": params}, coords, latent)
  assert out.shape == (9, d_out) and out.dtype == jnp.float32
  ref = _numpy_forward(params, coords, latent, module.w0)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-5)


def test_zero_latent_init_is_an_odd_function_without_offset():
  """Zero biases and a zero latent (no shifts): f(-x) = -f(x), so f(0) = 0 (no offset added)."""
  module = FunctaINR(d_out=2, hidden=32, num_layers=4, latent_dim=8)
  variables = _init(module, 2)
  coords = _coords(11, 2, seed=4)
  z = jnp.zeros((8,))
  pos = module.apply(variables, coords, z)
  neg = module.apply(variables, -coords, z)
  np.testing.assert_allclose(neg, -pos, atol=1e-6)
  np.testing.assert_allclose(module.apply(variables, jnp.zeros((1, 2)), z), 0.0, atol=1e-7)
  assert float(jnp.abs(pos).max()) > 1e-3  # and it is not trivially zero


def test_siren_initialisation_bounds_and_spread():
  w0, d_in, hidden, latent_dim = 30.0, 2, 256, 64
  module = FunctaINR(d_out=3, hidden=hidden, num_layers=4, latent_dim=latent_dim, w0=w0)
  p = jax.tree.map(np.asarray, _init(module, d_in)["params"])
  bounds = {
    "sine_0": 1.0 / d_in,
    "sine_1": np.sqrt(6 / hidden) / w0,
    "sine_2": np.sqrt(6 / hidden) / w0,
    "output": np.sqrt(6 / hidden) / w0,
  }
  # The kernels' shapes: [fan_in, fan_out].
  assert p["sine_0"]["kernel"].shape == (d_in, hidden)
  assert p["output"]["kernel"].shape == (hidden, 3)
  for name, bound in bounds.items():
    k = p[name]["kernel"]
    assert np.abs(k).max() <= bound, name
    assert np.abs(k).max() > 0.95 * bound, name  # the full range, not a narrower one
    assert abs(k.mean()) < 0.15 * bound, name  # symmetric about zero
    # std of U(-b, b) is b / sqrt(3); the smallest layer has 512 entries (2% sampling error).
    tol = 0.02 if k.size > 10_000 else 0.1
    np.testing.assert_allclose(k.std(), bound / np.sqrt(3), rtol=tol, err_msg=name)
    np.testing.assert_array_equal(p[name]["bias"], 0.0)
  a = p["latent_to_shifts"]["kernel"]
  assert a.shape == (latent_dim, 3 * hidden)
  np.testing.assert_allclose(a.std(), 1 / np.sqrt(latent_dim), rtol=0.05)
  np.testing.assert_array_equal(p["latent_to_shifts"]["bias"], 0.0)


def test_latent_modulates_and_jacobian_matches_finite_differences():
  module = FunctaINR(d_out=2, hidden=16, num_layers=3, latent_dim=5)
  variables = _init(module, 2)
  coords = _coords(7, 2, seed=1)
  z = 0.1 * jax.random.normal(jax.random.PRNGKey(2), (5,))
  f = jax.jit(lambda latent: module.apply(variables, coords, latent))
  z2 = z + 0.1 * jax.random.normal(jax.random.PRNGKey(3), (5,))
  assert float(jnp.abs(f(z) - f(z2)).max()) > 1e-2

  jac = np.asarray(jax.jacfwd(f)(z))  # [P, d_out, latent_dim]
  assert np.abs(jac).max() > 0.1  # the shifts really reach the output
  eps = 1e-3
  for i in range(5):
    e = jnp.zeros((5,)).at[i].set(eps)
    fd = (np.asarray(f(z + e), np.float64) - np.asarray(f(z - e), np.float64)) / (2 * eps)
    np.testing.assert_allclose(jac[..., i], fd, rtol=1e-2, atol=2e-3 * np.abs(jac).max())
  # Reverse mode agrees with forward mode (the learner's inner loop uses gradients).
  v = jax.random.normal(jax.random.PRNGKey(4), f(z).shape)
  grad = jax.grad(lambda latent: jnp.sum(f(latent) * v))(z)
  np.testing.assert_allclose(grad, np.einsum("pc,pcl->l", np.asarray(v), jac), rtol=1e-4, atol=1e-4)


def test_latent_shape_and_argument_validation():
  module = FunctaINR(d_out=1, latent_dim=12)
  assert module.latent_shape == (12,)
  with pytest.raises(ValueError, match="num_layers"):
    _init(FunctaINR(d_out=1, hidden=8, num_layers=1, latent_dim=4), 2)
  with pytest.raises(ValueError, match="latent must have shape"):
    FunctaINR(d_out=1, hidden=8, latent_dim=4).init(
      jax.random.PRNGKey(0), jnp.zeros((3, 2)), jnp.zeros((2, 4))
    )


def test_vmap_over_latents_equals_python_loop():
  module = FunctaINR(d_out=3, hidden=16, num_layers=4, latent_dim=8)
  variables = _init(module, 2)
  coords = _coords(6, 2, seed=5)
  latents = 0.2 * jax.random.normal(jax.random.PRNGKey(6), (4, 8))
  batched = jax.vmap(module.apply, in_axes=(None, None, 0))(variables, coords, latents)
  looped = jnp.stack([module.apply(variables, coords, z) for z in latents])
  assert batched.shape == (4, 6, 3)
  np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=1e-6)
  assert float(jnp.abs(looped[0] - looped[1]).max()) > 1e-3
