"""Ablation-study figures: learning trajectories and meta-test reconstructions per arm.

* `trajectory.png` (`plot_trajectories`): the error after each inner step 0..K per arm, with the
  spread over seeds, from the runs' `results.json` (see `experiments/studies/report.py`);
* `support.png` (`plot_support_curves`): the error after K steps against the fixed support
  ratio (`eval.fixed_ratios`) per arm, log-log, with the spread over seeds;
* `reconstructions.png` (`plot_reconstructions`): a few meta-test signals, their supports and
  every arm's prediction after K steps (`experiments.run.predict.predict_run`).

In the first two, an arm run with fewer seeds than the reference (`--other_seeds`) is drawn
beside the reference's mean over its seeds, as a dashed line (`panel_lines`).

Matplotlib only (no JAX computation); every figure is a bare `Figure`, so it draws whatever
pyplot's backend.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from experiments.run.figures import arm_colors, figure_legend, new_figure
from experiments.studies.definitions import Study
from experiments.studies.report import (
  LABELS,
  arm_info,
  report_modalities,
  sparser_arms,
  support_curve,
  trajectory,
)


def _log_axis(ax) -> None:
  """A log y axis with plain numbers. Minor ticks are labelled where the axis is short: all of them
  when it spans under 3x, only 2, 3 and 5 times a power of ten under 30x (more would overlap)."""
  from matplotlib import ticker

  ax.set_yscale("log")
  lo, hi = ax.get_ylim()
  span = hi / max(lo, 1e-30)
  labelled = None if span < 3 else (2, 3, 5) if span < 30 else ()  # None: every minor tick

  def minor(v, _):
    mantissa = round(v / 10 ** math.floor(math.log10(v) + 1e-9))
    return f"{v:.3g}" if labelled is None or mantissa in labelled else ""

  ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
  ax.yaxis.set_minor_formatter(ticker.FuncFormatter(minor))


def panel_lines(
  study: Study, results: Mapping[str, Mapping[int, Mapping]], measure: str, mod: str, curve
) -> list[dict[str, Any]]:
  """What one (measure, modality) panel draws: a dict per line with `arm`, `label`, `x`, `mean`
  (over seeds), `lo` / `hi` (min / max over seeds; None for one seed) and `paired` (True for a
  dashed reference line).

  An arm run with fewer seeds than the reference (`--other_seeds`) is compared with the
  reference on its own seeds, as the report's Δ is (`report.paired_means`): the panel adds the
  reference's mean over those seeds as a dashed line, labelled with them.
  """
  arms = [a for a in study.arms if a in results]
  info = arm_info(results)
  sparse = sparser_arms(results, study.reference)
  lines, subsets = [], []
  for arm in arms:
    if mod != "avg" and mod not in info[arm]["modalities"]:
      continue
    x, values = curve(results[arm], measure, mod, info[arm]["K"])
    have = ~np.all(np.isnan(values), axis=0) if values.size else np.zeros(0, bool)
    if not have.any():
      continue
    x, values = x[have], values[:, have]
    lines.append(
      {
        "arm": arm,
        "label": arm,
        "x": x,
        "mean": np.nanmean(values, 0),
        "lo": np.nanmin(values, 0) if values.shape[0] > 1 else None,
        "hi": np.nanmax(values, 0) if values.shape[0] > 1 else None,
        "paired": False,
      }
    )
    if arm in sparse and sparse[arm] not in subsets:
      subsets.append(sparse[arm])
  ref = next((l for l in lines if l["arm"] == study.reference), None)
  for seeds in subsets if ref is not None else ():
    by_seed = {s: results[study.reference][s] for s in seeds}
    x, values = curve(by_seed, measure, mod, info[study.reference]["K"])
    keep = np.isin(x, ref["x"])
    shown = ", ".join(map(str, seeds))
    lines.append(
      {
        "arm": study.reference,
        "label": f"{study.reference} (seed {shown})",
        "x": x[keep],
        "mean": np.nanmean(values[:, keep], 0),
        "lo": None,
        "hi": None,
        "paired": True,
      }
    )
  return lines


def _arm_panels(
  study: Study,
  results: Mapping[str, Mapping[int, Mapping]],
  path: str,
  measures: Sequence[str],
  curve,
  xlabel: str,
  x_axis,
  title: str,
) -> str:
  """One panel per (measure, modality) with a line per arm (the mean over seeds) and the min-max
  over seeds as a band; MSE on a log axis. `curve(results_by_seed, measure, modality, K)` gives
  `(x [n], values [num_seeds, n])` (NaN: missing); `x_axis(ax)` formats the x axis. See
  `panel_lines` for what each panel draws."""
  arms = [a for a in study.arms if a in results]
  mods = report_modalities(arm_info(results), study.reference)
  colors = arm_colors(arms)
  fig = new_figure(3.2 * len(mods) + 1.5, 2.6 * len(measures))
  axes = fig.subplots(len(measures), len(mods), squeeze=False)
  paired = False
  for r, measure in enumerate(measures):
    for c, mod in enumerate(mods):
      ax = axes[r][c]
      for line in panel_lines(study, results, measure, mod, curve):
        color = colors[line["arm"]]
        if line["paired"]:
          paired = True
          ax.plot(line["x"], line["mean"], ls="--", lw=1.1, color=color, label=line["label"])
          continue
        ax.plot(
          line["x"],
          line["mean"],
          marker="o",
          ms=3,
          color=color,
          lw=2.2 if line["arm"] == study.reference else 1.3,
          label=line["label"],
        )
        if line["lo"] is not None:
          ax.fill_between(line["x"], line["lo"], line["hi"], color=color, alpha=0.18, lw=0)
      x_axis(ax)
      if measure.endswith("_mse") and ax.lines:
        _log_axis(ax)
      ax.set_title(f"{mod}", fontsize=10)
      ax.set_xlabel(xlabel)
      if c == 0:
        ax.set_ylabel(LABELS[measure])
  figure_legend(fig)
  n = max(len(r) for r in results.values())
  fig.suptitle(
    f"{study.name}: {title}\n(line: mean over {n} seed(s); band: min–max"
    + ("; dashed: the reference on a sparser arm's seeds" if paired else "")
    + ")",
    fontsize=10,
  )
  fig.savefig(path, dpi=110)
  return path


def plot_trajectories(
  study: Study,
  results: Mapping[str, Mapping[int, Mapping]],
  path: str,
  measures: Sequence[str] | None = None,
) -> str:
  """Error after each inner step 0..K per arm: one panel per (measure, modality), the mean over
  seeds as a line and the min-max over seeds as a band; MSE on a log axis. Writes `path`."""

  def curve(by_seed, measure, mod, k):
    traj = trajectory(by_seed, measure, mod, k)
    return np.arange(traj.shape[1]), traj

  integer_ticks = lambda ax: ax.xaxis.get_major_locator().set_params(integer=True)
  return _arm_panels(
    study,
    results,
    path,
    list(measures or study.measures),
    curve,
    "inner step",
    integer_ticks,
    "error vs inner step",
  )


def plot_support_curves(
  study: Study,
  results: Mapping[str, Mapping[int, Mapping]],
  path: str,
  measures: Sequence[str] | None = None,
) -> str | None:
  """Error after K steps against the fixed support ratio (log x): one panel per (measure,
  modality), the mean over seeds as a line and the min-max over seeds as a band. Arms (and runs)
  without fixed-ratio keys are left out. Writes `path`; None (nothing written) when no run has
  such keys."""
  measures = list(measures or study.measures)
  mods = report_modalities(arm_info(results), study.reference)
  if not any(support_curve(results[a], measures[0], m)[2] for a in results for m in mods):
    return None

  def ratio_axis(ax):
    from matplotlib import ticker

    ax.set_xscale("log")
    xs = sorted({float(v) for line in ax.lines for v in line.get_xdata()})
    if xs:  # ticks at the ratios evaluated, as plain numbers
      ax.set_xticks(xs, [f"{v:.2g}" for v in xs], fontsize=7, rotation=45 if len(xs) > 4 else 0)
      ax.xaxis.set_minor_formatter(ticker.NullFormatter())

  return _arm_panels(
    study,
    results,
    path,
    measures,
    lambda by_seed, measure, mod, _: support_curve(by_seed, measure, mod)[:2],
    "support ratio",
    ratio_axis,
    "error after K steps vs support ratio",
  )
