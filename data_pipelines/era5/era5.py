"""TFDS builder `era5`: temperature, pressure and humidity fields on a lat x lon grid.

Reads `.npz` files from the manual folder (by default `<data_dir>/downloads/manual/era5/`)::

  train/<any name>.npz      test/<any name>.npz

Every file holds one array per variable, under the keys `temperature`, `pressure` and
`humidity` (other keys, such as `latitude` or `longitude`, are ignored), each of shape
`[T, lat, lon]` (T time steps, each one signal) or `[lat, lon]` (one time step); the three arrays
of a file have the same shape and are finite. Files are read in name order, time steps in order:
signal i of a split is the i-th time step of that concatenation.

Grid: each field is brought to the configured grid (default 46 x 90, MIA's 4-degree grid with a
1:2 aspect) by taking every k-th point along each axis, which is exact for the common ERA5 grids
that contain it: an axis of n points gives the target's t points when `n == t`, `n == k * t`
(k-th points from the first; e.g. 1440 longitudes at 0.25 degrees -> 90) or `n - 1 == k * (t - 1)`
(both ends kept; e.g. 721 latitudes at 0.25 degrees -> 46, 181 at 1 degree -> 46). Any other
grid is an error that names the file, its grid and these rules (interpolate it yourself first).

Normalisation: each variable is mapped to [0, 1] with `(x - min) / (max - min)`, min and max
taken per variable over every time step and grid point of the *training* split (after
regridding). The test split uses the training min/max, so its values may fall slightly outside
[0, 1]. Both are stored in the dataset's metadata, `info.metadata["normalisation"]` =
`{variable: {"min": float, "max": float}}` (see `loader.normalisation`), to map predictions back
to physical units: `x = y * (max - min) + min`.

Stored per example: each variable as float32 `[lat, lon, 1]` (normalised), `file` (the npz file
name) and `time_index` (the step within that file).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import benchmarks, manual

MODALITIES = benchmarks.ERA5_MODALITIES
SPLITS = ("train", "test")

_DESCRIPTION = """\
ERA5 reanalysis fields (temperature, pressure, humidity) on a regular lat x lon grid, each
normalised to [0, 1] with the training split's min/max; the climate benchmark of MIA (Lee, Lee &
Kim, TMLR 2024), read from local .npz files.
"""


def instructions(manual_dir: str) -> str:
  """What to put where, for error messages and `MANUAL_DOWNLOAD_INSTRUCTIONS`."""
  return (
    f"Put the ERA5 fields in {manual_dir}/ as .npz files:\n"
    f"  {manual_dir}/train/<name>.npz\n"
    f"  {manual_dir}/test/<name>.npz\n"
    "each with the arrays 'temperature', 'pressure' and 'humidity' of one shape, [T, lat, lon] "
    "(T time steps) or [lat, lon], on the target grid or a grid that contains it (e.g. "
    "721x1440 or 181x360 for 46x90). See docs/datasets.md."
  )


def subsample_indices(n: int, target: int) -> np.ndarray | None:
  """Indices taking `target` of `n` regularly spaced points, or None (see the module docstring)."""
  if target < 1:
    raise ValueError(f"Target grid size must be >= 1, got {target}.")
  if n == target:
    return np.arange(n)
  if n % target == 0:
    return np.arange(target) * (n // target)
  if target > 1 and (n - 1) % (target - 1) == 0:
    return np.arange(target) * ((n - 1) // (target - 1))
  return None


def regrid(field: np.ndarray, grid: tuple[int, int], where: str = "array") -> np.ndarray:
  """`[T, lat, lon]` on a grid containing `grid` -> `[T, *grid]` by regular subsampling.

  Raises:
    ValueError: the grid does not contain the target (the message names `where`).
  """
  rows = subsample_indices(field.shape[1], grid[0])
  cols = subsample_indices(field.shape[2], grid[1])
  if rows is None or cols is None:
    raise ValueError(
      f"{where}: cannot bring the {field.shape[1]}x{field.shape[2]} grid to "
      f"{grid[0]}x{grid[1]}: each axis of n points must have n == t, n == k*t or "
      f"n - 1 == k*(t - 1) for the target's t points. Interpolate the fields to "
      f"{grid[0]}x{grid[1]} (or a grid that contains it) first."
    )
  return field[:, rows][:, :, cols]


def list_npz(manual_dir: str, split: str) -> list[str]:
  """The `.npz` files of a split folder, sorted by name.

  Raises:
    FileNotFoundError: a missing folder or one without `.npz` files.
  """
  folder = os.path.join(manual_dir, split)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Missing folder {folder}.\n{instructions(manual_dir)}")
  files = manual.list_files(folder, (".npz",))
  if not files:
    raise FileNotFoundError(f"{folder} holds no .npz file.\n{instructions(manual_dir)}")
  return [os.path.join(folder, f) for f in files]


def read_npz(path: str, grid: tuple[int, int]) -> dict[str, np.ndarray]:
  """One file's variables as float64 `[T, *grid]`, regridded.

  Raises:
    ValueError: an unreadable file, a missing key, arrays of other ranks or of different shapes,
      non-finite values, or a grid that cannot be brought to `grid`.
  """
  try:
    with np.load(path, allow_pickle=False) as npz:
      keys = list(npz.files)
      missing = [m for m in MODALITIES if m not in keys]
      if missing:
        raise ValueError(
          f"{path} lacks the array(s) {missing}; it holds {keys}. Each ERA5 file needs "
          f"{', '.join(MODALITIES)}."
        )
      arrays = {m: np.asarray(npz[m], np.float64) for m in MODALITIES}
  except (OSError, EOFError) as error:
    raise ValueError(f"Cannot read {path} as .npz: {error}") from None
  shapes = {m: a.shape for m, a in arrays.items()}
  if len(set(shapes.values())) != 1:
    raise ValueError(f"{path}: the variables have different shapes {shapes}; they must match.")
  out = {}
  for m, a in arrays.items():
    if a.ndim == 2:
      a = a[None]
    if a.ndim != 3 or not a.size:
      raise ValueError(
        f"{path}: {m!r} has shape {shapes[m]}; expected [T, lat, lon] or [lat, lon]."
      )
    if not np.isfinite(a).all():
      raise ValueError(
        f"{path}: {m!r} has {int((~np.isfinite(a)).sum())} non-finite value(s); "
        "fill or drop them first."
      )
    out[m] = regrid(a, grid, where=path)
  return out


def training_min_max(paths: list[str], grid: tuple[int, int]) -> dict[str, dict[str, float]]:
  """Per-variable min and max over every time step and grid point of the files.

  Raises:
    ValueError: a variable that is constant over the split (cannot be normalised).
  """
  lo = {m: np.inf for m in MODALITIES}
  hi = {m: -np.inf for m in MODALITIES}
  for path in paths:
    for m, a in read_npz(path, grid).items():
      lo[m], hi[m] = min(lo[m], float(a.min())), max(hi[m], float(a.max()))
  for m in MODALITIES:
    if not hi[m] > lo[m]:
      raise ValueError(
        f"ERA5 {m!r} is constant ({lo[m]}) over the training files; it cannot be "
        "normalised to [0, 1]."
      )
  return {m: {"min": lo[m], "max": hi[m]} for m in MODALITIES}


def check(manual_dir: str) -> None:
  """Raises FileNotFoundError with instructions when a split folder or its files are missing."""
  if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
    raise FileNotFoundError(
      f"The ERA5 folder {manual_dir} is missing or empty.\n{instructions(manual_dir)}"
    )
  for split in SPLITS:
    list_npz(manual_dir, split)


@dataclasses.dataclass
class Era5Config(tfds.core.BuilderConfig):
  """A target grid.

  Attributes:
    grid: `(lat, lon)` points.
  """

  grid: tuple[int, int] = benchmarks.ERA5_GRID


class Era5(manual.ManualBuilder):
  """ERA5 temperature / pressure / humidity from local `.npz` files (manual download).

  Example i is the i-th time step in file order.
  """

  DESCRIPTION = _DESCRIPTION
  HOMEPAGE = "https://cds.climate.copernicus.eu/"
  BUILDER_CONFIGS = [Era5Config(name="default", description="46 x 90 (4 degrees), as in MIA.")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = instructions("<manual_dir>")

  def features(self):
    """Each variable as float32 `[lat, lon, 1]`, its file's name and the time step in it."""
    lat, lon = self.builder_config.grid
    fields = {m: tfds.features.Tensor(shape=(lat, lon, 1), dtype=np.float32) for m in MODALITIES}
    return {
      **fields,
      "file": tfds.features.Text(),
      "time_index": tfds.features.Scalar(dtype=np.int64),
    }

  def _split_generators(self, dl_manager):
    manual_dir = manual.manual_dir_of(dl_manager, instructions("<manual_dir>"))
    check(manual_dir)
    files = {split: list_npz(manual_dir, split) for split in SPLITS}
    stats = training_min_max(files["train"], self.builder_config.grid)
    self.info.metadata["normalisation"] = stats
    return {split: self._generate_examples(files[split], stats) for split in SPLITS}

  def _generate_examples(self, paths: list[str], stats: dict[str, dict[str, float]]):
    """Yields `(i, {variable: float32 [lat, lon, 1], "file": str, "time_index": int})`."""
    i = 0
    for path in paths:
      fields = read_npz(path, self.builder_config.grid)
      for t in range(fields[MODALITIES[0]].shape[0]):
        example = {
          m: ((fields[m][t] - stats[m]["min"]) / (stats[m]["max"] - stats[m]["min"])).astype(
            np.float32
          )[..., None]
          for m in MODALITIES
        }
        yield i, {**example, "file": os.path.basename(path), "time_index": t}
        i += 1
