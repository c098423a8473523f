"""A workdir belongs to one config: the restart checks of `train.train_and_evaluate`.

A workdir holds one run: `config.json`, `metrics.jsonl`, `episodes.npz`, `checkpoints/`,
`results.json`. Rerunning the same command resumes it. Before anything in it is written:

* `check_restart(config, workdir)`: the stored `config.json` must equal the new config in every
  field that changes the result; only `RESTART_TOLERANT_FIELDS` (the budget, logging and
  checkpoint intervals, where the data lives, the evaluation batch) may differ. Fields only one
  side has (added or removed by a code change) are not a difference. A workdir with metrics or
  results but no checkpoint (deleted) is refused too, rather than retrained into the same files;
  a run stopped before its first checkpoint (metrics, an empty `checkpoints/`) restarts from 0.
* `trim_metrics(path, step)`: on a resume, the metrics lines past the restored step are dropped
  (they are logged again), so `metrics.jsonl` holds each step once.

The ablation runner checks its runs with the same `config_differences`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

from experiments import atomic
from experiments.configs.shared import RELEASED_VS_SPEC

# Config fields that may differ between a run and a restart of it (budget, logging, where the
# data lives); any other difference means the workdir holds another config.
RESTART_TOLERANT_FIELDS = (
  "num_train_steps",
  "log_every_steps",
  "checkpoint_every_steps",
  "keep_checkpoints",
  "data.data_dir",
  "eval.every_steps",
  "eval.batch_size",
  "tensorboard",
  "log_reconstructions",
)
RUN_FILES = ("metrics.jsonl", "results.json")
# After a divergence (`DIVERGED_FILE` in the workdir), these may change too: the rerun resumes
# from the last good checkpoint with them, and `HISTORY_FILE` records the change. (grad_clip
# changes the optimiser's state, so a checkpoint without it cannot take it: a new workdir.)
DIVERGENCE_FIELDS = ("learning_rate", "skip_nonfinite")
DIVERGED_FILE = "diverged.json"
HISTORY_FILE = "config_history.jsonl"
# Fields added after runs were stored, with the value a config without them computed with (the
# paper's values in `configs.shared.RELEASED_VS_SPEC`, docs/method.md section 9): a stored config
# that lacks one is compared with this value, so an earlier run is not mistaken for one with the
# new defaults.
ADDED_FIELDS = {k: spec for k, (_, spec) in RELEASED_VS_SPEC.items()}


def _flat(d: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    key = f"{prefix}.{k}" if prefix else str(k)
    if isinstance(v, Mapping):
      out.update(_flat(v, key))
    else:
      out[key] = v
  return out


def config_differences(
  old: Mapping, new: Mapping, ignore: Sequence[str] = RESTART_TOLERANT_FIELDS
) -> list[str]:
  """`["key: old != new", ...]` for the fields of two config dicts (JSON form) that both have
  and that differ, except those in `ignore`."""
  a, b = _flat(json.loads(json.dumps(old))), _flat(json.loads(json.dumps(new)))
  for side in (a, b):
    for k, v in ADDED_FIELDS.items():
      side.setdefault(k, v)
  # Fields only one side has (added or removed by a code change) are not a difference.
  return [
    f"{k}: {a[k]!r} != {b[k]!r}"
    for k in sorted(set(a) & set(b))
    if k not in ignore and a[k] != b[k]
  ]


def has_checkpoint(workdir: str) -> bool:
  folder = os.path.join(workdir, "checkpoints")
  return os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))


def trained_nothing(workdir: str) -> bool:
  """Whether `workdir` holds only what a start that failed before its first checkpoint leaves
  (config.json, specs.json, episodes.npz, an empty or partial metrics.jsonl): nothing to lose."""
  return not has_checkpoint(workdir) and not os.path.isfile(os.path.join(workdir, "results.json"))


def check_restart(config, workdir: str) -> list[str]:
  """Raises ValueError if `workdir` holds a run of another config, or a run whose checkpoints
  are gone; returns for a new workdir or a resumable run of this config.

  A workdir where nothing was trained (`trained_nothing`: a start that failed, say on a batch too
  large) takes any config: its files are replaced. After a divergence (`DIVERGED_FILE`), the
  `DIVERGENCE_FIELDS` may change as well; their changes are returned (for `HISTORY_FILE`).
  """
  path = os.path.join(workdir, "config.json")
  changed: list[str] = []
  metrics = os.path.join(workdir, "metrics.jsonl")
  no_steps = not os.path.isfile(metrics) or os.path.getsize(metrics) == 0
  if (
    os.path.isfile(path)
    and trained_nothing(workdir)
    and (no_steps or os.path.isdir(os.path.join(workdir, "checkpoints")))
  ):
    return changed  # a failed start: its config.json is replaced by this run's
  if os.path.isfile(path):
    old = read_json(
      path,
      "the run's config",
      "use a new --workdir, or restore the file (an archived run keeps a copy) to resume this run.",
    )
    if not isinstance(old, dict):
      raise ValueError(
        f"{path} (the run's config) holds {type(old).__name__}, not a config; use a new --workdir."
      )
    diff = config_differences(old, json.loads(config.to_json()))
    if diff and os.path.isfile(os.path.join(workdir, DIVERGED_FILE)):
      changed = [d for d in diff if d.split(":")[0] in DIVERGENCE_FIELDS]
      diff = [d for d in diff if d not in changed]
    if diff:
      raise ValueError(
        f"--workdir {workdir} holds a run of another config ({'; '.join(diff[:6])}"
        f"{'; ...' if len(diff) > 6 else ''}); use a new --workdir. Fields that may change on "
        f"a restart: {', '.join(RESTART_TOLERANT_FIELDS)}."
      )
  found = [n for n in RUN_FILES if os.path.isfile(os.path.join(workdir, n))]
  if found == ["metrics.jsonl"] and os.path.isdir(os.path.join(workdir, "checkpoints")):
    return  # stopped before its first checkpoint: it restarts from step 0, nothing is lost
  if found and not has_checkpoint(workdir):
    raise ValueError(
      f"--workdir {workdir} has {' and '.join(found)} of a run but no checkpoint to resume "
      "from (checkpoints/ is gone); use a new --workdir, or delete those files to retrain "
      "from step 0."
    )


def read_json(path: str, what: str, remedy: str) -> Any:
  """`json.load` of a workdir file, with one line naming the file, what it is and what to do
  when it is not readable JSON (truncated by a kill, or edited by hand)."""
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise ValueError(f"{path} ({what}) is not readable JSON ({e}); {remedy}") from None
  except OSError as e:
    raise ValueError(f"{path} ({what}) cannot be read ({e.strerror or e}); {remedy}") from None


def _metrics_line(line: str) -> dict | None:
  try:
    row = json.loads(line)
  except ValueError:
    return None
  return row if isinstance(row, dict) else None


def trim_metrics(path: str, step: int, log=None) -> None:
  """Drops the lines of `metrics.jsonl` logged after `step` (a resume logs them again), and
  lines that are not JSON records (a line half-written when the run was killed), as a journal
  is replayed; `log(message)` is told how many of those were dropped."""
  if not os.path.isfile(path):
    return
  with open(path, encoding="utf-8", errors="replace") as f:  # bytes of a torn write: dropped
    lines = f.readlines()
  rows = [(line, _metrics_line(line)) for line in lines if line.strip()]
  broken = sum(row is None for _, row in rows)
  keep = [
    line if line.endswith("\n") else line + "\n"
    for line, row in rows
    if row is not None and row.get("step", 0) <= step
  ]
  if broken and log:
    log(
      f"{path}: dropped {broken} line(s) that are not JSON records (written when the run was "
      "stopped); the steps after the checkpoint are logged again."
    )
  if keep != lines:
    atomic.write(path, lambda f: f.writelines(keep))


# ------------------------------------------------------------------------------------------------
# One run per workdir at a time.

LOCK_FILE = "run.lock"


# What a run keeps in its workdir, and whether each is a file or a folder.
RUN_ENTRIES = {
  "config.json": "file",
  "specs.json": "file",
  "metrics.jsonl": "file",
  "results.json": "file",
  "episodes.npz": "file",
  LOCK_FILE: "file",
  DIVERGED_FILE: "file",
  HISTORY_FILE: "file",
  "checkpoints": "folder",
}


def check_entries(workdir: str) -> None:
  """Raises ValueError naming the first of `RUN_ENTRIES` in `workdir` that is of the wrong kind
  (a folder where the run keeps a file, a file or dangling link where it keeps a folder)."""
  for name, kind in RUN_ENTRIES.items():
    path = os.path.join(workdir, name)
    if not os.path.lexists(path):
      continue
    if os.path.isdir(path) if kind == "folder" else os.path.isfile(path):
      continue
    what = (
      "a dangling link"
      if not os.path.exists(path)
      else "a folder"
      if os.path.isdir(path)
      else "a file"
      if os.path.isfile(path)
      else "not a regular file"
    )
    raise ValueError(
      f"--workdir {workdir}: {name} is {what}, where a run keeps a {kind}; move it "
      "out of the workdir (or use a new --workdir) and rerun."
    )


class WorkdirBusy(ValueError):
  """The workdir is locked by another live process (`WorkdirLock`)."""


_HELD: dict[str, int] = {}  # lock paths this process holds -> nesting depth


def _holder(path: str) -> dict | None:
  """The lock file's `{"pid", "host", "started"}`, {} if unreadable, None if there is none."""
  try:
    with open(path) as f:
      data = json.load(f)
    return data if isinstance(data, dict) else {}
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}


