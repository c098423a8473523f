"""Ablation studies: their definitions and each arm's config.

A *study* is a set of *arms*, each a set of config overrides, one of them the *reference* that
the others are compared against, and the measures to report. Studies live in the config files
(`studies()` next to `get_config()`, e.g. `experiments/configs/synthetic.py`), or come from a
grid of overrides (`grid_study("method=cavia|mia;inner_steps=1|3")`). The runner
(`experiments/studies/runner.py`, the command line `experiments.ablate`) runs every arm over
every seed into `W/{arm}/seed{s}`; `report.py` turns the runs' `results.json` files into tables,
`plots.py` into figures.

An arm override `key=value` is a config *argument* when its key is one of the config file's
`ARGS` (`method`, `ablation`, `modalities`, `inner_steps`, ...: the config is rebuilt with it, so
the argument's dependent defaults follow), and otherwise a config *field*, possibly dotted
(`learning_rate`, `rule.sft_width`), set on the built config.

This module also checks that a study's arms are comparable: that they share the meta-test data
(`check_shared_test_set`) and were evaluated on the same supports (`check_paired`), and that a
run directory holds the config asked for (`workdir.config_differences`). It reads files and
numbers only (no JAX computation).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from experiments import syntax
from experiments.configs.common import set_field
from experiments.run.workdir import config_differences
from mia_jax.evaluation import MEASURES

DEFAULT_MEASURES = ("generalization_mse", "memorization_mse")


# -- study definitions -----------------------------------------------------------------------------


def validate_measures(measures: Iterable[str]) -> tuple[str, ...]:
  """Checks measure names against the results contract; returns them as a tuple."""
  measures = tuple(measures)
  unknown = [m for m in measures if m not in MEASURES]
  if unknown or not measures:
    problem = f"Unknown metric {unknown[0]!r}" if unknown else "No metric given"
    raise ValueError(f"{problem}; known measures: {', '.join(MEASURES)}.")
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
      raise ValueError(
        f"Study {self.name!r}: reference arm {self.reference!r} is not one of its "
        f"arms: {', '.join(self.arms)}."
      )
    object.__setattr__(self, "headline", tuple(self.headline))
    unknown = [a for a in self.headline if a not in self.arms]
    if unknown:
      raise ValueError(
        f"Study {self.name!r}: headline arms {unknown} are not among its arms: "
        f"{', '.join(self.arms)}."
      )
    dirs = [arm_dirname(a) for a in self.arms]
    if len(set(dirs)) != len(dirs):
      raise ValueError(
        f"Study {self.name!r}: arm names {list(self.arms)} collide as folder names {dirs}."
      )

  @classmethod
  def from_dict(cls, name: str, d: Mapping[str, Any]) -> "Study":
    """Builds a study from a `studies()` entry: `{"arms", "reference", "measures"?,
    "description"?}`."""
    unknown = sorted(set(d) - {"arms", "reference", "measures", "description", "headline"})
    if unknown or "arms" not in d or "reference" not in d:
      raise ValueError(
        f"Study {name!r}: needs keys 'arms' and 'reference' (optional "
        f"'measures', 'description', 'headline'); got {sorted(d)}."
      )
    return cls(
      name=name,
      arms=d["arms"],
      reference=d["reference"],
      measures=tuple(d.get("measures", DEFAULT_MEASURES)),
      description=d.get("description", ""),
      headline=tuple(d.get("headline", ())),
    )

  def select(self, arms: Sequence[str] | None) -> "Study":
    """The study restricted to `arms` (in study order; the reference is always kept)."""
    if not arms:
      return self
    for a in arms:
      if a not in self.arms:
        raise ValueError(
          f"Unknown arm {a!r} in study {self.name!r}; its arms: {', '.join(self.arms)}."
        )
    keep = set(arms) | {self.reference}
    return dataclasses.replace(
      self,
      arms={a: o for a, o in self.arms.items() if a in keep},
      headline=tuple(a for a in self.headline if a in keep),
    )

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
    return {
      "name": self.name,
      "arms": self.arms,
      "reference": self.reference,
      "measures": list(self.measures),
      "description": self.description,
      "headline": list(self.headline),
    }


def grid_study(
  spec: str, reference: str | None = None, measures: Sequence[str] = DEFAULT_MEASURES
) -> Study:
  """A study over the Cartesian product of overrides.

  Args:
    spec: `"key=v1|v2;key2=w1|w2"`, e.g. `"method=cavia|mia;inner_steps=1|3"`. Keys are config
      arguments or (dotted) config fields.
    reference: the reference arm's name (`"method=cavia,inner_steps=1"`); default: the first arm.
    measures: the measures to report.

  Returns:
    A study named `grid` whose arms are named `key=value,key2=value2`.
  """
  axes = syntax.parse_grid(spec)
  keys = [k for k, _ in axes]
  arms = {}
  for combo in itertools.product(*(v for _, v in axes)):
    arms[",".join(f"{k}={v}" for k, v in zip(keys, combo))] = dict(zip(keys, combo))
  reference = reference or next(iter(arms))
  if reference not in arms:
    raise ValueError(f"Unknown reference arm {reference!r}; the grid's arms: {', '.join(arms)}.")
  return Study(
    name="grid",
    arms=arms,
    reference=reference,
    measures=tuple(measures),
    description=f"Grid over {spec}.",
  )


# -- configs ---------------------------------------------------------------------------------------


def load_config_module(path: str):
  """Imports a config file (`experiments/configs/synthetic.py`) as a module."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  candidates = [path, os.path.join(root, path)]
  for p in candidates:
    if os.path.isfile(p):
      name = "_study_config_" + re.sub(r"\W", "_", os.path.abspath(p))
      spec = importlib.util.spec_from_file_location(name, p)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      return module
  raise FileNotFoundError(f"Config file {path!r} does not exist.")


