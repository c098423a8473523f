"""Shared config pieces: argument parsing and the defaults every benchmark starts from.

Configs are chosen with `--config=experiments/configs/FILE.py:key=value,key=value,flag`, as in
big_vision: `get_config(arg)` receives the string after the colon.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import ml_collections

from mia_jax import rules
from mia_jax.model import ModelConfig

PRESETS = ("smoke", "cpu", "full")


def parse_arg(arg: str | None, allowed: Mapping[str, Any]) -> dict[str, Any]:
  """Parses `"method=mia,inner_steps=5,smoke"` into a dict, typed like the defaults in `allowed`.

  A bare word is a preset name (`smoke`, `cpu`, `full`) and sets `preset`. Unknown keys and
  presets raise a ValueError listing what is allowed.
  """
  out = dict(allowed)
  if not arg:
    return out
  for item in arg.split(","):
    item = item.strip()
    if not item:
      continue
    if "=" not in item:
      if item not in PRESETS:
        raise ValueError(f"Unknown config flag {item!r}; allowed presets: {', '.join(PRESETS)} "
                         f"(or key=value with key in {', '.join(sorted(allowed))}).")
      out["preset"] = item
      continue
    key, value = (s.strip() for s in item.split("=", 1))
    if key not in allowed:
      raise ValueError(f"Unknown config argument {key!r}; allowed: {', '.join(sorted(allowed))}.")
    out[key] = typed_value(key, value, allowed[key])
  return out


def typed_value(key: str, value, like):
  """`value` (a command-line string) typed like `like`: bool (true/false/1/0), int, float or str.

  The one parser of typed command-line values (config arguments and study overrides). A value
  that is not a string, or a `like` that is a string or None, is returned as it is.
  """
  if not isinstance(value, str) or isinstance(like, str) or like is None:
    return value
  try:
    if isinstance(like, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError
      return value.lower() in ("true", "1")
    if isinstance(like, int):
      return int(value)
    if isinstance(like, float):
      return float(value)
  except ValueError:
    raise ValueError(f"Config argument {key}={value!r} is not a valid "
                     f"{type(like).__name__}.") from None
  return value


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by all benchmarks (the paper's settings where the spec gives them)."""
  c = ml_collections.ConfigDict()
  c.benchmark = ""
  c.method = "mia"
  c.modalities = ""
  c.seed = 0
  c.preset = "full"

  c.inner_steps = 3
  c.first_order = False
  c.remat = False
  c.scan_unroll = 1             # inner steps per compiled loop iteration (K = fully unrolled)
  c.learning_rate = 1e-4
  c.grad_clip = 0.0
  c.batch_size = 64
  c.num_train_steps = 100_000

  # The model and rule fields and their defaults are the library's own (ModelConfig: the built-in
  # backbones; RuleConfig: the methods' flat fields, see mia_jax.rules.from_config).
  c.model = ml_collections.ConfigDict(dataclasses.asdict(ModelConfig()))
  c.rule = ml_collections.ConfigDict(dataclasses.asdict(rules.RuleConfig()))

  c.data = ml_collections.ConfigDict(dict(
      source="tfds",            # "tfds" (a builder in data_pipelines/) or "npz" (your arrays)
      data_dir="",              # tfds data dir; "" = tfds default (~/tensorflow_datasets)
      builder_config="default",
      npz_train="", npz_test="",  # for source="npz"
      num_test_signals=0,       # 0 = the whole test split
      # source="npz" (or arrays passed from Python): the modalities come from the train arrays;
      # these say what arrays cannot. Each is one value for every modality or "name=value,..."
      # (a bare value then covers the unnamed ones); "" = the default, which for a modality of a
      # known benchmark (config.benchmark) is that benchmark's value. See README "Your own data".
      ratio_range="",           # support ratio "LO:HI"; default 0.001:1
      ratio_bins="",            # evaluation bin edges "E0:E1:...:Ek"; default quarters of [0, Rmax]
      output_bias="",           # added to the INR output; default the train array's mean (2 dp)
      error_normaliser="",      # none | amplitude; default amplitude where the data give
                                # {name}_amplitude, else none
      grid_ndims="",            # "name=2": grid axes of an array without a channel axis ([n, H, W])
  ))
  c.eval = ml_collections.ConfigDict(dict(
      episode_seed=1234,        # the fixed meta-test episodes (identical for every method)
      episodes_path="",         # load episodes from this .npz instead (e.g. from another codebase)
      batch_size=64,
      every_steps=0,            # 0 = evaluate only at the end
  ))
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  return c
