"""Training driver: `train_and_evaluate(config, workdir)`.

Meta-trains a `MetaLearner` on the configured benchmark, with

* a progress bar (steps/s, loss), metrics as JSON lines in `workdir/metrics.jsonl`;
* orbax checkpoints in `workdir/checkpoints`, and resume from the latest one after a kill
  (the data stream resumes at the same batch; support sampling is keyed by the step);
* the fixed meta-test episodes in `workdir/episodes.npz` (or loaded from
  `config.eval.episodes_path`);
* at the end, evaluation on the meta-test set, `workdir/results.json`
  (`{"config": ..., "step": N, "metrics": {key: float}}`) and a printed table.

The driver lives with the experiments, not in the library: it reads the experiment's config
(`experiments/configs`), wires in `data_pipelines` and owns the workdir's files. The learner and
sources are built by name in `experiments/run/build.py`;
`experiments.run.loading.load_run(workdir)` gives a finished run's learner, state and config back
from the workdir alone (`checkpoints.restore_run` from a
config in hand).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import time
from typing import Any, Iterable, Iterator, Mapping

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from data_pipelines import sources
from experiments import atomic, syntax
from experiments.run import build, checkpoints, disk, distributed, loading, validate
from experiments.run import events as events_lib
from experiments.run import workdir as workdir_lib
from experiments.run.evaluate import evaluate, fixed_supports, headline, param_counts
from mia_jax import episodes_file, evaluation, meta_step, sampling
from mia_jax.meta_step import MetaLearner, TrainState


def _reconstructions(
  run: Prepared, state: TrainState, episodes, num_signals: int, name: str
) -> str:
  """Draws `num_signals` meta-test reconstructions to `workdir/reconstructions.png`."""
  from experiments.run import figures, predict  # imported on use: matplotlib

  preds = predict.predict(run.learner, state, run.test_source, episodes, num_signals)
  return figures.plot_reconstructions(
    {name: preds},
    os.path.join(run.workdir, "reconstructions.png"),
    reference=name,
    title=f"{name}: meta-test reconstructions after K={run.learner.meta.inner_steps} steps",
  )


def _flatten(prefix: str, tree: Mapping[str, Any]) -> dict[str, float]:
  out = {}
  for k, v in tree.items():
    key = f"{prefix}/{k}" if prefix else k
    if isinstance(v, Mapping):
      out.update(_flatten(key, v))
    elif np.ndim(v) == 1:  # per inner step, e.g. support_loss/sine/step0
      out.update({f"{key}/step{i}": float(x) for i, x in enumerate(np.asarray(v))})
    else:
      out[key] = float(np.asarray(v))
  return out


@jax.jit
def _finite_params(params) -> jax.Array:
  """1.0 if every parameter is finite, else NaN (multiplied into the loss that is checked)."""
  ok = jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
  return jnp.where(ok, 1.0, jnp.nan)


def _check_finite(loss: float, step: int, config, manager) -> None:
  """Stops a diverging run before its state is logged or saved (the last good checkpoint stays
  the latest one, so a rerun resumes from it)."""
  if np.isfinite(loss):
    return
  last = manager.latest_step()
  kept = (
    f"the last good checkpoint, step {last}, is kept and a rerun resumes from it"
    if last is not None
    else "no checkpoint was saved"
  )
  if distributed.is_primary():
    workdir_lib.mark_diverged(os.path.dirname(os.path.normpath(str(manager.directory))), step, last)
  raise FloatingPointError(
    f"The loss or the parameters are not finite at step {step}; stopping ({kept}). Rerun the "
    "same command with a lower --config.learning_rate, or with --config.skip_nonfinite=True "
    f"(now {config.get('skip_nonfinite', False)}) to skip such steps: after a divergence "
    "these two may change, and the rerun resumes from the last good checkpoint (the change "
    f"is recorded in {workdir_lib.HISTORY_FILE}). A run with grad_clip needs a new --workdir "
    "(clipping changes the optimiser's state)."
  )


def _prefetch(iterator: Iterable, mesh, size: int = 2) -> Iterator:
  """Puts the next `size` batches on the devices ahead of use (overlaps host and device)."""
  queue = collections.deque()
  it = iter(iterator)
  for batch in it:
    queue.append(meta_step.put_batch(batch, mesh))
    if len(queue) >= size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()


@dataclasses.dataclass
class Prepared:
  """A run whose inputs have all been checked, before anything in its workdir is written."""

  config: Any
  workdir: str
  learner: MetaLearner
  train_source: Any
  test_source: Any
  mesh: Any
  num_test: int
  episodes: Mapping[str, Any] | None  # from config.eval.episodes_path; None: drawn
  fixed_ratios: tuple[float, ...]  # config.eval.fixed_ratios, parsed


def prepare(config, workdir: str, data: Mapping[str, Mapping] | None = None) -> Prepared:
  """Checks everything about a run that can be checked without training, and writes nothing:
  the config's values (`validate.validate_config`), the workdir against its stored config
  (`workdir.check_restart`), the model (built), the data (read and checked against the modality
  specs), the batch sizes against the devices, and the episodes file.

  Raises:
    ValueError, FileNotFoundError: a bad input, named in a one-line message (its first line).
  """
  validate.validate_config(config)  # ranges and names, before anything is built or written
  workdir_lib.check_restart(config, workdir)  # before anything in the workdir is written
  own_data = build.own_data(config, data)
  if own_data:
    train_source, test_source = build.own_data_sources(config, data)
    specs = build.own_data_specs(config, train_source)
    learner = build.learner_from_config(config, specs=specs)
    if distributed.is_primary():
      logging.info("Modalities of %s:", build.data_name(train_source))
      for s in specs:
        logging.info(
          "  %s: grid %s, d_out %d, output bias %g, support ratio %g-%g, errors %s",
          s.name,
          "x".join(map(str, s.grid_shape)),
          s.d_out,
          s.output_bias,
          s.ratio_range[0],
          s.ratio_range[1],
          s.error_normaliser,
        )
  else:
    learner = build.learner_from_config(config)
  mesh = meta_step.data_mesh()
  n_dev = mesh.devices.size
  for field in ("batch_size", "eval.batch_size"):
    value = config.batch_size if field == "batch_size" else config.eval.batch_size
    if value % n_dev:
      raise ValueError(
        f"config.{field}={value} must be divisible by the number of devices "
        f"({n_dev}); the batch is split evenly across them."
      )
  if not own_data:
    train_source = build.build_sources(config, "train")
    test_source = build.build_sources(config, "test")
  if len(train_source) < config.batch_size:
    fits = len(train_source) // n_dev * n_dev  # the batch is split evenly across the devices
    advice = (
      f"lower --config.batch_size to at most {fits}"
      + (f" (a multiple of the {n_dev} devices)" if n_dev > 1 else "")
      + ", or give more "
      "training signals"
      if fits
      else f"give at least {n_dev} training signals"
    )
    raise ValueError(
      f"The training data hold {len(train_source)} signals, fewer than one batch "
      f"(batch_size={config.batch_size}); {advice}."
    )
  num_test = len(test_source)
  if num_test == 0:
    raise ValueError("The test data hold no signals; the run could not be evaluated.")
  if config.data.num_test_signals:
    num_test = min(num_test, config.data.num_test_signals)
  fixed_ratios = syntax.parse_fixed_ratios(config.eval.get("fixed_ratios", ""))
  episodes = None
  if config.eval.episodes_path:
    episodes = episodes_file.load_episodes(config.eval.episodes_path, learner.specs, fixed_ratios)
    have = next(iter(episodes.values()))["idx"].shape[0]
    if have < num_test:
      raise ValueError(
        f"Episode file {config.eval.episodes_path!r} has {have} signals; the test "
        f"set has {num_test}."
      )
    episodes = sampling.slice_episode(episodes, 0, num_test)
  return Prepared(
    config, workdir, learner, train_source, test_source, mesh, num_test, episodes, fixed_ratios
  )


def workdir_lock(workdir: str):
  """The workdir's lock (`workdir.WorkdirLock`) on process 0; a no-op on the other processes of
  a multi-process run, which share process 0's workdir."""
  if distributed.is_primary():
    return workdir_lib.WorkdirLock(workdir)
  return workdir_lib.NoLock()


