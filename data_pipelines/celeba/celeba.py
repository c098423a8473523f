"""TFDS builder `celeba_trimodal`: CelebA faces as rgb photo, surface normals and sketch.

Reads the image folders of the MIA authors' CelebA release from the manual folder (by default
`<data_dir>/downloads/manual/celeba_trimodal/`)::

  train/<size>/rgb/<name>.png      test/<size>/rgb/<name>.png
  train/<size>/normal/<name>.png   test/<size>/normal/<name>.png
  train/<size>/sketch/<name>.png   test/<size>/sketch/<name>.png

`<size>` is the resolution of the copy (the authors ship 32, 64, 128, 256, 512); the smallest one
at least the target size is read (or, if every copy is smaller, the largest). A face is one
`<name>` found in all three modality folders of a split: files match by their name less the
extension and an optional trailing `_<modality>` (`00012_rgb.png` matches `00012.png`), or, if
that matches fewer faces, by the first four `_`-separated parts of the name (the convention of
the authors' release, whose loader checks exactly that). Any image format Pillow reads is
accepted.

Each image is converted to 3-channel RGB, resized so that its shorter side is the target size
(keeping the aspect ratio; bicubic for rgb, bilinear for sketch, nearest for normal, so that
normal vectors are never blended) and center-cropped to a square, as torchvision's
`Resize(size)` + `CenterCrop(size)` would. Images already at the target size pass unchanged.

Files found in one or two modality folders but not all three are skipped; their count per split
and modality is logged and kept in the dataset's metadata (`info.metadata["unmatched"]`), as is
the source size read (`info.metadata["source_size"]`). A split with no complete face, a missing
folder or an unreadable image is an error that names the folder or file.

Stored per example (in name order, so example i is the i-th name in sorted order): `rgb`,
`normal`, `sketch` as uint8 `[size, size, 3]` and `name` (the matched file name); array_record,
built and read without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import os

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from data_pipelines import benchmarks, manual

MODALITIES = benchmarks.CELEBA_MODALITIES
SPLITS = ("train", "test")
# Resampling filter per modality: normals are unit vectors, so they must not be blended.
RESAMPLE = {
  "rgb": Image.Resampling.BICUBIC,
  "normal": Image.Resampling.NEAREST,
  "sketch": Image.Resampling.BILINEAR,
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
# The authors' release names files of one face alike in their first four `_`-separated parts.
_RELEASE_PARTS = 4
# Examples of unmatched names shown in the log.
_SHOWN = 5

_DESCRIPTION = """\
CelebA faces in three aligned modalities (rgb photo, surface-normal map, sketch), the trimodal
image benchmark of MIA (Lee, Lee & Kim, TMLR 2024), read from the authors' image folders.
"""


def instructions(manual_dir: str) -> str:
  """What to put where, for error messages and `MANUAL_DOWNLOAD_INSTRUCTIONS`."""
  return (
    f"Put the CelebA trimodal images (the MIA authors' release) in {manual_dir}/ as\n"
    f"  {manual_dir}/train/<size>/rgb/<name>.png\n"
    f"  {manual_dir}/train/<size>/normal/<name>.png\n"
    f"  {manual_dir}/train/<size>/sketch/<name>.png\n"
    f"  {manual_dir}/test/<size>/{{rgb,normal,sketch}}/<name>.png\n"
    "where <size> is the copy's resolution (e.g. 32 or 64; the smallest one >= the target size "
    "is read) and each <name> (optionally ending in _rgb, _normal or _sketch) is in all three "
    "modality folders. See docs/datasets.md."
  )


@dataclasses.dataclass(frozen=True)
class SplitFiles:
  """The image files of one split, matched across modalities.

  Attributes:
    size: the `<size>` folder read.
    names: matched names in sorted order.
    paths: `{modality: paths}`, aligned with `names`.
    unmatched: `{modality: names in that folder missing from another folder}`.
  """

  size: int
  names: tuple[str, ...]
  paths: dict[str, tuple[str, ...]]
  unmatched: dict[str, tuple[str, ...]]


def match_name(file_name: str, modality: str) -> str:
  """The name a file is matched by: its stem, less a trailing `_<modality>`."""
  stem = os.path.splitext(file_name)[0]
  suffix = "_" + modality
  return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else stem


def release_name(file_name: str, modality: str) -> str:
  """The authors' release convention: the first four `_`-separated parts of the stem."""
  del modality  # the same rule in every folder
  return "_".join(os.path.splitext(file_name)[0].split("_")[:_RELEASE_PARTS])


