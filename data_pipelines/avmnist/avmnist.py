"""TFDS builder `avmnist`: an MNIST digit image paired with a spoken digit of the same class.

Sources, each taken from the first place it is found (nothing is downloaded):

* MNIST: the tfds `mnist` dataset already prepared in the tfds data dir as array_record
  (`tfds build mnist --file_format=array_record` on a machine with internet), else the four idx
  files in the manual folder (by default `<data_dir>/downloads/manual/avmnist/`), gzipped or not:
  `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
  `t10k-labels-idx1-ubyte`.
* The Free Spoken Digit Dataset (FSDD, 8 kHz mono wav named `<digit>_<speaker>_<index>.wav`):
  the tfds `spoken_digit` dataset prepared as array_record (readable only where TensorFlow is
  installed: tfds' Audio feature needs it), else `recordings/*.wav` in the manual folder (or
  `<any folder>/recordings/*.wav`, as in the FSDD git checkout or release archive).
  FSDD's own split is kept: indices 0-4 of every speaker and digit are test, the rest train.

Each recording is resampled to `WAV_SAMPLE_RATE` (4 kHz: polyphase decimation by 2 of FSDD's
8 kHz, with scipy's anti-aliasing filter), trimmed to its first `WAV_LENGTH` samples (0.5 s) or
zero-padded at the end, and scaled by its peak absolute value to [-1, 1] (a silent recording
stays zero). It is stored as int16 `round(32767 * y)`; loaders return `int16 / 32767`, so the
peak is exactly +-1 and values differ from the float waveform by less than 2e-5.

Pairing: every MNIST image of a split gets one recording of its label from the same split,
drawn uniformly with `np.random.default_rng(SPLIT_SEEDS[split])` (per label, in image order), so
pairs are the same on every build. Example i is MNIST image i of the split (in the idx file's
order, or in the prepared tfds dataset's order, which tfds shuffled when it built it): `rgb` uint8
`[28, 28, 1]`, `wav` int16 `[WAV_LENGTH]`, `label`, `wav_name` (the FSDD file name without
`.wav`) and `image_index`.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import math
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import benchmarks, manual
from data_pipelines.avmnist.fsdd import (
  FSDD_SAMPLE_RATE,
  Recordings,
  find_recordings_dir,
  parse_fsdd_name,
  read_fsdd_files,
  split_recordings,
)
from data_pipelines.benchmarks import WAV_LENGTH, WAV_SAMPLE_RATE
from data_pipelines.tfds_loading import SPLIT_SEEDS

MODALITIES = benchmarks.AVMNIST_MODALITIES
SPLITS = tuple(SPLIT_SEEDS)
IMAGE_SHAPE = benchmarks.AVMNIST_IMAGE_GRID
NUM_CLASSES = 10
MNIST_FILES = {
  "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_DESCRIPTION = """\
