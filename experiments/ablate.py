r"""Runs an ablation study: every arm over every seed, then its tables, trajectories and plots.

  # SFT removal (full MIA against MIA without its SFTs or their parts), 3 seeds:
  python -m experiments.ablate --config=experiments/configs/synthetic.py:cpu \
      --study=sft_removal --seeds=3 --workdir=workdirs/sft_removal
  # Modality replacement (each function alone against all four), headline arms only:
  python -m experiments.ablate --config=experiments/configs/synthetic.py:cpu \
      --study=modality_replacement --arms=all,sine_alone --seeds=3 --workdir=workdirs/modrep
  # A grid of overrides (arms `method=cavia,inner_steps=1`, ...), 500 meta-steps per run:
  python -m experiments.ablate --config=experiments/configs/synthetic.py:cpu \
      --grid="method=cavia|mia;inner_steps=1|3" --steps=500 --seeds=2 --workdir=workdirs/grid

Studies are defined by `studies()` in the config file (arms as config overrides, the reference
arm, the measures); see `experiments/studies/definitions.py`. Each run goes to `W/{arm}/seed{s}`
(the `experiments.main` layout) with `config.seed = s`. Re-running the same command reuses
finished runs and resumes unfinished ones from their checkpoints, so a killed study loses
nothing. At the end the runner writes `W/results.csv`, `W/results.md` (printed),
`W/trajectory.png`, `W/support.png` (error against the fixed support ratios, where the runs have
them) and `W/reconstructions.png` (`experiments/studies/report.py`, `.../plots.py`), and
`W/study.json` (what was run).

With `--archive=DIR` (for example `docs/results/sft_removal`) every finished run's small files
(`results.json`, `config.json`; never checkpoints) and the reports are also copied to
`DIR/{arm}/seed{s}` and `DIR`, as each run finishes; its meta-test episodes are kept once per
distinct content in `DIR/episodes/{digest}.npz` (every seed of an arm, and every arm of a
modality-replacement study on a modality, has the same ones), named by `episodes.sha256` in the
run's folder. A run that is finished in `DIR` but absent from the workdir is taken from `DIR`
(episodes included) instead of being retrained. A study kept in a
repository can thus be re-reported or resumed on another machine: the same command with the same
`--archive` trains only what is missing. Restored runs have no parameters, so
`reconstructions.png` leaves out an arm whose plotted seed was restored (the log says so). The
archive's files are `experiments/studies/archive.py`.

This module is the command line only; the runner is `experiments.studies.runner` (`runner.run`
from Python or a notebook).
"""

from __future__ import annotations

