"""The same study at several training budgets: does an arm's gain over another grow with it?

Issue 35's question: the modality-replacement study (`multimodal` against `rgb_alone`) archived
once per budget (`python -m experiments.ablate ... --steps=S --archive=DIR_S`). For every budget,
fixed support ratio and seed, the relative gain of the reference arm over the other arm,

  gain = 1 - error(reference) / error(arm)      (0.05: the reference's error is 5% lower),

paired by seed (both arms of a seed share the meta-test supports); then its mean and spread over
the seeds. `python -m experiments.budget` is the command line: a table (`gain.md`, `gain.csv`)
and a figure (`gain.png`: the gain at the sparsest ratios against the budget, log x).

Files and numbers only (no JAX computation).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Mapping, Sequence

import numpy as np

from experiments import atomic
from experiments.run import figures
from experiments.run import workdir as workdir_lib
from experiments.studies import report


@dataclasses.dataclass(frozen=True)
class Gains:
  """Per-seed gains of `reference` over `arm` at every budget and fixed ratio.

  Attributes:
    reference, arm, modality, measure: what was compared.
    budgets: the meta-steps of each archive, increasing.
    ratios: the fixed support ratios (actual count / N, as `report.support_curve` gives them).
    labels: their results keys' suffixes (`ratio0.002`, ...).
    values: `{budget: [num_seeds, len(ratios)]}` gains (NaN where a seed lacks a ratio).
    seeds: `{budget: [seed, ...]}` the seeds both arms have at that budget.
    archives: `{budget: archive directory}`.
  """

  reference: str
  arm: str
  modality: str
  measure: str
  budgets: tuple[int, ...]
  ratios: tuple[float, ...]
  labels: tuple[str, ...]
  values: dict[int, np.ndarray]
  seeds: dict[int, list[int]]
  archives: dict[int, str]

  def mean_std(self, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the standard deviation (ddof 1; 0 for one seed) over seeds, per ratio."""
    v = self.values[budget]
    std = np.nanstd(v, axis=0, ddof=1) if v.shape[0] > 1 else np.zeros(v.shape[1])
    return np.nanmean(v, axis=0), std


def _read_arm(archive: str, arm: str) -> dict[int, dict]:
  """`{seed: results.json}` of `archive/{arm}/seed{s}`."""
  folder = os.path.join(archive, arm)
  if not os.path.isdir(folder):
    have = sorted(d for d in os.listdir(archive) if os.path.isdir(os.path.join(archive, d)))
    raise ValueError(
      f"No arm {arm!r} in {archive} (its arms: {', '.join(have) or 'none'}); give the study's "
      "arm names, e.g. --reference=multimodal --arm=rgb_alone."
    )
  out = {}
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name, "results.json")
    if name.startswith("seed") and name[4:].isdigit() and os.path.isfile(path):
      out[int(name[4:])] = workdir_lib.read_json(
        path, f"{arm}/{name}'s results", "archive the run again, or delete that folder."
      )
  if not out:
    raise ValueError(f"{folder} holds no finished run (no seed*/results.json).")
  return out


def _budget(runs: Sequence[Mapping], where: str) -> int:
  """The meta-steps every run was trained for (results.json's `step`)."""
  steps = {int(r["step"]) for r in runs}
  if len(steps) != 1:
    raise ValueError(f"The runs in {where} were trained for different budgets: {sorted(steps)}.")
  return steps.pop()


def gains(
  archives: Sequence[str],
  reference: str = "multimodal",
  arm: str = "rgb_alone",
  modality: str = "rgb",
  measure: str = "generalization_mse",
) -> Gains:
  """Reads every archive (one study each, the budget from its runs' configs) into `Gains`.

  Raises:
    ValueError: an archive without one of the arms, two archives of one budget, arms of one
      archive trained for different budgets, runs without fixed-ratio keys, or archives whose
      fixed ratios differ.
  """
  if not archives:
    raise ValueError("Give at least one archive (a study's --archive directory).")
  values, seeds, by_budget, ratios, labels = {}, {}, {}, None, None
  for archive in archives:
    if not os.path.isdir(archive):
      raise ValueError(f"Archive {archive!r} is not a directory.")
    ref, other = _read_arm(archive, reference), _read_arm(archive, arm)
    budget = _budget([*ref.values(), *other.values()], archive)
    if budget in by_budget:
      raise ValueError(
        f"{archive} and {by_budget[budget]} are both of {budget} meta-steps; give one archive per "
        "budget."
      )
    both = sorted(set(ref) & set(other))
    if not both:
      raise ValueError(f"No seed of {archive} has both {reference!r} and {arm!r}.")
    x, ref_v, lab = report.support_curve({s: ref[s] for s in both}, measure, modality)
    _, arm_v, lab_arm = report.support_curve({s: other[s] for s in both}, measure, modality)
    if not lab or lab != lab_arm:
      raise ValueError(
        f"The runs in {archive} have no common fixed-ratio keys for {measure}/{modality} "
        "(eval.fixed_ratios); rerun the study with them."
      )
    if labels is not None and tuple(lab) != labels:
      raise ValueError(
        f"{archive} was evaluated at other fixed ratios ({', '.join(lab)}) than the other "
        f"archives ({', '.join(labels)})."
      )
    ratios, labels = tuple(float(v) for v in x), tuple(lab)
    with np.errstate(invalid="ignore", divide="ignore"):
      values[budget] = 1.0 - ref_v / arm_v
    seeds[budget], by_budget[budget] = both, archive
  budgets = tuple(sorted(values))
  return Gains(reference, arm, modality, measure, budgets, ratios, labels, values, seeds, by_budget)


