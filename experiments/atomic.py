"""Atomic writes: a file that marks state is either the old one or the whole new one.

Every file a run or a study keeps to say what happened (`config.json`, `specs.json`,
`results.json`, which marks a run finished, the diverged mark, the trimmed `metrics.jsonl`, a
study's `study.json` and `results.md`, the archive's episodes, reconstruct's output) is written
through `write(path, fill)`: `fill` writes into a temporary file in the same folder, which is
flushed to disk and renamed over `path`. A run killed mid-write leaves the old file (or none)
and, at worst, a `.<name>.*.tmp` file that the next write replaces nothing with and that nothing
reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import IO, Any, Callable, Mapping

import numpy as np

_UMASK = os.umask(0)  # read once (os.umask can only be read by setting it), and set back
os.umask(_UMASK)


def write(path: str | os.PathLike, fill: Callable[[IO], Any], binary: bool = False) -> None:
  """Writes `path` atomically: `fill(f)` writes into a temporary file, renamed over `path`.

  Args:
    path: the file to (re)place. Its folder must exist.
    fill: writes the content into the open file object it is given.
    binary: open the temporary file in binary mode (for numpy's writers).
  """
  path = os.fspath(path)
  folder, name = os.path.split(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
  try:
    os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would make it (mkstemp's is private: 0o600)
    with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
      fill(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  write(path, lambda f: f.write(text))


def write_json(path: str | os.PathLike, value: Any, **dump_kwargs: Any) -> None:
  """Writes `value` as JSON to `path` atomically (`dump_kwargs`: `json.dump`'s, e.g. indent)."""
  write(path, lambda f: json.dump(value, f, **dump_kwargs))


def write_npz(
  path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compressed: bool = False
) -> None:
  """Writes `arrays` as an `.npz` to `path` atomically (the name is kept as given: numpy adds no
  `.npz` to a file object)."""
  save = np.savez_compressed if compressed else np.savez
  write(path, lambda f: save(f, **arrays), binary=True)
