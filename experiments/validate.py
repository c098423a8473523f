"""Checks of a run's inputs before anything is written, and the command lines' one-line errors.

* `validate_config(config)`: every numeric field in its allowed range, a known backbone, and the
  update rule buildable (`mia_jax.rules.from_config` checks the method, the ablation and their
  combination); a ValueError of one line naming the field, the bad value and what is allowed.
* `check_writable_dir(path, flag_name)`: a directory flag that exists or can be created, writable.
* `run_cli(main)`: `app.run` whose errors are one line `error: ...` on stderr, exit code 2 for a
  usage error (flags, config, arguments: anything raised before training) and 1 for an error
  while running, unless `--debug` is given (then the traceback, as absl shows it).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys

from absl import app, flags, logging

from data_pipelines import benchmarks
from mia_jax import rules
from mia_jax.model import BACKBONES

FLAGS = flags.FLAGS


def _int_at_least(low):
  return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number_above(low, strict=True):
  return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and (v > low if strict else v >= low))


# (dotted config field, predicate of its value, what is allowed).
FIELDS = (
    ("num_train_steps", _int_at_least(1), "an integer >= 1"),
    ("batch_size", _int_at_least(1), "an integer >= 1"),
    ("eval.batch_size", _int_at_least(1), "an integer >= 1"),
    ("inner_steps", _int_at_least(1), "an integer >= 1"),
    ("scan_unroll", _int_at_least(1), "an integer >= 1"),
    ("seed", _int_at_least(0), "an integer >= 0"),
    ("learning_rate", _number_above(0), "a finite number > 0"),
    ("grad_clip", _number_above(0, strict=False), "a finite number >= 0 (0: no clipping)"),
    ("log_every_steps", _int_at_least(1), "an integer >= 1"),
    ("checkpoint_every_steps", _int_at_least(1), "an integer >= 1"),
    ("keep_checkpoints", _int_at_least(1),
     "an integer >= 1 (0 would keep no checkpoint, so a run could not resume)"),
    ("eval.every_steps", _int_at_least(0), "an integer >= 0 (0: evaluate only at the end)"),
    ("data.num_test_signals", _int_at_least(0), "an integer >= 0 (0: the whole test split)"),
    ("rule.inner_lr", _number_above(0), "a finite number > 0"),
    ("model.backbone", lambda v: v in BACKBONES, "one of " + ", ".join(BACKBONES)),
)


def _get(config, dotted: str):
  for part in dotted.split("."):
    config = config[part]
  return config


def validate_config(config) -> None:
  """Raises a one-line ValueError for the first field of `config` outside its allowed values."""
  for field, ok, allowed in FIELDS:
    value = _get(config, field)
    if not ok(value):
      raise ValueError(f"config.{field}={value!r} is not allowed; expected {allowed}.")
  # The method, the ablation (and that only MIA has ablations), lr_position, the rule fields.
  rules.from_config(config.method, config.rule.to_dict())
  if config.data.source == "tfds" and config.benchmark in benchmarks.BENCHMARKS:
    benchmarks.benchmark_specs(config.benchmark, config.modalities)  # known modalities


def check_writable_dir(path: str, flag_name: str) -> None:
  """Raises a ValueError naming `--flag_name` unless `path` is (or can be made) a writable
  directory. Creates nothing."""
  if not path:
    raise ValueError(f"--{flag_name} must be a directory, got {path!r}.")
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    problem = f"{existing} is not a directory"
  elif not os.access(existing, os.W_OK | os.X_OK):
    problem = f"no write permission in {existing}"
  else:
    return
  raise ValueError(f"--{flag_name} {path} is not writable: {problem}.")


def one_line(error: BaseException) -> str:
  """The useful line of an error's message: the last one (ml_collections puts the reason of a
  config file's failure, after a traceback, there), without an `XxxError: ` prefix, after the
  flag it concerns when absl names one (`flag --config=...: ...`)."""
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  lines = [l.strip() for l in text.strip().splitlines() if l.strip()] or [type(error).__name__]
  last = re.sub(r"^[\w.]*(Error|Exception): ", "", lines[-1])
  flag = re.match(r"flag (--[\w.]+)=", lines[0])
  return f"{flag.group(1)}: {last}" if flag and len(lines) > 1 else last


def _fail(error: BaseException, code: int, summary: bool = False):
  """Prints `error: <one line>` and exits. `summary`: the message's first line (an error raised
  by our code leads with its reason; more lines, e.g. a folder tree, are for --debug), except
  for a config file's failure (`one_line`)."""
  text = str(error)
  # ml_collections wraps a config file's failure in a traceback; its reason is the last line.
  if summary and not ("Traceback" in text or "config file" in text):
    lines = text.strip().splitlines() or [type(error).__name__]
    line = lines[0] + (" (--debug shows the details)" if len(lines) > 1 else "")
  else:
    line = one_line(error)
  print(f"error: {line}", file=sys.stderr)
  sys.exit(code)


def check_argv(argv) -> None:
  """The start of both programs: orbax's INFO logs quieted unless --verbosity is given, and no
  positional arguments (a usage error)."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")


@contextlib.contextmanager
def exit_on_error(code: int):
  """Turns an exception into `error: <one line>` on stderr and exit `code` (not with --debug)."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if FLAGS.debug:
      raise
    _fail(e, code, summary=True)


def _parse_flags(argv):
  try:
    return FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    if any(re.fullmatch(r"--debug(=(true|1))?", a, re.IGNORECASE) for a in argv[1:]):
      raise
    if isinstance(e, (KeyError, AttributeError)):  # ml_collections: an unknown `--config.x.y`
      name = one_line(e).strip("'\"")
      flag = next((a.split("=")[0] for a in argv[1:] if name in a.split("=")[0]), None)
      e = ValueError(f"{flag}: no config field {name!r}") if flag else e
    _fail(e, 2)


def run_cli(main) -> None:
  """`app.run(main)` with one-line flag errors (exit 2) and a `--debug` flag."""
  if "debug" not in FLAGS:
    flags.DEFINE_bool("debug", False, "Show an error's traceback instead of one line.")
  app.run(main, flags_parser=_parse_flags)
