import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mia_jax.modalities import group_modalities, synthetic_spec
from mia_jax.rules import RULES, make_rule

GROUPS = group_modalities([synthetic_spec("sine"), synthetic_spec("tanh")])
SHAPE = (2, 3)


def _states(seed=0):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return ({"g0": jax.random.normal(k1, (2, 4) + SHAPE)},
          {"g0": jax.random.normal(k2, (2, 4) + SHAPE)})


def test_cavia_update_is_lr_times_grad():
  rule = make_rule("cavia", GROUPS, SHAPE, {"inner_lr": 0.3})
  params = rule.init(jax.random.PRNGKey(0))
  assert params == {}
  g, z = _states()
  u, z2 = rule.apply(params, g, z)
  np.testing.assert_allclose(u["g0"], 0.3 * g["g0"], rtol=1e-6)
  np.testing.assert_array_equal(z2["g0"], z["g0"])


def test_metasgd_per_element_lr_and_clipping():
  rule = make_rule("metasgd", GROUPS, SHAPE)
  params = rule.init(jax.random.PRNGKey(0))
  assert params["lr"]["g0"].shape == (2,) + SHAPE and np.all(params["lr"]["g0"] == 1.0)
  lr = jax.random.uniform(jax.random.PRNGKey(1), (2,) + SHAPE, minval=-3, maxval=9)
  g, z = _states()
  u, _ = rule.apply({"lr": {"g0": lr}}, g, z)
  np.testing.assert_allclose(u["g0"], lr[:, None] * g["g0"], rtol=1e-6)
  clipped = rule.project({"lr": {"g0": lr}})["lr"]["g0"]
  np.testing.assert_allclose(clipped, np.clip(lr, 0, 5))
  assert float(lr.min()) < 0 and float(lr.max()) > 5


def test_grad_scaler_and_lr_position():
  pre = make_rule("metasgd", GROUPS, SHAPE, {"grad_scale": 10.0})
  post = make_rule("metasgd", GROUPS, SHAPE, {"grad_scale": 10.0, "lr_position": "post"})
  params = pre.init(jax.random.PRNGKey(0))
  np.testing.assert_allclose(jnp.exp(params["log_scale"]["g0"]), [10.0, 10.0], rtol=1e-6)
  params["lr"]["g0"] = params["lr"]["g0"] * 0.5
  g, z = _states()
  u_pre, _ = pre.apply(params, g, z)
  u_post, _ = post.apply(params, g, z)
  np.testing.assert_allclose(u_pre["g0"], 5.0 * g["g0"], rtol=1e-5)
  np.testing.assert_allclose(u_post["g0"], u_pre["g0"], rtol=1e-5)  # identity rule: same


def test_unknown_method_and_bad_options():
  with pytest.raises(ValueError, match="Unknown method 'maml'.*allowed: alfa, cavia, gap, metasgd, mia"):
    make_rule("maml", GROUPS, SHAPE)
  with pytest.raises(ValueError, match="lr_position"):
    make_rule("cavia", GROUPS, SHAPE, {"lr_position": "middle"})
  with pytest.raises(ValueError, match="fixed learning rate"):
    make_rule("cavia", GROUPS, SHAPE, {"learn_lr": True})
  assert set(RULES) >= {"cavia", "metasgd"}
