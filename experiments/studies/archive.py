"""The archive of an ablation study: each finished run's small files and the reports, kept apart.

With `python -m experiments.ablate ... --archive=DIR` (for example `docs/results/sft_removal`),
every finished run's `results.json` and `config.json` (never checkpoints) go to
`DIR/{arm}/seed{s}` as it finishes, and the reports to `DIR`. A run's meta-test episodes are kept
once per distinct content in `DIR/episodes/{digest}.npz` (every seed of an arm, and every arm of a
modality-replacement study on a modality, has the same ones), named by `episodes.sha256` in the
run's folder. A run finished in `DIR` but absent from the workdir is restored from it (episodes
included, checked against their digest) instead of being retrained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from typing import Any, Callable, Sequence

import numpy as np

from experiments import atomic
from mia_jax import episodes_file

ARCHIVED_RUN_FILES = ("results.json", "config.json")
EPISODES_FILE = "episodes.npz"
EPISODES_REF = "episodes.sha256"  # in an archived run: the digest of its episodes (DIR/episodes/)
ARCHIVED_REPORT_FILES = (
  "results.md",
  "results.csv",
  "study.json",
  "trajectory.png",
  "support.png",
  "reconstructions.png",
)


def _copy_files(src: str, dst: str, names: Sequence[str]) -> list[str]:
  copied = []
  for name in names:
    path = os.path.join(src, name)
    if os.path.isfile(path):
      os.makedirs(dst, exist_ok=True)
      shutil.copy2(path, os.path.join(dst, name))
      copied.append(name)
  return copied


def episodes_digest(path: str) -> str:
  """SHA-256 of the arrays in an episodes file: names, shapes and values (integers compared as
  int64, so the int32 and uint16 layouts of `episodes_file.save_episodes` agree), not the file's
  bytes, which carry zip timestamps."""
  h = hashlib.sha256()
  with np.load(path) as data:
    for key in sorted(data.files):
      a = data[key]
      a = a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a
      h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
      h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def _shared_episodes_path(archive: str, digest: str) -> str:
  return os.path.join(archive, "episodes", f"{digest[:16]}.npz")


def archive_run(run: Any, workdir: str, archive: str) -> None:
  """Copies a finished run's small files to the same place under `archive`; its episodes go to
  `archive/episodes/` once per distinct content, named by the run's `episodes.sha256`."""
  dst = os.path.join(archive, os.path.relpath(run.rundir, workdir))
  _copy_files(run.rundir, dst, ARCHIVED_RUN_FILES)
  src = os.path.join(run.rundir, EPISODES_FILE)
  if not os.path.isfile(src):
    return
  digest = episodes_digest(src)
  shared = _shared_episodes_path(archive, digest)
  if not os.path.isfile(shared):
    os.makedirs(os.path.dirname(shared), exist_ok=True)
    with np.load(src) as data:
      arrays = {k: data[k] for k in data.files}
    atomic.write(shared, lambda f: episodes_file.write_episode_arrays(f, arrays), binary=True)
  atomic.write_text(os.path.join(dst, EPISODES_REF), digest + "\n")
  stale = os.path.join(dst, EPISODES_FILE)  # a full copy, as archives before the shared folder
  if os.path.isfile(stale):
    os.remove(stale)


def _restore_episodes(src: str, rundir: str, archive: str) -> None:
  """Puts an archived run's episodes into `rundir` (from the shared folder, checked)."""
  ref = os.path.join(src, EPISODES_REF)
  if not os.path.isfile(ref):
    _copy_files(src, rundir, (EPISODES_FILE,))  # an archive that kept a full copy per run
    return
  with open(ref) as f:
    digest = f.read().strip()
  shared = _shared_episodes_path(archive, digest)
  if not os.path.isfile(shared):
    raise ValueError(
      f"{ref} names the episodes {digest[:16]}, but {shared} is missing from the "
      "archive; restore that file, or delete the run's folder to retrain it."
    )
  try:
    ok = episodes_digest(shared) == digest
  except Exception:  # unreadable: reported as corrupt below
    ok = False
  if not ok:
    raise ValueError(
      f"{shared} is corrupt: its arrays do not match the digest in {ref}; restore "
      "that file, or delete the runs that name it to retrain them."
    )
  shutil.copy2(shared, os.path.join(rundir, EPISODES_FILE))


def restore_runs(
  runs: Sequence[Any],
  workdir: str,
  archive: str,
  run_status: Callable[[Any], str],
  log: Callable[[str], None] = print,
) -> int:
  """Copies into the workdir the runs that are finished in `archive` but not in the workdir.

  Args:
    runs: the study's runs (`experiments.studies.runs.Run`: a dataclass with `arm`, `seed`,
      `config`, `rundir`).
    workdir: the study directory (the runs' `rundir` lie under it).
    archive: the archive directory (the same layout).
    run_status: `"finished"`, `"resume"` or `"new"` for a run
      (`experiments.studies.runs.run_status`; raises ValueError for a folder of another config or
      a longer budget).
    log: where progress lines go.

  Returns:
    The number of runs restored.

  Raises:
    ValueError: an archived run is of another config than the study asks for, or was trained
      for more meta-steps (see `run_status`).
  """
  restored = 0
  for r in runs:
    src = os.path.join(archive, os.path.relpath(r.rundir, workdir))
    if run_status(r) == "finished" or not os.path.isfile(os.path.join(src, "results.json")):
      continue
    try:
      status = run_status(dataclasses.replace(r, rundir=src))
    except ValueError as e:
      raise ValueError(
        f"The archive does not match this study: {e} (here: use another --archive)."
      ) from None
    if status != "finished":
      continue  # archived at a shorter budget: trained here, then archived over it
    _copy_files(src, r.rundir, ARCHIVED_RUN_FILES)
    _restore_episodes(src, r.rundir, archive)
    log(f"{r.arm} seed {r.seed}: finished in the archive, restored from {src}")
    restored += 1
  return restored


def archive_reports(workdir: str, archive: str) -> list[str]:
  """Copies the study's reports (`ARCHIVED_REPORT_FILES`) from `workdir` to `archive`; returns
  the names of those that exist."""
  return _copy_files(workdir, archive, ARCHIVED_REPORT_FILES)
