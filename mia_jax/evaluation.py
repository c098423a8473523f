"""Evaluation (docs/method.md section 7): generalization, memorization and full errors, and PSNR.

`eval_step` (in `meta_step.py`) returns per-signal errors after every inner step; this module
accumulates them over the meta-test episodes on the host and reduces them to the flat metrics of
the results contract:

  "{measure}/{modality}/step{k}"     for k = 0..K   (the learning trajectory)
  "{measure}/{modality}/R{lo}-{hi}"  after K steps, per support-ratio bin
  "{measure}/{modality}/ratio{r}"    after K steps, every signal at the fixed support ratio r
                                     (`sampling.fixed_ratio_episodes`; `fixed_ratio_metrics`)

A bin is `[lo, hi)` (the last `[lo, hi]`) by default; with `closed_bins=True` every bin is
`[lo, hi]`, as the released code's, so a ratio on an edge counts in both neighbouring bins.

with measure in `MEASURES` and modality a name or "avg" (the mean over modalities).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from mia_jax.modalities import ModalitySpec

MEASURES = (
  "generalization_mse",
  "memorization_mse",
  "full_mse",
  "generalization_psnr",
  "memorization_psnr",
)
_SOURCE = {
  "generalization_mse": "generalization",
  "memorization_mse": "memorization",
  "full_mse": "full",
  "generalization_psnr": "generalization",
  "memorization_psnr": "memorization",
}


def psnr(mse: np.ndarray, peak: float = 1.0) -> np.ndarray:
  """PSNR in dB with the given peak, per element (MSE floored at 1e-10)."""
  return 10.0 * np.log10(peak**2 / np.maximum(mse, 1e-10))


def bin_label(lo: float, hi: float) -> str:
  return f"R{lo:g}-{hi:g}"


class Accumulator:
  """Collects per-signal errors over evaluation batches.

  Args:
    specs: the evaluated modalities.
    num_steps: K.
    closed_bins: every ratio bin includes both edges (the module docstring).
  """

  def __init__(self, specs: Sequence[ModalitySpec], num_steps: int, closed_bins: bool = False):
    self.specs = tuple(specs)
    self.num_steps = num_steps
    self.closed_bins = closed_bins
    self._errors: dict[str, dict[str, list[np.ndarray]]] = {
      s.name: {m: [] for m in ("generalization", "memorization", "full")} for s in self.specs
    }
    self._ratio: dict[str, list[np.ndarray]] = {s.name: [] for s in self.specs}
    self._has_gen: dict[str, list[np.ndarray]] = {s.name: [] for s in self.specs}

  def add(self, out: Mapping, episode: Mapping, valid: np.ndarray | None = None) -> None:
    """Adds one batch.

    Args:
      out: `eval_step` output: `{"errors": {name: {measure: [K+1, B]}}, "ratio": {name: [B]}}`.
      episode: the batch's episode `{name: {"mask": [B, S], ...}}` (to know the support sizes).
      valid: bool `[B]`, False for padding signals (default: all valid).
    """
    for spec in self.specs:
      errs = out["errors"][spec.name]
      b = np.asarray(errs["full"]).shape[1]
      keep = np.ones(b, bool) if valid is None else np.asarray(valid, bool)
      for m in self._errors[spec.name]:
        self._errors[spec.name][m].append(np.asarray(errs[m], np.float64)[:, keep])
      self._ratio[spec.name].append(np.asarray(out["ratio"][spec.name])[keep])
      count = np.asarray(episode[spec.name]["mask"]).sum(-1)[keep]
      self._has_gen[spec.name].append(count < spec.num_points)

  @property
  def num_signals(self) -> int:
    name = self.specs[0].name
    return int(sum(r.shape[0] for r in self._ratio[name]))

  def per_signal(self) -> dict:
    """
    `{name: {"generalization"|"memorization"|"full": [K+1, n], "ratio": [n], "has_gen": [n]}}`.
    """
    out = {}
    for spec in self.specs:
      d = {m: np.concatenate(v, axis=1) for m, v in self._errors[spec.name].items()}
      d["ratio"] = np.concatenate(self._ratio[spec.name])
      d["has_gen"] = np.concatenate(self._has_gen[spec.name])
      out[spec.name] = d
    return out

  def summarize(self) -> dict[str, float]:
    """The flat metrics dict of the results contract."""
    if self.num_signals == 0:
      raise ValueError("No evaluation signals were added.")
    per_signal = self.per_signal()
    check_finite(per_signal)
    return summarize(per_signal, self.specs, self.num_steps, self.closed_bins)


def check_finite(per_signal: Mapping) -> None:
  """Raises FloatingPointError naming the modalities and meta-test signals (in the order added)
  whose errors are NaN or infinite: a result is never an average over the signals that remain."""
  bad = {}
  for name, d in per_signal.items():
    finite = np.all(
      [np.isfinite(d[m]).all(axis=0) for m in ("generalization", "memorization", "full")], axis=0
    )
    if not finite.all():
      bad[name] = np.flatnonzero(~finite)
  if bad:
    raise FloatingPointError(
      "Non-finite meta-test errors (NaN/inf in the data or the "
      "predictions): "
      + "; ".join(f"{n}: {len(i)} signal(s), e.g. {i[:5].tolist()}" for n, i in bad.items())
    )


def _reduce(measure: str, values: np.ndarray, has_gen: np.ndarray) -> float:
  """Mean over signals of one measure. values: `[n]` per-signal MSEs."""
  if _SOURCE[measure] == "generalization":
    values = values[has_gen]
  if values.size == 0:
    return float("nan")
  if measure.endswith("_psnr"):
    return float(np.mean(psnr(values)))
  return float(np.mean(values))


def summarize(
  per_signal: Mapping, specs: Sequence[ModalitySpec], num_steps: int, closed_bins: bool = False
) -> dict[str, float]:
  """Reduces per-signal errors to `{measure}/{modality}/step{k}` and `.../R{lo}-{hi}` metrics
  (`closed_bins`: every bin `[lo, hi]`; else `[lo, hi)` and the last `[lo, hi]`)."""
  per_mod: dict[str, dict[str, float]] = {}
  for spec in specs:
    d = per_signal[spec.name]
    keys = {}
    for measure in MEASURES:
      src = d[_SOURCE[measure]]
      for k in range(num_steps + 1):
        keys[f"{measure}/{spec.name}/step{k}"] = _reduce(measure, src[k], d["has_gen"])
      for i, (lo, hi) in enumerate(spec.ratio_bins):
        last = closed_bins or i == len(spec.ratio_bins) - 1
        in_bin = (d["ratio"] >= lo) & ((d["ratio"] <= hi) if last else (d["ratio"] < hi))
        if in_bin.any():
          keys[f"{measure}/{spec.name}/{bin_label(lo, hi)}"] = _reduce(
            measure, src[num_steps][in_bin], d["has_gen"][in_bin]
          )
    per_mod[spec.name] = keys
  return _with_average(per_mod)


def _with_average(per_mod: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
  """The modalities' metrics and their "avg": the mean over the modalities that have the key.
  NaNs are dropped (e.g. generalization when every support is the whole grid): JSON has none."""
  metrics: dict[str, float] = {}
  suffixes: dict[str, list[float]] = {}
  for keys in per_mod.values():
    metrics.update(keys)
    for key, value in keys.items():
      measure, _, suffix = key.split("/")
      suffixes.setdefault(f"{measure}/avg/{suffix}", []).append(value)
  for key, values in suffixes.items():
    finite = [v for v in values if np.isfinite(v)]
    metrics[key] = float(np.mean(finite)) if finite else float("nan")
  return {k: v for k, v in metrics.items() if np.isfinite(v)}


def fixed_ratio_metrics(
  per_signal: Mapping, specs: Sequence[ModalitySpec], num_steps: int, label: str
) -> dict[str, float]:
  """`{measure}/{modality}/{label}` after K steps (and avg) of an evaluation at one fixed
  support ratio (`label` = `sampling.ratio_label(r)`); `per_signal` as `Accumulator.per_signal`."""
  per_mod = {}
  for spec in specs:
    d = per_signal[spec.name]
    per_mod[spec.name] = {
      f"{measure}/{spec.name}/{label}": _reduce(
        measure, d[_SOURCE[measure]][num_steps], d["has_gen"]
      )
      for measure in MEASURES
    }
  return _with_average(per_mod)


def format_table(metrics: Mapping[str, float], names: Sequence[str], num_steps: int) -> str:
  """A plain-text table: one row per modality (and avg), MSEs after K steps and PSNRs."""
  cols = [
    ("gen MSE", "generalization_mse"),
    ("mem MSE", "memorization_mse"),
    ("full MSE", "full_mse"),
    ("gen PSNR", "generalization_psnr"),
    ("mem PSNR", "memorization_psnr"),
  ]
  rows = [["modality"] + [c for c, _ in cols]]
  for name in list(names) + ["avg"]:
    row = [name]
    for _, measure in cols:
      v = metrics.get(f"{measure}/{name}/step{num_steps}")
      row.append("-" if v is None else (f"{v:.2f}" if measure.endswith("psnr") else f"{v:.5f}"))
    rows.append(row)
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = [
    "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    for r in rows
  ]
  lines.insert(1, "-" * len(lines[0]))
  return "\n".join(lines)
