"""The command lines' plumbing: one-line errors, exit codes, logging, and flag checks.

* `run_cli(main)`: `app.run` whose errors are one line `error: ...` on stderr, exit code 2 for a
  usage error (flags, config, arguments: anything raised before training) and 1 for an error
  while running, unless `--debug` is given (then the traceback, as absl shows it);
* `check_argv(argv)`: the start of every program (INFO logging of this project's own lines);
* `check_config_file(argv)`: `--config` names a Python config file with `get_config`.

Used by the programs `experiments.main`, `experiments.ablate` and `experiments.reconstruct`.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import sys

from absl import app, flags, logging

from experiments.run import disk

FLAGS = flags.FLAGS


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
  if disk.is_disk_full(error) and not isinstance(error, disk.DiskFull):
    where = FLAGS["workdir"].value if "workdir" in FLAGS else None
    error = disk.DiskFull(disk.disk_full_message(where or "the output folder", -1))
  text = str(error)
  # ml_collections wraps a config file's failure in a traceback; its reason is the last line.
  if summary and not ("Traceback" in text or "config file" in text):
    lines = text.strip().splitlines() or [type(error).__name__]
    line = lines[0] + (" (--debug shows the details)" if len(lines) > 1 else "")
  else:
    line = one_line(error)
  jax = sys.modules.get("jax")
  if jax is not None and jax.distributed.is_initialized():
    # One of several processes: say which, and leave at once; a normal exit would wait at the
    # runtime's shutdown barrier for processes that may be gone.
    print(
      f"error: process {jax.process_index()} of {jax.process_count()}: {line}",
      file=sys.stderr,
      flush=True,
    )
    os._exit(code)
  print(f"error: {line}", file=sys.stderr)
  sys.exit(code)


class OwnInfoOnly:
  """A log filter: INFO records only from this project's code (its driver's lines: "Config: ...",
  "Resumed from step N"); other libraries' INFO records (orbax logs every file operation, tfds
  every dataset it opens) are dropped. Warnings and errors pass from everywhere."""

  def __init__(self):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    self._ours = tuple(
      os.path.join(root, p) + os.sep for p in ("experiments", "data_pipelines", "mia_jax")
    )

  def filter(self, record) -> bool:
    return record.levelno >= 30 or os.path.abspath(record.pathname).startswith(self._ours)


def check_argv(argv) -> None:
  """The start of both programs: absl logs INFO, but only this project's (`OwnInfoOnly`), unless
  --verbosity is given (then everything at that level); and no positional arguments (a usage
  error)."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(OwnInfoOnly())
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")


@contextlib.contextmanager
def exit_on_error(code: int):
  """Turns an exception into `error: <one line>` on stderr and exit `code` (not with --debug)."""
  try:
    yield
  except Exception as e:
    if FLAGS.debug:
      raise
    _fail(e, code, summary=True)


def check_config_file(argv) -> None:
  """A `--config=FILE[:args]` must name a Python config file defining `get_config`, checked
  before the file is run (a README or a setup.py would fail in a confusing way, or run)."""
  for i, a in enumerate(argv[1:], 1):
    if a.startswith("--config="):
      value = a.split("=", 1)[1]
    elif a == "--config" and i + 1 < len(argv):
      value = argv[i + 1]
    else:
      continue
    path = value.split(":", 1)[0]
    example = "experiments/configs/synthetic.py:cpu"
    if not path.endswith(".py"):
      raise ValueError(
        f"--config {value!r}: {path!r} is not a Python config file; give one of "
        f"experiments/configs/*.py with its arguments, e.g. {example}."
      )
    if not os.path.isfile(path):
      raise ValueError(
        f"--config {value!r}: the file {path!r} does not exist (configs are "
        f"experiments/configs/*.py, e.g. {example})."
      )
    try:
      with open(path) as f:
        tree = ast.parse(f.read(), path)
    except (SyntaxError, ValueError, OSError) as e:
      raise ValueError(
        f"--config {value!r}: {path!r} is not a readable Python file ({type(e).__name__}: {e})."
      ) from None
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    names |= {
      t.id
      for n in tree.body
      if isinstance(n, ast.Assign)
      for target in n.targets
      for t in ast.walk(target)
      if isinstance(t, ast.Name)
    }
    names |= {
      a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names
    }
    if "get_config" not in names:
      raise ValueError(
        f"--config {value!r}: {path!r} defines no get_config(), so it is not a "
        f"config file; configs are experiments/configs/*.py, e.g. {example}."
      )


def _parse_flags(argv):
  try:
    if "config" in FLAGS:
      check_config_file(argv)
    return FLAGS(argv)
  except Exception as e:
    if any(re.fullmatch(r"--debug(=(true|1))?", a, re.IGNORECASE) for a in argv[1:]):
      raise
    if isinstance(e, (KeyError, AttributeError)):  # ml_collections: an unknown `--config.x.y`
      inner = e
      while inner.args and isinstance(inner.args[0], BaseException):  # AttributeError(KeyError)
        inner = inner.args[0]
      text = str(inner.args[0]) if inner.args else str(inner)
      name = text.strip().splitlines()[0].strip("'\"") if text.strip() else ""
      hint = re.search(r'Did you mean "([\w.]+)"', text)
      flag = next((a.split("=")[0] for a in argv[1:] if name and name in a.split("=")[0]), None)
      if flag:
        e = ValueError(
          f"{flag}: no config field {name!r}"
          + (f" (did you mean {hint.group(1)!r}?)" if hint else "")
        )
    _fail(e, 2)


def run_cli(main) -> None:
  """`app.run(main)` with one-line flag errors (exit 2) and a `--debug` flag."""
  if "debug" not in FLAGS:
    flags.DEFINE_bool("debug", False, "Show an error's traceback instead of one line.")
  # A full disk's error records (orbax logs each failed write with its traceback) are dropped:
  # the one `error:` line names the path.
  logging.get_absl_handler().addFilter(disk.QuietDiskFull())
  app.run(main, flags_parser=_parse_flags)
