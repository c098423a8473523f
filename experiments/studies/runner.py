"""The study runner: plan a study's runs, train the unfinished ones, write the reports.

* `run(study, builder, workdir, seeds, ...)`: every arm over every seed (`plan`), trained or
  resumed (`experiments.studies.runs.train_runs`), restored from and kept in an archive
  (`experiments.studies.archive`), then `write_report`; returns a `StudyOutput`;
* `write_report(...)`: results.csv, results.md, trajectory.png, support.png and
  reconstructions.png from finished runs.

`python -m experiments.ablate` is its command line. From Python (a notebook):

  from experiments.studies import definitions, runner
  builder = definitions.ConfigBuilder.from_spec("experiments/configs/synthetic.py:smoke")
  out = runner.run(builder.study("sft_removal").select(["mia", "no_sft"]), builder, "/tmp/w",
                   seeds=2)
  print(out.markdown)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

from experiments import atomic
from experiments.run import figures, predict
from experiments.studies import archive as archive_lib
from experiments.studies import definitions as studies_lib
from experiments.studies import plots, report
from experiments.studies.definitions import Study
from experiments.studies.runs import (
  Run,
  StudyUnfinished,
  enable_compilation_cache,
  run_status,
  train_runs,
)


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


def plan(
  study: Study,
  builder: studies_lib.ConfigBuilder,
  workdir: str,
  seeds: Sequence[int],
  steps: int | None = None,
  other_seeds: int | None = None,
) -> list[Run]:
  """Every (arm, seed) run of a study, arm-major (a study's headline arms finish first).

  Arms that are not headline arms (`Study.headline`) get only the first `other_seeds` seeds
  when it is given.
  """
  if other_seeds is not None and other_seeds < 1:
    raise ValueError(f"other_seeds must be >= 1, got {other_seeds}.")

  def arm_seeds(arm):
    return seeds if other_seeds is None or study.is_headline(arm) else seeds[:other_seeds]

  runs = [
    Run(arm, s, builder.build(overrides, seed=s, steps=steps), study.run_dir(workdir, arm, s))
    for arm, overrides in study.arms.items()
    for s in arm_seeds(arm)
  ]
  studies_lib.check_shared_test_set({r.arm: r.config for r in runs})
  return runs


def write_report(
  study: Study,
  runs: Sequence[Run],
  workdir: str,
  seeds: Sequence[int],
  notes: Sequence[str] = (),
  num_reconstructions: int = 3,
  log: Callable[[str], None] = print,
) -> StudyOutput:
  """Writes results.csv, results.md, trajectory.png, support.png and reconstructions.png from
  finished runs."""
  results = report.load_results(workdir, study, seeds)
  missing = [f"{r.arm}/seed{r.seed}" for r in runs if r.seed not in results.get(r.arm, {})]
  if missing:
    raise ValueError(f"No results.json for {', '.join(missing)} in {workdir}.")
  checked = studies_lib.check_paired(workdir, study, seeds)
  notes = list(notes)
  if checked:
    notes.append(
      f"paired: every arm was evaluated on the reference arm's meta-test supports "
      f"(checked on {checked} (run, modality) pairs of episodes.npz)"
    )
  files = {}
  files["csv"] = os.path.join(workdir, "results.csv")
  report.write_csv(files["csv"], report.csv_rows(study.name, results))
  markdown = report.format_markdown(study, results, notes)
  files["md"] = os.path.join(workdir, "results.md")
  atomic.write_text(files["md"], markdown)
  files["trajectory"] = plots.plot_trajectories(
    study, results, os.path.join(workdir, "trajectory.png")
  )
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
        log(
          f"reconstructions: skipping arm {r.arm!r}: {e} (a run restored from an archive has "
          "no parameters: archives keep none; to plot it, retrain that run by removing its "
          "folder from both the workdir and the archive)"
        )
    if predictions:
      files["reconstructions"] = figures.plot_reconstructions(
        predictions,
        os.path.join(workdir, "reconstructions.png"),
        reference=study.reference,
        title=f"{study.name}: meta-test reconstructions after K inner steps (seed {seed})",
      )
  return StudyOutput(
    workdir=workdir, study=study, seeds=list(seeds), results=results, markdown=markdown, files=files
  )


def run(
  study: Study,
  builder: studies_lib.ConfigBuilder,
  workdir: str,
  seeds: int | Sequence[int] = 3,
  steps: int | None = None,
  *,
  other_seeds: int | None = None,
  train_fn: Callable | None = None,
  parallel: int = 1,
  num_reconstructions: int = 3,
  compilation_cache: str | None = None,
  archive: str | None = None,
  shard: tuple[int, int] | None = None,
  report_only: bool = False,
  log: Callable[[str], None] = print,
) -> StudyOutput:
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
    train_fn: `train_fn(config, rundir)`, default `experiments.run.train.train_and_evaluate`.
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
  notes = [
    f"config: `{builder.source}`"
    + (
      " with " + ", ".join(f"{k}={v}" for k, v in builder.overrides.items())
      if builder.overrides
      else ""
    )
  ]
  if steps:
    preset = builder.build().num_train_steps
    notes.append(f"budget: --steps={steps} meta-steps per run (the preset has {preset})")
  atomic.write_json(
    os.path.join(workdir, "study.json"),
    {
      "study": study.to_dict(),
      "config": builder.source,
      "overrides": {k: str(v) for k, v in builder.overrides.items()},
      "seeds": seeds,
      "other_seeds": other_seeds,
      "steps": steps or None,
    },
    indent=1,
  )
  if other_seeds is not None and len(runs) < len(study.arms) * len(seeds):
    notes.append(
      f"seeds: {len(seeds)} for the headline arms ({', '.join(study.headline)}), "
      f"{min(other_seeds, len(seeds))} for the others"
    )
  fewer = len(runs) < len(study.arms) * len(seeds)
  log(
    f"Study {study.name!r}: {len(study.arms)} arms x {len(seeds)} seeds"
    + (f" ({other_seeds} for non-headline arms)" if fewer else "")
    + f" = {len(runs)} runs "
    f"in {workdir} (arms: {', '.join(study.arms)}; reference: {study.reference})"
  )
  on_done = None
  if archive:
    if os.path.abspath(archive) == os.path.abspath(workdir):
      raise ValueError(f"archive must be another directory than the workdir, got {archive}.")
    archive_lib.restore_runs(runs, workdir, archive, run_status, log)
    on_done = lambda r: archive_lib.archive_run(r, workdir, archive)
  if report_only:
    unfinished = [f"{r.arm}/seed{r.seed}" for r in runs if run_status(r) != "finished"]
    if unfinished:
      raise ValueError(
        f"--report_only: {len(unfinished)} of {len(runs)} runs are not finished "
        f"({', '.join(unfinished[:6])}{', ...' if len(unfinished) > 6 else ''}); "
        "train them (their shards, or this command without --report_only) first."
      )
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
        "the same command and --report_only (with the shared --archive)."
      )
  else:
    busy = train_runs(runs, train_fn, parallel, log, on_done)
  if busy:
    raise StudyUnfinished(
      f"{len(busy)} run(s) are being trained by another process "
      f"({', '.join(f'{r.arm}/seed{r.seed}' for r in busy[:4])}{', ...' if len(busy) > 4 else ''}"
      "); this runner's runs are done. The runner that finishes last writes the report; or "
      "rerun this command once they are done."
    )
  out = write_report(study, runs, workdir, seeds, notes, num_reconstructions, log)
  out.files["study"] = os.path.join(workdir, "study.json")
  if archive:
    copied = archive_lib.archive_reports(workdir, archive)
    log(f"Archived {len(runs)} runs and {', '.join(copied)} in {archive}")
  return out
