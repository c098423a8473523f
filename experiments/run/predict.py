"""Predictions of a finished run: its meta-learned model adapted to a few meta-test signals.

What `experiments.run.figures.plot_reconstructions` draws in `reconstructions.png`, for a run
and for a study's arms. The training driver and the data pipelines are imported when it is
called, so the
runner and the reports stay cheap to import.
"""

from __future__ import annotations

import os

import numpy as np

from mia_jax import episodes_file


def predict_run(config, rundir: str, num_signals: int = 3) -> dict[str, dict]:
  """Adapts a finished run's meta-learned model to the first meta-test signals.

  Restores the latest checkpoint of `rundir` (`experiments.run.checkpoints.restore_run`), takes
  the first `num_signals` test signals (`experiments.run.build.build_sources(config, "test")`)
  and their fixed meta-test supports (`rundir/episodes.npz` or `config.eval.episodes_path`), and
  runs K inner steps.

  Returns:
    `{modality: {"y": [n, N, d_out] ground truth, "prediction": [n, N, d_out] after K steps,
    "idx": [n, S] support indices, "count": [n] support sizes, "spec": ModalitySpec}}`.

  Raises:
    FileNotFoundError: `rundir` has no checkpoint (a run restored from an archive keeps none).
    ValueError: the checkpoint does not restore.
  """
  from experiments.run import build, checkpoints

  learner, state = checkpoints.restore_run(config, rundir)
  source = build.build_sources(config, "test")
  episodes = episodes_file.load_episodes(
    config.eval.episodes_path or os.path.join(rundir, "episodes.npz"), learner.specs
  )
  return predict(learner, state, source, episodes, num_signals)


def predict(learner, state, source, episodes, num_signals: int = 3) -> dict[str, dict]:
  """`predict_run`'s predictions from a learner and state in memory: the first `num_signals`
  signals of `source` adapted on the first supports of `episodes`."""
  import jax

  from mia_jax import adaptation, sampling

  n = min(num_signals, len(source), next(iter(episodes.values()))["idx"].shape[0])
  signals = [source[i] for i in range(n)]
  names = [s.name for s in learner.specs]
  batch = {m: {k: np.stack([s[m][k] for s in signals]) for k in ("y", "amplitude")} for m in names}
  episode = sampling.slice_episode(episodes, 0, n)
  k = learner.meta.inner_steps
  run = jax.jit(lambda p, b, x, e: adaptation.adapt(learner.model, learner.rule, p, b, x, e, k))
  params, buffers = jax.device_get((state.params, state.buffers))  # on this process alone
  _, pred, _ = run(params, buffers, batch, episode)
  pred = jax.device_get(pred)
  out = {}
  for spec in learner.specs:
    out[spec.name] = {
      "y": batch[spec.name]["y"],
      "prediction": np.asarray(pred[spec.name]),
      "idx": episode[spec.name]["idx"],
      "count": episode[spec.name]["mask"].sum(-1).astype(int),
      "spec": spec,
    }
  return out
