"""A small deterministic formant synthesiser of the ten English digit words.

This is not recorded speech and not a real text-to-speech system: it is a crude source-filter
model, written for this project so that an audio modality with class structure exists without any
download. It sounds robotic. What it does:

* each word is a fixed phoneme sequence (`WORDS`) with nominal durations; each phoneme has target
  formant frequencies F1-F3 (a start and an end target for diphthongs), a voicing amplitude and
  amplitudes of three noise sources (hiss for /s z/, soft frication for /f th v/, bursts for the
  releases of /t k/);
* the tracks of all parameters are piecewise linear over the phonemes, then smoothed (25 ms for
  formants, which gives coarticulated transitions; 8 ms for amplitudes);
* voiced sound is additive synthesis: harmonics k * f0(t) below the Nyquist frequency with
  amplitude (1 / k) * H(k f0), H the product of three second-order formant resonances
  (a glottal source with -6 dB/octave tilt through a cascade formant filter); noise sources are
  white noise band-limited by FFT masks;
* per-sample "speaker" variation: base pitch (85-260 Hz, log-uniform) with a falling contour and
  a little vibrato, vocal-tract length (formants scaled by 0.88-1.17, correlated with pitch),
  speaking rate (durations x 0.8-1.25), per-phoneme duration (x 0.85-1.15) and formant
  (x 0.95-1.05) jitter, formant bandwidths, breathiness, background noise, and where the word
  starts in the clip.

Output: `length` samples at `sample_rate` Hz (default 2000 at 4 kHz, 0.5 s), trimmed if the word
runs past the end, silence-padded otherwise, scaled so that max |x| = 1. At 4 kHz the Nyquist
frequency is 2 kHz: /s/ keeps only the top of its band, as a 4 kHz recording would.

Random draws are made signal by signal from one generator in a fixed order with a fixed number of
draws per signal, so the first k waveforms do not depend on how many are synthesised.
"""

from __future__ import annotations

import numpy as np

from data_pipelines import benchmarks

DIGIT_NAMES: tuple[str, ...] = (
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
)

# Phoneme: (F1, F2, F3 at the start), (F1, F2, F3 at the end) or None (steady),
#          voicing, hiss, soft frication, burst.
_NEUTRAL = (500.0, 1500.0, 2500.0)
PHONEMES: dict[str, tuple] = {
  "z": ((250, 1700, 2600), None, 0.25, 0.35, 0.0, 0.0),
  "s": ((400, 1600, 2600), None, 0.0, 0.5, 0.0, 0.0),
  "f": ((400, 1100, 2300), None, 0.0, 0.0, 0.18, 0.0),
  "th": ((400, 1400, 2500), None, 0.0, 0.0, 0.15, 0.0),
  "v": ((300, 1100, 2300), None, 0.3, 0.0, 0.15, 0.0),
  "tcl": ((400, 1800, 2600), None, 0.0, 0.0, 0.0, 0.0),  # closure: silence
  "tb": ((400, 1800, 2600), None, 0.0, 0.1, 0.05, 0.7),  # release burst + aspiration
  "kcl": ((400, 1600, 2300), None, 0.0, 0.0, 0.0, 0.0),
  "kb": ((400, 1600, 2300), None, 0.0, 0.0, 0.1, 0.6),
  "w": ((300, 610, 2200), None, 0.6, 0.0, 0.0, 0.0),
  "r": ((310, 1060, 1380), None, 0.7, 0.0, 0.0, 0.0),
  "n": ((250, 1400, 2500), None, 0.35, 0.0, 0.0, 0.0),  # nasal murmur
  "ih": ((400, 1900, 2550), None, 1.0, 0.0, 0.0, 0.0),
  "iy": ((270, 2290, 3010), None, 1.0, 0.0, 0.0, 0.0),
  "eh": ((530, 1840, 2480), None, 1.0, 0.0, 0.0, 0.0),
  "ah": ((640, 1190, 2390), None, 1.0, 0.0, 0.0, 0.0),
  "ax": ((500, 1500, 2500), None, 0.8, 0.0, 0.0, 0.0),
  "ao": ((570, 840, 2410), None, 1.0, 0.0, 0.0, 0.0),
  "uw": ((300, 870, 2240), None, 1.0, 0.0, 0.0, 0.0),
  "ow": ((500, 900, 2400), (350, 800, 2300), 1.0, 0.0, 0.0, 0.0),
  "ay": ((730, 1090, 2440), (400, 1900, 2550), 1.0, 0.0, 0.0, 0.0),
  "ey": ((480, 1850, 2500), (330, 2100, 2700), 1.0, 0.0, 0.0, 0.0),
}