def format_markdown(g: Gains, num_ratios: int | None = None) -> str:
  """A table: one row per fixed ratio, one column per budget, `mean ± std (n seeds)` in %."""
  cols = [f"{b:,} steps" for b in g.budgets]
  lines = [
    f"Relative gain of `{g.reference}` over `{g.arm}` ({report.LABELS.get(g.measure, g.measure)}"
    f" of {g.modality}, 1 - {g.reference} / {g.arm}; positive: {g.reference} better), mean ± "
    "std over seeds, paired by seed.",
    "",
    "| support ratio | " + " | ".join(cols) + " |",
    "|---|" + "---|" * len(cols),
  ]
  stats = {b: g.mean_std(b) for b in g.budgets}
  for j, r in enumerate(g.ratios[:num_ratios]):
    cells = []
    for b in g.budgets:
      m, s = stats[b][0][j], stats[b][1][j]
      n = int(np.sum(np.isfinite(g.values[b][:, j])))
      cells.append("–" if not math.isfinite(m) else f"{100 * m:+.1f}% ± {100 * s:.1f} ({n})")
    lines.append(f"| {r:.3g} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def csv_rows(g: Gains) -> list[dict]:
  """One row per budget, ratio and seed."""
  return [
    {"budget": b, "ratio": r, "label": lab, "seed": s, "gain": float(g.values[b][i, j])}
    for b in g.budgets
    for i, s in enumerate(g.seeds[b])
    for j, (r, lab) in enumerate(zip(g.ratios, g.labels))
  ]


def plot_gain_vs_budget(g: Gains, path: str, num_ratios: int = 3) -> str:
  """The gain at the `num_ratios` sparsest ratios against the budget (log x): one line per
  ratio, the mean over seeds with a band of ± one standard deviation and each seed's point."""
  fig = figures.new_figure(6.0, 3.8)
  ax = fig.subplots()
  colors = figures.arm_colors([f"{r:.3g}" for r in g.ratios[:num_ratios]])
  x = np.asarray(g.budgets, float)
  means, stds = (np.array(v) for v in zip(*(g.mean_std(b) for b in g.budgets)))  # [budget, ratio]
  for j, r in enumerate(g.ratios[:num_ratios]):
    c = colors[f"{r:.3g}"]
    mean, std = means[:, j], stds[:, j]
    ax.plot(x, 100 * mean, "o-", color=c, label=f"ratio {r:.3g}")
    ax.fill_between(x, 100 * (mean - std), 100 * (mean + std), color=c, alpha=0.15, lw=0)
    for b in g.budgets:
      ax.scatter(np.full(g.values[b].shape[0], b), 100 * g.values[b][:, j], color=c, s=10)
  ax.axhline(0.0, color="black", lw=0.8)
  ax.set_xscale("log")
  ax.set_xticks(x, [f"{int(b):,}" for b in g.budgets])
  ax.minorticks_off()
  ax.set_xlabel("meta-training steps (log)")
  ax.set_ylabel(f"gain of {g.reference} over {g.arm} (%)")
  ax.set_title(
    f"{g.modality}: {report.LABELS.get(g.measure, g.measure)} gain at the sparsest supports",
    fontsize=10,
  )
  figures.figure_legend(fig)
  fig.savefig(path, dpi=110)
  return path


def write(g: Gains, out_dir: str, num_ratios: int = 3) -> dict[str, str]:
  """gain.md (every ratio), gain.csv and gain.png (the sparsest `num_ratios`) in `out_dir`."""
  os.makedirs(out_dir, exist_ok=True)
  files = {k: os.path.join(out_dir, f"gain.{k}") for k in ("md", "csv", "png", "json")}
  atomic.write_text(files["md"], format_markdown(g))
  report.write_csv(files["csv"], csv_rows(g), ("budget", "ratio", "label", "seed", "gain"))
  plot_gain_vs_budget(g, files["png"], num_ratios)
  atomic.write_text(
    files["json"],
    json.dumps(
      {
        "reference": g.reference,
        "arm": g.arm,
        "modality": g.modality,
        "measure": g.measure,
        "archives": {str(b): a for b, a in g.archives.items()},
      },
      indent=1,
    ),
  )
  return files
