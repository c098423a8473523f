"""Small shared builders for tests."""

import jax
import numpy as np

from data_pipelines.benchmarks import synthetic_spec
from experiments import methods
from mia_jax import MetaConfig, MetaLearner, ModalitySpec, ModelConfig, MultimodalINR

TINY = ModelConfig(hidden=16, num_layers=4, rank=4)


def tiny_learner(
  method="cavia",
  names=("sine", "tanh"),
  inner_steps=2,
  specs=None,
  rule_cfg=None,
  model_cfg=TINY,
  optimizer=None,
  **meta,
):
  """A small learner with a method built by name (`experiments.methods.build_rule`)."""
  specs = specs or tuple(synthetic_spec(n) for n in names)
  return MetaLearner(
    MultimodalINR.from_config(specs, model_cfg),
    methods.build_rule(method, rule_cfg or {}),
    MetaConfig(inner_steps=inner_steps, **meta),
    optimizer=optimizer,
  )


def random_batch(specs, batch_size, seed=0):
  rng = np.random.default_rng(seed)
  return {
    s.name: {
      "y": rng.normal(size=(batch_size, s.num_points, s.d_out)).astype(np.float32),
      "amplitude": rng.uniform(0.5, 2.0, size=(batch_size,)).astype(np.float32),
    }
    for s in specs
  }


def image_spec(name="img", size=6, d_out=3):
  return ModalitySpec(
    name=name,
    d_in=2,
    grid_shape=(size, size),
    d_out=d_out,
    output_bias=0.5,
    ratio_range=(0.1, 1.0),
    ratio_bins=((0.0, 0.5), (0.5, 1.0)),
    fourier_sigma=3.0,
  )


def wave_spec(name="wav", n=20):
  return ModalitySpec(
    name=name,
    d_in=1,
    grid_shape=(n,),
    d_out=1,
    ratio_range=(0.25, 1.0),
    ratio_bins=((0.0, 0.5), (0.5, 1.0)),
    fourier_sigma=0.0,
  )


def episode(learner, batch_size, seed=0):
  from mia_jax import sampling

  return sampling.sample_episode(jax.random.PRNGKey(seed), learner.specs, batch_size)