def _index(
  folder: str, files: list[str], modality: str, rule: Callable[[str, str], str]
) -> tuple[dict[str, str], tuple[str, str] | None]:
  """`({name: path}, None)` under a matching rule, or `({}, (file, file))` for two files of the
  folder with the same name."""
  named: dict[str, str] = {}
  for file_name in files:
    name = rule(file_name, modality)
    if name in named:
      return {}, (os.path.basename(named[name]), file_name)
    named[name] = os.path.join(folder, file_name)
  return named, None


def _choose_size(split_dir: str, image_size: int, manual_dir: str) -> int:
  sizes = sorted(
    int(d)
    for d in os.listdir(split_dir)
    if d.isdigit() and os.path.isdir(os.path.join(split_dir, d))
  )
  if not sizes:
    raise FileNotFoundError(
      f"{split_dir} has no <size> folder (e.g. {split_dir}/32/rgb/); found "
      f"{sorted(os.listdir(split_dir))}.\n{instructions(manual_dir)}"
    )
  large_enough = [s for s in sizes if s >= image_size]
  return large_enough[0] if large_enough else sizes[-1]


def scan_split(manual_dir: str, split: str, image_size: int) -> SplitFiles:
  """Lists and matches the image files of one split (nothing is decoded).

  Raises:
    FileNotFoundError: a missing or empty split, size or modality folder.
    ValueError: two files of one folder with the same name, or no name in all three folders.
  """
  split_dir = os.path.join(manual_dir, split)
  if not os.path.isdir(split_dir):
    raise FileNotFoundError(f"Missing folder {split_dir}.\n{instructions(manual_dir)}")
  size = _choose_size(split_dir, image_size, manual_dir)
  files: dict[str, tuple[str, list[str]]] = {}
  for modality in MODALITIES:
    folder = os.path.join(split_dir, str(size), modality)
    if not os.path.isdir(folder):
      raise FileNotFoundError(f"Missing folder {folder}.\n{instructions(manual_dir)}")
    files[modality] = (folder, manual.list_files(folder, IMAGE_SUFFIXES))
    if not files[modality][1]:
      raise FileNotFoundError(
        f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}).\n{instructions(manual_dir)}"
      )
  # Match by `match_name`, unless the release convention matches more faces.
  by_modality, common = {}, set()
  for rule in (match_name, release_name):
    indexed, clashes = {}, {}
    for m, (folder, names) in files.items():
      indexed[m], clashes[m] = _index(folder, names, m, rule)
    if rule is match_name:
      for m, clash in clashes.items():
        if clash:
          raise ValueError(
            f"{files[m][0]} has two images for one face: {clash[0]!r} and "
            f"{clash[1]!r} (same name less the extension and a trailing "
            f"_{m}); keep one."
          )
    elif any(clashes.values()):
      continue
    matched = set.intersection(*(set(named) for named in indexed.values()))
    if len(matched) > len(common):
      by_modality, common = indexed, matched
  if not common:
    examples = {m: names[:3] for m, (_, names) in files.items()}
    raise ValueError(
      f"No image name of {split_dir}/{size} is in all of {', '.join(MODALITIES)} (names "
      f"match by file name less the extension and a trailing _<modality>, or by the first "
      f"four _-separated parts; first files: {examples}).\n{instructions(manual_dir)}"
    )
  names = tuple(sorted(common))
  return SplitFiles(
    size=size,
    names=names,
    paths={m: tuple(by_modality[m][n] for n in names) for m in MODALITIES},
    unmatched={m: tuple(sorted(set(by_modality[m]) - common)) for m in MODALITIES},
  )


