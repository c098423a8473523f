"""The benchmarks' modalities: every fact of a benchmark's modalities lives here, once.

Each benchmark has its modality names, grids, support-ratio ranges and evaluation bins, and a spec
factory `NAME_spec(modality) -> mia_jax.ModalitySpec`; `BENCHMARKS` maps a benchmark name to
both, and `benchmark_specs("synthetic", "sine+tanh")` gives the specs of a subset (docs/method.md
sections 1-2). The library (`mia_jax`) knows no benchmark: it takes specs.
"""

from __future__ import annotations

from typing import Sequence

from data_pipelines.names import parse_modalities
from mia_jax.modalities import ModalitySpec


def _check_name(benchmark: str, name: str, known: Sequence[str]) -> None:
  parse_modalities((name,), known, what=benchmark)


SYNTHETIC_FUNCTIONS = ("sine", "tanh", "gaussian", "relu")
SYNTHETIC_NUM_POINTS = 200  # regular points of t in [-5, 5]


def synthetic_spec(name: str, num_points: int = SYNTHETIC_NUM_POINTS) -> ModalitySpec:
  """A 1-D synthetic function modality (amplitude-normalised errors)."""
  _check_name("synthetic", name, SYNTHETIC_FUNCTIONS)
  return ModalitySpec(
    name=name,
    d_in=1,
    grid_shape=(num_points,),
    d_out=1,
    output_bias=0.0,
    error_normaliser="amplitude",
    ratio_range=(0.01, 0.1),
    ratio_bins=((0.01, 0.02), (0.02, 0.05), (0.05, 0.1)),
    fourier_sigma=0.0,
  )


# Image-like benchmarks (docs/method.md sections 1-2). Their images are in [0, 1] (output bias 0.5)
# and use random Fourier features: the specs leave `fourier_sigma` unset, so the model config's
# `model.ff_sigma` applies, and every image/audio config sets it to IMAGE_FOURIER_SIGMA (30) with
# `model.ff_dim = IMAGE_FF_DIM` (128). A config left at the base default `ff_sigma = 0` would get a
# plain linear encoder, which cannot fit a 32x32 image.
IMAGE_FOURIER_SIGMA = 30.0
IMAGE_FF_DIM = 128

# Support ratios and evaluation bins shared by CelebA, the shapes set, ERA5 and the digit images.
IMAGE_RATIO_RANGE = (0.001, 1.0)
IMAGE_RATIO_BINS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))

# CelebA and the offline shapes set: three aligned 32x32 modalities with 3 channels each.
CELEBA_MODALITIES = ("rgb", "normal", "sketch")
SHAPES_MODALITIES = CELEBA_MODALITIES
CELEBA_GRID = (32, 32)

# AV-MNIST and the offline audio-visual digits: a grayscale digit image and a spoken digit.
AVMNIST_MODALITIES = ("rgb", "wav")
AVDIGITS_MODALITIES = AVMNIST_MODALITIES
# MNIST's native size; the 8x8 scikit-learn digits of `avdigits` are upsampled to it.
AVMNIST_IMAGE_GRID = (28, 28)
# Waveforms are resampled to WAV_SAMPLE_RATE and trimmed/padded to WAV_LENGTH samples (0.5 s):
# long enough for one spoken digit, short enough that a signal (image + audio) has ~2,800 grid
# points: the paper's model at batch 32 takes ~4 s a meta-step on a 2-core CPU, the `cpu` preset
# ~0.7 s (docs/performance.md). The Free Spoken Digit Dataset (8 kHz) is decimated by 2.
WAV_SAMPLE_RATE = 4000
WAV_LENGTH = 2000
WAV_RATIO_RANGE = (0.25, 1.0)

# ERA5: three climate variables on a lat x lon grid with a 1:2 aspect, each normalised to [0, 1].
ERA5_MODALITIES = ("temperature", "pressure", "humidity")
ERA5_GRID = (46, 90)


