"""Loading a finished run from its workdir alone: `load_run(workdir)`.

    from experiments.run.loading import load_run
    learner, state, config = load_run("/tmp/mia")

A workdir holds `config.json` (the experiment config), `specs.json` (the modalities the run was
built with: grids, channels, output biases; written since v0.5) and `checkpoints/`. `load_run`
rebuilds the learner from them and restores the latest checkpoint into an abstract target
(`jax.eval_shape` of `learner.init`: nothing is initialised to be thrown away). Runs on a
registered benchmark, on `.npz` files and on arrays passed from Python all load; a run written
before `specs.json` existed loads when its specs can be rebuilt (a benchmark, or `.npz` files that
are still there).

What to do with it: `mia_jax.adapt_to_observations` (a few observed points of a new signal),
`MultimodalINR.predict(..., coords=)` (anywhere, e.g. a finer grid), or
`python -m experiments.reconstruct` (both, from files); docs/library.md has the recipe.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, NamedTuple, Sequence

from experiments import atomic

SPECS_FILE = "specs.json"


class LoadedRun(NamedTuple):
  """What `load_run` returns; unpacks as `learner, state, config`."""

  learner: Any  # mia_jax.MetaLearner
  state: Any  # mia_jax.TrainState, on the host
  config: Any  # ml_collections.ConfigDict


def specs_to_json(specs: Sequence[Any]) -> str:
  """The modality specs as JSON (what `specs.json` holds), with the writing version."""
  import mia_jax

  return json.dumps(
    {"mia_jax_version": mia_jax.__version__, "specs": [dataclasses.asdict(s) for s in specs]},
    indent=1,
  )


def write_specs(workdir: str, specs: Sequence[Any]) -> None:
  """Writes `workdir/specs.json` atomically (a temporary file renamed over it)."""
  atomic.write_text(os.path.join(workdir, SPECS_FILE), specs_to_json(specs))


def read_specs(path: str) -> tuple[Any, ...]:
  """The modality specs in a `specs.json`.

  Raises:
    ValueError: the file is not a specs file of this format (named, with what is wrong).
  """
  from mia_jax.modalities import ModalitySpec

  try:
    with open(path) as f:
      data = json.load(f)
    entries = data["specs"]
    specs = []
    for d in entries:
      d = dict(d)
      d["grid_shape"] = tuple(d["grid_shape"])
      d["ratio_range"] = tuple(d["ratio_range"])
      d["ratio_bins"] = tuple(tuple(b) for b in d["ratio_bins"])
      d["ratio_beta"] = tuple(d["ratio_beta"])
      specs.append(ModalitySpec(**d))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(
      f"{path} is not a readable modality specs file ({type(e).__name__}: {e}); "
      "it is written by the training driver since mia-jax 0.5. Delete it to "
      "rebuild the specs from the config and data."
    ) from None
  if not specs:
    raise ValueError(f"{path} lists no modalities.")
  return tuple(specs)


def read_config(workdir: str):
  """The `ConfigDict` of the run in `workdir` (its `config.json`).

  Raises:
    FileNotFoundError: no workdir, or no `config.json` in it.
    ValueError: `config.json` is not readable JSON.
  """
  import ml_collections

  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"No run directory {workdir!r} (it does not exist).")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f"{workdir!r} holds no run: it has no config.json (the training "
      "driver writes it when a run starts; is this the --workdir of "
      "`python -m experiments.main`?)."
    )
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"{path} is not readable JSON ({e}).") from None
  if not isinstance(data, dict):
    raise ValueError(f"{path} holds {type(data).__name__}, not a config.")
  return ml_collections.ConfigDict(data)


def run_specs(config, workdir: str) -> tuple[Any, ...]:
  """The modalities of the run in `workdir`: `specs.json`, else rebuilt from the config."""
  from data_pipelines import benchmarks
  from experiments.run import build

  path = os.path.join(workdir, SPECS_FILE)
  if os.path.isfile(path):
    return read_specs(path)
  if config.data.source == "npz":
    if not config.data.npz_train:
      raise ValueError(
        f"{workdir!r} is a run on arrays passed from Python, written before runs stored their "
        f"modalities ({SPECS_FILE}, mia-jax 0.5); its specs cannot be rebuilt. Write them with "
        "experiments.run.loading.write_specs(workdir, specs), where specs = "
        "experiments.run.build.own_data_specs(config, source) of the arrays it trained on."
      )
    if not os.path.isfile(config.data.npz_train):
      raise FileNotFoundError(
        f"{workdir!r} is a run on {config.data.npz_train!r}, which is gone, and it predates "
        f"{SPECS_FILE} (mia-jax 0.5): its modalities cannot be rebuilt without that file."
      )
    train_source = build.build_sources(config, "train")
    return build.own_data_specs(config, train_source)
  return benchmarks.benchmark_specs(config.benchmark, config.modalities)


def load_run(workdir: str, step: int | None = None) -> LoadedRun:
  """The learner, the meta-learned state and the config of the run in `workdir`.

  Args:
    workdir: a run's `--workdir`.
    step: the checkpoint to load; None means the latest.

  Returns:
    `LoadedRun(learner, state, config)`; the state's arrays are on the default device.

  Raises:
    FileNotFoundError: no run in `workdir`, or no checkpoint (a run restored from an archive
      keeps none; a run stopped before its first checkpoint has none yet), or no `step`.
    ValueError: an unreadable config or specs file, or a checkpoint that does not restore into
      what this version builds from the config (a run of an older mia-jax, or a corrupt one).
  """
  import jax
  import orbax.checkpoint as ocp

  from experiments.run import build

  workdir = os.fspath(workdir)
  config = read_config(workdir)
  specs = run_specs(config, workdir)
  learner = build.learner_from_config(config, specs=specs)
  ckpt_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
  steps = []
  if os.path.isdir(ckpt_dir):
    steps = sorted(
      int(d)
      for d in os.listdir(ckpt_dir)
      if d.isdigit() and os.path.isdir(os.path.join(ckpt_dir, d))
    )
  if not steps:
    raise FileNotFoundError(
      f"{workdir!r} has no checkpoint (checkpoints/ is missing or empty): the run stopped "
      "before its first checkpoint, or it was restored from an archive, which keeps results "
      "but not checkpoints. Train it (python -m experiments.main with the same --workdir "
      "resumes) to get one."
    )
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise FileNotFoundError(f"{workdir!r} has no checkpoint of step {step}; it has {steps}.")
  seed = int(config.get("seed", 0))
  abstract = jax.eval_shape(learner.init, jax.random.PRNGKey(seed))
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract
  )
  manager = ocp.CheckpointManager(ckpt_dir, options=ocp.CheckpointManagerOptions(create=False))
  try:
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  except Exception as e:  # orbax raises many kinds; the message says which
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise ValueError(
      f"Checkpoint step {step} of {workdir!r} does not restore into the model this version "
      f"(mia-jax {_version()}) builds from its config.json: {first[:300]}. A run of an older "
      "version (its parameters laid out otherwise) loads with the version that trained it; "
      "a corrupt step loads with load_run(workdir, step=an earlier step)."
    ) from None
  finally:
    manager.close()
  return LoadedRun(learner, state, config)


def _version() -> str:
  import mia_jax

  return mia_jax.__version__
