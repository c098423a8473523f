"""The composed update rules and the meta-loss equal the code path before they were composed.

`tests/data/before_issue15.npz` holds, from the library at commit aa5a792 (rules as one class per
method, parameters stacked per modality group `g0`, `g1`): random parameters, inputs and outputs
of every method's rule on three modalities (two stacked: sine, tanh; one on its own: wav), and
the meta-loss, query MSEs and meta-gradient of tiny MIA and CAVIA learners. Here the old
parameters are mapped onto the new name-keyed trees and the new code must give the same numbers.
"""

import os

from flax import traverse_util
import jax
import numpy as np
import pytest

from data_pipelines.benchmarks import synthetic_spec
from experiments import methods
from mia_jax import MetaConfig, MetaLearner, MultimodalINR
from tests import paths
from tests.helpers import TINY, wave_spec

pytestmark = pytest.mark.slow  # trains, or runs the command line

REF = np.load(os.path.join(paths.DATA, "before_issue15.npz"))
MEMBERS = {"g0": ("sine", "tanh"), "g1": ("wav",)}
NAMES = ("sine", "tanh", "wav")
SFT = dict(sft_width=24, head_dim=8, grad_scale=10.0)
CASES = {
  "cavia": ("cavia", dict(inner_lr=0.3)),
  "metasgd_pre": ("metasgd", dict(grad_scale=10.0)),
  "metasgd_post": ("metasgd", dict(grad_scale=10.0, lr_position="post")),
  "mia": ("mia", SFT),
  "mia_post": ("mia", dict(SFT, lr_position="post", inner_lr=0.5)),
  "mia_no_msft": ("mia", dict(SFT, ablation="no_msft")),
  "mia_no_usft": ("mia", dict(SFT, ablation="no_usft")),
  "mia_no_fuser": ("mia", dict(SFT, ablation="no_fuser")),
  "mia_grad_only": ("mia", dict(SFT, ablation="grad_only")),
  "mia_latent_only": ("mia", dict(SFT, ablation="latent_only", residual=True)),
  "mia_no_sft": ("mia", dict(grad_scale=10.0, ablation="no_sft", inner_lr=0.7)),
  "alfa": ("alfa", dict(inner_lr=0.5, grad_scale=3.0)),
  "gap": ("gap", dict(inner_lr=0.5)),
}
# old top-level rule entry -> (chain piece, sub-key inside the piece or None)
PIECES = {
  "log_scale": ("scale", None),
  "lr": ("learned_lr", None),
  "encoder": ("sft", "encoder"),
  "usft": ("sft", "usft"),
  "fuser": ("sft", "fuser"),
  "msft": ("sft", "msft"),
  "mlp": ("alfa", "mlp"),
  "beta0": ("alfa", "beta0"),
  "m": ("gap", None),
}


def _old(prefix):
  return {k[len(prefix) + 1 :]: REF[k] for k in REF.files if k.startswith(prefix + "/")}


def _by_name(prefix):
  """`{g0: [2, ...], g1: [1, ...]}` arrays -> `{name: [...]}`."""
  out = {}
  for group, value in _old(prefix).items():
    for i, name in enumerate(MEMBERS[group]):
      out[name] = value[i]
  return out


def _rule_params_to_new(old_flat, new_template):
  """Maps an old flat rule-parameter dict onto the new chain's parameter tree."""
  mapped = {}
  for key, value in old_flat.items():
    top, *rest = key.split("/")
    piece, sub = PIECES[top]
    head = (piece,) + ((sub,) if sub else ())
    if top == "msft":
      mapped[head + tuple(rest)] = value
      continue
    group, *leaf = rest
    for i, name in enumerate(MEMBERS[group]):
      mapped[head + (name,) + tuple(leaf)] = value[i]
  template = traverse_util.flatten_dict(new_template, keep_empty_nodes=True)
  for k, v in template.items():
    if v is traverse_util.empty_node:  # a piece without parameters, e.g. a fixed learning rate
      mapped[k] = v
  assert set(mapped) == set(template), sorted(set(mapped) ^ set(template))
  for k, v in template.items():
    assert v is traverse_util.empty_node or mapped[k].shape == v.shape, k
  return traverse_util.unflatten_dict(mapped)


