"""Checks of a run's inputs before anything is written, and the command lines' one-line errors.

* `validate_config(config)`: every numeric field in its allowed range, a known backbone, and the
  update rule buildable (`experiments.methods.build_rule` checks the method, the ablation and
  their combination); a ValueError of one line naming the field, the bad value and what is
  allowed.
* `check_writable_dir(path, flag_name)`: a directory flag that exists or can be created, writable.
* `run_cli(main)`: `app.run` whose errors are one line `error: ...` on stderr, exit code 2 for a
  usage error (flags, config, arguments: anything raised before training) and 1 for an error
  while running, unless `--debug` is given (then the traceback, as absl shows it).
"""

from __future__ import annotations

import math
import os
import tempfile

from absl import flags

from data_pipelines import benchmarks, registry
from experiments import methods, syntax
from experiments.run import build
from mia_jax import meta_step, optim, sampling
from mia_jax.model import BACKBONES

FLAGS = flags.FLAGS


def _int_at_least(low):
  return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number_above(low, strict=True):
  return lambda v: (
    isinstance(v, (int, float))
    and not isinstance(v, bool)
    and math.isfinite(v)
    and (v > low if strict else v >= low)
  )


DATA_SOURCES = ("tfds", "npz")

# (dotted config field, predicate of its value, what is allowed).
FIELDS = (
  ("num_train_steps", _int_at_least(1), "an integer >= 1"),
  ("batch_size", _int_at_least(1), "an integer >= 1"),
  ("eval.batch_size", _int_at_least(1), "an integer >= 1"),
  ("inner_steps", _int_at_least(1), "an integer >= 1"),
  ("scan_unroll", _int_at_least(1), "an integer >= 1"),
  ("seed", lambda v: _int_at_least(0)(v) and v < 2**32, "an integer in [0, 2^32)"),
  ("eval.episode_seed", lambda v: _int_at_least(0)(v) and v < 2**32, "an integer in [0, 2^32)"),
  ("learning_rate", _number_above(0), "a finite number > 0"),
  ("grad_clip", _number_above(0, strict=False), "a finite number >= 0 (0: no clipping)"),
  ("lr_schedule", lambda v: v in optim.LR_SCHEDULES, "one of " + ", ".join(optim.LR_SCHEDULES)),
  ("warmup_steps", _int_at_least(0), "an integer >= 0"),
  ("log_every_steps", _int_at_least(1), "an integer >= 1"),
  ("log_reconstructions", _int_at_least(0), "an integer >= 0 (0: no figure)"),
  ("checkpoint_every_steps", _int_at_least(1), "an integer >= 1"),
  (
    "keep_checkpoints",
    _int_at_least(1),
    "an integer >= 1 (0 would keep no checkpoint, so a run could not resume)",
  ),
  ("eval.every_steps", _int_at_least(0), "an integer >= 0 (0: evaluate only at the end)"),
  ("data.num_test_signals", _int_at_least(0), "an integer >= 0 (0: the whole test split)"),
  ("rule.inner_lr", _number_above(0), "a finite number > 0"),
  ("rule.grad_scale", _number_above(0, strict=False), "a finite number >= 0 (0: no scaler)"),
  ("model.backbone", lambda v: v in BACKBONES, "one of " + ", ".join(BACKBONES)),
  ("model.hidden", _int_at_least(1), "an integer >= 1"),
  ("model.num_layers", _int_at_least(3), "an integer >= 3 (encoder, modulated, output)"),
  ("model.rank", _int_at_least(1), "an integer >= 1"),
  (
    "model.ff_dim",
    lambda v: _int_at_least(2)(v) and v % 2 == 0,
    "an even integer >= 2 (cos and sin halves)",
  ),
  ("model.ff_sigma", _number_above(0, strict=False), "a finite number >= 0"),
  ("model.latent_dim", _int_at_least(1), "an integer >= 1"),
  ("model.w0", _number_above(0), "a finite number > 0"),
  ("model.latent_init_std", _number_above(0, strict=False), "a finite number >= 0"),
  ("model.token_width", _int_at_least(0), "an integer >= 0 (0: the latent's last axis)"),
  (
    "support_counts",
    lambda v: v in sampling.SUPPORT_COUNTS,
    "one of " + ", ".join(sampling.SUPPORT_COUNTS),
  ),
  (
    "compute_dtype",
    lambda v: v in meta_step.COMPUTE_DTYPES,
    "one of " + ", ".join(meta_step.COMPUTE_DTYPES),
  ),
  ("rule.scaler_lr_multiplier", _number_above(0), "a finite number > 0 (1: the paper's rate)"),
  ("data.source", lambda v: v in DATA_SOURCES, "one of " + ", ".join(DATA_SOURCES)),
)

