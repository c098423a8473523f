"""Ablation-study reports: the finished runs' results, their statistics and tables.

Reads the `results.json` of every run of a study (`W/{arm}/seed{s}`, see `experiments/ablate.py`)
and writes

* `results.csv`: one row per arm, seed and metric key of the results contract;
* `results.md`: per modality and arm, the measures after K inner steps as mean ± std over seeds
  and the change against the reference arm, after K steps and per support-ratio bin; and the
  error at each fixed support ratio (`eval.fixed_ratios`, keys `.../ratio{r}`), naming the runs
  that lack those keys (archived before fixed-ratio evaluation existed).

Files and numbers only (no JAX computation): cheap to test and to call from a notebook. The
figures are `experiments/studies/plots.py`.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
from typing import Mapping, Sequence

import numpy as np

from experiments.run import workdir as workdir_lib
from experiments.studies.definitions import Study

STEPS_SUFFIX = re.compile(r"^step(\d+)$")
BIN_SUFFIX = re.compile(r"^R([0-9.eE+-]+)-([0-9.eE+-]+)$")
RATIO_SUFFIX = re.compile(r"^ratio([0-9.eE+-]+)$")
CSV_COLUMNS = ("study", "arm", "seed", "measure", "modality", "at", "key", "value")
LABELS = {
  "generalization_mse": "generalization MSE",
  "memorization_mse": "memorization MSE",
  "full_mse": "full MSE",
  "generalization_psnr": "generalization PSNR (dB)",
  "memorization_psnr": "memorization PSNR (dB)",
}


def load_results(workdir: str, study: Study, seeds: Sequence[int]) -> dict[str, dict[int, dict]]:
  """`{arm: {seed: results.json contents}}` for the runs that have results."""
  out: dict[str, dict[int, dict]] = {}
  for arm in study.arms:
    for seed in seeds:
      path = os.path.join(study.run_dir(workdir, arm, seed), "results.json")
      if os.path.exists(path):
        out.setdefault(arm, {})[seed] = workdir_lib.read_json(
          path,
          f"arm {arm!r} seed {seed}'s results",
          "delete it to evaluate that run again from its checkpoints (or its folder to "
          "retrain it).",
        )
  return out


def split_key(key: str) -> tuple[str, str, str]:
  """`"generalization_mse/sine/step3"` -> `("generalization_mse", "sine", "step3")`."""
  parts = key.split("/")
  if len(parts) != 3:
    raise ValueError(f"Metric key {key!r} is not measure/modality/suffix.")
  return parts[0], parts[1], parts[2]


def csv_rows(study_name: str, results: Mapping[str, Mapping[int, Mapping]]) -> list[dict]:
  """One row per arm, seed and metric key (columns `CSV_COLUMNS`)."""
  rows = []
  for arm, by_seed in results.items():
    for seed in sorted(by_seed):
      for key, value in sorted(by_seed[seed]["metrics"].items()):
        measure, modality, at = split_key(key)
        rows.append(
          dict(
            study=study_name,
            arm=arm,
            seed=seed,
            measure=measure,
            modality=modality,
            at=at,
            key=key,
            value=value,
          )
        )
  return rows


def write_csv(path: str, rows: Sequence[Mapping], columns: Sequence[str] = CSV_COLUMNS) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


@dataclasses.dataclass(frozen=True)
class Stat:
  """Mean and sample standard deviation (ddof=1; 0 for a single seed) over `n` seeds."""

  mean: float
  std: float
  n: int


def stat(values: Sequence[float]) -> Stat:
  v = np.asarray(values, np.float64)
  return Stat(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))


def aggregate(results: Mapping[str, Mapping[int, Mapping]]) -> dict[str, dict[str, Stat]]:
  """`{arm: {metric key: Stat over the seeds that have the key}}`."""
  out = {}
  for arm, by_seed in results.items():
    values: dict[str, list[float]] = {}
    for seed in sorted(by_seed):
      for key, v in by_seed[seed]["metrics"].items():
        values.setdefault(key, []).append(v)
    out[arm] = {k: stat(v) for k, v in values.items()}
  return out


def paired_means(
  arm: Mapping[int, Mapping], ref: Mapping[int, Mapping], key: str
) -> tuple[float, float] | None:
  """The means of `key` for an arm and its reference over the seeds both have (None if none).

  An arm run with fewer seeds than the reference (`--other_seeds`) is compared with the
  reference on its own seeds: against the reference's mean over all its seeds, one unlucky
  reference seed would shift every such comparison.
  """
  seeds = [
    s for s in sorted(arm) if key in arm[s]["metrics"] and s in ref and key in ref[s]["metrics"]
  ]
  if not seeds:
    return None
  return (
    float(np.mean([arm[s]["metrics"][key] for s in seeds])),
    float(np.mean([ref[s]["metrics"][key] for s in seeds])),
  )


def sparser_arms(
  results: Mapping[str, Mapping[int, Mapping]], reference: str
) -> dict[str, tuple[int, ...]]:
  """The arms compared with the reference on only some of its seeds (`--other_seeds`):
  `{arm: the seeds both have}`, for every arm whose seeds shared with the reference are a
  strict, non-empty subset of the reference's (the seeds `paired_means` averages over)."""
  ref_seeds = set(results.get(reference, {}))
  out = {}
  for arm, by_seed in results.items():
    shared = tuple(sorted(set(by_seed) & ref_seeds))
    if arm != reference and shared and set(shared) < ref_seeds:
      out[arm] = shared
  return out


