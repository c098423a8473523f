"""The library alone: one `adapt` and one outer step on numpy arrays, with only `mia_jax` installed.

`.ci/run` runs this in a fresh virtual environment after a plain `pip install .` (no extras): jax,
flax, optax, chex and numpy only. `tests/end_to_end/test_layering.py` runs it in the test environment too.
It checks that the library imports none of the experiment and data stack, and that the step
computes finite numbers that a second step lowers.
"""

import sys

import jax
import numpy as np

import mia_jax
from mia_jax import MetaConfig, MetaLearner, MultimodalINR, ModelConfig, adapt, rules, sampling

NOT_IN_LIBRARY = (
  "data_pipelines",
  "experiments",
  "ml_collections",
  "orbax",
  "tqdm",
  "matplotlib",
  "tensorflow_datasets",
  "grain",
)


def main() -> None:
  leaked = sorted(m for m in sys.modules if m.split(".")[0] in NOT_IN_LIBRARY)
  if leaked:
    raise SystemExit(f"import mia_jax pulled in {leaked}")
  rng = np.random.default_rng(0)
  x = np.linspace(-1, 1, 50, dtype=np.float32)
  arrays = {  # 8 signals of two 1-D modalities, values [num_signals, num_points]
    "wave": np.sin(3 * x[None] + rng.uniform(0, 3, (8, 1))).astype(np.float32),
    "ramp": (x[None] * rng.uniform(-1, 1, (8, 1))).astype(np.float32),
  }
  specs = mia_jax.specs_from_arrays(arrays, ratio_range=(0.1, 0.5))
  model = MultimodalINR.from_config(specs, ModelConfig(hidden=16, num_layers=3, rank=2))
  learner = MetaLearner(
    model,
    rules.mia(width=16, num_heads=2, head_dim=8),
    MetaConfig(inner_steps=2, learning_rate=1e-3),
  )
  batch = {n: {"y": a[..., None], "amplitude": np.ones(8, np.float32)} for n, a in arrays.items()}
  state = learner.init(jax.random.PRNGKey(0))
  episode = sampling.make_eval_episodes(0, specs, 8)
  _, prediction, _ = adapt(model, learner.rule, state.params, state.buffers, batch, episode, 2)
  assert all(np.isfinite(np.asarray(p)).all() for p in prediction.values())
  step = jax.jit(learner.train_step)
  state, first = step(state, batch)
  for _ in range(3):
    state, metrics = step(state, batch)
  loss0, loss = float(first["loss"]), float(metrics["loss"])
  assert np.isfinite(loss0) and loss < loss0, (loss0, loss)
  print(
    f"mia_jax {mia_jax.__version__} alone: adapt and outer steps ok "
    f"(loss {loss0:.4f} -> {loss:.4f})"
  )


if __name__ == "__main__":
  main()
