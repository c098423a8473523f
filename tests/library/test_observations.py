"""Adapting to observations (`mia_jax.adapt_to_observations`, issue 31): points on the grid give
`adapt`'s latents, predictions anywhere in the domain, an unobserved modality completed by a fusing
rule, and bad observations as clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mia_jax import adaptation
from tests.helpers import episode, random_batch, tiny_learner


def _close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol),
    a,
    b,
  )


def _grid_observations(learner, batch, ep):
  """An episode's supports as coordinate/value observations."""
  out = {}
  for spec in learner.specs:
    idx = np.asarray(ep[spec.name]["idx"])
    out[spec.name] = {
      "coords": np.asarray(learner.model.coords[spec.name])[idx],
      "values": np.take_along_axis(batch[spec.name]["y"], idx[..., None], 1),
      "mask": np.asarray(ep[spec.name]["mask"]),
    }
  return out


@pytest.mark.parametrize("method", [pytest.param("mia", marks=pytest.mark.slow), "cavia"])
def test_observations_at_grid_points_give_adapts_latents(method):
  learner = tiny_learner(method, names=("sine", "tanh"), inner_steps=3)
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 4)
  ep = jax.tree.map(np.asarray, episode(learner, 4))
  lat_a, pred_a, aux_a = adaptation.adapt(
    learner.model, learner.rule, state.params, state.buffers, batch, ep, 3
  )
  lat_o, pred_o, aux_o = adaptation.adapt_to_observations(
    learner.model,
    learner.rule,
    state.params,
    state.buffers,
    _grid_observations(learner, batch, ep),
    3,
  )
  _close(lat_a, lat_o)
  _close(pred_a, pred_o)
  _close(aux_a["support_loss"], aux_o["support_loss"])
  moved = np.abs(
    np.asarray(lat_a["sine"])
    - np.asarray(learner.model.initial_latents(state.params["inr"], 4)["sine"])
  ).max()
  assert moved > 1e-4  # the comparison is of adapted latents, not of the initialisation


def test_prediction_anywhere():
  learner = tiny_learner("cavia", names=("sine", "tanh"))
  state = learner.init(jax.random.PRNGKey(1))
  model, b = learner.model, 3
  latents = jax.tree.map(
    lambda z: z + 0.3 * jax.random.normal(jax.random.PRNGKey(2), z.shape),
    model.initial_latents(state.params["inr"], b),
  )
  grid = model.predict(state.params["inr"], state.buffers, latents)
  spec = learner.specs[0]
  coords = {
    s.name: jnp.broadcast_to(model.coords[s.name], (b,) + model.coords[s.name].shape)
    for s in learner.specs
  }
  _close(model.predict(state.params["inr"], state.buffers, latents, coords), grid)
  # A 4x finer grid holds the training grid as every 4th point.
  fine_shape = spec.upsampled_shape(4)
  assert fine_shape == (797,)
  fine = jnp.asarray(spec.coordinates(fine_shape))
  np.testing.assert_array_equal(np.asarray(fine[::4]), np.asarray(model.coords[spec.name]))
  out = model.predict(
    state.params["inr"],
    state.buffers,
    latents,
    {spec.name: jnp.broadcast_to(fine, (b,) + fine.shape)},
  )
  assert out[spec.name].shape == (b, 797, 1) and out["tanh"].shape == (b, 200, 1)
  _close(out[spec.name][:, ::4], grid[spec.name])
  _close(out["tanh"], grid["tanh"])  # left out: its grid, within the same stacked group
  # Different point counts within one group, and points between grid points.
  mid = fine[1::4][:50]
  out = model.predict(
    state.params["inr"],
    state.buffers,
    latents,
    {"sine": jnp.broadcast_to(mid, (b,) + mid.shape), "tanh": coords["tanh"]},
  )
  assert out["sine"].shape == (b, 50, 1)
  alone = model.predict(
    state.params["inr"],
    state.buffers,
    latents,
    {
      "sine": jnp.broadcast_to(mid, (b,) + mid.shape),
      "tanh": jnp.broadcast_to(mid, (b,) + mid.shape),
    },
  )
  _close(out["sine"], alone["sine"])


def test_an_unobserved_modality_moves_only_under_a_fusing_rule():
  for method, moves in (("mia", True), ("cavia", False)):
    learner = tiny_learner(method, names=("sine", "tanh"), inner_steps=2)
    state = learner.init(jax.random.PRNGKey(0))
    batch = random_batch(learner.specs, 2)
    ep = jax.tree.map(np.asarray, episode(learner, 2))
    obs = _grid_observations(learner, batch, ep)
    del obs["tanh"]
    latents, _, aux = adaptation.adapt_to_observations(
      learner.model, learner.rule, state.params, state.buffers, obs, 2
    )
    init = learner.model.initial_latents(state.params["inr"], 2)["tanh"]
    change = float(np.abs(np.asarray(latents["tanh"]) - np.asarray(init)).max())
    assert (change > 1e-6) == moves, (method, change)
    np.testing.assert_array_equal(np.asarray(aux["support_loss"]["tanh"]), 0.0)


@pytest.mark.parametrize(
  "obs, match",
  [
    ({}, "No observations"),
    (
      {"rgb": {"coords": np.zeros((1, 2, 1)), "values": np.zeros((1, 2, 1))}},
      r"modalities \['rgb'\] the model does not have; it has \['sine', 'tanh'\]",
    ),
    (
      {"sine": {"coords": np.zeros((1, 2, 2)), "values": np.zeros((1, 2, 1))}},
      r"coords must be \[B, S, 1\]",
    ),
    (
      {"sine": {"coords": np.zeros((1, 2, 1)), "values": np.zeros((1, 2, 3))}},
      r"values must be \[B, S, 1\]",
    ),
    (
      {
        "sine": {
          "coords": np.zeros((1, 2, 1)),
          "values": np.zeros((1, 2, 1)),
          "mask": np.ones((1, 3)),
        }
      },
      r"mask must be \[B, S\]",
    ),
    (
      {
        "sine": {"coords": np.zeros((1, 2, 1)), "values": np.zeros((1, 2, 1))},
        "tanh": {"coords": np.zeros((2, 2, 1)), "values": np.zeros((2, 2, 1))},
      },
      "different numbers of signals",
    ),
    ({"sine": {"values": np.zeros((1, 2, 1))}}, "need 'coords'"),
  ],
)
def test_bad_observations_are_clear_errors(obs, match):
  learner = tiny_learner("cavia")
  state = learner.init(jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=match):
    adaptation.adapt_to_observations(
      learner.model, learner.rule, state.params, state.buffers, obs, 1
    )