def relative_change(value: float, reference: float, measure: str) -> float:
  """The change of `value` against `reference`: `(value - ref) / ref` for errors (a fraction),
  `value - ref` in dB for PSNRs."""
  if measure.endswith("_psnr"):
    return value - reference
  if reference == 0:
    return math.inf if value != reference else 0.0
  return (value - reference) / reference


def _fmt(v: float, measure: str, digits: int = 4) -> str:
  if not math.isfinite(v):
    return "–"
  return f"{v:.2f}" if measure.endswith("_psnr") else f"{v:.{digits}g}"


def format_stat(s: Stat | None, measure: str) -> str:
  if s is None:
    return "–"
  spread = _fmt(s.std, measure, 2) if s.n > 1 else "–"
  return f"{_fmt(s.mean, measure)} ± {spread}"


def format_change(c: float | None, measure: str) -> str:
  if c is None or not math.isfinite(c):
    return "–"
  return f"{c:+.2f} dB" if measure.endswith("_psnr") else f"{100 * c:+.1f}%"


def arm_info(results: Mapping[str, Mapping[int, Mapping]]) -> dict[str, dict]:
  """Per arm: its modalities (config order), K, seeds and meta-steps, from the results files."""
  info = {}
  for arm, by_seed in results.items():
    first = by_seed[min(by_seed)]
    mods = [m for m in first["config"].get("modalities", "").split("+") if m]
    if not mods:
      mods = sorted({split_key(k)[1] for k in first["metrics"]} - {"avg"})
    info[arm] = dict(
      modalities=mods,
      K=int(first["config"]["inner_steps"]),
      seeds=sorted(by_seed),
      steps=sorted({r["step"] for r in by_seed.values()}),
    )
  return info


def report_modalities(info: Mapping[str, Mapping], reference: str) -> list[str]:
  """The modalities to report: every arm's (reference order first), plus `avg` when all arms have
  the same modalities (otherwise an average over different sets is not comparable) and there is
  more than one (the average of one modality would repeat it)."""
  order = [reference] + [a for a in info if a != reference]
  mods: list[str] = []
  for arm in order:
    if arm in info:
      mods += [m for m in info[arm]["modalities"] if m not in mods]
  sets = {frozenset(i["modalities"]) for i in info.values()}
  return mods + (["avg"] if len(sets) == 1 and len(mods) > 1 else [])


def _bins(stats: Mapping[str, Mapping[str, Stat]], modality: str) -> list[str]:
  found = set()
  for by_key in stats.values():
    for key in by_key:
      _, mod, at = split_key(key)
      if mod == modality and BIN_SUFFIX.match(at):
        found.add(at)
  return sorted(found, key=lambda b: tuple(float(x) for x in BIN_SUFFIX.match(b).groups()))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  return lines + ["| " + " | ".join(r) + " |" for r in rows]


