"""Audio-visual digits: a digit image paired by class with a spoken digit.

* ``rgb``: one of scikit-learn's bundled handwritten digits (`sklearn.datasets.load_digits`:
  1,797 images of 8x8 pixels with values 0-16, shipped inside the package, no download),
  upsampled bilinearly to `IMAGE_SIZE` x `IMAGE_SIZE` and scaled to [0, 1]; 1 channel.
* ``wav``: the same digit spoken by the formant synthesiser in `speech` (a new random "speaker"
  for every signal), `speech.LENGTH` samples at `speech.SAMPLE_RATE` Hz, max |x| = 1.

The 1,797 images are split once (a fixed permutation) into 1,437 train and 360 test images, so
train and test signals never share an image. Signal i of a split draws its label uniformly, then
one image of that class from the split's images (images repeat across signals; the waveforms
never do). Pairing draws and speech draws come from two independent streams of
`np.random.SeedSequence(seed)`, signal by signal, so the first k signals do not depend on
`num_signals`.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools

import numpy as np

from data_pipelines import benchmarks
from data_pipelines.avdigits import speech
from data_pipelines.names import parse_modalities

MODALITIES: tuple[str, ...] = benchmarks.AVDIGITS_MODALITIES
IMAGE_SIZE = benchmarks.AVMNIST_IMAGE_GRID[0]  # MNIST's (square) size, AV-MNIST's image grid
NUM_CLASSES = 10
NUM_TRAIN_IMAGES = 1437  # of scikit-learn's 1,797 digits; the other 360 are test images
_IMAGE_SPLIT_SEED = 0


def upsample_matrix(n_in: int, n_out: int) -> np.ndarray:
  """Bilinear (pixel-centre aligned, edge-clamped) interpolation matrix, float64 [n_out, n_in]."""
  pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1)
  lo = np.floor(pos).astype(int)
  hi = np.minimum(lo + 1, n_in - 1)
  w = pos - lo
  m = np.zeros((n_out, n_in))
  m[np.arange(n_out), lo] += 1.0 - w
  m[np.arange(n_out), hi] += w
  return m


@functools.lru_cache(maxsize=4)
def digit_images(size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
  """All scikit-learn digits upsampled: (float32 [1797, size, size] in [0, 1], int64 [1797])."""
  from sklearn.datasets import load_digits  # bundled with scikit-learn; imported on use

  digits = load_digits()
  m = upsample_matrix(8, size)
  images = np.einsum("ij,njk,lk->nil", m, digits.images / 16.0, m)
  images = np.clip(images, 0.0, 1.0).astype(np.float32)
  images.setflags(write=False)
  labels = digits.target.astype(np.int64)
  labels.setflags(write=False)
  return images, labels


def split_image_indices(split: str) -> np.ndarray:
  """The indices into `digit_images()` that a split draws from ("train" or "test")."""
  if split not in ("train", "test"):
    raise ValueError(f"Unknown avdigits split {split!r}; allowed: train, test.")
  _, labels = digit_images()
  order = np.random.default_rng(_IMAGE_SPLIT_SEED).permutation(labels.shape[0])
  return np.sort(order[:NUM_TRAIN_IMAGES] if split == "train" else order[NUM_TRAIN_IMAGES:])


def generate_signals(
  num_signals: int,
  seed: int,
  split: str = "train",
  modalities: Sequence[str] = MODALITIES,
  sample_rate: int = speech.SAMPLE_RATE,
) -> dict[str, dict[str, np.ndarray]]:
  """Generates paired audio-visual digit signals.

  Args:
    num_signals: number of signals S (>= 0).
    seed: seed of the pairing and speech streams.
    split: which images to draw from, "train" or "test".
    modalities: which of `MODALITIES` to return, in this order.
    sample_rate: of the waveforms in Hz (their length is always `speech.LENGTH` samples).

  Returns:
    `{name: {"y": float32 [S, N, 1], "amplitude": float32 [S] (ones), "label": int64 [S]}}`
    with N = IMAGE_SIZE**2 for rgb and `speech.LENGTH` for wav; rgb also has
    "image_index" (int64 [S], the scikit-learn digit shown). The rgb label is the image's own
    scikit-learn label, the wav label the word spoken; they agree by construction.

  Raises:
    ValueError: unknown or repeated modality, unknown split, or negative `num_signals`.
  """
  modalities = parse_modalities(modalities, MODALITIES, "avdigits")
  if num_signals < 0:
    raise ValueError(f"num_signals must be >= 0, got {num_signals}.")
  images, image_labels = digit_images()
  pool = split_image_indices(split)
  by_class = [pool[image_labels[pool] == c] for c in range(NUM_CLASSES)]
  pair_stream, speech_stream = np.random.SeedSequence(seed).spawn(2)
  pair_rng = np.random.default_rng(pair_stream)
  labels = np.empty(num_signals, np.int64)
  image_index = np.empty(num_signals, np.int64)
  for i in range(num_signals):
    u_label, u_image = pair_rng.uniform(0.0, 1.0, 2)
    labels[i] = min(int(u_label * NUM_CLASSES), NUM_CLASSES - 1)
    members = by_class[labels[i]]
    image_index[i] = members[min(int(u_image * len(members)), len(members) - 1)]

  out: dict = {}
  ones = np.ones((num_signals,), np.float32)
  for name in modalities:
    if name == "rgb":
      y = images[image_index].reshape(num_signals, IMAGE_SIZE * IMAGE_SIZE, 1)
      out[name] = {
        "y": y,
        "amplitude": ones,
        "label": image_labels[image_index].copy(),
        "image_index": image_index,
      }
    else:
      wav = speech.synthesise(labels, np.random.default_rng(speech_stream), sample_rate=sample_rate)
      out[name] = {"y": wav[..., None], "amplitude": ones, "label": labels.copy()}
  return out