# Word: ((phoneme, nominal duration in ms), ...).
WORDS: tuple[tuple[tuple[str, float], ...], ...] = (
  (("z", 80), ("ih", 70), ("r", 60), ("ow", 190)),  # zero
  (("w", 70), ("ah", 170), ("n", 120)),  # one
  (("tcl", 40), ("tb", 30), ("uw", 250)),  # two
  (("th", 100), ("r", 60), ("iy", 220)),  # three
  (("f", 110), ("ao", 170), ("r", 110)),  # four
  (("f", 100), ("ay", 210), ("v", 80)),  # five
  (("s", 120), ("ih", 100), ("kcl", 40), ("kb", 30), ("s", 110)),  # six
  (("s", 110), ("eh", 120), ("v", 60), ("ax", 70), ("n", 100)),  # seven
  (("ey", 240), ("tcl", 40), ("tb", 40)),  # eight
  (("n", 80), ("ay", 210), ("n", 110)),  # nine
)
MAX_PHONEMES = max(len(w) for w in WORDS)

SAMPLE_RATE = benchmarks.WAV_SAMPLE_RATE
LENGTH = benchmarks.WAV_LENGTH
NUM_HARMONICS = 32
_BANDWIDTHS = (60.0, 90.0, 130.0)  # formant bandwidths (Hz) before the speaker's scale
# Noise bands (Hz) of the hiss, soft frication and burst sources.
_NOISE_BANDS = ((1300.0, 2000.0), (200.0, 2000.0), (900.0, 2000.0))
_DRAWS = 10 + 4 * MAX_PHONEMES  # uniforms per signal (see `_speakers`)


def _tables():
  """Per-word padded arrays: durations [10, P], start/end formants [10, P, 3], amps [10, P, 4]."""
  dur = np.zeros((len(WORDS), MAX_PHONEMES))
  f_start = np.tile(np.array(_NEUTRAL), (len(WORDS), MAX_PHONEMES, 1))
  f_end = f_start.copy()
  amps = np.zeros((len(WORDS), MAX_PHONEMES, 4))
  for w, word in enumerate(WORDS):
    for p, (name, ms) in enumerate(word):
      start, end, *a = PHONEMES[name]
      dur[w, p] = ms
      f_start[w, p] = start
      f_end[w, p] = start if end is None else end
      amps[w, p] = a
  return dur, f_start, f_end, amps


def _speakers(rng: np.random.Generator, num_signals: int, length: int) -> dict[str, np.ndarray]:
  """Draws the per-signal variation, signal by signal (a prefix-stable stream)."""
  u = np.empty((num_signals, _DRAWS))
  noise = np.empty((num_signals, 2, length))
  for i in range(num_signals):
    u[i] = rng.uniform(0.0, 1.0, _DRAWS)
    noise[i] = rng.standard_normal((2, length))
  p = MAX_PHONEMES
  pitch_u = u[:, 0]
  return dict(
    f0=85.0 * (260.0 / 85.0) ** pitch_u,
    formant_scale=0.88 + 0.29 * (0.6 * pitch_u + 0.4 * u[:, 1]),
    bandwidth_scale=0.8 + 0.5 * u[:, 2],
    duration_scale=0.8 + 0.45 * u[:, 3],
    onset=u[:, 4],
    background=0.003 + 0.027 * u[:, 5],
    breath=0.15 * u[:, 6],
    vibrato_phase=2 * np.pi * u[:, 7],
    declination=0.05 + 0.15 * u[:, 8],
    vibrato_depth=0.005 + 0.015 * u[:, 9],
    duration_jitter=0.85 + 0.3 * u[:, 10 : 10 + p],
    formant_jitter=(0.95 + 0.1 * u[:, 10 + p : 10 + 4 * p]).reshape(num_signals, p, 3),
    noise=noise,
  )


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
  """Moving average along the last axis (edge-padded), same length."""
  if width <= 1:
    return x
  left = width // 2
  padded = np.concatenate(
    [np.repeat(x[..., :1], left, -1), x, np.repeat(x[..., -1:], width - 1 - left, -1)], -1
  )
  c = np.cumsum(padded, -1)
  c = np.concatenate([np.zeros_like(c[..., :1]), c], -1)
  return (c[..., width:] - c[..., :-width]) / width


def _band_noise(noise: np.ndarray, band: tuple[float, float], sample_rate: int) -> np.ndarray:
  """White noise [S, T] band-limited by a raised-cosine FFT mask, scaled to unit std."""
  t = noise.shape[-1]
  freqs = np.fft.rfftfreq(t, 1.0 / sample_rate)
  lo, hi = band
  ramp = 100.0
  mask = np.clip((freqs - lo + ramp) / ramp, 0.0, 1.0) * np.clip(
    (hi - freqs) / ramp + 1.0, 0.0, 1.0
  )
  out = np.fft.irfft(np.fft.rfft(noise, axis=-1) * mask, n=t, axis=-1)
  return out / np.maximum(out.std(-1, keepdims=True), 1e-12)


