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

from experiments.configs.common import RELEASED_VS_SPEC

# Config fields that may differ between a run and a restart of it (budget, logging, where the
# data lives); any other difference means the workdir holds another config.
RESTART_TOLERANT_FIELDS = ("num_train_steps", "log_every_steps", "checkpoint_every_steps",
                           "keep_checkpoints", "data.data_dir", "eval.every_steps",
                           "eval.batch_size", "tensorboard", "log_reconstructions")
RUN_FILES = ("metrics.jsonl", "results.json")
# Fields added after runs were stored, with the value a config without them computed with (the
# paper's values in `configs.common.RELEASED_VS_SPEC`, docs/method.md section 9): a stored config
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


def config_differences(old: Mapping, new: Mapping,
                       ignore: Sequence[str] = RESTART_TOLERANT_FIELDS) -> list[str]:
  """`["key: old != new", ...]` for the fields of two config dicts (JSON form) that both have
  and that differ, except those in `ignore`."""
  a, b = _flat(json.loads(json.dumps(old))), _flat(json.loads(json.dumps(new)))
  for side in (a, b):
    for k, v in ADDED_FIELDS.items():
      side.setdefault(k, v)
  # Fields only one side has (added or removed by a code change) are not a difference.
  return [f"{k}: {a[k]!r} != {b[k]!r}" for k in sorted(set(a) & set(b))
          if k not in ignore and a[k] != b[k]]


def has_checkpoint(workdir: str) -> bool:
  folder = os.path.join(workdir, "checkpoints")
  return os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))


def check_restart(config, workdir: str) -> None:
  """Raises ValueError if `workdir` holds a run of another config, or a run whose checkpoints
  are gone; returns quietly for a new workdir or a resumable run of this config."""
  path = os.path.join(workdir, "config.json")
  if os.path.isfile(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except ValueError as e:
      raise ValueError(f"{path} is not a readable config ({e}); use a new --workdir.") from None
    diff = config_differences(old, json.loads(config.to_json()))
    if diff:
      raise ValueError(
          f"--workdir {workdir} holds a run of another config ({'; '.join(diff[:6])}"
          f"{'; ...' if len(diff) > 6 else ''}); use a new --workdir. Fields that may change on "
          f"a restart: {', '.join(RESTART_TOLERANT_FIELDS)}.")
  found = [n for n in RUN_FILES if os.path.isfile(os.path.join(workdir, n))]
  if found == ["metrics.jsonl"] and os.path.isdir(os.path.join(workdir, "checkpoints")):
    return  # stopped before its first checkpoint: it restarts from step 0, nothing is lost
  if found and not has_checkpoint(workdir):
    raise ValueError(
        f"--workdir {workdir} has {' and '.join(found)} of a run but no checkpoint to resume "
        "from (checkpoints/ is gone); use a new --workdir, or delete those files to retrain "
        "from step 0.")


def trim_metrics(path: str, step: int) -> None:
  """Drops the lines of `metrics.jsonl` logged after `step` (a resume logs them again)."""
  if not os.path.isfile(path):
    return
  with open(path) as f:
    lines = f.readlines()
  keep = [l for l in lines if l.strip() and json.loads(l).get("step", 0) <= step]
  if len(keep) != len(lines):
    with open(path + ".tmp", "w") as f:
      f.writelines(keep)
    os.replace(path + ".tmp", path)