# Fields that only a run on the user's own arrays (data.source="npz") reads.
OWN_DATA_FIELDS = (
  "npz_train",
  "npz_test",
  "ratio_range",
  "ratio_bins",
  "output_bias",
  "error_normaliser",
  "grid_ndims",
)


def _get(config, dotted: str):
  for part in dotted.split("."):
    config = config[part]
  return config


def _check_data(config) -> None:
  """The data fields: a known dataset, own-data fields only where they are read, and a
  `data.data_dir` that is a directory or can be made one."""
  data = config.data
  if data.source == "tfds":
    registry.check_name(data.name)  # a ValueError listing the known datasets
    given = [f for f in OWN_DATA_FIELDS if data.get(f, "")]
    if given:
      raise ValueError(
        f"config.data.{given[0]}={data[given[0]]!r} is read only with data.source='npz' (your "
        f"own arrays); with data.source='tfds' the modalities of {data.name!r} are fixed "
        "(data_pipelines/benchmarks.py). Leave it empty, or set data.source='npz'."
      )
    if data.data_dir:
      check_writable_dir(data.data_dir, "config.data.data_dir", need_write=False)
  # With data.source="npz" the files (or arrays passed from Python) are checked when read
  # (`build.build_sources`, in `train.prepare`).


def validate_config(config) -> None:
  """Raises a one-line ValueError for the first field of `config` outside its allowed values."""
  for field, ok, allowed in FIELDS:
    value = _get(config, field)
    if not ok(value):
      raise ValueError(f"config.{field}={value!r} is not allowed; expected {allowed}.")
  if config.lr_schedule == "warmup_cosine" and config.warmup_steps >= config.num_train_steps:
    raise ValueError(
      f"config.warmup_steps={config.warmup_steps} must be below "
      f"config.num_train_steps={config.num_train_steps} with "
      "lr_schedule='warmup_cosine' (the cosine decays to 0 at the last step)."
    )
  # The method, the ablation (and that only MIA has ablations), lr_position, the rule fields.
  methods.build_rule(config.method, config.rule.to_dict())
  syntax.parse_fixed_ratios(config.eval.get("fixed_ratios", ""))  # numbers in (0, 1]
  build.model_config_from(config.model.to_dict())  # the model's names (latent_map, ...)
  _check_data(config)
  if config.data.source == "tfds" and config.benchmark in benchmarks.BENCHMARKS:
    benchmarks.benchmark_specs(config.benchmark, config.modalities)  # known modalities


def check_writable_dir(path: str, flag_name: str, need_write: bool = True) -> None:
  """Raises a ValueError naming `--flag_name` unless `path` is (or can be made) a writable
  directory. Leaves nothing behind (to be sure, it makes and removes an empty directory).
  `need_write=False`: an existing directory need only be readable (e.g. a prepared dataset); one
  that does not exist yet must still be creatable."""
  if not path:
    raise ValueError(f"--{flag_name} must be a directory, got {path!r}.")
  link = os.path.abspath(path)
  while link != os.path.dirname(link) and not os.path.lexists(link):
    link = os.path.dirname(link)
  if os.path.islink(link) and not os.path.exists(link):
    raise ValueError(
      f"--{flag_name} {path}: {link} is a symbolic link to "
      f"{os.readlink(link)}, which does not exist; create the target, remove the "
      "link, or give another directory."
    )
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  exists = existing == os.path.abspath(path)
  if not os.path.isdir(existing):
    problem = f"{existing} is not a directory"
  elif exists and not need_write:
    if os.access(existing, os.R_OK | os.X_OK):
      return
    problem = f"no read permission in {existing}"
  elif not os.access(existing, os.W_OK | os.X_OK):
    problem = f"no write permission in {existing}"
  else:
    # os.access trusts permission bits; root "may write" /proc, where nothing can be created.
    # So try: an empty directory made and removed at once.
    try:
      os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".mia_jax_check_"))
      return
    except OSError as e:
      problem = f"cannot create a directory in {existing} ({e.strerror})"
  raise ValueError(
    f"--{flag_name} {path} is not {'writable' if need_write else 'usable'}: {problem}."
  )
