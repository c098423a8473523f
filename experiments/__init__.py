"""The experiments: one run (`experiments.run`), studies (`experiments.studies`), speed
(`experiments.speed`), the configs, and the programs `experiments.main`, `experiments.ablate`
and `experiments.reconstruct` (docs/architecture.md shows the rooms)."""

# Modules that moved into the rooms in 0.5.0 (issue 32): `from experiments import train` names
# the new place instead of failing with a bare "cannot import name".
_MOVED = {
  **{
    m: f"experiments.run.{m}"
    for m in (
      "build",
      "train",
      "predict",
      "workdir",
      "events",
      "distributed",
      "disk",
      "loading",
      "observations",
      "validate",
    )
  },
  "studies": "experiments.studies.definitions",
  "study_runs": "experiments.studies.runs",
  "report": "experiments.studies.report",
  "archive": "experiments.studies.archive",
  "plots": "experiments.studies.plots (reconstructions: experiments.run.figures)",
  "benchmarks": "experiments.speed",
}


def __getattr__(name: str):
  if name in _MOVED:
    # An ImportError (not an AttributeError) reaches the user of `from experiments import name`.
    raise ImportError(
      f"experiments.{name} moved to {_MOVED[name]} in 0.5.0 (see CHANGELOG.md, "
      "0.5.0, and docs/architecture.md)."
    )
  raise AttributeError(f"module 'experiments' has no attribute {name!r}")
