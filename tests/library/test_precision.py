"""Mixed precision (`MetaConfig.compute_dtype="bfloat16"`): the INRs and the update rule compute in
bf16, the parameters, the latents between inner steps and the losses stay float32.

Stated tolerance (bf16 keeps 8 bits of mantissa, a relative rounding of 2^-8 = 0.4% per
operation): against float32 on CPU, the outer loss within 2% and the meta-gradient within 10% in
relative norm, pointing the same way (cosine > 0.99).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import episode, random_batch, tiny_learner

pytestmark = pytest.mark.slow  # trains, or runs the command line


def _loss_and_grad(dtype, method):
  learner = tiny_learner(method, inner_steps=2, compute_dtype=dtype)
  state = learner.init(jax.random.PRNGKey(0))
  batch, ep = random_batch(learner.specs, 4), episode(learner, 4)
  fn = lambda p: learner.loss_fn(p, state.buffers, batch, ep)[0]
  loss, grads = jax.jit(jax.value_and_grad(fn))(state.params)
  return learner, state, batch, ep, float(loss), grads


@pytest.mark.parametrize("method", ["mia", "cavia"])
def test_bf16_loss_and_meta_gradient_close_to_float32(method):
  *_, loss32, g32 = _loss_and_grad("float32", method)
  learner, state, batch, ep, loss16, g16 = _loss_and_grad("bfloat16", method)
  assert loss16 != loss32  # it did compute in bf16
  assert abs(loss16 - loss32) <= 0.02 * abs(loss32), (loss16, loss32)
  flat32 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g32)])
  flat16 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g16)])
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(g16))  # float32 parameters
  rel = np.linalg.norm(flat16 - flat32) / np.linalg.norm(flat32)
  cos = flat16 @ flat32 / (np.linalg.norm(flat16) * np.linalg.norm(flat32))
  assert rel < 0.1 and cos > 0.99, (rel, cos)


def _matmul_dtypes(dtype):
  """The operand dtypes of every matmul in the outer loss (inner loop and rule included)."""
  learner = tiny_learner("mia", inner_steps=1, compute_dtype=dtype)
  state = learner.init(jax.random.PRNGKey(0))
  batch, ep = random_batch(learner.specs, 2), episode(learner, 2)
  jaxpr = jax.make_jaxpr(lambda p: learner.loss_fn(p, state.buffers, batch, ep)[0])(state.params)
  found = set()

  def walk(jx):
    for eqn in jx.eqns:
      if eqn.primitive.name == "dot_general":
        found.add(tuple(str(v.aval.dtype) for v in eqn.invars))
      for p in eqn.params.values():
        for q in p if isinstance(p, (list, tuple)) else [p]:
          if hasattr(q, "jaxpr"):
            walk(q.jaxpr if hasattr(q.jaxpr, "eqns") else q.jaxpr.jaxpr)
          elif hasattr(q, "eqns"):
            walk(q)

  walk(jaxpr.jaxpr)
  return found


def test_bf16_runs_every_matmul_in_bf16_and_float32_none():
  assert _matmul_dtypes("bfloat16") == {("bfloat16", "bfloat16")}
  assert _matmul_dtypes("float32") == {("float32", "float32")}


def test_bf16_train_step_keeps_float32_state():
  learner = tiny_learner("mia", inner_steps=1, compute_dtype="bfloat16")
  state = learner.init(jax.random.PRNGKey(0))
  new, metrics = jax.jit(learner.train_step)(state, random_batch(learner.specs, 4))
  assert np.isfinite(float(metrics["loss"]))
  for old, x in zip(jax.tree.leaves(state), jax.tree.leaves(new)):
    assert x.dtype == old.dtype
  assert any(
    not np.array_equal(a, b)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params))
  )


def test_unknown_compute_dtype_is_refused():
  with pytest.raises(ValueError, match="float16.*allowed: float32, bfloat16"):
    tiny_learner("mia", compute_dtype="float16")