def synthesise(
  labels: np.ndarray,
  rng: np.random.Generator,
  length: int = LENGTH,
  sample_rate: int = SAMPLE_RATE,
  chunk_size: int = 64,
) -> np.ndarray:
  """Synthesises one spoken digit per label.

  Args:
    labels: int [S], digits 0-9.
    rng: the generator of the per-signal variation (drawn signal by signal).
    length: samples per waveform T.
    sample_rate: Hz.
    chunk_size: waveforms synthesised at once (bounds memory; does not change the result).

  Returns:
    float32 [S, T] waveforms with max |x| = 1.

  Raises:
    ValueError: a label outside 0-9, or a length/sample rate below 1.
  """
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size and (labels.min() < 0 or labels.max() > 9):
    raise ValueError(f"labels must be a 1-D array of digits 0-9; got {labels!r}.")
  if length < 1 or sample_rate < 1:
    raise ValueError(f"length and sample_rate must be >= 1; got {length}, {sample_rate}.")
  speakers = _speakers(rng, labels.shape[0], length)
  out = np.empty((labels.shape[0], length), np.float32)
  for start in range(0, labels.shape[0], chunk_size):
    stop = min(start + chunk_size, labels.shape[0])
    out[start:stop] = _synthesise_chunk(
      labels[start:stop], {k: v[start:stop] for k, v in speakers.items()}, length, sample_rate
    )
  return out


def _synthesise_chunk(labels, sp, length, sample_rate):
  s = labels.shape[0]
  dur_table, fs_table, fe_table, amp_table = _tables()
  ms = 1000.0 / sample_rate
  dur = dur_table[labels] * sp["duration_scale"][:, None] * sp["duration_jitter"] / ms  # samples
  dur = np.where(dur_table[labels] > 0, dur, 0.0)
  total = dur.sum(-1)  # [S]
  slack = np.maximum(length - total - 0.08 * sample_rate, 0.0)
  onset = 0.02 * sample_rate + sp["onset"] * slack  # [S]
  starts = onset[:, None] + np.concatenate([np.zeros((s, 1)), np.cumsum(dur, -1)[:, :-1]], -1)

  t = np.arange(length, dtype=np.float64)
  rel = t[None, None, :] - starts[..., None]  # [S, P, T]
  in_seg = (rel >= 0) & (rel < dur[..., None])
  frac = np.clip(rel / np.maximum(dur[..., None], 1e-9), 0.0, 1.0)
  jitter = sp["formant_jitter"] * sp["formant_scale"][:, None, None]  # [S, P, 3]
  f_start = fs_table[labels] * jitter
  f_end = fe_table[labels] * jitter
  formant = f_start[..., None] + (f_end - f_start)[..., None] * frac[:, :, None, :]  # [S,P,3,T]
  in_word = in_seg.any(1)  # [S, T]
  neutral = np.array(_NEUTRAL)[None, :, None] * sp["formant_scale"][:, None, None]
  formants = np.where(in_word[:, None], (formant * in_seg[:, :, None]).sum(1), neutral)
  formants = _smooth(formants, int(0.025 * sample_rate))  # [S, 3, T]
  amps = np.einsum("spk,spt->skt", amp_table[labels], in_seg.astype(np.float64))
  amps = _smooth(amps, int(0.008 * sample_rate))  # [S, 4, T]
  voicing, hiss, soft, burst = (amps[:, k] for k in range(4))

  # Pitch: a falling contour over the word plus vibrato.
  word_pos = np.clip((t[None] - onset[:, None]) / np.maximum(total[:, None], 1.0), 0.0, 1.0)
  f0 = sp["f0"][:, None] * (1.0 + sp["declination"][:, None] * (0.5 - word_pos))
  f0 = f0 * (
    1.0
    + sp["vibrato_depth"][:, None]
    * np.sin(2 * np.pi * 5.0 * t[None] / sample_rate + sp["vibrato_phase"][:, None])
  )
  phase = 2 * np.pi * np.cumsum(f0, -1) / sample_rate  # [S, T]

  k = np.arange(1, NUM_HARMONICS + 1, dtype=np.float64)[None, :, None]  # [1, K, 1]
  freq = k * f0[:, None, :]  # [S, K, T]
  gain = 1.0 / k
  for i, bandwidth in enumerate(_BANDWIDTHS):
    f_i = formants[:, i][:, None, :]
    b_i = bandwidth * sp["bandwidth_scale"][:, None, None]
    gain = gain * f_i**2 / np.sqrt((f_i**2 - freq**2) ** 2 + (b_i * freq) ** 2)
  gain = gain * (freq < 0.95 * sample_rate / 2)  # no aliasing
  voiced = np.sum(gain * np.sin(k * phase[:, None, :]), 1)  # [S, T]
  loud = voicing > 0.5
  rms = np.sqrt(np.sum(voiced**2 * loud, -1) / np.maximum(loud.sum(-1), 1))
  voiced = voiced / np.maximum(rms, 1e-9)[:, None]

  white, background = sp["noise"][:, 0], sp["noise"][:, 1]
  hiss_n, soft_n, burst_n = (_band_noise(white, band, sample_rate) for band in _NOISE_BANDS)
  x = (
    voicing * voiced
    + hiss * hiss_n
    + soft * soft_n
    + burst * burst_n
    + sp["breath"][:, None] * voicing * soft_n
  )
  x = x / np.max(np.abs(x), -1, keepdims=True)
  x = x + sp["background"][:, None] * background
  return (x / np.max(np.abs(x), -1, keepdims=True)).astype(np.float32)
