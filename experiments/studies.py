"""Ablation studies: definitions, per-arm configs, and the reports built from finished runs.

A *study* is a set of *arms*, each a set of config overrides, one of them the *reference* that
the others are compared against, and the measures to report. Studies live in the config files
(`studies()` next to `get_config()`, e.g. `experiments/configs/synthetic.py`), or come from a
grid of overrides (`grid_study("method=cavia|mia;inner_steps=1|3")`). `experiments/ablate.py`
runs every arm over every seed into `W/{arm}/seed{s}`; this module turns the runs'
`results.json` files into

* `results.csv`: one row per arm, seed and metric key of the results contract;
* `results.md`: per modality and arm, the measures after K inner steps as mean ± std over seeds
  and the change against the reference arm, after K steps and per support-ratio bin;
* `trajectory.png`: the error after each inner step 0..K per arm, with the spread over seeds;
* `reconstructions.png`: a few meta-test signals, their supports and every arm's prediction.

Everything here except `predict_run` reads files and numbers only (no JAX), so it is cheap to
test and to call from a notebook.

An arm override `key=value` is a config *argument* when the config file's `get_config` accepts
it (`method`, `ablation`, `modalities`, `inner_steps`, ...: the config is rebuilt with it, so the
argument's dependent defaults follow), and otherwise a config *field*, possibly dotted
(`learning_rate`, `rule.sft_width`), set on the built config.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import itertools
import json
import math
import os
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from mia_jax.evaluation import MEASURES

DEFAULT_MEASURES = ("generalization_mse", "memorization_mse")
STEPS_SUFFIX = re.compile(r"^step(\d+)$")
BIN_SUFFIX = re.compile(r"^R([0-9.eE+-]+)-([0-9.eE+-]+)$")
CSV_COLUMNS = ("study", "arm", "seed", "measure", "modality", "at", "key", "value")
# Config fields that may differ between a finished run and a restart of it (budget, logging,
# where the data lives); any other difference means the run directory holds another config.
RESTART_TOLERANT_FIELDS = ("num_train_steps", "log_every_steps", "checkpoint_every_steps",
                           "keep_checkpoints", "data.data_dir", "eval.every_steps",
                           "eval.batch_size")
_LABELS = {"generalization_mse": "generalization MSE", "memorization_mse": "memorization MSE",
           "full_mse": "full MSE", "generalization_psnr": "generalization PSNR (dB)",
           "memorization_psnr": "memorization PSNR (dB)"}


# -- study definitions -----------------------------------------------------------------------------

def validate_measures(measures: Iterable[str]) -> tuple[str, ...]:
  """Checks measure names against the results contract; returns them as a tuple."""
  measures = tuple(measures)
  if not measures:
    raise ValueError(f"No metric given; known measures: {', '.join(MEASURES)}.")
  for m in measures:
    if m not in MEASURES:
      raise ValueError(f"Unknown metric {m!r}; known measures: {', '.join(MEASURES)}.")
  return measures


def arm_dirname(arm: str) -> str:
  """A file-system-safe folder name for an arm (`method=cavia,inner_steps=1` ->
  `method-cavia_inner_steps-1`)."""
  return re.sub(r"[^A-Za-z0-9_.+-]", "_", arm.replace("=", "-").replace(",", "_"))


@dataclasses.dataclass(frozen=True)
class Study:
  """A named set of arms (config overrides) compared against a reference arm.

  Attributes:
    name: the study's name (`sft_removal`).
    arms: `{arm: {override key: value}}`, in run order (headline arms first, so that `select`
      with the first few arms answers the main question on a small budget).
    reference: the arm every other arm is compared against.
    measures: the measures of the results contract to report (`generalization_mse`, ...).
    description: one paragraph for the report.
    headline: the arms that answer the study's main question (they always get every seed; the
      others may get fewer, `--other_seeds`). Empty: every arm is a headline arm.
  """

  name: str
  arms: Mapping[str, Mapping[str, Any]]
  reference: str
  measures: tuple[str, ...] = DEFAULT_MEASURES
  description: str = ""
  headline: tuple[str, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, "arms", {str(a): dict(o) for a, o in self.arms.items()})
    object.__setattr__(self, "measures", validate_measures(self.measures))
    if not self.arms:
      raise ValueError(f"Study {self.name!r} has no arms.")
    if self.reference not in self.arms:
      raise ValueError(f"Study {self.name!r}: reference arm {self.reference!r} is not one of its "
                       f"arms: {', '.join(self.arms)}.")
    object.__setattr__(self, "headline", tuple(self.headline))
    unknown = [a for a in self.headline if a not in self.arms]
    if unknown:
      raise ValueError(f"Study {self.name!r}: headline arms {unknown} are not among its arms: "
                       f"{', '.join(self.arms)}.")
    dirs = [arm_dirname(a) for a in self.arms]
    if len(set(dirs)) != len(dirs):
      raise ValueError(f"Study {self.name!r}: arm names {list(self.arms)} collide as folder "
                       f"names {dirs}.")

  @classmethod
  def from_dict(cls, name: str, d: Mapping[str, Any]) -> "Study":
    """Builds a study from a `studies()` entry: `{"arms", "reference", "measures"?,
    "description"?}`."""
    unknown = sorted(set(d) - {"arms", "reference", "measures", "description", "headline"})
    if unknown or "arms" not in d or "reference" not in d:
      raise ValueError(f"Study {name!r}: needs keys 'arms' and 'reference' (optional "
                       f"'measures', 'description', 'headline'); got {sorted(d)}.")
    return cls(name=name, arms=d["arms"], reference=d["reference"],
               measures=tuple(d.get("measures", DEFAULT_MEASURES)),
               description=d.get("description", ""), headline=tuple(d.get("headline", ())))

  def select(self, arms: Sequence[str] | None) -> "Study":
    """The study restricted to `arms` (in study order; the reference is always kept)."""
    if not arms:
      return self
    for a in arms:
      if a not in self.arms:
        raise ValueError(f"Unknown arm {a!r} in study {self.name!r}; its arms: "
                         f"{', '.join(self.arms)}.")
    keep = set(arms) | {self.reference}
    return dataclasses.replace(self, arms={a: o for a, o in self.arms.items() if a in keep},
                               headline=tuple(a for a in self.headline if a in keep))

  def is_headline(self, arm: str) -> bool:
    return not self.headline or arm in self.headline

  def with_measures(self, measures: Sequence[str] | None) -> "Study":
    """The study reporting other measures (None or empty: unchanged)."""
    if not measures:
      return self
    return dataclasses.replace(self, measures=validate_measures(measures))

  def run_dir(self, workdir: str, arm: str, seed: int) -> str:
    """Where one arm's run for one seed lives: `workdir/{arm}/seed{seed}`."""
    return os.path.join(workdir, arm_dirname(arm), f"seed{seed}")

  def to_dict(self) -> dict:
    return {"name": self.name, "arms": self.arms, "reference": self.reference,
            "measures": list(self.measures), "description": self.description,
            "headline": list(self.headline)}


