"""Training driver: `train_and_evaluate(config, workdir)`.

Meta-trains a `MetaLearner` on the configured benchmark, with

* a progress bar (steps/s, loss), metrics as JSON lines in `workdir/metrics.jsonl`;
* orbax checkpoints in `workdir/checkpoints`, and resume from the latest one after a kill
  (the data stream resumes at the same batch; support sampling is keyed by the step);
* the fixed meta-test episodes in `workdir/episodes.npz` (or loaded from `config.eval.episodes_path`);
* at the end, evaluation on the meta-test set, `workdir/results.json`
  (`{"config": ..., "step": N, "metrics": {key: float}}`) and a printed table.

The library itself reads no flags; this module is the only one that touches the file system,
through the data loaders it is given by `data_pipelines`.
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from tqdm.auto import tqdm

from mia_jax import evaluation, meta_step, sampling
from mia_jax import modalities as modalities_lib
from mia_jax.meta_step import MetaLearner, TrainState


def _own_data(config, data) -> bool:
  """Whether the run's modalities come from the user's arrays (an .npz, or arrays passed in)."""
  return data is not None or config.data.source == "npz"


def build_sources(config, split: str, data: Mapping[str, Mapping] | None = None,
                  modalities: Sequence[str] | None = None):
  """The data source of a split, from `config.data` (a tfds builder or a user's `.npz`), or from
  `data[split]`: arrays passed from Python, `{name: [num_signals, *grid, d_out]}` (or `{name:
  {"y": ..., "amplitude": [num_signals]}}`), read as an `.npz` would be.

  `modalities`: the names to read; None means `config.modalities`, where "" (own data only)
  means every modality in the data.
  """
  from data_pipelines import sources  # the driver wires data in; the library does not.
  if modalities is None:
    modalities = [n for n in config.modalities.split("+") if n] or None
  if _own_data(config, data):
    grid_ndims = _per_modality_field(config, "grid_ndims", int, bare=False)[1]
    if data is not None:
      if config.data.npz_train or config.data.npz_test:
        raise ValueError("Arrays were passed and config.data.npz_train/npz_test name files; "
                         "give one or the other.")
      if not isinstance(data, Mapping) or split not in data:
        raise ValueError(f"data needs a {split!r} entry ({{'train': {{name: array}}, 'test': "
                         f"...}}); got {list(data) if isinstance(data, Mapping) else data!r}.")
      return sources.GridSource(data[split], modalities, grid_ndims,
                                where=f"the {split} arrays")
    path = config.data.npz_train if split == "train" else config.data.npz_test
    if not path:
      raise ValueError(f"data.source='npz' needs data.npz_{split} (a path to an .npz file).")
    return sources.NpzSource(path, modalities=modalities, grid_ndims=grid_ndims)
  if config.data.source != "tfds":
    raise ValueError(f"Unknown data.source {config.data.source!r}; allowed: tfds, npz.")
  from data_pipelines import registry
  loader = registry.get_loader(config.data.name)  # a ValueError listing the known datasets
  # Small benchmarks are read into memory once: decoding records costs more than a train step.
  return loader(config.data.data_dir or None, split, config=config.data.builder_config,
                modalities=modalities, in_memory=True)


def _data_name(source) -> str:
  path = getattr(source, "path", None)
  return repr(path) if path else "the arrays passed"


def own_data_sources(config, data: Mapping[str, Mapping] | None = None):
  """The train and test sources of a run on the user's arrays, checked to match.

  The test split is read with the train split's modalities and must have the same grids and
  channels; an error names both files. Both splits' values must be finite numbers.
  """
  train_source = build_sources(config, "train", data)
  try:
    test_source = build_sources(config, "test", data, modalities=train_source.modalities)
  except ValueError as e:
    raise ValueError(f"The test data do not match the train data {_data_name(train_source)} "
                     f"(modalities {list(train_source.modalities)}): {e}") from None
  layouts = []
  for split, source in (("train", train_source), ("test", test_source)):
    try:  # values: numbers, finite, not empty
      layouts.append({n: modalities_lib.array_layout(n, a)
                      for n, a in source.grid_arrays.items()})
    except ValueError as e:
      raise ValueError(f"In the {split} data {_data_name(source)}: {e}") from None
  for name in train_source.modalities:
    want, have = layouts[0][name], layouts[1][name]
    if have != want:
      raise ValueError(
          f"Modality {name!r} has grid {want[0]} with {want[1]} channels in the train data "
          f"{_data_name(train_source)} but grid {have[0]} with {have[1]} channels in the test "
          f"data {_data_name(test_source)}; both splits need the same grid and channels.")
  return train_source, test_source


def own_data_specs(config, train_source) -> tuple[modalities_lib.ModalitySpec, ...]:
  """The modality specs of a run on the user's arrays: grids and channels from the train split,
  the rest from `config.data` (`ratio_range`, `ratio_bins`, `output_bias`, `error_normaliser`;
  see `experiments/configs/common.py`) and the defaults of `modalities.specs_from_arrays`.

  A field left "" for a modality of the configured benchmark (e.g. the synthetic functions saved
  to an .npz) takes the benchmark's value; `error_normaliser` left "" is "amplitude" where the
  data give the modality's amplitude. Per-modality Fourier sigmas are `model.ff_sigmas`.
  """
  names = list(train_source.modalities)
  known = {}
  if config.benchmark in modalities_lib.BENCHMARKS:
    bench_names, factory = modalities_lib.BENCHMARKS[config.benchmark]
    known = {n: factory(n) for n in names if n in bench_names}
  parsers = dict(ratio_range=_ratio_range, ratio_bins=_ratio_bin_edges, output_bias=float,
                 error_normaliser=str)
  kwargs = {}
  for field, parse in parsers.items():
    bare, named = _per_modality_field(config, field, parse)
    unknown = [n for n in named if n not in names]
    if unknown:
      raise ValueError(f"data.{field} names {unknown}, which the train data "
                       f"{_data_name(train_source)} do not have; they have {names}.")
    kwargs[field] = {n: named.get(n, bare) for n in names}
    for n in names:
      if kwargs[field][n] is None and n in known:
        kwargs[field][n] = getattr(known[n], field)
  for n in names:
    if kwargs["error_normaliser"][n] is None and train_source.has_amplitude[n]:
      kwargs["error_normaliser"][n] = "amplitude"
  kwargs["fourier_sigma"] = {n: known[n].fourier_sigma for n in known}
  return modalities_lib.specs_from_arrays(train_source.grid_arrays, **kwargs)


def build_learner(config, data: Mapping[str, Mapping] | None = None) -> MetaLearner:
  """The learner `train_and_evaluate` builds: `meta_step.learner_from_config`, with the specs of
  the user's arrays when the run reads them (`config.data.source="npz"`, or `data`)."""
  if not _own_data(config, data):
    return meta_step.learner_from_config(config)
  train_source, _ = own_data_sources(config, data)
  return meta_step.learner_from_config(config, specs=own_data_specs(config, train_source))


def _per_modality_field(config, field: str, parse, bare: bool = True):
  """Parses `config.data.<field>`, "VALUE" or "name=VALUE,...": (bare value or None, {name: v})."""
  text = str(config.data.get(field, "") or "")
  default, named = None, {}
  for item in filter(None, (t.strip() for t in text.split(","))):
    name, sep, value = (t.strip() for t in item.partition("="))
    if not sep:
      name, value = None, name
    try:
      if name is None and not bare:
        raise ValueError("give name=value")
      if not value or (sep and not name):
        raise ValueError("empty name or value")
      parsed = parse(value)
    except ValueError as e:
      example = "gray=2" if not bare else "0.5,sig=0"
      raise ValueError(f"data.{field} entry {item!r} is malformed ({e}); expected "
                       f"{'VALUE or ' if bare else ''}NAME=VALUE entries, comma-separated, e.g. "
                       f"{example!r}.") from None
    if (name in named) if name else (default is not None):
      raise ValueError(f"data.{field} gives {name or 'the bare value'} twice: {text!r}.")
    if name:
      named[name] = parsed
    else:
      default = parsed
  return default, named


def _ratio_range(text: str) -> tuple[float, float]:
  parts = text.split(":")
  if len(parts) != 2:
    raise ValueError("a range is LO:HI, e.g. 0.001:1")
  return float(parts[0]), float(parts[1])


def _ratio_bin_edges(text: str) -> tuple[tuple[float, float], ...]:
  edges = [float(e) for e in text.split(":")]
  if len(edges) < 2 or any(a >= b for a, b in zip(edges[:-1], edges[1:])):
    raise ValueError("bins are increasing edges E0:E1:...:Ek, e.g. 0:0.25:0.5:1")
  return tuple(zip(edges[:-1], edges[1:]))


def eval_episodes(config, learner: MetaLearner, num_signals: int, workdir: str | None):
  """The fixed meta-test episodes: loaded from `config.eval.episodes_path`, else drawn with
  `config.eval.episode_seed` (and saved to `workdir/episodes.npz` for other codebases)."""
  if config.eval.episodes_path:
    episodes = sampling.load_episodes(config.eval.episodes_path, learner.specs)
    have = next(iter(episodes.values()))["idx"].shape[0]
    if have < num_signals:
      raise ValueError(f"Episode file {config.eval.episodes_path!r} has {have} signals; the test "
                       f"set has {num_signals}.")
    return sampling.slice_episode(episodes, 0, num_signals)
  episodes = sampling.make_eval_episodes(config.eval.episode_seed, learner.specs, num_signals)
  if workdir:
    sampling.save_episodes(os.path.join(workdir, "episodes.npz"), episodes)
  return episodes


def evaluate(learner: MetaLearner, state: TrainState, source, episodes, batch_size: int,
             mesh, progress: bool = False) -> tuple[dict[str, float], evaluation.Accumulator]:
  """Adapts on every meta-test episode and returns the flat metrics (results contract)."""
  from data_pipelines import sources
  eval_step = meta_step.make_eval_step(learner, mesh)
  n = next(iter(episodes.values()))["idx"].shape[0]
  acc = evaluation.Accumulator(learner.specs, learner.meta.inner_steps)
  loader = sources.make_loader(source, batch_size, shuffle=False, num_epochs=1,
                               drop_remainder=False)
  start = 0
  for batch in tqdm(loader, total=-(-n // batch_size), desc="evaluate", disable=not progress,
                    leave=False):
    b = next(iter(batch.values()))["y"].shape[0]
    if start >= n:
      break
    b = min(b, n - start)
    ep = sampling.slice_episode(episodes, start, start + b)
    batch = jax.tree.map(lambda x: x[:b], batch)
    valid = np.ones(batch_size, bool)
    if b < batch_size:  # pad to a full batch: one compiled program for every batch
      valid[b:] = False
      pad = lambda x: np.concatenate([x, np.repeat(x[-1:], batch_size - b, 0)], 0)
      batch, ep = jax.tree.map(pad, batch), jax.tree.map(pad, ep)
    out = eval_step(state.params, state.buffers, meta_step.put_batch(batch, mesh),
                    meta_step.put_batch(ep, mesh))
    acc.add(jax.device_get(out), ep, valid)
    start += b
  return acc.summarize(), acc


def _checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True))