def scan(manual_dir: str, image_size: int) -> dict[str, SplitFiles]:
  """`scan_split` of both splits; raises FileNotFoundError for a missing or empty folder."""
  if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
    raise FileNotFoundError(
      f"The CelebA folder {manual_dir} is missing or empty.\n{instructions(manual_dir)}"
    )
  return {split: scan_split(manual_dir, split, image_size) for split in SPLITS}


def resize_and_center_crop(image: Image.Image, size: int, resample: Image.Resampling) -> np.ndarray:
  """Resizes the shorter side to `size` (aspect kept) and crops the central `size x size`.

  Matches torchvision's `Resize(size)` + `CenterCrop(size)` on a PIL image: the longer side
  becomes `int(size * long / short)`; the crop starts at `round((side - size) / 2)`.

  Args:
    image: any PIL image; converted to RGB first.
    size: output side.
    resample: PIL filter.

  Returns:
    uint8 `[size, size, 3]`.
  """
  image = image.convert("RGB")
  width, height = image.size
  if min(width, height) != size:
    if width <= height:
      new_size = (size, int(size * height / width))
    else:
      new_size = (int(size * width / height), size)
    image = image.resize(new_size, resample)
    width, height = new_size
  left = int(round((width - size) / 2.0))
  top = int(round((height - size) / 2.0))
  return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def load_image(path: str, modality: str, size: int) -> np.ndarray:
  """Reads one image file as uint8 `[size, size, 3]` (see `resize_and_center_crop`).

  Raises:
    ValueError: Pillow cannot read the file (the message names it).
  """
  try:
    with Image.open(path) as image:
      return resize_and_center_crop(image, size, RESAMPLE[modality])
  except (OSError, ValueError, Image.DecompressionBombError) as error:
    raise ValueError(f"Cannot read the {modality} image {path}: {error}") from None


@dataclasses.dataclass
class CelebaTrimodalConfig(tfds.core.BuilderConfig):
  """A target resolution.

  Attributes:
    image_size: side of the stored square images.
  """

  image_size: int = benchmarks.CELEBA_GRID[0]  # the grid is square


class CelebaTrimodal(manual.ManualBuilder):
  """CelebA rgb / normal / sketch, from the MIA authors' image folders (manual download).

  Example i is the i-th name in sorted order.
  """

  DESCRIPTION = _DESCRIPTION
  HOMEPAGE = "https://github.com/yhytoto12/mia"
  BUILDER_CONFIGS = [CelebaTrimodalConfig(name="default", description="32x32, as in MIA.")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = instructions("<manual_dir>")

  def features(self):
    """Each modality as a uint8 `[size, size, 3]` image, and the face's file name."""
    size = self.builder_config.image_size
    return {
      **{m: tfds.features.Tensor(shape=(size, size, 3), dtype=np.uint8) for m in MODALITIES},
      "name": tfds.features.Text(),
    }

  def _split_generators(self, dl_manager):
    manual_dir = manual.manual_dir_of(dl_manager, instructions("<manual_dir>"))
    files = scan(manual_dir, self.builder_config.image_size)
    self.info.metadata["source_size"] = {split: f.size for split, f in files.items()}
    self.info.metadata["unmatched"] = {
      split: {m: len(names) for m, names in f.unmatched.items()} for split, f in files.items()
    }
    for split, f in files.items():
      for modality, names in f.unmatched.items():
        if names:
          logging.warning(
            "CelebA %s: skipped %d %s image(s) of %s/%s/%d with no partner in every other "
            "modality (e.g. %s).",
            split,
            len(names),
            modality,
            manual_dir,
            split,
            f.size,
            ", ".join(names[:_SHOWN]),
          )
    return {split: self._generate_examples(f) for split, f in files.items()}

  def _generate_examples(self, files: SplitFiles):
    """Yields `(i, {"rgb", "normal", "sketch": uint8 [s, s, 3], "name": str})`."""
    size = self.builder_config.image_size
    for i, name in enumerate(files.names):
      yield i, {**{m: load_image(files.paths[m][i], m, size) for m in MODALITIES}, "name": name}
