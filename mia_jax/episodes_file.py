"""The episodes file: fixed meta-test supports on disk (`.npz`), the library's one file format.

An episodes file holds, per modality, `{name}/idx` (grid indices `[num_signals, S]`, uint16 where
they fit), `{name}/count` (the support sizes) and `{name}/ratio`, and, for fixed-ratio
evaluation, `{name}/fixed_ratio` and `{name}/fixed_count`. It is how a run's meta-test supports
are kept, shared between the arms of a study and given to a run (`eval.episodes_path`), so other
codebases read it too. This is the only module of `mia_jax` that reads or writes files.
"""

from __future__ import annotations

import os
from typing import IO, Mapping, Sequence

import numpy as np

from mia_jax.modalities import ModalitySpec
from mia_jax.sampling import Episode, fixed_support_count


def save_episodes(
  path: str | os.PathLike | IO[bytes],
  episode: Episode,
  specs: Sequence[ModalitySpec] = (),
  fixed_ratios: Sequence[float] = (),
) -> None:
  """Writes episodes to `.npz` with keys `{name}/idx`, `{name}/count`, `{name}/ratio`.

  `idx` holds the support indices (row-major grid positions), of which the first `count` per
  signal are the support; other codebases can read this file to evaluate on identical episodes.
  With `fixed_ratios` (and the `specs` of the episode's modalities), also `{name}/fixed_ratio`
  (the ratios asked for) and `{name}/fixed_count` (`fixed_support_count`): the fixed-ratio
  supports are the first `fixed_count[j]` entries of every signal's `idx`
  (`fixed_ratio_episodes`).
  The file is compressed and `idx` is stored as uint16 where the grid has at most 65,536 points
  (int32 otherwise), about a third of the plain int32 size; `load_episodes` returns int32.
  """
  arrays = {}
  for name, ep in episode.items():
    arrays[f"{name}/idx"] = np.asarray(ep["idx"])
    arrays[f"{name}/count"] = np.asarray(ep["mask"]).sum(-1).astype(np.int32)
    arrays[f"{name}/ratio"] = np.asarray(ep["ratio"], np.float32)
  if fixed_ratios:
    arrays.update(fixed_arrays(specs, fixed_ratios))
  write_episode_arrays(path, arrays)


def fixed_arrays(
  specs: Sequence[ModalitySpec], fixed_ratios: Sequence[float]
) -> dict[str, np.ndarray]:
  """The episodes file's `{name}/fixed_ratio` and `{name}/fixed_count` arrays."""
  out = {}
  for spec in specs:
    out[f"{spec.name}/fixed_ratio"] = np.asarray(fixed_ratios, np.float32)
    out[f"{spec.name}/fixed_count"] = np.asarray(
      [fixed_support_count(spec, r) for r in fixed_ratios], np.int32
    )
  return out


def check_fixed_arrays(
  path: str,
  data: Mapping[str, np.ndarray],
  specs: Sequence[ModalitySpec],
  fixed_ratios: Sequence[float],
) -> None:
  """Raises unless an episodes file's fixed-ratio arrays, where it has them, are the ones these
  `fixed_ratios` give (a file without them gets them derived from its `idx`)."""
  for key, want in fixed_arrays(specs, fixed_ratios).items():
    if key in data and not np.array_equal(np.asarray(data[key]), want):
      show = lambda a: "[" + ", ".join(f"{x:g}" for x in np.asarray(a).tolist()) + "]"
      raise ValueError(
        f"Episode file {path!r}: {key} is {show(data[key])}, but "
        f"eval.fixed_ratios gives {show(want)}; set eval.fixed_ratios to the "
        "file's ratios, or use a file written for these."
      )


def write_episode_arrays(
  path: str | os.PathLike | IO[bytes], arrays: Mapping[str, np.ndarray]
) -> None:
  """Writes the arrays of an episodes file (`{name}/idx|count|ratio`) compressed, with an integer
  `idx` as uint16 where its values fit (int32 otherwise); values are never changed. `path` may be
  a binary file object (the experiments write through a temporary file, `experiments.atomic`)."""
  out = {}
  for key, value in arrays.items():
    value = np.asarray(value)
    if key.endswith("/idx") and np.issubdtype(value.dtype, np.integer):
      fits = value.size == 0 or (value.min() >= 0 and value.max() <= np.iinfo(np.uint16).max)
      value = value.astype(np.uint16 if fits else np.int32)
    out[key] = value
  if hasattr(path, "write"):
    np.savez_compressed(path, **out)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    return
  with open(path, "wb") as f:
    np.savez_compressed(f, **out)  # type: ignore[arg-type]  # numpy's stub: allow_pickle


