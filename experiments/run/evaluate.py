"""Meta-test evaluation of a run: every meta-test episode adapted, and the results' summaries.

* `evaluate(learner, state, source, episodes, ...)`: the flat metrics of results.json (the
  results contract of docs/method.md) and the per-pass accumulators, also at every fixed
  support ratio;
* `param_counts(params)`, `fixed_supports(specs, ratios)`: results.json's `num_params` and
  `fixed_supports`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from data_pipelines import sources
from experiments.run import distributed
from mia_jax import evaluation, meta_step, sampling
from mia_jax.meta_step import MetaLearner, TrainState


def evaluate(
  learner: MetaLearner,
  state: TrainState,
  source,
  episodes,
  batch_size: int,
  mesh,
  progress: bool = False,
  closed_bins: bool = False,
  fixed_ratios: Sequence[float] = (),
) -> tuple[dict[str, float], dict[str, evaluation.Accumulator]]:
  """Adapts on every meta-test episode and returns the flat metrics (results contract) and the
  accumulators, `{"meta_test": ..., ratio_label(r): ...}`; `closed_bins` as
  `evaluation.Accumulator`'s (`config.eval.closed_bins`). With `fixed_ratios`, every signal is
  also adapted at each fixed support ratio (`sampling.fixed_ratio_episodes`; keys `.../ratio{r}`);
  a ratio whose supports are those of an earlier one (clipped to the same counts) is not rerun."""
  eval_step = meta_step.make_eval_step(learner, mesh)
  n = next(iter(episodes.values()))["idx"].shape[0]
  passes = {
    "meta_test": episodes,
    **sampling.fixed_ratio_episodes(episodes, learner.specs, fixed_ratios),
  }
  num_batches = -(-n // batch_size)
  counts = lambda ep: tuple(int(e["mask"][0].sum()) for e in ep.values())
  distinct = {}  # fixed-ratio support counts -> the first label that has them
  for label, ep in passes.items():
    if label != "meta_test":
      distinct.setdefault(counts(ep), label)
  bar = tqdm(
    total=num_batches * (1 + len(distinct)),
    desc="evaluate",
    leave=False,
    disable=not progress or not distributed.is_primary(),
  )
  accs: dict[str, evaluation.Accumulator] = {}
  metrics: dict[str, float] = {}
  for label, ep in passes.items():
    first = label if label == "meta_test" else distinct[counts(ep)]
    accs[label] = (
      accs[first]
      if first != label
      else _accumulate(learner, state, eval_step, source, ep, n, batch_size, mesh, closed_bins, bar)
    )
    if label == "meta_test":
      metrics.update(accs[label].summarize())
    else:
      per_signal = accs[label].per_signal()
      evaluation.check_finite(per_signal)
      metrics.update(
        evaluation.fixed_ratio_metrics(per_signal, learner.specs, learner.meta.inner_steps, label)
      )
  bar.close()
  return metrics, accs


def _accumulate(
  learner, state, eval_step, source, episodes, n, batch_size, mesh, closed_bins, bar
) -> evaluation.Accumulator:
  """One pass of `eval_step` over the meta-test signals with these episodes."""
  acc = evaluation.Accumulator(learner.specs, learner.meta.inner_steps, closed_bins)
  # Each process reads its rows of every batch; the errors come back whole to every process.
  loader = sources.make_eval_loader(
    source, batch_size, n, num_shards=jax.process_count(), shard_index=jax.process_index()
  )
  take = lambda rows: jax.tree.map(lambda x: x[np.minimum(rows, n - 1)], episodes)
  for k, (batch, rows) in enumerate(loader):
    every = k * batch_size + np.arange(batch_size)  # the whole batch's signals (padded: >= n)
    out = eval_step(
      state.params,
      state.buffers,
      meta_step.put_batch(batch, mesh),
      meta_step.put_batch(take(rows), mesh),
    )
    acc.add(jax.device_get(out), take(every), every < n)
    bar.update(1)
  return acc


def param_counts(params) -> dict[str, int]:
  """Meta-learned parameters per part of the state (`inr`, `rule`, `log_var`) and `total`
  (results.json's `num_params`; the study reports show the rule's beside its errors)."""
  out = {k: int(sum(np.size(x) for x in jax.tree.leaves(v))) for k, v in params.items()}
  return {**out, "total": sum(out.values())}


def fixed_supports(specs, fixed_ratios: Sequence[float]) -> dict[str, dict[str, dict]]:
  """`{modality: {ratio_label(r): {"count": points, "ratio": count / N}}}`: the support of every
  fixed ratio after clipping to the modality's range (results.json's `fixed_supports`)."""
  return {
    s.name: {
      sampling.ratio_label(r): {"count": c, "ratio": c / s.num_points}
      for r in fixed_ratios
      for c in [sampling.fixed_support_count(s, r)]
    }
    for s in specs
  }


def headline(metrics: Mapping[str, float], k: int) -> dict[str, float]:
  """The meta-test metrics after K steps per modality and avg (the TensorBoard scalars)."""
  return {key: v for key, v in metrics.items() if key.endswith(f"/step{k}")}
