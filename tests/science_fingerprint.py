"""The science fingerprint: what a small fixed training run computes, stored and compared tightly.

Every method (and MIA with the paper's variant, `variant=spec`) is meta-trained for `STEPS`
steps on a few synthetic signals with the `smoke` model (hidden 16, rank 4, SFT width 24), K = 3
inner steps, then evaluated on 16 meta-test signals. The loss of every step and the final errors
after every inner step are compared with `tests/data/science_fingerprint.json`
(`tests/end_to_end/test_science_fingerprint.py`).

What it covers: the synthetic generator, the shuffled loader, the config presets and the
by-name building of the learner, the initialisation (values, not only distributions), the
training supports, the inner loop, the meta-loss, the meta-gradient, Adam with its projections
and outer-rate multipliers, the meta-test episodes and the evaluation's reductions. A change to
any of them changes the fingerprint; a pure refactor leaves it unchanged.

Why float64 and so few steps: meta-training MIA is chaotic. Two runs that differ only in the
order of float32 additions (another vector unit, another device count, a vmapped instead of a
looped modality) agree for a few steps and then move apart, and after a few hundred steps they
are as different as two seeds (docs/results.md, "The v0.1 regression that was not"). In float64
the rounding differences between machines are about 1e-16 and stay below the tolerance over the
`STEPS` steps here, so the comparison can be tight (`RTOL`) and still hold on every machine. The
parameters are initialised in float32, as in training, and cast.

An intended change of the science updates the stored file in the same commit, and the commit
message (or the CHANGELOG) says why:

    python -m tests.science_fingerprint --update
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp

from tests import paths

PATH = os.path.join(paths.DATA, "science_fingerprint.json")
STEPS = 12
NUM_TRAIN, NUM_TEST, BATCH = 32, 16, 8
LEARNING_RATE = 1e-3  # 10x the presets': the meta-parameters move visibly within STEPS steps
RTOL = 1e-6  # relative, on every loss and error (float64; see the module docstring)
ATOL = 1e-12
# name -> the synthetic config's arguments (experiments/configs/synthetic.py).
CASES = {
  "mia": "method=mia,smoke",
  "mia_spec": "method=mia,smoke,variant=spec",
  "cavia": "method=cavia,smoke",
  "metasgd": "method=metasgd,smoke",
  "alfa": "method=alfa,smoke",
  "gap": "method=gap,smoke",
}


def _f64(tree):
  return jax.tree.map(
    lambda x: (
      jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x
    ),
    tree,
  )


def fingerprint(case: str) -> dict:
  """Trains and evaluates one case; returns `{"loss": [STEPS], "metrics": {key: float}}`."""
  from data_pipelines import batching
  from data_pipelines.npz import GridSource
  from data_pipelines.synthetic import generate
  from experiments.configs import synthetic
  from experiments.run import build
  from mia_jax import evaluation, sampling

  config = synthetic.get_config(CASES[case])
  config.batch_size = BATCH
  config.learning_rate = LEARNING_RATE
  learner = build.learner_from_config(config)
  names = [s.name for s in learner.specs]
  train = GridSource(generate.generate_signals(NUM_TRAIN, seed=0), names)
  test = GridSource(generate.generate_signals(NUM_TEST, seed=1), names)
  state = learner.init(jax.random.PRNGKey(config.seed))  # float32, as in training
  loader = iter(batching.make_loader(train, BATCH, shuffle=True, seed=config.seed))
  with jax.enable_x64(True):
    state = state.replace(params=_f64(state.params), opt_state=_f64(state.opt_state))
    train_step = jax.jit(learner.train_step)
    losses = []
    for _ in range(STEPS):
      state, metrics = train_step(state, _f64(next(loader)))
      losses.append(float(metrics["loss"]))
    episodes = sampling.make_eval_episodes(config.eval.episode_seed, learner.specs, NUM_TEST)
    batch = next(iter(batching.make_loader(test, NUM_TEST, shuffle=False, num_epochs=1)))
    out = jax.jit(learner.eval_step)(state.params, state.buffers, _f64(batch), episodes)
    acc = evaluation.Accumulator(learner.specs, learner.meta.inner_steps)
    acc.add(jax.device_get(out), episodes)
    summary = acc.summarize()
  keep = ("generalization_mse/", "memorization_mse/", "full_mse/")
  return {
    "loss": losses,
    "metrics": {
      k: float(v) for k, v in sorted(summary.items()) if k.startswith(keep) and "/R" not in k
    },
  }


def compute_all() -> dict:
  return {case: fingerprint(case) for case in CASES}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    "--update", action="store_true", help=f"write the fingerprint to {os.path.relpath(PATH)}"
  )
  args = parser.parse_args(argv)
  result = compute_all()
  if args.update:
    with open(PATH, "w", encoding="utf-8") as f:
      json.dump({"steps": STEPS, "cases": result}, f, indent=1, sort_keys=True)
      f.write("\n")
    print(f"Wrote {PATH}.")
  else:
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
