"""A run's orbax checkpoints (`workdir/checkpoints`): the manager, resuming, and restoring a
finished run's learner and state from its config (`restore_run`; from the workdir alone:
`experiments.run.loading.load_run`)."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from experiments.run import build
from mia_jax.meta_step import MetaLearner, TrainState


def checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
  """The orbax manager of `workdir/checkpoints` (keeps `config.keep_checkpoints`)."""
  return ocp.CheckpointManager(
    os.path.join(os.path.abspath(workdir), "checkpoints"),
    options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True),
  )


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
      "to resume from an earlier one."
    ) from e


def restore_run(config, rundir: str) -> tuple[MetaLearner, TrainState]:
  """The learner and the latest meta-learned state of a run in `rundir` (built from `config`).

  Raises:
    FileNotFoundError: `rundir` has no checkpoint.
    ValueError: the checkpoint does not restore (corrupt, or of another config).
  """
  learner = build.build_learner(config)
  manager = checkpoint_manager(rundir, config)
  try:
    if manager.latest_step() is None:
      raise FileNotFoundError(f"No checkpoint in {rundir}.")
    state = restore_or_init(manager, learner.init(jax.random.PRNGKey(config.seed)))
  finally:
    manager.close()
  return learner, state