def restore_or_init(manager: ocp.CheckpointManager, state: TrainState) -> TrainState:
  """Restores the latest checkpoint into `state`'s structure, or returns `state`."""
  step = manager.latest_step()
  if step is None:
    return state
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(state))
  except Exception as e:  # a truncated/corrupt checkpoint or a config change
    raise ValueError(
        f"Could not restore checkpoint step {step} from {manager.directory}: {e}. If the config "
        "changed, use a new --workdir; if the checkpoint is corrupt, delete that step's folder "
        "to resume from an earlier one.") from e


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


def train_and_evaluate(config, workdir: str, data: Mapping[str, Mapping] | None = None) -> dict:
  """Meta-trains, checkpoints, evaluates; returns the results dict also written to results.json.

  `data`: the user's arrays instead of files, `{"train": {name: [num_signals, *grid, d_out]},
  "test": {...}}` (see `build_sources`); as with `config.data.source="npz"`, the modalities are
  read from the train arrays (`own_data_specs`).
  """
  from data_pipelines import sources
  os.makedirs(workdir, exist_ok=True)
  own_data = _own_data(config, data)
  if own_data:
    train_source, test_source = own_data_sources(config, data)
    specs = own_data_specs(config, train_source)
    learner = meta_step.learner_from_config(config, specs=specs)
    print(f"Modalities of {_data_name(train_source)}:\n" + "\n".join(
        f"  {s.name}: grid {'x'.join(map(str, s.grid_shape))}, d_out {s.d_out}, output bias "
        f"{s.output_bias:g}, support ratio {s.ratio_range[0]:g}-{s.ratio_range[1]:g}, errors "
        f"{s.error_normaliser}" for s in specs))
  else:
    learner = meta_step.learner_from_config(config)
  mesh = meta_step.data_mesh()
  n_dev = mesh.devices.size
  if config.batch_size % n_dev:
    raise ValueError(f"batch_size {config.batch_size} must be divisible by the number of "
                     f"devices ({n_dev}).")
  if config.eval.batch_size % n_dev:
    raise ValueError(f"eval.batch_size {config.eval.batch_size} must be divisible by the number "
                     f"of devices ({n_dev}).")
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))

  if not own_data:
    train_source = build_sources(config, "train")
    test_source = build_sources(config, "test")
  num_test = len(test_source)
  if config.data.num_test_signals:
    num_test = min(num_test, config.data.num_test_signals)
  episodes = eval_episodes(config, learner, num_test, workdir)

  rng = jax.random.PRNGKey(config.seed)
  state = jax.device_put(learner.init(rng), meta_step.replicated(mesh))
  manager = _checkpoint_manager(workdir, config)
  state = restore_or_init(manager, state)
  start_step = int(state.step)
  if start_step:
    logging.info("Resumed from step %d in %s", start_step, workdir)
  train_step = meta_step.make_train_step(learner, mesh)

  loader = sources.make_loader(train_source, config.batch_size, shuffle=True, seed=config.seed,
                               skip_batches=start_step)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  total = config.num_train_steps
  bar = tqdm(total=total, initial=start_step, desc=f"{config.method}", unit="step",
             disable=jax.process_index() != 0, dynamic_ncols=True)
  step, pending, t_last, s_last = start_step, None, time.time(), start_step
  batches = _prefetch(loader, mesh)
  with open(metrics_path, "a") as metrics_file:
    in_flight = collections.deque()
    while step < total:
      state, metrics = train_step(state, next(batches))
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
        if not np.isfinite(host["loss"]):
          raise FloatingPointError(f"Loss is {host['loss']} at step {step}; stopping. Lower "
                                   "learning_rate or set grad_clip.")
        now = time.time()
        host["steps_per_s"] = (step - s_last) / max(now - t_last, 1e-9)
        t_last, s_last = now, step
        bar.set_postfix(loss=f"{host['loss']:.4f}")
        metrics_file.write(json.dumps({"step": step, **host}) + "\n")
        metrics_file.flush()
      if step % config.checkpoint_every_steps == 0 or step == total:
        manager.save(step, args=ocp.args.StandardSave(state))
      if config.eval.every_steps and step % config.eval.every_steps == 0 and step < total:
        m, _ = evaluate(learner, state, test_source, episodes, config.eval.batch_size, mesh)
        key = f"generalization_mse/avg/step{config.inner_steps}"
        metrics_file.write(json.dumps({"step": step, "eval/" + key: m[key]}) + "\n")
  bar.close()
  manager.wait_until_finished()
  manager.close()

  metrics, _ = evaluate(learner, state, test_source, episodes, config.eval.batch_size, mesh,
                        progress=True)
  results = {"config": config.to_dict(), "step": int(state.step), "metrics": metrics}
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)
  table = evaluation.format_table(metrics, [s.name for s in learner.specs],
                                  config.inner_steps)
  name = config.method
  if config.rule.get("ablation", "none") not in ("none", ""):
    name += f" (ablation={config.rule.ablation})"
  print(f"\n{name} on {config.benchmark} after {int(state.step)} meta-steps "
        f"({num_test} meta-test signals, K={config.inner_steps}):\n{table}")
  return results
