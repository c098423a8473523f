"""The Free Spoken Digit Dataset's recordings for AV-MNIST (`avmnist.py`): file names and FSDD's
own split, reading the wav files, and each recording resampled to `WAV_SAMPLE_RATE` (4 kHz),
trimmed or zero-padded to `WAV_LENGTH` samples, peak-normalised and stored as int16."""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import re

from absl import logging
import numpy as np
from scipy import signal as scipy_signal
from scipy.io import wavfile

from data_pipelines import manual
from data_pipelines.benchmarks import WAV_LENGTH, WAV_SAMPLE_RATE

FSDD_SAMPLE_RATE = 8000
# FSDD's official split: recordings 0-4 of each speaker and digit are the test set.
FSDD_TEST_INDICES = range(5)
INT16_SCALE = 32767.0
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)$")


def parse_fsdd_name(file_name: str) -> tuple[int, str, int] | None:
  """`"7_jackson_32.wav"` -> `(7, "jackson", 32)`; None for a name not in FSDD's pattern."""
  match = _FSDD_NAME.match(os.path.splitext(os.path.basename(file_name))[0])
  if match is None:
    return None
  return int(match.group(1)), match.group(2), int(match.group(3))


def fsdd_split(file_name: str) -> str:
  """FSDD's official split of a recording: "test" for indices 0-4, else "train"."""
  parsed = parse_fsdd_name(file_name)
  if parsed is None:
    raise ValueError(f"{file_name!r} is not named <digit>_<speaker>_<index>.wav.")
  return "test" if parsed[2] in FSDD_TEST_INDICES else "train"


def prepare_waveform(
  samples: np.ndarray,
  sample_rate: int,
  length: int = WAV_LENGTH,
  target_rate: int = WAV_SAMPLE_RATE,
) -> np.ndarray:
  """Resamples, trims or zero-pads and peak-normalises one recording.

  Args:
    samples: `[T]` or `[T, channels]` (channels are averaged), any numeric dtype.
    sample_rate: rate of `samples` in Hz.
    length: output length in samples.
    target_rate: output rate in Hz (polyphase resampling when it differs).

  Returns:
    float32 `[length]` in [-1, 1], divided by its peak absolute value (zeros stay zeros).
  """
  x = np.asarray(samples, np.float64)
  if x.ndim == 2:
    x = x.mean(axis=1)
  if x.ndim != 1:
    raise ValueError(f"Expected a waveform [T] or [T, channels]; got shape {x.shape}.")
  if sample_rate != target_rate:
    g = math.gcd(int(sample_rate), int(target_rate))
    x = scipy_signal.resample_poly(x, target_rate // g, sample_rate // g)
  x = x[:length]
  if len(x) < length:
    x = np.pad(x, (0, length - len(x)))
  peak = np.abs(x).max()
  return (x / peak if peak > 0 else x).astype(np.float32)


def quantize(waveform: np.ndarray) -> np.ndarray:
  """float in [-1, 1] -> int16 `round(32767 * y)` (what the builder stores)."""
  return np.round(np.clip(waveform, -1.0, 1.0) * INT16_SCALE).astype(np.int16)


@dataclasses.dataclass(frozen=True)
class Recordings:
  """The recordings of one split, sorted by file name.

  Attributes:
    names: file names without `.wav`, `[R]`.
    labels: spoken digits, int64 `[R]`.
    wavs: int16 `[R, WAV_LENGTH]` (see `quantize`).
  """

  names: tuple[str, ...]
  labels: np.ndarray
  wavs: np.ndarray


def split_recordings(items: list[tuple[str, np.ndarray, int]], split: str) -> Recordings:
  """Builds `Recordings` of a split from `(name, samples, rate)`."""
  chosen = sorted(
    (name, samples, rate) for name, samples, rate in items if fsdd_split(name) == split
  )
  wavs = [quantize(prepare_waveform(samples, rate)) for _, samples, rate in chosen]
  return Recordings(
    names=tuple(name for name, _, _ in chosen),
    labels=np.array([parse_fsdd_name(name)[0] for name, _, _ in chosen], np.int64),
    wavs=np.stack(wavs) if wavs else np.zeros((0, WAV_LENGTH), np.int16),
  )


def find_recordings_dir(manual_dir: str) -> str | None:
  """`manual_dir/recordings`, else the first `manual_dir/*/recordings` holding wav files."""
  for folder in [
    os.path.join(manual_dir, "recordings"),
    *sorted(glob.glob(os.path.join(manual_dir, "*", "recordings"))),
  ]:
    if os.path.isdir(folder) and manual.list_files(folder, (".wav",)):
      return folder
  return None


def read_fsdd_files(recordings_dir: str) -> list[tuple[str, np.ndarray, int]]:
  """Reads every FSDD-named wav of a folder: `[(name, samples, rate)]`.

  Wav files whose name is not `<digit>_<speaker>_<index>.wav` are skipped with a warning.

  Raises:
    ValueError: a file scipy cannot read, or no FSDD-named file.
  """
  items, skipped = [], []
  for file_name in manual.list_files(recordings_dir, (".wav",)):
    if parse_fsdd_name(file_name) is None:
      skipped.append(file_name)
      continue
    path = os.path.join(recordings_dir, file_name)
    try:
      rate, samples = wavfile.read(path)
    except (OSError, ValueError) as error:
      raise ValueError(f"Cannot read the wav file {path}: {error}") from None
    items.append((os.path.splitext(file_name)[0], samples, rate))
  if skipped:
    logging.warning(
      "FSDD: skipped %d wav file(s) of %s not named <digit>_<speaker>_<index>.wav (e.g. %s).",
      len(skipped),
      recordings_dir,
      ", ".join(skipped[:5]),
    )
  if not items:
    raise ValueError(
      f"No wav file of {recordings_dir} is named <digit>_<speaker>_<index>.wav "
      f"(skipped: {skipped[:5]})."
    )
  return items