def train_and_evaluate(config, workdir: str, data: Mapping[str, Mapping] | None = None) -> dict:
  """Meta-trains, checkpoints, evaluates; returns the results dict also written to results.json.

  `data`: the user's arrays instead of files, `{"train": {name: [num_signals, *grid, d_out]},
  "test": {...}}` (see `build.build_sources`); as with `config.data.source="npz"`, the modalities
  are read from the train arrays (`build.own_data_specs`). `prepare` checks the inputs first.

  Raises:
    workdir.WorkdirBusy: another live process is training in `workdir`.
  """
  with workdir_lock(workdir):
    return train_prepared(prepare(config, workdir, data))


def train_prepared(run: Prepared) -> dict:
  """`train_and_evaluate` of a run `prepare` has checked."""
  config, workdir, learner, mesh = run.config, run.workdir, run.learner, run.mesh
  train_source, test_source, num_test = run.train_source, run.test_source, run.num_test
  primary = distributed.is_primary()  # process 0 writes the files; every process checkpoints
  distributed.barrier("prepared")  # every process has checked the workdir before it changes
  episodes, fixed_ratios = run.episodes, run.fixed_ratios
  if episodes is None:  # the same on every process (drawn from the episode seed)
    episodes = sampling.make_eval_episodes(config.eval.episode_seed, learner.specs, num_test)
  if primary:
    os.makedirs(workdir, exist_ok=True)
    changed = workdir_lib.record_restart(config, workdir)  # after a divergence: what changed
    if changed:
      logging.warning(
        "Resuming after a divergence with %s (recorded in %s).",
        "; ".join(changed),
        workdir_lib.HISTORY_FILE,
      )
    atomic.write_text(os.path.join(workdir, "config.json"), config.to_json(indent=2))
    loading.write_specs(workdir, learner.specs)  # load_run rebuilds the model from these
    if run.episodes is None:
      atomic.write(
        os.path.join(workdir, "episodes.npz"),
        binary=True,
        fill=lambda f: episodes_file.save_episodes(f, episodes, learner.specs, fixed_ratios),
      )

  rng = jax.random.PRNGKey(config.seed)
  state = meta_step.put_replicated(learner.init(rng), mesh)
  manager = checkpoints.checkpoint_manager(workdir, config)
  state = checkpoints.restore_or_init(manager, state)
  start_step = int(state.step)
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
  if start_step and primary:
    logging.info("Resumed from step %d in %s", start_step, workdir)
  train_step = meta_step.make_train_step(learner, mesh)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  if primary:
    # each step once after a resume
    workdir_lib.trim_metrics(metrics_path, start_step, log=logging.warning)

  # This process's rows of every batch (all of them on one process).
  loader = sources.make_loader(
    train_source,
    config.batch_size,
    shuffle=True,
    seed=config.seed,
    skip_batches=start_step,
    num_shards=jax.process_count(),
    shard_index=jax.process_index(),
  )
  total = config.num_train_steps
  bar = tqdm(
    total=total,
    initial=start_step,
    desc=f"{config.method}",
    unit="step",
    disable=not primary,
    dynamic_ncols=True,
  )
  step, t_last, s_last = start_step, time.time(), start_step
  batches = _prefetch(loader, mesh)
  skip_nonfinite = config.get("skip_nonfinite", False)
  # Non-finite steps skipped (config.skip_nonfinite), on the devices like the metrics.
  skipped = meta_step.put_replicated(np.zeros((), np.float32), mesh)
  events = None  # TensorBoard event files beside metrics.jsonl (process 0 only)
  if config.get("tensorboard", True) and primary:
    events = events_lib.EventWriter(workdir)
  try:
    with open(metrics_path if primary else os.devnull, "a") as metrics_file:
      in_flight = collections.deque()
      while step < total:
        state, metrics = train_step(state, next(batches))
        if skip_nonfinite:  # without it, a non-finite step stops the run instead
          skipped = skipped + metrics["nonfinite"]
        step += 1
        # Keep at most two steps in flight: the host prepares the next batch while the device
        # runs, without dispatching far ahead (which makes the progress bar lie and holds memory).
        in_flight.append(metrics["loss"])
        if len(in_flight) > 2:
          in_flight.popleft().block_until_ready()
        bar.update(1)
        if step % config.log_every_steps == 0 or step == total:
          # Reading metrics waits for the device; only every log_every_steps.
          host = _flatten("", jax.device_get(metrics))
          if skip_nonfinite:
            host["nonfinite_skipped"] = float(skipped)
          _check_finite(host["loss"], step, config, manager)
          now = time.time()
          host["steps_per_s"] = (step - s_last) / max(now - t_last, 1e-9)
          t_last, s_last = now, step
          bar.set_postfix(loss=f"{host['loss']:.4f}")
          metrics_file.write(json.dumps({"step": step, **host}) + "\n")
          metrics_file.flush()
          if events:
            events.scalars(step, host, "train/")
        if step % config.checkpoint_every_steps == 0 or step == total:
          # A non-finite state never reaches a checkpoint: the last good one stays the latest.
          _check_finite(
            float(_finite_params(state.params) * metrics["loss"]), step, config, manager
          )
          disk.check_free_space(
            str(manager.directory), manager.latest_step(), state_bytes
          )  # a full disk: one line, resumable
          manager.save(step, args=ocp.args.StandardSave(state))
        if config.eval.every_steps and step % config.eval.every_steps == 0 and step < total:
          m, _ = evaluate(
            learner,
            state,
            test_source,
            episodes,
            config.eval.batch_size,
            mesh,
            closed_bins=config.eval.get("closed_bins", False),
          )
          key = f"generalization_mse/avg/step{config.inner_steps}"
          metrics_file.write(json.dumps({"step": step, "eval/" + key: m[key]}) + "\n")
          if events:
            events.scalars(step, headline(m, config.inner_steps), "eval/")
  except Exception as e:  # a full disk (say, in an asynchronous save): one line
    disk.raise_if_disk_full(e, workdir, manager.latest_step())
    raise
  finally:
    if events:
      events.flush()
    bar.close()
    disk.finish_saves(manager, workdir)  # waits for the last save; a full disk: one line

  metrics, _ = evaluate(
    learner,
    state,
    test_source,
    episodes,
    config.eval.batch_size,
    mesh,
    progress=True,
    closed_bins=config.eval.get("closed_bins", False),
    fixed_ratios=fixed_ratios,
  )
  results = {"config": config.to_dict(), "step": int(state.step), "metrics": metrics}
  results["num_params"] = param_counts(state.params)
  if fixed_ratios:  # the support sizes behind the .../ratio{r} keys
    results["fixed_supports"] = fixed_supports(learner.specs, fixed_ratios)
  if not primary:
    return results
  atomic.write_json(os.path.join(workdir, "results.json"), results, indent=1, sort_keys=True)
  table = evaluation.format_table(metrics, [s.name for s in learner.specs], config.inner_steps)
  name = config.method
  if config.rule.get("ablation", "none") not in ("none", ""):
    name += f" (ablation={config.rule.ablation})"
  if events:
    events.scalars(int(state.step), headline(metrics, config.inner_steps), "test/")
  num_shown = config.get("log_reconstructions", 0)
  if num_shown:  # the figure, in the workdir and TensorBoard
    png = _reconstructions(run, state, episodes, num_shown, name)
    if events:
      with open(png, "rb") as f:
        events.image(int(state.step), "test/reconstructions", f.read())
  if events:
    events.close()
  print(
    f"\n{name} on {config.benchmark} after {int(state.step)} meta-steps "
    f"({num_test} meta-test signals, K={config.inner_steps}):\n{table}"
  )
  return results
