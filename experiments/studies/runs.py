"""The runs of a study: what one is (`Run`), whether it is finished (`run_status`), and training
the unfinished ones (`train_runs`), in this process or in several, skipping runs another runner
holds (their workdir lock). `experiments.ablate` plans the runs and writes the reports.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import time
from typing import Any, Callable, Sequence

from experiments.run import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Run:
  """One arm and seed of a study."""

  arm: str
  seed: int
  config: Any  # ml_collections.ConfigDict
  rundir: str


class StudyUnfinished(Exception):
  """Runs of the study are being trained by another runner (`train_runs` skipped them)."""


def run_status(run: Run) -> str:
  """`"finished"` (results.json at config.num_train_steps), `"resume"` (checkpoints) or `"new"`.

  Raises:
    ValueError: the run directory holds a run of a different config, or one trained past the
      requested number of meta-steps.
  """
  config_path = os.path.join(run.rundir, "config.json")
  if os.path.exists(config_path):
    old = workdir_lib.read_json(
      config_path, "a study run's config", "delete that run's folder to retrain it."
    )
    diff = workdir_lib.config_differences(old, json.loads(run.config.to_json()))
    if diff:
      raise ValueError(
        f"{run.rundir} holds a run of another config ({'; '.join(diff[:5])}); use "
        "a new --workdir, or delete that folder to rerun it."
      )
  results_path = os.path.join(run.rundir, "results.json")
  if os.path.exists(results_path):
    results = workdir_lib.read_json(
      results_path,
      "a study run's results",
      "delete that file to evaluate the run again from its "
      "checkpoints (or its folder to retrain it).",
    )
    step = results.get("step") if isinstance(results, dict) else None
    if step == run.config.num_train_steps:
      return "finished"
    if step is not None and step > run.config.num_train_steps:
      raise ValueError(
        f"{run.rundir} was trained for {step} meta-steps, more than the "
        f"{run.config.num_train_steps} asked for; use a new --workdir."
      )
  ckpt = os.path.join(run.rundir, "checkpoints")
  return "resume" if os.path.isdir(ckpt) and os.listdir(ckpt) else "new"


def _default_train_fn():
  from experiments.run import train

  return train.train_and_evaluate


def train_runs(
  runs: Sequence[Run],
  train_fn: Callable | None = None,
  parallel: int = 1,
  log: Callable[[str], None] = print,
  on_done: Callable[[Run], None] | None = None,
) -> list[Run]:
  """Trains every run that is not finished (resuming partial ones), showing progress.

  A run another process is training (its workdir locked, `workdir.WorkdirLock`) is skipped: two
  runners started on one study folder split its runs between them.

  Args:
    runs: the study's runs (see `plan`).
    train_fn: `train_fn(config, workdir)`, default `experiments.run.train.train_and_evaluate`;
      must be picklable (a module-level function) when `parallel > 1`.
    parallel: runs trained at once, each in a fresh process (1: in this process, in order).
    log: where progress lines go.
    on_done: called with each run once it is finished (also for runs finished earlier).

  Returns:
    The runs left to other processes (busy when this runner came to them).
  """
  train_fn = train_fn or _default_train_fn()
  on_done = on_done or (lambda r: None)
  total = len(runs)
  todo, busy = [], []

  def skip(tag, r, why):
    log(f"{tag}: {why}; skipped here (that process trains it)")
    busy.append(r)

  def settle(tag, r, wait, done_message):
    """Waits for a run's training; a run another process holds is skipped, not an error."""
    try:
      wait()
    except workdir_lib.WorkdirBusy as e:
      skip(tag, r, str(e).split(";")[0])
      return
    log(f"{tag}: {done_message()}")
    on_done(r)

  for i, r in enumerate(runs, 1):
    tag = f"[{i}/{total}] {r.arm} seed {r.seed}"
    holder = workdir_lib.lock_holder(r.rundir)
    if holder:
      skip(tag, r, f"being trained by PID {holder.get('pid')}")
      continue
    status = run_status(r)
    if status == "finished":
      log(f"{tag}: finished earlier, reusing {os.path.join(r.rundir, 'results.json')}")
      on_done(r)
    else:
      todo.append((tag, status, r))
  if parallel > 1 and len(todo) > 1:
    # Each process gets its own JAX runtime; do not let each grab most of an accelerator.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(parallel, len(todo)), mp_context=ctx) as pool:
      start = time.time()
      futures = {}
      for tag, status, r in todo:
        log(f"{tag}: {'resuming' if status == 'resume' else 'training'} in {r.rundir}")
        futures[pool.submit(train_fn, r.config, r.rundir)] = (tag, r)
      for fut in concurrent.futures.as_completed(futures):
        tag, r = futures[fut]
        settle(tag, r, fut.result, lambda: f"done ({time.time() - start:.0f}s since start)")
    return busy
  for tag, status, r in todo:
    log(f"{tag}: {'resuming' if status == 'resume' else 'training'} in {r.rundir}")
    start = time.time()
    settle(
      tag, r, lambda: train_fn(r.config, r.rundir), lambda: f"done in {time.time() - start:.0f}s"
    )
  return busy


def enable_compilation_cache(path: str) -> str:
  """Points JAX's persistent compilation cache at `path` unless one is set already; returns the
  cache in use (also exported for worker processes)."""
  import jax

  current = jax.config.jax_compilation_cache_dir
  if current:
    return current
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", path)
  return path
