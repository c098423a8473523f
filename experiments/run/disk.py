"""A full disk: one line naming the path, and the rerun resumes once space is freed.

`train.train_prepared` checks the free space before each checkpoint (`check_free_space`: a
save that fails half-way reports through orbax's asynchronous threads, in hundreds of lines),
turns any other full-disk error into `DiskFull` (`raise_if_disk_full`, `finish_saves`), and the
command-line programs drop the error records a full disk makes (`QuietDiskFull`), so the one
`error:` line is all a user sees. Orbax removes the half-written checkpoint on the rerun.
"""

from __future__ import annotations

import errno
import os
import shutil

# A full disk: one line naming the path, and the rerun resumes once space is freed.

SPARE_BYTES = 1 << 20  # kept free beside a checkpoint, for metrics, events and results
DISK_FULL_SIGNS = ("No space left on device", "os_error_code='28'", "[Errno 28]")


class DiskFull(RuntimeError):
  """The disk under a workdir is full; the message names the path and the step a rerun resumes
  from."""

  errno = errno.ENOSPC


def is_disk_full(error: BaseException | None) -> bool:
  """Whether `error`, or an error it was raised from, is a full disk (`ENOSPC`; orbax and
  tensorstore report it as a `ValueError` naming `os_error_code='28'`)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, DiskFull) or (isinstance(error, OSError) and error.errno == errno.ENOSPC):
      return True
    if any(s in str(error) for s in DISK_FULL_SIGNS):
      return True
    error = error.__cause__ or error.__context__
  return False


def _size(n: float) -> str:
  for unit in ("bytes", "KB", "MB", "GB"):
    if n < 1024 or unit == "GB":
      return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
    n /= 1024
  return f"{n:.1f} TB"


def disk_full_message(
  path: str, resume_step: int | None, free: int | None = None, needed: int | None = None
) -> str:
  """One line: where the disk is full, how much is free and needed, and what a rerun does
  (`resume_step`: the last checkpoint, None if there is none, -1 if not known)."""
  usage = ""
  if free is not None and needed:
    usage = (
      f" ({_size(free)} free; the next checkpoint needs about {_size(needed)}, and "
      f"{_size(SPARE_BYTES)} is kept spare for the run's other files)"
    )
  if resume_step is not None and resume_step < 0:  # not known here
    resume = "it resumes from the last checkpoint"
  elif resume_step:
    resume = f"it resumes from step {resume_step}, the last checkpoint"
  else:
    resume = "it starts from step 0, as no checkpoint was saved"
  return (
    f"No space left on the disk of {path}{usage}. Free space there and rerun the same "
    f"command, or move the workdir to a larger disk and rerun with --workdir there: "
    f"{resume}."
  )


def _folder_bytes(path: str) -> int:
  total = 0
  for root, _, files in os.walk(path):
    for name in files:
      try:
        total += os.path.getsize(os.path.join(root, name))
      except OSError:
        pass
  return total


def checkpoint_bytes(folder: str, latest: int | None, state_bytes: int) -> int:
  """The size the next checkpoint in `folder` will take: that of the latest one when there is
  one, else the state's bytes plus the format's overhead (measured: about 1.5x and 256 KB)."""
  if latest is not None:
    size = _folder_bytes(os.path.join(folder, str(latest)))
    if size:
      return size
  return int(1.5 * state_bytes) + (256 << 10)


def check_free_space(folder: str, latest: int | None, state_bytes: int) -> None:
  """Raises `DiskFull` before a checkpoint is saved to `folder` when its disk cannot hold it
  (the save would fail half-written, in a storm of asynchronous tracebacks)."""
  needed = checkpoint_bytes(folder, latest, state_bytes)
  try:
    free = shutil.disk_usage(folder).free
  except OSError:
    return  # not measurable (a remote file system): the save itself will tell
  if free < needed + SPARE_BYTES:
    raise DiskFull(disk_full_message(folder, latest, free, needed))


def raise_if_disk_full(error: BaseException, path: str, resume_step: int | None) -> None:
  """Re-raises `error` as one-line `DiskFull` when it is a full disk (call in an `except`)."""
  if is_disk_full(error) and not isinstance(error, DiskFull):
    raise DiskFull(disk_full_message(path, resume_step)) from error


def finish_saves(manager, workdir: str) -> None:
  """Waits for an orbax manager's saves in flight and closes it; a full disk: `DiskFull`."""
  try:
    manager.wait_until_finished()
    manager.close()
  except Exception as e:
    raise_if_disk_full(e, workdir, manager.latest_step())
    raise


class QuietDiskFull:
  """A logging filter that drops the error records a full disk makes (orbax logs every failed
  asynchronous write with its traceback: hundreds of lines); the run's own `error:` line says it.
  """

  def filter(self, record) -> bool:
    if record.levelno < 40:  # logging.ERROR
      return True
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
      text += str(record.exc_info[1])
    return not any(s in text for s in DISK_FULL_SIGNS)