import dataclasses
import os

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import cli, syntax
from experiments.run import validate
from experiments.studies import definitions as studies_lib
from experiments.studies import runner
from experiments.studies.definitions import Study
from mia_jax.evaluation import MEASURES

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program: importing this module for
  its Python API defines none, so it can share a process with other absl programs)."""
  _define_study_flags()
  _define_runner_flags()


def _define_study_flags() -> None:
  """What is run: the study, its arms, seeds and budget, and what is reported."""
  config_flags.DEFINE_config_file(
    "config",
    None,
    "Base config file with arguments (`file.py:key=value,...`); every arm's "
    "overrides apply on top of it.",
    lock_config=False,
  )
  flags.DEFINE_string("workdir", None, "Study directory: runs in W/{arm}/seed{s}, reports in W/.")
  flags.DEFINE_string(
    "study",
    None,
    "A study defined by the config file's studies() "
    "(synthetic: sft_removal, modality_replacement, methods).",
  )
  flags.DEFINE_string(
    "grid",
    None,
    "Instead of --study: a grid of overrides, 'key=v1|v2;key2=w1|w2' (one arm per combination).",
  )
  flags.DEFINE_list("arms", None, "Run only these arms (the reference arm is always run).")
  flags.DEFINE_string("reference", None, "Reference arm (default: the study's; a grid's first).")
  flags.DEFINE_integer("seeds", 3, "Number of seeds per arm: config.seed + 0..seeds-1.")
  flags.DEFINE_integer(
    "other_seeds",
    0,
    "Seeds for the arms that are not the study's headline "
    "arms (the first ones of --seeds); 0 = all of --seeds.",
  )
  flags.DEFINE_integer(
    "steps",
    0,
    "Meta-steps per run for every arm (0: the preset's); scales a study to a time budget.",
  )
  flags.DEFINE_list(
    "measures", None, f"Measures to report (default: the study's), from {', '.join(MEASURES)}."
  )
  flags.DEFINE_integer("reconstructions", 3, "Meta-test signals in reconstructions.png (0: none).")


def _define_runner_flags() -> None:
  """How it is run: processes, shards, the archive, the compilation cache."""
  flags.DEFINE_integer(
    "parallel",
    1,
    "Runs trained at once, each in its own process (for hosts "
    "with cores or accelerator memory to spare).",
  )
  flags.DEFINE_string(
    "shard",
    None,
    "I/N: train only shard I of N of the study's runs (run k "
    "goes to shard k % N), e.g. one per machine or SLURM array task; with a "
    "shared --archive, --report_only then writes the report.",
  )
  flags.DEFINE_bool(
    "report_only",
    False,
    "Train nothing: write the report from the finished "
    "runs (in --workdir or restored from --archive).",
  )
  flags.DEFINE_string(
    "archive",
    None,
    "Also keep each finished run's results.json and "
    "config.json, its episodes (once per content, in DIR/episodes/), and the "
    "reports in this directory (no checkpoints); runs finished there are "
    "reused, not retrained.",
  )
  flags.DEFINE_string(
    "compilation_cache",
    "auto",
    "Persistent JAX compilation cache shared by "
    "the runs (seeds and restarts skip compilation): 'auto' = W/jax_cache, a "
    "path, or '' for none. JAX_COMPILATION_CACHE_DIR takes precedence.",
  )


def study_from_flags(builder: studies_lib.ConfigBuilder) -> Study:
  """The study named by --study or --grid, restricted by --arms, --measures, --reference."""
  if bool(FLAGS.study) == bool(FLAGS.grid):
    raise app.UsageError(
      "Give exactly one of --study (a study of the config's studies()) or "
      "--grid ('key=v1|v2;key2=w1|w2')."
    )
  if FLAGS.grid:
    study = studies_lib.grid_study(FLAGS.grid, FLAGS.reference)
  else:
    study = builder.study(FLAGS.study)
    if FLAGS.reference:
      study = dataclasses.replace(study, reference=FLAGS.reference)
  if FLAGS.arms is not None and not [a for a in FLAGS.arms if a.strip()]:
    raise ValueError(
      f"--arms is empty; name some of the study's arms ({', '.join(study.arms)}), "
      "or leave the flag out to run them all."
    )
  return study.with_measures(FLAGS.measures).select(FLAGS.arms)


def check_inputs(study: Study, builder: studies_lib.ConfigBuilder) -> None:
  """Usage errors before anything is written or trained: the seeds, every planned run's config
  (an arm, a --grid value or --steps out of range), earlier runs in the workdir, the
  directories, and the data and episodes of the runs that will train."""
  syntax.parse_shard(FLAGS.shard)
  if FLAGS.shard and FLAGS.report_only:
    raise ValueError("Give --shard (train one shard) or --report_only (train nothing), not both.")
  if FLAGS.steps < 0:
    raise ValueError(
      f"--steps={FLAGS.steps} is not allowed; expected an integer >= 1 (0: the preset's)."
    )
  seeds = runner.seed_list(FLAGS.seeds, builder.build().seed)
  runs = runner.plan(
    study, builder, FLAGS.workdir, seeds, FLAGS.steps or None, FLAGS.other_seeds or None
  )
  todo = unfinished_runs(runs)
  # The folders next: they are cheap to check, and reading the data may build a dataset.
  for name in ("workdir", "archive", "compilation_cache"):
    if FLAGS[name].value and FLAGS[name].value != "auto":
      validate.check_writable_dir(FLAGS[name].value, name)
  if not FLAGS.report_only:
    prepare_runs(todo)


def unfinished_runs(runs):
  """The runs that will train: every run's config checked to be in range and its folder to hold
  no other run (`runner.run_status`); the finished ones left out.

  Raises:
    ValueError: naming the arm.
  """
  todo = []
  for r in runs:
    try:
      validate.validate_config(r.config)
      if runner.run_status(r) != "finished":
        todo.append(r)
    except ValueError as e:
      raise ValueError(f"arm {r.arm!r}: {e}") from e
  return todo


def prepare_runs(runs) -> None:
  """The data and episodes of runs that will train, read once per distinct data config
  (`train.prepare`, which writes nothing). Finished runs are not given: a run restored from an
  archive has no checkpoints, which `prepare` would refuse as a workdir to resume.

  Raises:
    ValueError: naming the arm.
  """
  if not runs:
    return
  from experiments.run import train  # imported on use: jax, orbax

  checked = set()
  for r in runs:
    key = (
      r.config.data.to_json(),
      r.config.modalities,
      r.config.eval.episodes_path,
      r.config.batch_size,
      r.config.eval.batch_size,
    )
    if key not in checked:
      checked.add(key)
      try:
        train.prepare(r.config, r.rundir)
      except ValueError as e:
        raise ValueError(f"arm {r.arm!r}: {e}") from e


def main(argv):
  with cli.exit_on_error(2):  # usage errors: nothing is written before these checks
    cli.check_argv(argv)
    builder = studies_lib.ConfigBuilder.from_spec(
      config_flags.get_config_filename(FLAGS["config"]),
      config_flags.get_override_values(FLAGS["config"]),
    )
    study = study_from_flags(builder)
    check_inputs(study, builder)
  cache = FLAGS.compilation_cache
  if cache == "auto":
    cache = os.path.join(FLAGS.workdir, "jax_cache")
  with cli.exit_on_error(1):
    try:
      out = runner.run(
        study,
        builder,
        FLAGS.workdir,
        FLAGS.seeds,
        FLAGS.steps or None,
        other_seeds=FLAGS.other_seeds or None,
        parallel=FLAGS.parallel,
        num_reconstructions=FLAGS.reconstructions,
        compilation_cache=cache or None,
        archive=FLAGS.archive,
        shard=syntax.parse_shard(FLAGS.shard),
        report_only=FLAGS.report_only,
        log=logging.info,
      )
    except runner.StudyUnfinished as e:  # another runner shares the folder: not an error
      print(f"\n{e}")
      return
  print(f"\n{out.markdown}")
  print("Wrote " + ", ".join(out.files[k] for k in sorted(out.files)))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["config", "workdir"])
  cli.run_cli(main)