def celeba_spec(name: str, grid_shape: tuple[int, int] = CELEBA_GRID) -> ModalitySpec:
  """A CelebA modality (rgb, normal or sketch): a 3-channel image in [0, 1]."""
  _check_name("celeba", name, CELEBA_MODALITIES)
  return ModalitySpec(
    name=name,
    d_in=2,
    grid_shape=grid_shape,
    d_out=3,
    output_bias=0.5,
    ratio_range=IMAGE_RATIO_RANGE,
    ratio_bins=IMAGE_RATIO_BINS,
  )


def shapes_spec(name: str, grid_shape: tuple[int, int] = CELEBA_GRID) -> ModalitySpec:
  """A modality of the offline rendered-shapes set: the same facts as CelebA's."""
  _check_name("shapes", name, SHAPES_MODALITIES)
  return celeba_spec(name, grid_shape)


def avmnist_spec(
  name: str, image_grid: tuple[int, int] = AVMNIST_IMAGE_GRID, wav_length: int = WAV_LENGTH
) -> ModalitySpec:
  """An AV-MNIST modality: "rgb" (a 1-channel digit image in [0, 1], output bias 0.5, R in
  [0.001, 1]) or "wav" (a 1-D waveform in [-1, 1], output bias 0, R in [0.25, 1])."""
  _check_name("avmnist", name, AVMNIST_MODALITIES)
  if name == "wav":  # the spec factory is where a benchmark's modalities are told apart
    return ModalitySpec(
      name=name,
      d_in=1,
      grid_shape=(wav_length,),
      d_out=1,
      output_bias=0.0,
      ratio_range=WAV_RATIO_RANGE,
      ratio_bins=IMAGE_RATIO_BINS,
    )
  return ModalitySpec(
    name=name,
    d_in=2,
    grid_shape=image_grid,
    d_out=1,
    output_bias=0.5,
    ratio_range=IMAGE_RATIO_RANGE,
    ratio_bins=IMAGE_RATIO_BINS,
  )


def avdigits_spec(
  name: str, image_grid: tuple[int, int] = AVMNIST_IMAGE_GRID, wav_length: int = WAV_LENGTH
) -> ModalitySpec:
  """A modality of the offline audio-visual digits: the same facts as AV-MNIST's."""
  _check_name("avdigits", name, AVDIGITS_MODALITIES)
  return avmnist_spec(name, image_grid, wav_length)


def era5_spec(name: str, grid_shape: tuple[int, int] = ERA5_GRID) -> ModalitySpec:
  """An ERA5 variable (temperature, pressure, humidity): 1 channel in [0, 1] on lat x lon."""
  _check_name("era5", name, ERA5_MODALITIES)
  return ModalitySpec(
    name=name,
    d_in=2,
    grid_shape=grid_shape,
    d_out=1,
    output_bias=0.5,
    ratio_range=IMAGE_RATIO_RANGE,
    ratio_bins=IMAGE_RATIO_BINS,
  )


BENCHMARKS = {
  # benchmark name -> (its modality names, spec factory)
  "synthetic": (SYNTHETIC_FUNCTIONS, synthetic_spec),
  "celeba": (CELEBA_MODALITIES, celeba_spec),
  "shapes": (SHAPES_MODALITIES, shapes_spec),
  "avmnist": (AVMNIST_MODALITIES, avmnist_spec),
  "avdigits": (AVDIGITS_MODALITIES, avdigits_spec),
  "era5": (ERA5_MODALITIES, era5_spec),
}


def benchmark_specs(benchmark: str, modalities: str | Sequence[str]) -> tuple[ModalitySpec, ...]:
  """The specs of a subset of a benchmark's modalities, e.g. ("synthetic", "sine+tanh")."""
  if benchmark not in BENCHMARKS:
    raise ValueError(f"Unknown benchmark {benchmark!r}; allowed: {', '.join(BENCHMARKS)}.")
  known, factory = BENCHMARKS[benchmark]
  return tuple(factory(n) for n in parse_modalities(modalities, known))
