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
arm, the measures); see `experiments/studies.py`. Each run goes to `W/{arm}/seed{s}` (the
`experiments.main` layout) with `config.seed = s`. Re-running the same command reuses finished
runs and resumes unfinished ones from their checkpoints, so a killed study loses nothing. At the
end the runner writes `W/results.csv`, `W/results.md` (printed), `W/trajectory.png`,
`W/support.png` (error against the fixed support ratios, where the runs have them) and
`W/reconstructions.png` (`experiments/report.py`, `experiments/plots.py`), and `W/study.json`
(what was run).

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
archive's files are `experiments/archive.py`.

From Python (a notebook):

  from experiments import ablate, studies
  builder = studies.ConfigBuilder.from_spec("experiments/configs/synthetic.py:smoke")
  out = ablate.run(builder.study("sft_removal").select(["mia", "no_sft"]), builder, "/tmp/w",
                   seeds=2)
  print(out.markdown)
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Sequence

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import archive as archive_lib
from experiments import atomic, plots, predict, report, validate
from experiments import studies as studies_lib
from experiments.studies import Study
from experiments.study_runs import (  # noqa: F401  (re-exported: the runner's pieces)
  Run,
  StudyUnfinished,
  enable_compilation_cache,
  run_status,
  train_runs,
)

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program: importing this module for
  its Python API defines none, so it can share a process with other absl programs)."""
  config_flags.DEFINE_config_file(
      "config", None, "Base config file with arguments (`file.py:key=value,...`); every arm's "
      "overrides apply on top of it.", lock_config=False)
  flags.DEFINE_string("workdir", None, "Study directory: runs in W/{arm}/seed{s}, reports in W/.")
  flags.DEFINE_string("study", None, "A study defined by the config file's studies() "
                      "(synthetic: sft_removal, modality_replacement, methods).")
  flags.DEFINE_string("grid", None, "Instead of --study: a grid of overrides, "
                      "'key=v1|v2;key2=w1|w2' (one arm per combination).")
  flags.DEFINE_list("arms", None, "Run only these arms (the reference arm is always run).")
  flags.DEFINE_integer("seeds", 3, "Number of seeds per arm: config.seed + 0..seeds-1.")
  flags.DEFINE_integer("other_seeds", 0, "Seeds for the arms that are not the study's headline "
                       "arms (the first ones of --seeds); 0 = all of --seeds.")
  flags.DEFINE_integer("steps", 0, "Meta-steps per run for every arm (0: the preset's); scales a "
                       "study to a time budget.")
  flags.DEFINE_list("measures", None, "Measures to report (default: the study's), from "
                    "generalization_mse, memorization_mse, full_mse, generalization_psnr, "
                    "memorization_psnr.")
  flags.DEFINE_string("reference", None, "Reference arm (default: the study's; a grid's first "
                      "arm).")
  flags.DEFINE_integer("parallel", 1, "Runs trained at once, each in its own process (for hosts "
                       "with cores or accelerator memory to spare).")
  flags.DEFINE_string("shard", None, "I/N: train only shard I of N of the study's runs (run k "
                      "goes to shard k % N), e.g. one per machine or SLURM array task; with a "
                      "shared --archive, --report_only then writes the report.")
  flags.DEFINE_bool("report_only", False, "Train nothing: write the report from the finished "
                    "runs (in --workdir or restored from --archive).")
  flags.DEFINE_integer("reconstructions", 3, "Meta-test signals in reconstructions.png (0: none).")
  flags.DEFINE_string("archive", None, "Also keep each finished run's results.json and "
                      "config.json, "
                      "its episodes (once per content, in DIR/episodes/), and the reports, in "
                      "this directory (no checkpoints); "
                      "runs finished there are reused, not retrained.")
  flags.DEFINE_string("compilation_cache", "auto", "Persistent JAX compilation cache shared by "
                      "the runs (seeds and restarts skip compilation): 'auto' = W/jax_cache, a "
                      "path, or '' for none. JAX_COMPILATION_CACHE_DIR takes precedence.")


@dataclasses.dataclass
class StudyOutput:
  """What `run` produced.

  Attributes:
    workdir: the study directory.
    study: the study that ran (after `--arms` / `--measures`).
    seeds: the seeds.
    results: `{arm: {seed: results.json}}`.
    markdown: the text of `results.md`.
    files: `{"csv" | "md" | "trajectory" | "support" | "reconstructions" | "study": path}`.
  """

  workdir: str
  study: Study
  seeds: list[int]
  results: dict
  markdown: str
  files: dict[str, str]


def seed_list(seeds: int | Sequence[int], base_seed: int = 0) -> list[int]:
  """`3 -> [base, base + 1, base + 2]`; a sequence is taken as the seeds themselves."""
  if isinstance(seeds, int):
    if seeds < 1:
      raise ValueError(f"seeds must be >= 1, got {seeds}.")
    return [base_seed + i for i in range(seeds)]
  out = [int(s) for s in seeds]
  if not out or len(set(out)) != len(out):
    raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}.")
  return out


def plan(study: Study, builder: studies_lib.ConfigBuilder, workdir: str, seeds: Sequence[int],
         steps: int | None = None, other_seeds: int | None = None) -> list[Run]:
  """Every (arm, seed) run of a study, arm-major (a study's headline arms finish first).

  Arms that are not headline arms (`Study.headline`) get only the first `other_seeds` seeds
  when it is given.
  """
  if other_seeds is not None and other_seeds < 1:
    raise ValueError(f"other_seeds must be >= 1, got {other_seeds}.")
  def arm_seeds(arm):
    return seeds if other_seeds is None or study.is_headline(arm) else seeds[:other_seeds]
  runs = [Run(arm, s, builder.build(overrides, seed=s, steps=steps),
              study.run_dir(workdir, arm, s))
          for arm, overrides in study.arms.items() for s in arm_seeds(arm)]
  studies_lib.check_shared_test_set({r.arm: r.config for r in runs})
  return runs


def write_report(study: Study, runs: Sequence[Run], workdir: str, seeds: Sequence[int],
                 notes: Sequence[str] = (), num_reconstructions: int = 3,
                 log: Callable[[str], None] = print) -> StudyOutput:
  """Writes results.csv, results.md, trajectory.png, support.png and reconstructions.png from
  finished runs."""
  results = report.load_results(workdir, study, seeds)
  missing = [f"{r.arm}/seed{r.seed}" for r in runs if r.seed not in results.get(r.arm, {})]
  if missing:
    raise ValueError(f"No results.json for {', '.join(missing)} in {workdir}.")
  checked = studies_lib.check_paired(workdir, study, seeds)
  notes = list(notes)
  if checked:
    notes.append(f"paired: every arm was evaluated on the reference arm's meta-test supports "
                 f"(checked on {checked} (run, modality) pairs of episodes.npz)")
  files = {}
  files["csv"] = os.path.join(workdir, "results.csv")
  report.write_csv(files["csv"], report.csv_rows(study.name, results))
  markdown = report.format_markdown(study, results, notes)
  files["md"] = os.path.join(workdir, "results.md")
  atomic.write_text(files["md"], markdown)
  files["trajectory"] = plots.plot_trajectories(
      study, results, os.path.join(workdir, "trajectory.png"))
  support = plots.plot_support_curves(study, results, os.path.join(workdir, "support.png"))
  if support:
    files["support"] = support
  if num_reconstructions > 0:
    predictions = {}
    seed = seeds[0]
    for r in runs:
      if r.seed != seed:
        continue
      try:
        predictions[r.arm] = predict.predict_run(r.config, r.rundir, num_reconstructions)
      except (FileNotFoundError, ValueError) as e:
        log(f"reconstructions: skipping arm {r.arm!r}: {e} (a run restored from an archive has "
            "no parameters: archives keep none; to plot it, retrain that run by removing its "
            "folder from both the workdir and the archive)")
    if predictions:
      files["reconstructions"] = plots.plot_reconstructions(
          predictions, os.path.join(workdir, "reconstructions.png"), reference=study.reference,
          title=f"{study.name}: meta-test reconstructions after K inner steps (seed {seed})")
  return StudyOutput(workdir=workdir, study=study, seeds=list(seeds), results=results,
                     markdown=markdown, files=files)


def run(study: Study, builder: studies_lib.ConfigBuilder, workdir: str,
        seeds: int | Sequence[int] = 3, steps: int | None = None, *,
        other_seeds: int | None = None, train_fn: Callable | None = None, parallel: int = 1,
        num_reconstructions: int = 3,
        compilation_cache: str | None = None, archive: str | None = None,
        shard: tuple[int, int] | None = None, report_only: bool = False,
        log: Callable[[str], None] = print) -> StudyOutput:
  """Runs every arm of `study` over every seed into `workdir`, then writes the reports.

  Args:
    study: the study (`builder.study(name)`, `studies.grid_study(...)`, restricted with
      `.select(arms)`).
    builder: builds each arm's config from the base config.
    workdir: the study directory.
    seeds: a number of seeds (`config.seed + 0..n-1`) or the seeds themselves.
    steps: meta-steps per run for every arm (None or 0: the preset's).
    other_seeds: run arms that are not the study's headline arms with only this many of the
      seeds (None: every arm gets every seed).
    train_fn: `train_fn(config, rundir)`, default `experiments.train.train_and_evaluate`.
    parallel: runs trained at once in separate processes.
    num_reconstructions: signals in reconstructions.png (0: no plot).
    compilation_cache: a directory for JAX's persistent compilation cache (None: leave JAX's
      setting alone).
    archive: a directory that keeps every finished run's small files and the reports (see the
      module docstring); runs finished there are restored, not retrained.
    shard: `(i, n)`: train only the runs `k` of the plan with `k % n == i` (0 <= i < n), so n
      machines, each with one shard, train every run once; with an `archive` they share, the
      report is then written by `report_only`. Raises `StudyUnfinished` when runs of other
      shards are missing at the end (not an error: the shard's own runs are done).
    report_only: train nothing; write the report from the finished runs (in the workdir or
      restored from the archive). Raises ValueError naming the runs that are not finished.
    log: where progress lines go.

  Returns:
    A `StudyOutput` (results, the report's markdown and the files written).
  """
  if shard is not None:
    i, n = shard
    if not (isinstance(n, int) and isinstance(i, int) and n >= 1 and 0 <= i < n):
      raise ValueError(f"shard {i}/{n} is not allowed; expected i/n with 0 <= i < n.")
  os.makedirs(workdir, exist_ok=True)
  if compilation_cache:
    enable_compilation_cache(compilation_cache)
  seeds = seed_list(seeds, builder.build().seed)
  runs = plan(study, builder, workdir, seeds, steps, other_seeds)
  notes = [f"config: `{builder.source}`" + (
      " with " + ", ".join(f"{k}={v}" for k, v in builder.overrides.items())
      if builder.overrides else "")]
  if steps:
    preset = builder.build().num_train_steps
    notes.append(f"budget: --steps={steps} meta-steps per run (the preset has {preset})")
  atomic.write_json(os.path.join(workdir, "study.json"),
                    {"study": study.to_dict(), "config": builder.source,
                     "overrides": {k: str(v) for k, v in builder.overrides.items()},
                     "seeds": seeds, "other_seeds": other_seeds, "steps": steps or None}, indent=1)
  if other_seeds is not None and len(runs) < len(study.arms) * len(seeds):
    notes.append(f"seeds: {len(seeds)} for the headline arms ({', '.join(study.headline)}), "
                 f"{min(other_seeds, len(seeds))} for the others")
  fewer = len(runs) < len(study.arms) * len(seeds)
  log(f"Study {study.name!r}: {len(study.arms)} arms x {len(seeds)} seeds"
      + (f" ({other_seeds} for non-headline arms)" if fewer else "") + f" = {len(runs)} runs "
      f"in {workdir} (arms: {', '.join(study.arms)}; reference: {study.reference})")
  on_done = None
  if archive:
    if os.path.abspath(archive) == os.path.abspath(workdir):
      raise ValueError(f"archive must be another directory than the workdir, got {archive}.")
    archive_lib.restore_runs(runs, workdir, archive, run_status, log)
    on_done = lambda r: archive_lib.archive_run(r, workdir, archive)
  if report_only:
    unfinished = [f"{r.arm}/seed{r.seed}" for r in runs if run_status(r) != "finished"]
    if unfinished:
      raise ValueError(f"--report_only: {len(unfinished)} of {len(runs)} runs are not finished "
                       f"({', '.join(unfinished[:6])}{', ...' if len(unfinished) > 6 else ''}); "
                       "train them (their shards, or this command without --report_only) first.")
    for r in runs:
      if on_done:
        on_done(r)
    busy = []
  elif shard is not None:
    mine = [r for k, r in enumerate(runs) if k % shard[1] == shard[0]]
    log(f"Shard {shard[0]}/{shard[1]}: {len(mine)} of the {len(runs)} runs")
    busy = train_runs(mine, train_fn, parallel, log, on_done)
    others = [r for r in runs if r not in mine and run_status(r) != "finished"]
    if not busy and others:
      raise StudyUnfinished(
          f"Shard {shard[0]}/{shard[1]} is done ({len(mine)} runs); {len(others)} runs of other "
          "shards are not finished here yet. When every shard is done, write the report with "
          "the same command and --report_only (with the shared --archive).")
  else:
    busy = train_runs(runs, train_fn, parallel, log, on_done)
  if busy:
    raise StudyUnfinished(
        f"{len(busy)} run(s) are being trained by another process "
        f"({', '.join(f'{r.arm}/seed{r.seed}' for r in busy[:4])}{', ...' if len(busy) > 4 else ''}"
        "); this runner's runs are done. The runner that finishes last writes the report; or "
        "rerun this command once they are done.")
  out = write_report(study, runs, workdir, seeds, notes, num_reconstructions, log)
  out.files["study"] = os.path.join(workdir, "study.json")
  if archive:
    copied = archive_lib.archive_reports(workdir, archive)
    log(f"Archived {len(runs)} runs and {', '.join(copied)} in {archive}")
  return out


def parse_shard(text: str | None) -> tuple[int, int] | None:
  """`--shard=I/N` -> `(I, N)`; None for no flag. Raises ValueError naming the value."""
  if text is None or text == "":
    return None
  m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
  if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
    raise ValueError(f"--shard={text!r} is not allowed; expected I/N with 0 <= I < N, e.g. "
                     "--shard=0/4 (SLURM: --shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).")
  return int(m.group(1)), int(m.group(2))


def study_from_flags(builder: studies_lib.ConfigBuilder) -> Study:
  """The study named by --study or --grid, restricted by --arms, --measures, --reference."""
  if bool(FLAGS.study) == bool(FLAGS.grid):
    raise app.UsageError("Give exactly one of --study (a study of the config's studies()) or "
                         "--grid ('key=v1|v2;key2=w1|w2').")
  if FLAGS.grid:
    study = studies_lib.grid_study(FLAGS.grid, FLAGS.reference)
  else:
    study = builder.study(FLAGS.study)
    if FLAGS.reference:
      study = dataclasses.replace(study, reference=FLAGS.reference)
  if FLAGS.arms is not None and not [a for a in FLAGS.arms if a.strip()]:
    raise ValueError(f"--arms is empty; name some of the study's arms ({', '.join(study.arms)}), "
                     "or leave the flag out to run them all.")
  return study.with_measures(FLAGS.measures).select(FLAGS.arms)


def check_inputs(study: Study, builder: studies_lib.ConfigBuilder) -> None:
  """Usage errors before anything is written or trained: the seeds, every planned run's config
  (an arm, a --grid value or --steps out of range), earlier runs in the workdir, the directories."""
  parse_shard(FLAGS.shard)
  if FLAGS.shard and FLAGS.report_only:
    raise ValueError("Give --shard (train one shard) or --report_only (train nothing), not both.")
  if FLAGS.steps < 0:
    raise ValueError(f"--steps={FLAGS.steps} is not allowed; expected an integer >= 1 (0: the "
                     "preset's).")
  seeds = seed_list(FLAGS.seeds, builder.build().seed)
  runs = plan(study, builder, FLAGS.workdir, seeds, FLAGS.steps or None, FLAGS.other_seeds or None)
  for r in runs:
    try:
      validate.validate_config(r.config)
    except ValueError as e:
      raise ValueError(f"arm {r.arm!r}: {e}") from e
    run_status(r)
  # The folders first: they are cheap to check, and reading the data may build a dataset.
  for name in ("workdir", "archive", "compilation_cache"):
    if FLAGS[name].value and FLAGS[name].value != "auto":
      validate.check_writable_dir(FLAGS[name].value, name)
  from experiments import train  # imported on use: jax, orbax
  checked = set()  # the data and episodes, read once per distinct data config (no training)
  for r in runs:
    key = (r.config.data.to_json(), r.config.modalities, r.config.eval.episodes_path,
           r.config.batch_size, r.config.eval.batch_size)
    if key not in checked:
      checked.add(key)
      try:
        train.prepare(r.config, r.rundir)
      except ValueError as e:
        raise ValueError(f"arm {r.arm!r}: {e}") from e


def main(argv):
  with validate.exit_on_error(2):  # usage errors: nothing is written before these checks
    validate.check_argv(argv)
    builder = studies_lib.ConfigBuilder.from_spec(
        config_flags.get_config_filename(FLAGS["config"]),
        config_flags.get_override_values(FLAGS["config"]))
    study = study_from_flags(builder)
    check_inputs(study, builder)
  cache = FLAGS.compilation_cache
  if cache == "auto":
    cache = os.path.join(FLAGS.workdir, "jax_cache")
  with validate.exit_on_error(1):
    try:
      out = run(study, builder, FLAGS.workdir, FLAGS.seeds, FLAGS.steps or None,
                other_seeds=FLAGS.other_seeds or None,
                parallel=FLAGS.parallel, num_reconstructions=FLAGS.reconstructions,
                compilation_cache=cache or None, archive=FLAGS.archive,
                shard=parse_shard(FLAGS.shard), report_only=FLAGS.report_only,
                log=logging.info)
    except StudyUnfinished as e:  # another runner shares the folder: not an error
      print(f"\n{e}")
      return
  print(f"\n{out.markdown}")
  print("Wrote " + ", ".join(out.files[k] for k in sorted(out.files)))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["config", "workdir"])
  validate.run_cli(main)