def _nonempty(tree):
  return {k: v for k, v in traverse_util.flatten_dict(tree).items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_composed_rule_gives_the_old_updates(case):
  method, cfg = CASES[case]
  rule = methods.build_rule(method, cfg)
  shapes = {n: (4, 16) for n in NAMES}
  params = _rule_params_to_new(_old(f"{case}/params"), rule.init(jax.random.PRNGKey(0), shapes))
  grads, latents = _by_name("inputs/grads"), _by_name("inputs/latents")
  updates, new_latents = jax.jit(rule.apply)(params, grads, latents)
  want_u, want_z = _by_name(f"{case}/updates"), _by_name(f"{case}/latents")
  for n in NAMES:
    np.testing.assert_allclose(updates[n], want_u[n], rtol=2e-5, atol=2e-6, err_msg=f"{case} {n}")
    np.testing.assert_allclose(new_latents[n], want_z[n], rtol=2e-5, atol=2e-6)
  if method == "metasgd":  # projection: clipping of the learned rates
    projected = rule.project(params)["learned_lr"]
    want = _by_name(f"{case}/projected/lr")
    for n in NAMES:
      np.testing.assert_allclose(projected[n], want[n])


@pytest.mark.parametrize("method, cfg", [("mia", SFT), ("cavia", {})])
def test_meta_loss_and_meta_gradient_equal_the_old_learner(method, cfg):
  prefix = f"e2e_{method}"
  specs = (synthetic_spec("sine"), synthetic_spec("tanh"), wave_spec())
  learner = MetaLearner(
    MultimodalINR.from_config(specs, TINY),
    methods.build_rule(method, cfg),
    MetaConfig(inner_steps=2),
  )
  template = learner.init(jax.random.PRNGKey(0)).params

  def to_new(old_prefix):
    inr = {}
    for key, value in _old(f"{old_prefix}/inr").items():
      group, *leaf = key.split("/")
      for i, name in enumerate(MEMBERS[group]):
        path = ("latent_init",) if leaf == ["latent_init"] else ("backbone", *leaf)
        inr.setdefault(name, {})[path] = value[i]
    inr = {n: traverse_util.unflatten_dict(v) for n, v in inr.items()}
    rule_old = _old(f"{old_prefix}/rule")
    rule_params = _rule_params_to_new(rule_old, template["rule"])
    log_var = _by_name(f"{old_prefix}/log_var")
    return {"inr": inr, "rule": rule_params, "log_var": log_var}

  params = to_new(f"{prefix}/params")
  assert jax.tree.structure(params) == jax.tree.structure(template)
  buffers = {n: {} for n in learner.names}
  batch = {
    n: {"y": REF[f"{prefix}/batch/{n}/y"], "amplitude": REF[f"{prefix}/batch/{n}/amplitude"]}
    for n in NAMES
  }
  episode = {
    n: {k: REF[f"{prefix}/episode/{n}/{k}"] for k in ("idx", "mask", "ratio")} for n in NAMES
  }
  loss_fn = jax.jit(lambda p: learner.loss_fn(p, buffers, batch, episode))
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  np.testing.assert_allclose(loss, REF[f"{prefix}/loss"], rtol=1e-5)
  for n in NAMES:
    np.testing.assert_allclose(aux["query_mse"][n], REF[f"{prefix}/query_mse/{n}"], rtol=1e-5)
  want = to_new(f"{prefix}/grads")
  flat_got, flat_want = _nonempty(grads), _nonempty(want)
  assert set(flat_got) == set(flat_want)
  for k in flat_want:
    np.testing.assert_allclose(flat_got[k], flat_want[k], rtol=2e-4, atol=1e-6, err_msg=str(k))