def format_markdown(
  study: Study,
  results: Mapping[str, Mapping[int, Mapping]],
  notes: Sequence[str] = (),
  bins: bool = True,
) -> str:
  """The study report: per modality, measures after K steps (mean ± std over seeds) and their
  change against the reference arm; the same per support-ratio bin.

  Args:
    study: the study (arm order, reference, measures).
    results: `{arm: {seed: results.json}}` (see `load_results`).
    notes: extra bullet lines for the header (config, budget, pairing check).
    bins: also the tables per support-ratio bin.
  """
  arms = [a for a in study.arms if a in results]
  if study.reference not in results:
    raise ValueError(
      f"No results for the reference arm {study.reference!r} of study {study.name!r}."
    )
  stats = aggregate(results)
  info = arm_info(results)
  ref = study.reference
  lines = [f"# Study: {study.name}", ""]
  if study.description:
    lines += [study.description, ""]
  seeds = sorted({s for a in arms for s in info[a]["seeds"]})
  steps = sorted({s for a in arms for s in info[a]["steps"]})
  lines += [
    "- arms: "
    + "; ".join(
      f"`{a}`"
      + (" (reference)" if a == ref else "")
      + " = "
      + (", ".join(f"{k}={v}" for k, v in study.arms[a].items()) or "base config")
      for a in arms
    ),
    f"- seeds: {', '.join(map(str, seeds))}; meta-steps per run: {', '.join(map(str, steps))}",
    f"- values: mean ± std (ddof=1) over seeds; Δ: change of the mean against `{ref}` "
    "over the seeds both have ((arm − ref) / ref for MSE, difference in dB for PSNR)",
  ]
  fewer = [a for a in arms if a in sparser_arms(results, ref)]
  if fewer:
    lines.append(
      f"- paired by seed: {', '.join(f'`{a}`' for a in fewer)} "
      f"{'has' if len(fewer) == 1 else 'have'} fewer seeds than `{ref}`, so "
      f"{'its' if len(fewer) == 1 else 'their'} Δ is against `{ref}`'s mean over "
      f"the same seeds, not the `{ref}` row's mean"
    )
  lines += [f"- {n}" for n in notes]
  mods = report_modalities(info, ref)

  def change(arm, key, measure):
    if arm == ref:
      return None
    means = paired_means(results[arm], results[ref], key)
    return None if means is None else relative_change(*means, measure)

  def cells(arm, mod, suffix):
    """Mean ± std and the change against the reference, for every measure of the study."""
    out = []
    for m in study.measures:
      key = f"{m}/{mod}/{suffix}"
      out += [
        format_stat(stats[arm].get(key), m),
        "—" if arm == ref else format_change(change(arm, key, m), m),
      ]
    return out

  measure_columns = [c for m in study.measures for c in (LABELS[m], "Δ")]
  lines += ["", "## After K inner steps", ""]
  counts = {a: rule_params(results[a]) for a in arms}
  show_counts = any(c is not None for c in counts.values())
  for mod in mods:
    header = ["arm", "seeds", "K"] + (["rule params"] if show_counts else []) + measure_columns
    rows = []
    for arm in arms:
      if mod != "avg" and mod not in info[arm]["modalities"]:
        continue
      k = info[arm]["K"]
      row = [f"**{arm}** (ref)" if arm == ref else arm, str(len(info[arm]["seeds"])), str(k)]
      if show_counts:
        row.append("–" if counts[arm] is None else f"{counts[arm]:,}")
      rows.append(row + cells(arm, mod, f"step{k}"))
    lines += [f"### {mod}", ""] + _table(header, rows) + [""]

  lines += _support_tables(study, results, arms, mods, info, cells, measure_columns)
  if not bins:
    return "\n".join(lines).rstrip() + "\n"
  lines += ["## Per support-ratio bin (after K steps)", ""]
  for mod in mods:
    mod_bins = _bins(stats, mod)
    if not mod_bins:
      continue
    header = ["ratio bin", "arm"] + measure_columns
    rows = []
    for b in mod_bins:
      for arm in arms:
        if mod != "avg" and mod not in info[arm]["modalities"]:
          continue
        row = [b[1:], f"**{arm}** (ref)" if arm == ref else arm]
        rows.append(row + cells(arm, mod, b))
    lines += [f"### {mod}", ""] + _table(header, rows) + [""]
  return "\n".join(lines).rstrip() + "\n"


def rule_params(results_by_seed: Mapping[int, Mapping]) -> int | None:
  """The meta-learned parameters of an arm's update rule (results.json's `num_params`; None for
  runs written before it was recorded)."""
  counts = {r["num_params"]["rule"] for r in results_by_seed.values() if "num_params" in r}
  return counts.pop() if len(counts) == 1 else None