def _alive(pid: Any) -> bool:
  if not isinstance(pid, int) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's live process
    return True
  return True


def lock_holder(workdir: str) -> dict | None:
  """Who holds `workdir`'s lock: `{"pid", "host", "started"}` of a live holder (or of one on
  another host, which cannot be checked), None when it is free or the holder is dead."""
  import socket

  info = _holder(os.path.join(workdir, LOCK_FILE))
  if info is None:
    return None
  if info.get("host") == socket.gethostname() and not _alive(info.get("pid")):
    return None
  if not info:  # unreadable: being written this instant, or garbage; treat as held briefly
    return {"pid": "?", "host": "?", "started": "?"}
  return info


class WorkdirLock:
  """An exclusive lock on a workdir: `workdir/run.lock`, holding the PID and host.

  Taken before anything else is written to the workdir and released on exit (a `with` block,
  or `release`). A lock left by a process that died (killed, out of memory) on this host is
  detected and taken over; one from another host cannot be checked and names its host, so the
  user can delete it when sure. Re-entrant within a process (the driver's entry points nest).

  Raises (on `acquire`):
    WorkdirBusy: another live process holds the lock (the message names its PID).
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.abspath(os.path.join(workdir, LOCK_FILE))

  def acquire(self) -> "WorkdirLock":
    import socket
    import time

    if self.path in _HELD:
      _HELD[self.path] += 1
      return self
    check_entries(self.workdir)  # a folder where a file belongs (or the reverse): one line
    # A workdir this lock creates is removed again on release if nothing else was written to
    # it (a run refused by its checks leaves no folder behind).
    self._created = not os.path.exists(self.workdir)
    os.makedirs(self.workdir, exist_ok=True)
    me = {
      "pid": os.getpid(),
      "host": socket.gethostname(),
      "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for _ in range(20):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        info = _holder(self.path)
        if info is None:
          continue  # released in between: try again
        if info == {}:  # written this instant by another process, or garbage
          time.sleep(0.05)
          info = _holder(self.path)
          if info == {}:
            raise WorkdirBusy(
              f"--workdir {self.workdir} has an unreadable lock file {self.path}; if no run "
              "is using this workdir, delete that file and rerun."
            ) from None
          continue
        if info.get("host") == me["host"] and not _alive(info.get("pid")):
          try:  # stale: one taker renames it away, the others see it gone and retry
            os.rename(self.path, f"{self.path}.stale.{os.getpid()}")
            os.remove(f"{self.path}.stale.{os.getpid()}")
          except FileNotFoundError:
            pass
          continue
        where = "" if info.get("host") == me["host"] else f" on host {info.get('host')}"
        raise WorkdirBusy(
          f"--workdir {self.workdir} is in use by another run (PID {info.get('pid')}{where}, "
          f"since {info.get('started')}); wait for it to finish or stop it. If that process is "
          f"gone, delete {self.path} and rerun."
        ) from None
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      _HELD[self.path] = 1
      return self
    raise WorkdirBusy(
      f"Could not take the lock {self.path}: it changed hands 20 times; is a "
      "crowd of runs starting on this workdir?"
    )

  def release(self) -> None:
    depth = _HELD.get(self.path, 0)
    if depth > 1:
      _HELD[self.path] = depth - 1
      return
    _HELD.pop(self.path, None)
    if depth and (_holder(self.path) or {}).get("pid") == os.getpid():
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass
      if getattr(self, "_created", False):
        try:
          os.rmdir(self.workdir)  # only if empty
        except OSError:
          pass

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


class NoLock:
  """`WorkdirLock`'s interface, locking nothing (the other processes of a multi-process run)."""

  def acquire(self) -> "NoLock":
    return self

  def release(self) -> None:
    pass

  def __enter__(self) -> "NoLock":
    return self

  def __exit__(self, *exc) -> None:
    pass