AV-MNIST: an MNIST digit image paired by label with a spoken digit from the Free Spoken Digit
Dataset (resampled to 4 kHz, 0.5 s, peak-normalised to [-1, 1]); the audio-visual benchmark of
MIA (Lee, Lee & Kim, TMLR 2024).
"""


def instructions(manual_dir: str, data_dir: str = "<data_dir>") -> str:
  """What to put where, for error messages and `MANUAL_DOWNLOAD_INSTRUCTIONS`."""
  files = "\n".join(
    f"  {manual_dir}/{name}.gz   (or unzipped)" for pair in MNIST_FILES.values() for name in pair
  )
  return (
    f"AV-MNIST needs MNIST and the Free Spoken Digit Dataset in {manual_dir}/:\n{files}\n"
    "    (from http://yann.lecun.com/exdb/mnist/ or any MNIST mirror), and\n"
    f"  {manual_dir}/recordings/<digit>_<speaker>_<index>.wav\n"
    "    (the recordings/ folder of https://github.com/Jakobovski/free-spoken-digit-dataset).\n"
    f"Instead of the files, tfds datasets already prepared as array_record in {data_dir} are "
    "used: mnist (tfds build mnist --file_format=array_record) and spoken_digit (read only "
    "where TensorFlow is installed). See docs/datasets.md."
  )


# ------------------------------------------------------------------------------------------------
# MNIST.


def read_idx(path: str) -> np.ndarray:
  """Reads an idx file of unsigned bytes (MNIST's format), gzipped if the name ends in `.gz`.

  Raises:
    ValueError: the file is not a ubyte idx file or is truncated (the message names it).
  """
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      data = f.read()
  except OSError as error:
    raise ValueError(f"Cannot read the idx file {path}: {error}") from None
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise ValueError(
      f"{path} is not an idx file of unsigned bytes (expected the magic number 0x0000080N; "
      f"got {data[:4].hex() or 'an empty file'})."
    )
  ndim = data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise ValueError(f"{path} is truncated: its header needs {header} bytes.")
  shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
  if len(data) - header != math.prod(shape):
    raise ValueError(
      f"{path} holds {len(data) - header} values after its header; its shape {shape} needs "
      f"{math.prod(shape)}."
    )
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _idx_path(manual_dir: str, name: str) -> str | None:
  for candidate in (name, name + ".gz"):
    path = os.path.join(manual_dir, candidate)
    if os.path.isfile(path):
      return path
  return None


def read_mnist_files(manual_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """MNIST split from idx files: uint8 images `[n, 28, 28]` and int64 labels `[n]`.

  Raises:
    FileNotFoundError: a file is missing. ValueError: bad file contents.
  """
  images_name, labels_name = MNIST_FILES[split]
  paths = [_idx_path(manual_dir, images_name), _idx_path(manual_dir, labels_name)]
  for name, path in zip((images_name, labels_name), paths):
    if path is None:
      raise FileNotFoundError(
        f"Missing {os.path.join(manual_dir, name)}(.gz).\n{instructions(manual_dir)}"
      )
  images, labels = read_idx(paths[0]), read_idx(paths[1])
  if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
    raise ValueError(
      f"{paths[0]} holds an array of shape {images.shape}; expected "
      f"[n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}]."
    )
  if labels.shape != images.shape[:1]:
    raise ValueError(
      f"{paths[1]} holds labels of shape {labels.shape}; expected "
      f"[{images.shape[0]}] to match {paths[0]}."
    )
  if labels.max(initial=0) >= NUM_CLASSES:
    raise ValueError(f"{paths[1]} has label {labels.max()}; labels must be 0-9.")
  return images, labels.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Prepared tfds datasets (array_record only: no TensorFlow here to read tfrecord).


def prepared_tfds_dir(data_dir: str, name: str) -> str | None:
  """The newest prepared version folder of tfds dataset `name` in `data_dir`, if any."""
  found = glob.glob(os.path.join(data_dir, name, "*", "dataset_info.json"))
  found += glob.glob(os.path.join(data_dir, name, "*", "*", "dataset_info.json"))
  versions = []
  for info in found:
    folder = os.path.dirname(info)
    try:
      versions.append((tfds.core.Version(os.path.basename(folder)), folder))
    except ValueError:
      continue
  return max(versions)[1] if versions else None


def open_prepared(data_dir: str, name: str) -> tuple[tfds.core.DatasetBuilder | None, str]:
  """A prepared array_record tfds dataset as a read-only builder, or `(None, why not)`."""
  folder = prepared_tfds_dir(data_dir, name)
  if folder is None:
    return None, f"no prepared tfds {name} in {data_dir}"
  try:
    builder = tfds.builder_from_directory(folder)
  except Exception as error:
    # e.g. spoken_digit's Audio feature imports TensorFlow.
    return None, f"tfds {name} in {folder} cannot be read here ({type(error).__name__}: {error})"
  formats = {builder.info.file_format, *getattr(builder.info, "alternative_file_formats", ())}
  if tfds.core.FileFormat.ARRAY_RECORD not in formats:
    return None, (
      f"tfds {name} in {folder} is stored as {builder.info.file_format.value}, not "
      "array_record (rebuild it with --file_format=array_record)"
    )
  return builder, ""


@dataclasses.dataclass(frozen=True)
class Sources:
  """Where MNIST and FSDD are read from.

  Attributes:
    mnist: a read-only tfds builder, or the manual folder holding the idx files.
    fsdd: a read-only tfds builder, or the folder holding the recordings.
  """

  mnist: tfds.core.DatasetBuilder | str
  fsdd: tfds.core.DatasetBuilder | str


def find_sources(data_dir: str, manual_dir: str) -> Sources:
  """Finds MNIST and FSDD (see the module docstring for the order).

  Raises:
    FileNotFoundError: either is missing; the message says where to put which files.
  """
  problems = []
  mnist, why_not_mnist = open_prepared(data_dir, "mnist")
  if mnist is None:
    missing = [
      name for pair in MNIST_FILES.values() for name in pair if _idx_path(manual_dir, name) is None
    ]
    if missing:
      problems.append(
        f"MNIST: {why_not_mnist}, and {manual_dir} lacks {', '.join(missing)} (.gz or not)"
      )
    else:
      mnist = manual_dir
  fsdd, why_not_fsdd = open_prepared(data_dir, "spoken_digit")
  if fsdd is None:
    fsdd = find_recordings_dir(manual_dir)
    if fsdd is None:
      problems.append(
        f"FSDD: {why_not_fsdd}, and there is no {manual_dir}/recordings/ folder with wav files"
      )
  if problems:  # the first line is the summary a command line prints; the rest is for --debug
    missing = " and ".join(p.split(":")[0] for p in problems)
    raise FileNotFoundError(
      f"AV-MNIST sources not found: {missing} neither prepared in "
      f"{data_dir} nor in {manual_dir}\n  "
      + "\n  ".join(problems)
      + "\n"
      + instructions(manual_dir, data_dir)
    )
  return Sources(mnist=mnist, fsdd=fsdd)


def read_mnist(sources: Sources, split: str) -> tuple[np.ndarray, np.ndarray]:
  """MNIST split: uint8 images `[n, 28, 28]`, int64 labels `[n]`."""
  if isinstance(sources.mnist, str):
    return read_mnist_files(sources.mnist, split)
  arrays = manual.read_records(sources.mnist.as_data_source(split=split), ("image", "label"))
  return arrays["image"].reshape(-1, *IMAGE_SHAPE), arrays["label"].astype(np.int64)


def read_recordings(sources: Sources) -> dict[str, Recordings]:
  """FSDD recordings of both splits, prepared (see `prepare_waveform`)."""
  if isinstance(sources.fsdd, str):
    items = read_fsdd_files(sources.fsdd)
  else:
    arrays = manual.read_records(
      sources.fsdd.as_data_source(split="train"), ("audio", "audio/filename")
    )
    items = [
      (os.path.splitext(name)[0], samples, FSDD_SAMPLE_RATE)
      for name, samples in zip(arrays["audio/filename"], arrays["audio"])
      if parse_fsdd_name(name) is not None
    ]
  return {split: split_recordings(items, split) for split in SPLITS}


def pair_by_label(image_labels: np.ndarray, recording_labels: np.ndarray, seed: int) -> np.ndarray:
  """For each image, the index of a recording with the same label, drawn uniformly.

  Per label in increasing order, `rng.integers` draws one recording for each image of that label
  (in image order), with `rng = np.random.default_rng(seed)`.

  Returns:
    int64 `[num_images]`.

  Raises:
    ValueError: an image label with no recording.
  """
  rng = np.random.default_rng(seed)
  rows = np.zeros(len(image_labels), np.int64)
  for label in range(NUM_CLASSES):
    images = np.flatnonzero(image_labels == label)
    if not len(images):
      continue
    candidates = np.flatnonzero(recording_labels == label)
    if not len(candidates):
      raise ValueError(
        f"{len(images)} image(s) show the digit {label}, but no recording of "
        "that digit is in the split."
      )
    rows[images] = candidates[rng.integers(0, len(candidates), size=len(images))]
  return rows


class Avmnist(manual.ManualBuilder):
  """AV-MNIST: MNIST images paired by label with FSDD spoken digits (local data only).

  Example i is MNIST image i of the split.
  """

  DESCRIPTION = _DESCRIPTION
  HOMEPAGE = "https://github.com/Jakobovski/free-spoken-digit-dataset"
  BUILDER_CONFIGS = [
    tfds.core.BuilderConfig(
      name="default", description="Every MNIST image, 0.5 s of audio at 4 kHz."
    )
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = instructions("<manual_dir>")

  def features(self):
    """The uint8 image, the int16 recording paired with it, their label and where they are from."""
    return {
      "rgb": tfds.features.Tensor(shape=(*IMAGE_SHAPE, 1), dtype=np.uint8),
      "wav": tfds.features.Tensor(shape=(WAV_LENGTH,), dtype=np.int16),
      "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
      "wav_name": tfds.features.Text(),
      "image_index": tfds.features.Scalar(dtype=np.int64),
    }

  def _split_generators(self, dl_manager):
    # The manual folder may be absent when both sources are prepared tfds datasets.
    manual_dir = manual.manual_dir_of(dl_manager, "", required=False) or manual.default_manual_dir(
      self
    )
    sources = find_sources(manual.data_dir_root(self), manual_dir)
    recordings = read_recordings(sources)
    self.info.metadata["sources"] = {
      "mnist": sources.mnist if isinstance(sources.mnist, str) else "tfds:mnist",
      "fsdd": sources.fsdd if isinstance(sources.fsdd, str) else "tfds:spoken_digit",
    }
    self.info.metadata["num_recordings"] = {s: len(r.names) for s, r in recordings.items()}
    self.info.metadata["wav"] = {"sample_rate": WAV_SAMPLE_RATE, "length": WAV_LENGTH}
    return {split: self._generate_examples(sources, split, recordings[split]) for split in SPLITS}

  def _generate_examples(self, sources: Sources, split: str, recordings: Recordings):
    """Yields `(i, example)` for MNIST image i of the split with its paired recording."""
    images, labels = read_mnist(sources, split)
    rows = pair_by_label(labels, recordings.labels, SPLIT_SEEDS[split])
    for i, (image, label, row) in enumerate(zip(images, labels, rows)):
      yield (
        i,
        {
          "rgb": image[..., None],
          "wav": recordings.wavs[row],
          "label": int(label),
          "wav_name": recordings.names[row],
          "image_index": i,
        },
      )