def lacking_fixed_ratios(results: Mapping[str, Mapping[int, Mapping]]) -> list[str]:
  """`arm/seed{s}` of the runs without fixed-ratio keys (e.g. archived before they existed)."""
  return [
    f"{arm}/seed{seed}"
    for arm, by_seed in results.items()
    for seed in sorted(by_seed)
    if not any(RATIO_SUFFIX.match(k.rpartition("/")[2]) for k in by_seed[seed]["metrics"])
  ]


def support_curve(
  results_by_seed: Mapping[int, Mapping], measure: str, modality: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """One arm's error against the fixed support ratio: `(x [R], values [num_seeds, R], labels)`.

  `x` is the support's actual ratio (count / N, from results.json's `fixed_supports`: a ratio
  outside the modality's range was clipped to it; for "avg", where every modality has the same)
  or else the ratio asked for; ratios whose supports coincide after clipping are shown once.
  Values are NaN where a run lacks the key; empty arrays when no run has fixed-ratio keys.
  """
  seeds = sorted(results_by_seed)
  labels = sorted(
    {
      at
      for s in seeds
      for k in results_by_seed[s]["metrics"]
      for _, mod, at in [split_key(k)]
      if mod == modality and RATIO_SUFFIX.match(at)
    },
    key=lambda at: float(RATIO_SUFFIX.match(at).group(1)),
  )
  x, kept = [], []
  for at in labels:
    actual = float(RATIO_SUFFIX.match(at).group(1))
    for s in seeds:
      sizes = results_by_seed[s].get("fixed_supports", {})
      found = {
        float(v[at]["ratio"]) for m, v in sizes.items() if at in v and modality in (m, "avg")
      }
      if len(found) == 1:  # "avg": when every modality's support has the same ratio
        actual = found.pop()
        break
    if x and np.isclose(actual, x[-1]):
      continue
    x.append(actual)
    kept.append(at)
  values = np.full((len(seeds), len(kept)), np.nan)
  for i, s in enumerate(seeds):
    for j, at in enumerate(kept):
      values[i, j] = results_by_seed[s]["metrics"].get(f"{measure}/{modality}/{at}", np.nan)
  return np.asarray(x), values, kept


def _support_tables(study, results, arms, mods, info, cells, measure_columns) -> list[str]:
  """The "At fixed support ratios" section of `format_markdown` (none without such keys)."""
  if not any(support_curve(results[a], study.measures[0], m)[2] for a in arms for m in mods):
    return []
  lines = [
    "## At fixed support ratios (after K steps)",
    "",
    "Every meta-test signal adapted on a support of `floor(r N)` points (r clipped to the "
    "modality's range; nested across r, paired across arms).",
  ]
  lacking = lacking_fixed_ratios({a: results[a] for a in arms})
  if lacking:
    lines += ["", f"Runs without fixed-ratio results (not in these tables): {', '.join(lacking)}."]
  lines.append("")
  for mod in mods:
    rows = []
    for arm in arms:
      if mod != "avg" and mod not in info[arm]["modalities"]:
        continue
      x, _, kept = support_curve(results[arm], study.measures[0], mod)
      for r, at in zip(x, kept):
        rows.append(
          (
            r,
            [f"{r:.3g}", f"**{arm}** (ref)" if arm == study.reference else arm]
            + cells(arm, mod, at),
          )
        )
    if rows:
      rows.sort(key=lambda row: row[0])  # stable: arms in study order within a ratio
      lines += (
        [f"### {mod}", ""]
        + _table(["support ratio", "arm"] + measure_columns, [r for _, r in rows])
        + [""]
      )
  return lines


def trajectory(
  results_by_seed: Mapping[int, Mapping], measure: str, modality: str, num_steps: int
) -> np.ndarray:
  """The learning trajectory of one arm: `[num_seeds, K + 1]` values of `measure/modality/step{k}`
  (NaN where a run lacks a step)."""
  seeds = sorted(results_by_seed)
  out = np.full((len(seeds), num_steps + 1), np.nan)
  for i, s in enumerate(seeds):
    metrics = results_by_seed[s]["metrics"]
    for k in range(num_steps + 1):
      out[i, k] = metrics.get(f"{measure}/{modality}/step{k}", np.nan)
  return out