def parse_grid_value(value: str) -> Any:
  """A grid value as written on the command line, kept a string (the config types it)."""
  return value.strip()


def grid_study(spec: str, reference: str | None = None,
               measures: Sequence[str] = DEFAULT_MEASURES) -> Study:
  """A study over the Cartesian product of overrides.

  Args:
    spec: `"key=v1|v2;key2=w1|w2"`, e.g. `"method=cavia|mia;inner_steps=1|3"`. Keys are config
      arguments or (dotted) config fields.
    reference: the reference arm's name (`"method=cavia,inner_steps=1"`); default: the first arm.
    measures: the measures to report.

  Returns:
    A study named `grid` whose arms are named `key=value,key2=value2`.
  """
  axes = []
  for part in (p.strip() for p in spec.split(";")):
    if not part:
      continue
    key, sep, values = part.partition("=")
    vals = [parse_grid_value(v) for v in values.split("|") if v.strip()]
    if not sep or not key.strip() or not vals:
      raise ValueError(f"Bad grid axis {part!r} in {spec!r}; expected key=value1|value2, axes "
                       "separated by ';' (e.g. 'method=cavia|mia;inner_steps=1|3').")
    axes.append((key.strip(), vals))
  if not axes:
    raise ValueError(f"Empty grid {spec!r}; expected e.g. 'method=cavia|mia;inner_steps=1|3'.")
  keys = [k for k, _ in axes]
  if len(set(keys)) != len(keys):
    raise ValueError(f"Grid {spec!r} names a key twice: {keys}.")
  arms = {}
  for combo in itertools.product(*(v for _, v in axes)):
    arms[",".join(f"{k}={v}" for k, v in zip(keys, combo))] = dict(zip(keys, combo))
  reference = reference or next(iter(arms))
  if reference not in arms:
    raise ValueError(f"Unknown reference arm {reference!r}; the grid's arms: {', '.join(arms)}.")
  return Study(name="grid", arms=arms, reference=reference, measures=tuple(measures),
               description=f"Grid over {spec}.")