def load_episodes(
  path: str | os.PathLike, specs: Sequence[ModalitySpec], fixed_ratios: Sequence[float] = ()
) -> Episode:
  """Reads episodes written by `save_episodes`, checking them against the modality specs (and
  its fixed-ratio arrays, where it has them, against `fixed_ratios`: `check_fixed_arrays`)."""
  try:
    data = np.load(path)
  except FileNotFoundError:
    raise FileNotFoundError(f"Episode file {os.fspath(path)!r} does not exist.") from None
  except Exception as e:  # a corrupt or non-npz file
    raise ValueError(f"Could not read episode file {os.fspath(path)!r}: {e}") from e
  out = {}
  for spec in specs:
    keys = [f"{spec.name}/{k}" for k in ("idx", "count", "ratio")]
    missing = [k for k in keys if k not in data.files]
    if missing:
      raise ValueError(f"Episode file {os.fspath(path)!r} lacks {missing}; it has {data.files}.")
    idx, count, ratio = (data[k] for k in keys)
    if idx.ndim != 2 or idx.shape[1] != spec.max_support:
      raise ValueError(
        f"Episode file {os.fspath(path)!r}: {spec.name}/idx has shape {idx.shape}, "
        f"expected [num_signals, {spec.max_support}]."
      )
    if idx.dtype.kind not in "iu":
      raise ValueError(
        f"Episode file {os.fspath(path)!r}: {spec.name}/idx must hold integers "
        f"(grid point indices); it has dtype {idx.dtype}."
      )
    if idx.min() < 0 or idx.max() >= spec.num_points:
      raise ValueError(
        f"Episode file {os.fspath(path)!r}: {spec.name}/idx outside [0, {spec.num_points})."
      )
    _check_episode_arrays(os.fspath(path), spec, idx, count, ratio)
    if fixed_ratios:
      check_fixed_arrays(os.fspath(path), data, [spec], fixed_ratios)
    mask = (np.arange(spec.max_support)[None] < count[:, None]).astype(np.float32)
    out[spec.name] = {"idx": idx.astype(np.int32), "mask": mask, "ratio": ratio.astype(np.float32)}
  sizes = {n: e["idx"].shape[0] for n, e in out.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(
      f"Episode file {os.fspath(path)!r}: the modalities have different numbers of signals {sizes}."
    )
  return out


def _check_episode_arrays(path: str, spec: ModalitySpec, idx, count, ratio) -> None:
  """Counts in [1, max_support], distinct support indices within each count, ratios in [0, 1]."""
  where = f"Episode file {path!r}: {spec.name}"
  n = idx.shape[0]
  if count.shape != (n,) or ratio.shape != (n,):
    raise ValueError(
      f"{where}/count and /ratio must have shape [{n}] (one per signal); got "
      f"{count.shape} and {ratio.shape}."
    )
  if count.dtype.kind not in "iu" or count.min() < 1 or count.max() > spec.max_support:
    bad = np.flatnonzero((count < 1) | (count > spec.max_support))[:5].tolist()
    raise ValueError(
      f"{where}/count must be integers in [1, {spec.max_support}] (the support "
      f"size); signals {bad} have {count[bad].tolist()} (dtype {count.dtype})."
    )
  if not (np.isfinite(ratio).all() and ratio.min() >= 0 and ratio.max() <= 1):
    raise ValueError(f"{where}/ratio must be finite and in [0, 1].")
  inside = np.arange(spec.max_support)[None] < count[:, None]
  ordered = np.sort(np.where(inside, idx, -1 - np.arange(spec.max_support)[None]), axis=1)
  repeated = np.flatnonzero((np.diff(ordered, axis=1) == 0).any(axis=1))
  if repeated.size:
    raise ValueError(
      f"{where}/idx repeats a point within the support of signals "
      f"{repeated[:5].tolist()}; a support holds distinct points."
    )