def mark_diverged(workdir: str, step: int, last_checkpoint: int | None) -> None:
  """Records a divergence in `workdir` (`DIVERGED_FILE`): the rerun may change the
  `DIVERGENCE_FIELDS` and resume from the last good checkpoint."""
  atomic.write_json(
    os.path.join(workdir, DIVERGED_FILE), {"step": step, "last_checkpoint": last_checkpoint}
  )


def record_restart(config, workdir: str) -> list[str]:
  """On a rerun after a divergence: appends the changed `DIVERGENCE_FIELDS` to `HISTORY_FILE`
  (`{"step": the checkpoint it resumes from, "diverged_at": step, "changed": [...]}`) and clears
  the divergence mark. Call before the
  new `config.json` is written. Returns the changes."""
  marker = os.path.join(workdir, DIVERGED_FILE)
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(marker) or not os.path.isfile(path):
    return []
  old = read_json(path, "the run's config", "use a new --workdir.")
  mark = read_json(marker, "the divergence mark", "delete it to resume as before.")
  mark = mark if isinstance(mark, dict) else {}
  changed = [
    d
    for d in config_differences(old, json.loads(config.to_json()))
    if d.split(":")[0] in DIVERGENCE_FIELDS
  ]
  if changed:
    with open(os.path.join(workdir, HISTORY_FILE), "a") as f:
      f.write(
        json.dumps(
          {"step": mark.get("last_checkpoint"), "diverged_at": mark.get("step"), "changed": changed}
        )
        + "\n"
      )
  os.remove(marker)
  return changed