class ConfigBuilder:
  """Builds each arm's config from a config file's `get_config(arg)` and overrides.

  Precedence (later wins): the base `arg`, the arm's config arguments (the config is rebuilt with
  them), the base field `overrides` (e.g. `--config.data.data_dir=...` flags), the arm's field
  overrides, then the run's seed and the study's step budget.

  Args:
    get_config: `get_config(arg: str) -> ConfigDict` of a config file.
    arg: the base argument string (what follows the colon, e.g. `"cpu"`).
    overrides: `{dotted field: value}` applied to every arm.
    module: the config module (for its `studies()` and `ARGS`), if any.
    source: a description of the config for reports (`experiments/configs/synthetic.py:cpu`).
    args: the names of the config's arguments (an override with one of these keys rebuilds the
      config; any other sets a field). Default: the keys of `module.ARGS`, the config file's
      argument spec `{argument: default}`; without it every override is a field.
  """

  def __init__(
    self,
    get_config: Callable[[str], Any],
    arg: str = "",
    overrides: Mapping[str, Any] | None = None,
    module=None,
    source: str = "",
    args: Iterable[str] | None = None,
  ):
    self.get_config = get_config
    self.arg = arg or ""
    self.overrides = dict(overrides or {})
    self.module = module
    self.source = source or f"get_config({self.arg!r})"
    if args is None:
      args = getattr(module, "ARGS", None) or ()
    self.args = tuple(args)

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
      raise ValueError(
        f"Config {where!r} defines no studies(); use a grid of overrides instead "
        "(--grid='method=cavia|mia')."
      )
    return {name: Study.from_dict(name, d) for name, d in fn().items()}

  def study(self, name: str) -> Study:
    """One study of the config file by name (clear error listing the known ones)."""
    studies = self.studies()
    if name not in studies:
      raise ValueError(
        f"Unknown study {name!r}; known studies: {', '.join(studies)} (or a "
        "user grid, --grid='key=v1|v2;key2=w1|w2')."
      )
    return studies[name]

  def build(
    self,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    steps: int | None = None,
  ):
    """The config of one run.

    Args:
      overrides: the arm's `{key: value}` (config arguments or dotted fields).
      seed: sets `config.seed` (None: keep).
      steps: sets `config.num_train_steps` (None or 0: keep the preset's).
    """
    overrides = dict(overrides or {})
    args = {k: v for k, v in overrides.items() if k in self.args}
    config = self.get_config(syntax.merge_arg(self.arg, args))
    for k, v in self.overrides.items():
      set_field(config, k, v)
    known = ", ".join(sorted(self.args))
    for k, v in overrides.items():
      if k not in args:
        set_field(config, k, v, known)
    if seed is not None:
      config.seed = int(seed)
    if steps:
      config.num_train_steps = int(steps)
    return config


def check_shared_test_set(configs: Mapping[str, Any]) -> None:
  """Raises unless every arm evaluates on the same meta-test data and episode seed.

  Args:
    configs: `{arm: ConfigDict}`.
  """

  def key(c):
    return json.dumps(
      {
        "data": c.data.to_dict(),
        "episode_seed": c.eval.episode_seed,
        "episodes_path": c.eval.episodes_path,
        "fixed_ratios": c.eval.get("fixed_ratios", ""),
      },
      sort_keys=True,
    )

  arms = list(configs)
  ref = key(configs[arms[0]])
  for arm in arms[1:]:
    if key(configs[arm]) != ref:
      diff = config_differences(json.loads(ref), json.loads(key(configs[arm])), ignore=())
      raise ValueError(
        f"Arm {arm!r} changes the meta-test data or episodes ({'; '.join(diff)}) "
        f"against arm {arms[0]!r}; the arms of a study must be evaluated on the "
        "same support sets (paired comparison). Do not override data.*, "
        "eval.episode_seed or eval.fixed_ratios per arm."
      )


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
              f"the reference arm {study.reference!r} ({ref_path})."
            )
          if key.endswith("/idx"):
            checked += 1
  return checked
