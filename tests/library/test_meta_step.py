import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mia_jax import meta_step
from tests.helpers import episode, random_batch, tiny_learner


def test_loss_with_zero_steps_is_the_hand_computed_weighted_mse():
  learner = tiny_learner("cavia", inner_steps=0)
  state = learner.init(jax.random.PRNGKey(0))
  params = state.params
  params["log_var"] = {"sine": jnp.array(0.3), "tanh": jnp.array(-0.7)}
  batch, ep = random_batch(learner.specs, 3), episode(learner, 3)
  loss, aux = learner.loss_fn(params, state.buffers, batch, ep)
  total = 0.0
  for name in ("sine", "tanh"):
    p = params["inr"][name]
    pred = learner.model.modules[name].apply(
      {"params": p["backbone"]}, learner.model.coords[name], p["latent_init"]
    )
    mse = np.mean((np.asarray(pred)[None] - batch[name]["y"]) ** 2)
    v = float(params["log_var"][name])
    total += mse / (2 * np.exp(v)) + v / 2
    np.testing.assert_allclose(aux["query_mse"][name], mse, rtol=1e-5)
  np.testing.assert_allclose(loss, total, rtol=1e-5)


def test_train_steps_reduce_the_loss_and_update_every_meta_parameter():
  learner = tiny_learner("metasgd", inner_steps=2, learning_rate=3e-3)
  mesh = meta_step.data_mesh()
  step = meta_step.make_train_step(learner, mesh, donate=False)
  state0 = jax.device_put(learner.init(jax.random.PRNGKey(0)), meta_step.replicated(mesh))
  from data_pipelines.synthetic import generate

  batch = meta_step.put_batch(generate.generate_signals(8, 0, ("sine", "tanh")), mesh)
  state, losses = state0, []
  for _ in range(30):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert int(state.step) == 30
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state0.params, state.params)
  assert all(jax.tree.leaves(changed)), changed
  # Buffers (Fourier matrices) are not trained.
  assert jax.tree.leaves(
    jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state0.buffers, state.buffers)
  ) in ([], [True])


@pytest.mark.slow
def test_one_and_two_devices_give_the_same_step():
  assert jax.device_count() >= 2, "conftest forces 2 CPU devices"
  learner = tiny_learner("metasgd", inner_steps=2)
  batch = random_batch(learner.specs, 8)
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:2]):
    mesh = meta_step.data_mesh(devices)
    state = jax.device_put(learner.init(jax.random.PRNGKey(0)), meta_step.replicated(mesh))
    step = meta_step.make_train_step(learner, mesh)
    for _ in range(2):
      state, metrics = step(state, meta_step.put_batch(batch, mesh))
    results.append((jax.device_get(state.params), float(metrics["loss"])))
  np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(results[0][0]), jax.tree.leaves(results[1][0])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_train_step_compiles_once():
  learner = tiny_learner("cavia", inner_steps=1)
  mesh = meta_step.data_mesh()
  step = meta_step.make_train_step(learner, mesh)
  state = jax.device_put(learner.init(jax.random.PRNGKey(0)), meta_step.replicated(mesh))
  for seed in range(3):
    state, _ = step(state, meta_step.put_batch(random_batch(learner.specs, 4, seed), mesh))
  assert step._cache_size() == 1


def test_supports_are_resampled_every_step():
  learner = tiny_learner("cavia", inner_steps=1)
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 4)
  _, m1 = learner.train_step(state, batch)
  _, m2 = learner.train_step(state.replace(step=state.step + 1), batch)
  assert float(m1["support_loss"]["sine"][0]) != float(m2["support_loss"]["sine"][0])


def test_bad_batch_names_the_modality():
  learner = tiny_learner("cavia")
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs[:1], 2)
  with pytest.raises(ValueError, match=r"lacks modality 'tanh'"):
    learner.loss_fn(state.params, state.buffers, batch, episode(learner, 2))


@pytest.mark.parametrize("skip", [True, False])
def test_skip_nonfinite_leaves_the_state_as_it_was(skip):
  """A batch with a NaN makes the loss NaN: with skip_nonfinite the step keeps the parameters and
  the optimiser state (and says so in `nonfinite`); without, the parameters turn NaN."""
  learner = tiny_learner("cavia", skip_nonfinite=skip)
  state = learner.init(jax.random.PRNGKey(0))
  batch = random_batch(learner.specs, 4)
  batch["sine"]["y"][0, 0, 0] = np.nan
  new, metrics = jax.jit(learner.train_step)(state, batch)
  assert float(metrics["nonfinite"]) == 1.0 and int(new.step) == 1
  leaves = lambda s: [np.asarray(x) for x in jax.tree.leaves((s.params, s.opt_state))]
  if skip:
    for a, b in zip(leaves(new), leaves(state)):
      np.testing.assert_array_equal(a, b)
  else:
    assert not all(np.isfinite(x).all() for x in jax.tree.leaves(new.params))
  good, metrics = jax.jit(learner.train_step)(state, random_batch(learner.specs, 4))
  assert float(metrics["nonfinite"]) == 0.0
