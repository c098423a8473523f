"""Reconstruction off the grid and cross-modal completion of a finished synthetic MIA run.

  python docs/results/use_trained/measure.py WORKDIR > docs/results/use_trained/NAME.json

WORKDIR: a `synthetic.py` run (e.g. the `cpu` preset) whose test split is the generator's data
seed 1 (the default). On the run's 200 meta-test signals and fixed supports (episodes.npz):
* check_gen_avg: the generalization error through `experiments.reconstruct`, and results.json's;
* offgrid: per function, the error on a 4x finer grid at the points between grid points against
  the generator's formula, next to the on-grid generalization error (errors / amplitude^2);
* completion: per function, its full-grid error when it is not observed (the other three are)
  against when it is observed and at the learned initial latents (no adaptation).
Read in docs/results.md, "Using a trained run".
"""

import json
import sys

import jax
import numpy as np

from data_pipelines.synthetic import generate
from experiments import reconstruct
from experiments.loading import load_run
from mia_jax import episodes_file


def main(workdir: str) -> dict:
  learner, state, _ = load_run(workdir)
  k = learner.meta.inner_steps
  with open(f"{workdir}/results.json") as f:
    results = json.load(f)["metrics"]
  n = 200
  coarse = generate.generate_signals(n, seed=1)
  fine = generate.generate_signals(n, seed=1, num_points=797)
  episodes = episodes_file.load_episodes(f"{workdir}/episodes.npz", learner.specs)
  names = [s.name for s in learner.specs]

  def arrays_for(observed):
    """Grid observations of the `observed` functions on the run's meta-test supports."""
    arrays = {}
    for spec in learner.specs:
      if spec.name not in observed:
        continue
      mask = np.zeros((n, 200))
      ep = episodes[spec.name]
      for i in range(n):
        mask[i, ep["idx"][i][ep["mask"][i] > 0]] = 1
      arrays[spec.name] = coarse[spec.name]["y"][..., 0]
      arrays[f"{spec.name}_mask"] = mask
      arrays[f"{spec.name}_amplitude"] = coarse[spec.name]["amplitude"]
    return arrays

  obs = reconstruct.parse_observations(arrays_for(names), learner.specs, "all observed")
  rec = reconstruct.reconstruct(learner, state, obs, upsample=4, progress=False)
  metrics = reconstruct.errors(learner, obs, rec)
  out = {"check_gen_avg": [metrics[f"generalization_mse/avg/step{k}"],
                           results[f"generalization_mse/avg/step{k}"]]}
  between = np.ones(797, bool)
  between[::4] = False
  out["offgrid"] = {}
  for name in names:
    amp2 = np.square(coarse[name]["amplitude"])[:, None]
    sq = np.square(rec[name]["upsampled"][..., 0] - fine[name]["y"][..., 0]) / amp2
    unobserved = 1 - obs[name]["grid_mask"]
    on_gen = (np.sum(sq[:, ::4] * unobserved, 1) / unobserved.sum(1)).mean()
    off = sq[:, between].mean(1).mean()
    out["offgrid"][name] = {"on_grid_gen": float(on_gen), "between_grid": float(off),
                            "ratio": float(off / on_gen)}
  params = jax.device_get(state.params)
  initial = learner.model.predict(params["inr"], state.buffers,
                                  learner.model.initial_latents(params["inr"], n))
  out["completion"] = {}
  for held in names:
    others = reconstruct.parse_observations(arrays_for([x for x in names if x != held]),
                                            learner.specs, f"{held} held out")
    rec_held = reconstruct.reconstruct(learner, state, others, progress=False)
    amp2 = np.square(coarse[held]["amplitude"])[:, None]
    truth = coarse[held]["y"][..., 0]

    def err(pred):
      return float((np.square(np.asarray(pred)[..., 0] - truth) / amp2).mean())

    out["completion"][held] = {"observed_full": err(rec[held]["prediction"]),
                               "unobserved_fused_full": err(rec_held[held]["prediction"]),
                               "init_full": err(initial[held])}
  return out


if __name__ == "__main__":
  print(json.dumps(main(sys.argv[1]), indent=1))