# -- configs ---------------------------------------------------------------------------------------

def load_config_module(path: str):
  """Imports a config file (`experiments/configs/synthetic.py`) as a module."""
  candidates = [path, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   path)]
  for p in candidates:
    if os.path.isfile(p):
      name = "_study_config_" + re.sub(r"\W", "_", os.path.abspath(p))
      spec = importlib.util.spec_from_file_location(name, p)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      return module
  raise FileNotFoundError(f"Config file {path!r} does not exist.")


def _arg_string(value: Any) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  return str(value)


def merge_arg(arg: str, updates: Mapping[str, Any]) -> str:
  """`merge_arg("method=mia,cpu", {"method": "cavia"}) == "method=cavia,cpu"`."""
  items: dict[str, str | None] = {}
  for item in (i.strip() for i in (arg or "").split(",")):
    if item:
      key, sep, value = item.partition("=")
      items[key.strip() if sep else item] = value.strip() if sep else None
  for k, v in updates.items():
    items[k] = _arg_string(v)
  return ",".join(k if v is None else f"{k}={v}" for k, v in items.items())


def _coerce(value: Any, current: Any, key: str) -> Any:
  """Types a (command-line string) value like the field's current value."""
  if not isinstance(value, str) or isinstance(current, str) or current is None:
    return value
  try:
    if isinstance(current, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError
      return value.lower() in ("true", "1")
    if isinstance(current, int):
      return int(value)
    if isinstance(current, float):
      return float(value)
  except ValueError:
    raise ValueError(f"Override {key}={value!r} is not a valid {type(current).__name__}.") from None
  return value


def set_field(config, key: str, value: Any, known_args: str = "") -> None:
  """Sets a (dotted) config field, typed like its current value; clear error if it is missing."""
  node = config
  parts = key.split(".")
  for i, part in enumerate(parts):
    if part not in node:
      hint = f" Config arguments: {known_args}" if known_args else ""
      raise ValueError(f"Unknown override {key!r}: no config field {'.'.join(parts[:i + 1])!r} "
                       f"(fields here: {', '.join(sorted(node.keys()))}).{hint}")
    if i < len(parts) - 1:
      node = node[part]
  node[parts[-1]] = _coerce(value, node[parts[-1]], key)


class ConfigBuilder:
  """Builds each arm's config from a config file's `get_config(arg)` and overrides.

  Precedence (later wins): the base `arg`, the arm's config arguments (the config is rebuilt with
  them), the base field `overrides` (e.g. `--config.data.data_dir=...` flags), the arm's field
  overrides, then the run's seed and the study's step budget.

  Args:
    get_config: `get_config(arg: str) -> ConfigDict` of a config file.
    arg: the base argument string (what follows the colon, e.g. `"cpu"`).
    overrides: `{dotted field: value}` applied to every arm.
    module: the config module (for its `studies()`), if any.
    source: a description of the config for reports (`experiments/configs/synthetic.py:cpu`).
  """

  def __init__(self, get_config: Callable[[str], Any], arg: str = "",
               overrides: Mapping[str, Any] | None = None, module=None, source: str = ""):
    self.get_config = get_config
    self.arg = arg or ""
    self.overrides = dict(overrides or {})
    self.module = module
    self.source = source or f"get_config({self.arg!r})"

  @classmethod
  def from_spec(cls, spec: str, overrides: Mapping[str, Any] | None = None) -> "ConfigBuilder":
    """From `"path/to/config.py:arg"` (as given to `--config`) and field overrides."""
    path, _, arg = spec.partition(":")
    module = load_config_module(path)
    return cls(module.get_config, arg, overrides, module=module, source=spec)

  def studies(self) -> dict[str, Study]:
    """The studies defined by the config file's `studies()`."""
    fn = getattr(self.module, "studies", None)
    if fn is None:
      where = getattr(self.module, "__file__", self.source)
      raise ValueError(f"Config {where!r} defines no studies(); use a grid of overrides instead "
                       "(--grid='method=cavia|mia').")
    return {name: Study.from_dict(name, d) for name, d in fn().items()}

  def study(self, name: str) -> Study:
    """One study of the config file by name (clear error listing the known ones)."""
    studies = self.studies()
    if name not in studies:
      raise ValueError(f"Unknown study {name!r}; known studies: {', '.join(studies)} (or a "
                       "user grid, --grid='key=v1|v2;key2=w1|w2').")
    return studies[name]

  def build(self, overrides: Mapping[str, Any] | None = None, seed: int | None = None,
            steps: int | None = None):
    """The config of one run.

    Args:
      overrides: the arm's `{key: value}` (config arguments or dotted fields).
      seed: sets `config.seed` (None: keep).
      steps: sets `config.num_train_steps` (None or 0: keep the preset's).
    """
    args, fields = {}, {}
    known = ""
    for k, v in (overrides or {}).items():
      if "." in k:
        fields[k] = v
        continue
      try:
        self.get_config(merge_arg(self.arg, {k: v}))
        args[k] = v
      except ValueError as e:
        if "Unknown config argument" not in str(e):
          raise
        fields[k] = v
        known = str(e).split("allowed:", 1)[-1].strip()
    config = self.get_config(merge_arg(self.arg, args))
    for k, v in self.overrides.items():
      set_field(config, k, v)
    for k, v in fields.items():
      set_field(config, k, v, known)
    if seed is not None:
      config.seed = int(seed)
    if steps:
      config.num_train_steps = int(steps)
    return config


def _flat(d: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    key = f"{prefix}.{k}" if prefix else str(k)
    if isinstance(v, Mapping):
      out.update(_flat(v, key))
    else:
      out[key] = v
  return out


def config_differences(old: Mapping, new: Mapping,
                       ignore: Sequence[str] = RESTART_TOLERANT_FIELDS) -> list[str]:
  """`["key: old != new", ...]` for the fields of two config dicts (JSON form) that both have
  and that differ, except those in `ignore`."""
  a, b = _flat(json.loads(json.dumps(old))), _flat(json.loads(json.dumps(new)))
  # Fields only one side has (added or removed by a code change) are not a difference.
  return [f"{k}: {a[k]!r} != {b[k]!r}" for k in sorted(set(a) & set(b))
          if k not in ignore and a[k] != b[k]]


def check_shared_test_set(configs: Mapping[str, Any]) -> None:
  """Raises unless every arm evaluates on the same meta-test data and episode seed.

  Args:
    configs: `{arm: ConfigDict}`.
  """
  def key(c):
    return json.dumps({"data": c.data.to_dict(), "episode_seed": c.eval.episode_seed,
                       "episodes_path": c.eval.episodes_path}, sort_keys=True)
  arms = list(configs)
  ref = key(configs[arms[0]])
  for arm in arms[1:]:
    if key(configs[arm]) != ref:
      diff = config_differences(json.loads(ref), json.loads(key(configs[arm])), ignore=())
      raise ValueError(f"Arm {arm!r} changes the meta-test data or episodes ({'; '.join(diff)}) "
                       f"against arm {arms[0]!r}; the arms of a study must be evaluated on the "
                       "same support sets (paired comparison). Do not override data.* or "
                       "eval.episode_seed per arm.")


def check_paired(workdir: str, study: Study, seeds: Sequence[int]) -> int:
  """Checks that every arm was evaluated on the reference arm's support sets.

  Compares each run's `episodes.npz` (`{modality}/idx|count|ratio`) with the reference run of the
  same seed on the modalities they share.

  Returns:
    The number of (run, modality) pairs compared.

  Raises:
    ValueError: an arm's meta-test supports differ from the reference's.
  """
  checked = 0
  for seed in seeds:
    ref_path = os.path.join(study.run_dir(workdir, study.reference, seed), "episodes.npz")
    if not os.path.exists(ref_path):
      continue
    with np.load(ref_path) as f:
      ref = {k: f[k] for k in f.files}
    for arm in study.arms:
      path = os.path.join(study.run_dir(workdir, arm, seed), "episodes.npz")
      if arm == study.reference or not os.path.exists(path):
        continue
      with np.load(path) as f:
        for key in f.files:
          if key not in ref:
            continue
          if not np.array_equal(f[key], ref[key]):
            raise ValueError(
                f"Unpaired comparison: {path} has different meta-test supports for {key!r} than "
                f"the reference arm {study.reference!r} ({ref_path}).")
          if key.endswith("/idx"):
            checked += 1
  return checked


# -- results ---------------------------------------------------------------------------------------

def load_results(workdir: str, study: Study, seeds: Sequence[int]) -> dict[str, dict[int, dict]]:
  """`{arm: {seed: results.json contents}}` for the runs that have results."""
  out: dict[str, dict[int, dict]] = {}
  for arm in study.arms:
    for seed in seeds:
      path = os.path.join(study.run_dir(workdir, arm, seed), "results.json")
      if os.path.exists(path):
        with open(path) as f:
          out.setdefault(arm, {})[seed] = json.load(f)
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
        rows.append(dict(study=study_name, arm=arm, seed=seed, measure=measure,
                         modality=modality, at=at, key=key, value=value))
  return rows


def write_csv(path: str, rows: Sequence[Mapping]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
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
    info[arm] = dict(modalities=mods, K=int(first["config"]["inner_steps"]),
                     seeds=sorted(by_seed), steps=sorted({r["step"] for r in by_seed.values()}))
  return info


def report_modalities(info: Mapping[str, Mapping], reference: str) -> list[str]:
  """The modalities to report: every arm's (reference order first), plus `avg` when all arms have
  the same modalities (otherwise an average over different sets is not comparable)."""
  order = [reference] + [a for a in info if a != reference]
  mods: list[str] = []
  for arm in order:
    if arm in info:
      mods += [m for m in info[arm]["modalities"] if m not in mods]
  sets = {frozenset(i["modalities"]) for i in info.values()}
  return mods + (["avg"] if len(sets) == 1 else [])


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


def format_markdown(study: Study, results: Mapping[str, Mapping[int, Mapping]],
                    notes: Sequence[str] = (), bins: bool = True) -> str:
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
    raise ValueError(f"No results for the reference arm {study.reference!r} of study "
                     f"{study.name!r}.")
  stats = aggregate(results)
  info = arm_info(results)
  ref = study.reference
  lines = [f"# Study: {study.name}", ""]
  if study.description:
    lines += [study.description, ""]
  seeds = sorted({s for a in arms for s in info[a]["seeds"]})
  steps = sorted({s for a in arms for s in info[a]["steps"]})
  lines += ["- arms: " + "; ".join(
      f"`{a}`" + (" (reference)" if a == ref else "") + " = "
      + (", ".join(f"{k}={v}" for k, v in study.arms[a].items()) or "base config")
      for a in arms),
            f"- seeds: {', '.join(map(str, seeds))}; meta-steps per run: "
            f"{', '.join(map(str, steps))}",
            f"- values: mean ± std (ddof=1) over seeds; Δ: change of the mean against `{ref}` "
            "((arm − ref) / ref for MSE, difference in dB for PSNR)"]
  lines += [f"- {n}" for n in notes]
  mods = report_modalities(info, ref)

  def change(arm, key, measure):
    a, r = stats[arm].get(key), stats[ref].get(key)
    if arm == ref or a is None or r is None:
      return None
    return relative_change(a.mean, r.mean, measure)

  def cells(arm, mod, suffix):
    """Mean ± std and the change against the reference, for every measure of the study."""
    out = []
    for m in study.measures:
      key = f"{m}/{mod}/{suffix}"
      out += [format_stat(stats[arm].get(key), m),
              "—" if arm == ref else format_change(change(arm, key, m), m)]
    return out

  lines += ["", "## After K inner steps", ""]
  for mod in mods:
    header = ["arm", "seeds", "K"]
    for m in study.measures:
      header += [_LABELS[m], "Δ"]
    rows = []
    for arm in arms:
      if mod != "avg" and mod not in info[arm]["modalities"]:
        continue
      k = info[arm]["K"]
      row = [f"**{arm}** (ref)" if arm == ref else arm, str(len(info[arm]["seeds"])), str(k)]
      rows.append(row + cells(arm, mod, f"step{k}"))
    lines += [f"### {mod}", ""] + _table(header, rows) + [""]

  if not bins:
    return "\n".join(lines).rstrip() + "\n"
  lines += ["## Per support-ratio bin (after K steps)", ""]
  for mod in mods:
    mod_bins = _bins(stats, mod)
    if not mod_bins:
      continue
    header = ["ratio bin", "arm"]
    for m in study.measures:
      header += [_LABELS[m], "Δ"]
    rows = []
    for b in mod_bins:
      for arm in arms:
        if mod != "avg" and mod not in info[arm]["modalities"]:
          continue
        row = [b[1:], f"**{arm}** (ref)" if arm == ref else arm]
        rows.append(row + cells(arm, mod, b))
    lines += [f"### {mod}", ""] + _table(header, rows) + [""]
  return "\n".join(lines).rstrip() + "\n"


def trajectory(results_by_seed: Mapping[int, Mapping], measure: str, modality: str,
               num_steps: int) -> np.ndarray:
  """The learning trajectory of one arm: `[num_seeds, K + 1]` values of `measure/modality/step{k}`
  (NaN where a run lacks a step)."""
  seeds = sorted(results_by_seed)
  out = np.full((len(seeds), num_steps + 1), np.nan)
  for i, s in enumerate(seeds):
    metrics = results_by_seed[s]["metrics"]
    for k in range(num_steps + 1):
      out[i, k] = metrics.get(f"{measure}/{modality}/step{k}", np.nan)
  return out


# -- plots -----------------------------------------------------------------------------------------

def _figure(width: float, height: float):
  # A bare Figure draws with the Agg canvas, whatever pyplot's backend (inline in notebooks).
  from matplotlib.figure import Figure
  return Figure(figsize=(width, height), layout="constrained")


def _colors(arms: Sequence[str]) -> dict[str, Any]:
  from matplotlib import colormaps
  cmap = colormaps["tab10"]
  return {a: cmap(i % 10) for i, a in enumerate(arms)}


def _log_axis(ax) -> None:
  """A log y axis with plain numbers; minor ticks labelled when it spans under a decade."""
  from matplotlib import ticker
  ax.set_yscale("log")
  lo, hi = ax.get_ylim()
  plain = ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
  ax.yaxis.set_major_formatter(plain)
  ax.yaxis.set_minor_formatter(plain if hi / max(lo, 1e-30) < 10 else ticker.NullFormatter())


def plot_trajectories(study: Study, results: Mapping[str, Mapping[int, Mapping]], path: str,
                      measures: Sequence[str] | None = None) -> str:
  """Error after each inner step 0..K per arm: one panel per (measure, modality), the mean over
  seeds as a line and the min-max over seeds as a band; MSE on a log axis. Writes `path`."""
  measures = list(measures or study.measures)
  arms = [a for a in study.arms if a in results]
  info = arm_info(results)
  mods = report_modalities(info, study.reference)
  colors = _colors(arms)
  fig = _figure(3.2 * len(mods) + 1.5, 2.6 * len(measures))
  axes = fig.subplots(len(measures), len(mods), squeeze=False)
  for r, measure in enumerate(measures):
    for c, mod in enumerate(mods):
      ax = axes[r][c]
      for arm in arms:
        if mod != "avg" and mod not in info[arm]["modalities"]:
          continue
        traj = trajectory(results[arm], measure, mod, info[arm]["K"])
        if np.all(np.isnan(traj)):
          continue
        x = np.arange(traj.shape[1])
        mean = np.nanmean(traj, 0)
        ax.plot(x, mean, marker="o", ms=3, color=colors[arm],
                lw=2.2 if arm == study.reference else 1.3, label=arm)
        if traj.shape[0] > 1:
          ax.fill_between(x, np.nanmin(traj, 0), np.nanmax(traj, 0), color=colors[arm],
                          alpha=0.18, lw=0)
      if measure.endswith("_mse"):
        _log_axis(ax)
      ax.set_title(f"{mod}", fontsize=10)
      ax.set_xlabel("inner step")
      if c == 0:
        ax.set_ylabel(_LABELS[measure])
      ax.xaxis.get_major_locator().set_params(integer=True)
  handles, labels = [], []
  for ax in axes.flat:
    for h, l in zip(*ax.get_legend_handles_labels()):
      if l not in labels:
        handles.append(h)
        labels.append(l)
  fig.legend(handles, labels, loc="outside right upper", fontsize=9)
  n = max(len(r) for r in results.values())
  fig.suptitle(f"{study.name}: error vs inner step (line: mean over {n} seed(s); band: min–max)",
               fontsize=11)
  fig.savefig(path, dpi=110)
  return path


def predict_run(config, rundir: str, num_signals: int = 3) -> dict[str, dict]:
  """Adapts a finished run's meta-learned model to the first meta-test signals.

  Restores the latest checkpoint of `rundir`, takes the first `num_signals` test signals and
  their fixed meta-test supports (`rundir/episodes.npz` or `config.eval.episodes_path`), and
  runs K inner steps.

  Returns:
    `{modality: {"y": [n, N, d_out] ground truth, "prediction": [n, N, d_out] after K steps,
    "idx": [n, S] support indices, "count": [n] support sizes, "spec": ModalitySpec}}`.
  """
  import jax
  from mia_jax import adaptation, meta_step, sampling, train

  learner = build.build_learner(config)
  manager = train._checkpoint_manager(rundir, config)  # pylint: disable=protected-access
  try:
    if manager.latest_step() is None:
      raise FileNotFoundError(f"No checkpoint in {rundir}.")
    state = train.restore_or_init(manager, learner.init(jax.random.PRNGKey(config.seed)))
  finally:
    manager.close()
  source = build.build_sources(config, "test")
  episodes = sampling.load_episodes(
      config.eval.episodes_path or os.path.join(rundir, "episodes.npz"), learner.specs)
  n = min(num_signals, len(source), next(iter(episodes.values()))["idx"].shape[0])
  signals = [source[i] for i in range(n)]
  names = [s.name for s in learner.specs]
  batch = {m: {k: np.stack([s[m][k] for s in signals]) for k in ("y", "amplitude")}
           for m in names}
  episode = sampling.slice_episode(episodes, 0, n)
  k = learner.meta.inner_steps
  run = jax.jit(lambda p, b, x, e: adaptation.adapt(learner.model, learner.rule, p, b, x, e, k))
  _, pred, _ = run(state.params, state.buffers, batch, episode)
  pred = jax.device_get(pred)
  out = {}
  for spec in learner.specs:
    out[spec.name] = {"y": batch[spec.name]["y"], "prediction": np.asarray(pred[spec.name]),
                      "idx": episode[spec.name]["idx"],
                      "count": episode[spec.name]["mask"].sum(-1).astype(int), "spec": spec}
  return out


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
  handles, labels = [], []
  for ax in fig.axes:
    for h, l in zip(*ax.get_legend_handles_labels()):
      if l not in labels:
        handles.append(h)
        labels.append(l)
  if handles:
    fig.legend(handles, labels, loc="outside right upper", fontsize=9)
  fig.suptitle(title or "meta-test reconstructions after K inner steps", fontsize=11)
  fig.savefig(path, dpi=110)
  return path
