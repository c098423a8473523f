"""Ablation-study figures: learning trajectories and meta-test reconstructions per arm.

* `trajectory.png` (`plot_trajectories`): the error after each inner step 0..K per arm, with the
  spread over seeds, from the runs' `results.json` (see `experiments/report.py`);
* `support.png` (`plot_support_curves`): the error after K steps against the fixed support
  ratio (`eval.fixed_ratios`) per arm, log-log, with the spread over seeds;
* `reconstructions.png` (`plot_reconstructions`): a few meta-test signals, their supports and
  every arm's prediction after K steps (`experiments.predict.predict_run`).

In the first two, an arm run with fewer seeds than the reference (`--other_seeds`) is drawn
beside the reference's mean over its seeds, as a dashed line (`panel_lines`).

Matplotlib only (no JAX computation); every figure is a bare `Figure`, so it draws whatever
pyplot's backend.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from experiments.report import (
  LABELS,
  arm_info,
  report_modalities,
  sparser_arms,
  support_curve,
  trajectory,
)
from experiments.studies import Study


def _figure(width: float, height: float):
  # A bare Figure draws with the Agg canvas, whatever pyplot's backend (inline in notebooks).
  from matplotlib.figure import Figure
  return Figure(figsize=(width, height), layout="constrained")


def _colors(arms: Sequence[str]) -> dict[str, Any]:
  from matplotlib import colormaps
  cmap = colormaps["tab10"]
  return {a: cmap(i % 10) for i, a in enumerate(arms)}


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


def _legend(fig) -> None:
  """One figure legend of every panel's labelled artists (each label once), right of the panels
  and centred on them (clear of the title); none when no panel has a label."""
  handles: dict[str, Any] = {}
  for ax in fig.axes:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  if handles:
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=9)


def panel_lines(study: Study, results: Mapping[str, Mapping[int, Mapping]], measure: str,
                mod: str, curve) -> list[dict[str, Any]]:
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
    lines.append({"arm": arm, "label": arm, "x": x, "mean": np.nanmean(values, 0),
                  "lo": np.nanmin(values, 0) if values.shape[0] > 1 else None,
                  "hi": np.nanmax(values, 0) if values.shape[0] > 1 else None, "paired": False})
    if arm in sparse and sparse[arm] not in subsets:
      subsets.append(sparse[arm])
  ref = next((l for l in lines if l["arm"] == study.reference), None)
  for seeds in subsets if ref is not None else ():
    by_seed = {s: results[study.reference][s] for s in seeds}
    x, values = curve(by_seed, measure, mod, info[study.reference]["K"])
    keep = np.isin(x, ref["x"])
    shown = ", ".join(map(str, seeds))
    lines.append({"arm": study.reference, "label": f"{study.reference} (seed {shown})",
                  "x": x[keep], "mean": np.nanmean(values[:, keep], 0), "lo": None, "hi": None,
                  "paired": True})
  return lines


def _arm_panels(study: Study, results: Mapping[str, Mapping[int, Mapping]], path: str,
                measures: Sequence[str], curve, xlabel: str, x_axis, title: str) -> str:
  """One panel per (measure, modality) with a line per arm (the mean over seeds) and the min-max
  over seeds as a band; MSE on a log axis. `curve(results_by_seed, measure, modality, K)` gives
  `(x [n], values [num_seeds, n])` (NaN: missing); `x_axis(ax)` formats the x axis. See
  `panel_lines` for what each panel draws."""
  arms = [a for a in study.arms if a in results]
  mods = report_modalities(arm_info(results), study.reference)
  colors = _colors(arms)
  fig = _figure(3.2 * len(mods) + 1.5, 2.6 * len(measures))
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
        ax.plot(line["x"], line["mean"], marker="o", ms=3, color=color,
                lw=2.2 if line["arm"] == study.reference else 1.3, label=line["label"])
        if line["lo"] is not None:
          ax.fill_between(line["x"], line["lo"], line["hi"], color=color, alpha=0.18, lw=0)
      x_axis(ax)
      if measure.endswith("_mse") and ax.lines:
        _log_axis(ax)
      ax.set_title(f"{mod}", fontsize=10)
      ax.set_xlabel(xlabel)
      if c == 0:
        ax.set_ylabel(LABELS[measure])
  _legend(fig)
  n = max(len(r) for r in results.values())
  fig.suptitle(f"{study.name}: {title}\n(line: mean over {n} seed(s); band: min–max"
               + ("; dashed: the reference on a sparser arm's seeds" if paired else "") + ")",
               fontsize=10)
  fig.savefig(path, dpi=110)
  return path


def plot_trajectories(study: Study, results: Mapping[str, Mapping[int, Mapping]], path: str,
                      measures: Sequence[str] | None = None) -> str:
  """Error after each inner step 0..K per arm: one panel per (measure, modality), the mean over
  seeds as a line and the min-max over seeds as a band; MSE on a log axis. Writes `path`."""
  def curve(by_seed, measure, mod, k):
    traj = trajectory(by_seed, measure, mod, k)
    return np.arange(traj.shape[1]), traj
  integer_ticks = lambda ax: ax.xaxis.get_major_locator().set_params(integer=True)
  return _arm_panels(study, results, path, list(measures or study.measures), curve,
                     "inner step", integer_ticks, "error vs inner step")


def plot_support_curves(study: Study, results: Mapping[str, Mapping[int, Mapping]], path: str,
                        measures: Sequence[str] | None = None) -> str | None:
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

  return _arm_panels(study, results, path, measures,
                     lambda by_seed, measure, mod, _: support_curve(by_seed, measure, mod)[:2],
                     "support ratio", ratio_axis, "error after K steps vs support ratio")


def _normalise(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
  return np.clip((values - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def _to_image(values: np.ndarray, grid_shape: Sequence[int]) -> np.ndarray:
  """`[N, d_out]` values in [0, 1] -> an image: RGB for 3 channels, else the first channel."""
  img = values.reshape(*grid_shape, -1)
  return img if img.shape[-1] == 3 else img[..., 0]


def plot_reconstructions(predictions: Mapping[str, Mapping[str, Mapping]], path: str,
                         reference: str | None = None, title: str = "") -> str:
  """Ground truth, supports and every arm's prediction after K steps for a few signals.

  Args:
    predictions: `{arm: predict_run(...)}`; ground truth and supports are taken from the first
      arm that has the modality (the arms share them; see `check_paired`).
    path: the .png to write.
    reference: the arm drawn thickest (1-D) / first (2-D).
    title: the figure title.

  1-D modalities are drawn as lines (ground truth black, supports as dots, one line per arm);
  2-D ones as images (a row per signal: ground truth, supports, then each arm).
  """
  arms = list(predictions)
  if reference in arms:
    arms = [reference] + [a for a in arms if a != reference]
  colors = _colors(list(predictions))
  mods: dict[str, Mapping] = {}
  for arm in arms:
    for m, d in predictions[arm].items():
      mods.setdefault(m, d)
  if not mods:
    raise ValueError("No predictions to plot.")
  n = max(d["y"].shape[0] for d in mods.values())
  one_d = all(d["spec"].d_in == 1 for d in mods.values())
  if one_d:  # rows = signals, columns = modalities
    fig = _figure(3.4 * len(mods) + 1.5, 2.3 * n)
    axes = fig.subplots(n, len(mods), squeeze=False)
    panels = {(m, i): axes[i][c] for c, m in enumerate(mods) for i in range(n)}
  else:  # a row per (modality, signal): 1-D rows span the width, 2-D rows are image strips
    ncols = 2 + len(arms)
    fig = _figure(2.2 * ncols, 2.2 * n * len(mods))
    grid = fig.add_gridspec(n * len(mods), ncols)
    panels = {}
    for j, (m, d) in enumerate(mods.items()):
      for i in range(n):
        r = j * n + i
        if d["spec"].d_in == 1:
          panels[(m, i)] = fig.add_subplot(grid[r, :])
        else:
          panels[(m, i)] = [fig.add_subplot(grid[r, c]) for c in range(ncols)]
  for m, d in mods.items():
    spec = d["spec"]
    coords = spec.coordinates()
    for i in range(d["y"].shape[0]):
      y = d["y"][i]
      support = d["idx"][i, :d["count"][i]]
      target = panels[(m, i)]
      if spec.d_in == 1:
        ax = target
        x = coords[:, 0]
        ax.plot(x, y[:, 0], color="black", lw=1.0, label="ground truth")
        ax.scatter(x[support], y[support, 0], color="black", s=14, zorder=5, label="support")
        for arm in arms:
          if m in predictions[arm]:
            ax.plot(x, predictions[arm][m]["prediction"][i][:, 0], color=colors[arm],
                    lw=2.0 if arm == reference else 1.2, label=arm)
        ax.set_title(f"{m}, signal {i}", fontsize=9)
        ax.tick_params(labelsize=7)
      else:
        lo, hi = float(y.min()), float(y.max())  # every panel on the ground truth's range
        gt = _normalise(y, lo, hi)
        shown = np.full_like(gt, 0.5)  # points off the support in grey
        shown[support] = gt[support]
        imgs = [("ground truth", _to_image(gt, spec.grid_shape)),
                (f"support ({len(support)})", _to_image(shown, spec.grid_shape))]
        imgs += [(arm, _to_image(_normalise(predictions[arm][m]["prediction"][i], lo, hi),
                                 spec.grid_shape))
                 if m in predictions[arm] else (arm, None) for arm in arms]
        for ax, (label, img) in zip(target, imgs):
          ax.set_axis_off()
          if img is not None:
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(f"{m} {i}: {label}", fontsize=8)
  _legend(fig)
  fig.suptitle(title or "meta-test reconstructions after K inner steps", fontsize=11)
  fig.savefig(path, dpi=110)
  return path
