r"""Reconstructs signals from a few observed points with a trained run, at any resolution.

  # Your observations (an .npz, format below) -> predictions, latents and a picture:
  python -m experiments.reconstruct --workdir=/tmp/mia --observations=obs.npz \
      --output=/tmp/rec.npz --upsample=4
  # The adapted latents of every signal of a split (a compact code for downstream models):
  python -m experiments.reconstruct --workdir=/tmp/mia --encode=test --output=/tmp/latents.npz
  python -m experiments.reconstruct --workdir=/tmp/mia --encode=other.npz --support=0.1 \
      --output=/tmp/latents.npz

The observations file holds, per modality `m` of the run, one of two forms (`save_observations`
writes both):

* **on the grid**: `m` `[n, *grid, d_out]` (`[n, *grid]` for one channel), the values, and
  `m_mask` `[n, *grid]`, 1 where observed (no mask: every point observed). Values where the mask
  is 0 are the ground truth if they are finite numbers (then the errors are printed, as in the
  run's results table); NaN means unknown.
* **as points**: `m_coords` `[n, S, d_in]` (`[n, S]` for 1-D), anywhere in the grid's domain
  [-1, 1] per axis, `m_values` `[n, S, d_out]` (`[n, S]` for one channel), and optionally
  `m_count` `[n]`: signal i observes its first `m_count[i]` points (default all S).

Optionally `m_amplitude` `[n]`: the error normaliser of modalities whose errors are normalised
(the synthetic functions). A modality left out of the file is not observed: MIA's fusion still
moves its latent from the other modalities (cross-modal completion); other methods leave it at
the learned initialisation.

The output `.npz` holds, per modality, `m` (predictions on the training grid, `[n, *grid,
d_out]`), `m_latents` (the adapted latents) and `m_count` (observed points per signal), with
`--upsample=F` also `m_upsampled` on the grid with F - 1 points between neighbours
(`ModalitySpec.upsampled_shape`). A picture of the first signals goes next to it (`.png`).
Bad input is one `error:` line and exit code 2.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from absl import flags
import numpy as np

FLAGS = flags.FLAGS
_DOMAIN_TOL = 1e-5  # coordinates within this of [-1, 1] are inside


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "The run's --workdir (config.json, checkpoints/).")
  flags.DEFINE_string("observations", None, "An .npz of observations (see the module doc).")
  flags.DEFINE_string("encode", None, "Instead of --observations: encode every signal of a split "
                      "of the run's data (train or test) or of an .npz of grid arrays (the "
                      "format of data_pipelines.sources.save_npz).")
  flags.DEFINE_string("support", "full", "With --encode: the observed points, 'full' (all), "
                      "'episodes' (the run's fixed meta-test supports; test split only) or a "
                      "ratio in (0, 1] (that share of points per signal, drawn with --seed).")
  flags.DEFINE_integer("seed", 0, "With --encode --support=RATIO: the draw of the points.")
  flags.DEFINE_string("output", None, "The .npz to write.")
  flags.DEFINE_integer("upsample", 1, "Also predict on a grid this many times finer per axis.")
  flags.DEFINE_integer("num_plots", 3, "Signals drawn to OUTPUT.png (0: no picture).")
  flags.DEFINE_integer("batch_size", 64, "Signals adapted at once.")
  flags.DEFINE_integer("step", None, "The checkpoint step to load (default: the latest).")


# ----------------------------------------------------------------------------- files


def save_observations(path: str, grid: Mapping[str, Any] | None = None,
                      points: Mapping[str, Any] | None = None,
                      amplitude: Mapping[str, Any] | None = None) -> None:
  """Writes an observations file for `python -m experiments.reconstruct`.

  Args:
    path: the `.npz` to write.
    grid: `{name: (values [n, *grid, d_out], mask [n, *grid])}` (mask None: all observed);
      unobserved values are ground truth if finite, NaN if unknown.
    points: `{name: (coords [n, S, d_in], values [n, S, d_out])}` or with a third entry,
      `count [n]` (signal i observes its first count[i] points).
    amplitude: `{name: [n]}` error normalisers, for modalities that have them.
  """
  arrays = {}
  for name, item in (grid or {}).items():
    values, mask = item if isinstance(item, (tuple, list)) else (item, None)
    arrays[name] = np.asarray(values, np.float32)
    if mask is not None:
      arrays[f"{name}_mask"] = np.asarray(mask, np.float32)
  for name, item in (points or {}).items():
    if name in arrays:
      raise ValueError(f"Modality {name!r} is given both on the grid and as points; give one.")
    arrays[f"{name}_coords"] = np.asarray(item[0], np.float32)
    arrays[f"{name}_values"] = np.asarray(item[1], np.float32)
    if len(item) > 2 and item[2] is not None:
      arrays[f"{name}_count"] = np.asarray(item[2], np.int64)
  for name, a in (amplitude or {}).items():
    arrays[f"{name}_amplitude"] = np.asarray(a, np.float32)
  if not arrays:
    raise ValueError("Nothing to save: give grid= or points= observations.")
  tmp = path + ".tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def _read_npz(path: str) -> dict[str, np.ndarray]:
  if not path:
    raise ValueError("Give --observations=FILE.npz (or --encode).")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Observations file {path!r} does not exist.")
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: np.asarray(data[k]) for k in data.files}
  except Exception as e:  # a truncated zip, a pickled object, not an npz at all
    raise ValueError(f"{path!r} is not a readable .npz of arrays ({type(e).__name__}: "
                     f"{e}).") from None


def _channels(a: np.ndarray, lead: int, d: int, what: str, want: str) -> np.ndarray:
  """`a` with `lead` leading axes and a channel axis of size `d` (added when d == 1)."""
  if a.ndim == lead and d == 1:
    a = a[..., None]
  if a.ndim != lead + 1 or a.shape[-1] != d:
    raise ValueError(f"{what} has shape {a.shape}; expected {want}.")
  return a


def parse_observations(arrays: Mapping[str, np.ndarray], specs, where: str) -> dict[str, dict]:
  """Checks an observations file's arrays and brings each modality to points.

  Returns `{name: {"coords": [n, S, d_in], "values": [n, S, d_out], "mask": [n, S],
  "grid_mask": [n, N] or None, "truth": [n, N, d_out] or None, "amplitude": [n] or None}}` for
  the modalities the file observes; grid observations are gathered to their observed points.
  """
  by_name = {s.name: s for s in specs}
  suffixes = ("_mask", "_coords", "_values", "_count", "_amplitude")
  used: dict[str, list[str]] = {}
  for key in arrays:
    name = key
    for suf in suffixes:
      if key.endswith(suf) and key[:-len(suf)] in by_name:
        name = key[:-len(suf)]
        break
    if name not in by_name:
      raise ValueError(f"{where} has an array {key!r} that names no modality of the run; the "
                       f"run's modalities are {sorted(by_name)} (keys: NAME, NAME_mask, "
                       "NAME_coords, NAME_values, NAME_count, NAME_amplitude).")
    used.setdefault(name, []).append(key)
  out, sizes = {}, {}
  for name, keys in used.items():
    spec = by_name[name]
    n_grid, n_pts = name in arrays, f"{name}_coords" in arrays or f"{name}_values" in arrays
    if n_grid and n_pts:
      raise ValueError(f"{where} gives {name!r} both on the grid ({name!r}) and as points "
                       f"({name}_coords/{name}_values); give one form.")
    if not n_grid and not n_pts:
      raise ValueError(f"{where} has {sorted(keys)} but no observations of {name!r}: give "
                       f"{name!r} (grid values) or {name}_coords and {name}_values.")
    grid = "x".join(map(str, spec.grid_shape))
    if n_grid:
      for bad in (f"{name}_coords", f"{name}_values", f"{name}_count"):
        if bad in arrays:
          raise ValueError(f"{where}: {bad!r} belongs to point observations, but {name!r} is "
                           "given on the grid.")
      want = f"[n, {', '.join(map(str, spec.grid_shape))}, {spec.d_out}]"
      y = _channels(np.asarray(arrays[name], np.float64), 1 + spec.d_in, spec.d_out,
                    f"{where}: {name!r}", f"{want} (modality {name!r}: grid {grid}, "
                    f"{spec.d_out} channel(s))")
      if y.shape[1:-1] != spec.grid_shape:
        raise ValueError(f"{where}: {name!r} has grid {y.shape[1:-1]}; the run's {name!r} is "
                         f"on {spec.grid_shape} (expected {want}).")
      n = y.shape[0]
      y = y.reshape(n, spec.num_points, spec.d_out)
      if f"{name}_mask" in arrays:
        m = np.asarray(arrays[f"{name}_mask"], np.float64)
        if m.shape != (n,) + spec.grid_shape:
          raise ValueError(f"{where}: {name}_mask has shape {m.shape}; expected "
                           f"{(n,) + spec.grid_shape} (one entry per grid point of {name!r}).")
        if not np.all((m == 0) | (m == 1)):
          raise ValueError(f"{where}: {name}_mask must hold 0 (unobserved) or 1 (observed); "
                           f"it has {np.unique(m[(m != 0) & (m != 1)])[:5].tolist()}.")
        m = m.reshape(n, spec.num_points) > 0
      else:
        m = np.ones((n, spec.num_points), bool)
      if not np.isfinite(y[m]).all():
        bad = np.flatnonzero(~np.isfinite(np.where(m[..., None], y, 0)).all(axis=(1, 2)))
        raise ValueError(f"{where}: {name!r} has NaN or infinite values at observed points "
                         f"(signals {bad[:5].tolist()}); mask them out or fix them.")
      counts = m.sum(1)
      s = max(int(counts.max()), 1)
      idx = np.zeros((n, s), np.int64)
      mask = np.zeros((n, s), np.float32)
      for i in range(n):
        obs = np.flatnonzero(m[i])
        idx[i, :obs.size] = obs
        mask[i, :obs.size] = 1.0
      coords = spec.coordinates()[idx]
      values = np.take_along_axis(np.nan_to_num(y), idx[..., None], axis=1)
      truth = y if np.isfinite(y).all() else None
      out[name] = dict(coords=coords, values=values, mask=mask, grid_mask=m, truth=truth)
    else:
      for part in ("coords", "values"):
        if f"{name}_{part}" not in arrays:
          raise ValueError(f"{where} has {name}_{'values' if part == 'coords' else 'coords'} "
                           f"but no {name}_{part}; point observations need both.")
      if f"{name}_mask" in arrays:
        raise ValueError(f"{where}: {name}_mask belongs to grid observations; point "
                         f"observations mark their points with {name}_count [n].")
      coords = _channels(np.asarray(arrays[f"{name}_coords"], np.float64), 2, spec.d_in,
                         f"{where}: {name}_coords", f"[n, S, {spec.d_in}] (modality {name!r} "
                         f"has d_in={spec.d_in})")
      n, s = coords.shape[:2]
      values = _channels(np.asarray(arrays[f"{name}_values"], np.float64), 2, spec.d_out,
                         f"{where}: {name}_values", f"[{n}, {s}, {spec.d_out}] (modality "
                         f"{name!r} has d_out={spec.d_out}; {name}_coords is {coords.shape})")
      if values.shape[:2] != (n, s):
        raise ValueError(f"{where}: {name}_values has shape {values.shape}; expected "
                         f"[{n}, {s}, {spec.d_out}] to match {name}_coords {coords.shape}.")
      count = np.full((n,), s)
      if f"{name}_count" in arrays:
        count = np.asarray(arrays[f"{name}_count"])
        if (count.shape != (n,) or not np.issubdtype(count.dtype, np.number)
            or not np.all(np.isfinite(count)) or np.any(count != np.round(count))
            or np.any(count < 0) or np.any(count > s)):
          raise ValueError(f"{where}: {name}_count must be [{n}] whole numbers in 0..{s} (the "
                           f"observed points of each signal); got shape {count.shape}, values "
                           f"{np.asarray(count).ravel()[:5].tolist()}.")
        count = count.astype(np.int64)
      mask = (np.arange(s)[None] < count[:, None]).astype(np.float32)
      on = mask > 0
      if not np.isfinite(coords[on]).all() or not np.isfinite(values[on]).all():
        raise ValueError(f"{where}: {name}_coords or {name}_values hold NaN or infinite "
                         "numbers at observed points.")
      outside = on & (np.abs(coords) > 1.0 + _DOMAIN_TOL).any(-1)
      if outside.any():
        i, j = np.argwhere(outside)[0]
        raise ValueError(f"{where}: {name}_coords[{i}, {j}] = {coords[i, j].tolist()} lies "
                         f"outside the domain the run was trained on, [-1, 1] per axis "
                         f"({outside.sum()} such point(s)); rescale the coordinates so the "
                         "grid's corners are -1 and 1.")
      out[name] = dict(coords=np.where(on[..., None], coords, 0.0),
                       values=np.where(on[..., None], values, 0.0), mask=mask,
                       grid_mask=None, truth=None)
    amp = arrays.get(f"{name}_amplitude")
    n = out[name]["mask"].shape[0]
    if amp is not None:
      amp = np.asarray(amp, np.float64)
      if amp.shape != (n,) or not np.all(np.isfinite(amp)) or np.any(amp <= 0):
        raise ValueError(f"{where}: {name}_amplitude must be [{n}] positive numbers; got shape "
                         f"{amp.shape}.")
    out[name]["amplitude"] = amp
    sizes[name] = n
  if not out:
    raise ValueError(f"{where} holds no arrays; the run's modalities are {sorted(by_name)}.")
  if len(set(sizes.values())) > 1:
    raise ValueError(f"{where}: the modalities hold different numbers of signals {sizes}; "
                     "each signal needs an entry in every modality given (mask what is not "
                     "observed).")
  return out


# ----------------------------------------------------------------------------- the model


def reconstruct(learner, state, observations: Mapping[str, dict], upsample: int = 1,
                batch_size: int = 64, progress: bool = True) -> dict[str, dict[str, np.ndarray]]:
  """Adapts the run's model to parsed observations (`parse_observations`), in batches.

  Returns `{name: {"prediction": [n, N, d_out], "latents": [n, ...], "upsampled":
  [n, P, d_out] (upsample > 1)}}` for every modality of the learner.
  """
  import jax
  import jax.numpy as jnp
  from tqdm.auto import tqdm

  from mia_jax import adaptation

  specs = learner.specs
  n = next(iter(observations.values()))["mask"].shape[0]
  if batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {batch_size}.")
  fine = {}
  if upsample > 1:
    fine = {s.name: jnp.asarray(s.coordinates(s.upsampled_shape(upsample))) for s in specs}
  k = learner.meta.inner_steps

  @jax.jit
  def run(params, buffers, obs):
    latents, pred, _ = adaptation.adapt_to_observations(
        learner.model, learner.rule, params, buffers, obs, k,
        compute_dtype=learner.meta.compute_dtype)
    up = {}
    if fine:
      b = next(iter(latents.values())).shape[0]
      query = {m: jnp.broadcast_to(c, (b,) + c.shape) for m, c in fine.items()}
      up = learner.model.predict(params["inr"], buffers, latents, query)
    return latents, pred, up

  params, buffers = jax.device_get((state.params, state.buffers))
  parts: dict[str, dict[str, list]] = {s.name: {"prediction": [], "latents": [], "upsampled": []}
                                       for s in specs}
  bar = tqdm(total=n, desc="reconstruct", unit="signal", disable=not progress or n <= batch_size)
  for start in range(0, n, batch_size):
    stop = min(start + batch_size, n)
    obs = {}
    for name, o in observations.items():
      chunk = {key: o[key][start:stop] for key in ("coords", "values", "mask")}
      if stop - start < batch_size and n > batch_size:  # one compiled shape: pad the last batch
        pad = batch_size - (stop - start)
        chunk = {key: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)])
                 for key, v in chunk.items()}
      obs[name] = {key: np.asarray(v, np.float32) for key, v in chunk.items()}
    latents, pred, up = jax.device_get(run(params, buffers, obs))
    for name in parts:
      parts[name]["prediction"].append(np.asarray(pred[name])[:stop - start])
      parts[name]["latents"].append(np.asarray(latents[name])[:stop - start])
      if up:
        parts[name]["upsampled"].append(np.asarray(up[name])[:stop - start])
    bar.update(stop - start)
  bar.close()
  return {name: {key: np.concatenate(v) for key, v in d.items() if v}
          for name, d in parts.items()}


def errors(learner, observations: Mapping[str, dict], result: Mapping[str, dict]
           ) -> dict[str, float] | None:
  """The results table's metrics (`{measure}/{name}/step{K}`) for the modalities observed on the
  grid with known ground truth (`parse_observations`'s truth); None when none has it."""
  from mia_jax import evaluation
  k = learner.meta.inner_steps
  specs = [s for s in learner.specs if s.name in observations
           and observations[s.name]["truth"] is not None]
  if not specs:
    return None
  per_signal = {}
  for spec in specs:
    o = observations[spec.name]
    truth, pred = o["truth"], result[spec.name]["prediction"].astype(np.float64)
    norm = np.ones(truth.shape[0]) if o["amplitude"] is None or \
        spec.error_normaliser != "amplitude" else np.square(o["amplitude"])
    sq = np.mean(np.square(pred - truth), -1) / norm[:, None]
    inside = o["grid_mask"].astype(np.float64)
    outside = 1.0 - inside
    per_signal[spec.name] = {
        "generalization": (np.sum(sq * outside, -1) / np.maximum(outside.sum(-1), 1))[None],
        "memorization": (np.sum(sq * inside, -1) / np.maximum(inside.sum(-1), 1))[None],
        "full": np.mean(sq, -1)[None],
        "ratio": inside.sum(-1) / spec.num_points,
        "has_gen": inside.sum(-1) < spec.num_points}
  metrics = evaluation.summarize(per_signal, specs, 0)
  return {key.replace("/step0", f"/step{k}") if key.endswith("/step0") else key: v
          for key, v in metrics.items()}


# ----------------------------------------------------------------------------- encode


def dataset_observations(config, learner, split_or_path: str, support: str, seed: int,
                         workdir: str) -> dict[str, np.ndarray]:
  """The arrays of an observations file for every signal of a split (`--encode`)."""
  from data_pipelines import sources
  from experiments import build
  from mia_jax import sampling

  if split_or_path in ("train", "test"):
    if config.data.source == "npz" and not config.data.get(f"npz_{split_or_path}"):
      raise ValueError(f"The run in {workdir!r} trained on arrays passed from Python; its "
                       f"{split_or_path} split is not on disk. Save them with "
                       "data_pipelines.sources.save_npz and pass --encode=FILE.npz.")
    source = build.build_sources(config, split_or_path,
                                 modalities=[s.name for s in learner.specs])
    where = f"the run's {split_or_path} split"
  elif split_or_path.endswith(".npz"):
    if not os.path.isfile(split_or_path):
      raise FileNotFoundError(f"--encode file {split_or_path!r} does not exist.")
    source = sources.NpzSource(split_or_path, modalities=[s.name for s in learner.specs])
    where = repr(split_or_path)
  else:
    raise ValueError(f"--encode={split_or_path!r}: give train, test or a path to an .npz.")
  n = len(source)
  if n == 0:
    raise ValueError(f"{where} holds no signals.")
  signals = [source[i] for i in range(n)]
  arrays = {}
  episodes = None
  if support == "episodes":
    if split_or_path != "test":
      raise ValueError("--support=episodes uses the run's meta-test supports: only with "
                       "--encode=test.")
    path = config.eval.episodes_path or os.path.join(workdir, "episodes.npz")
    episodes = sampling.load_episodes(path, learner.specs)
    # The signals the run evaluated: its first num_test_signals (if set), each with a support.
    n = min(n, next(iter(episodes.values()))["idx"].shape[0])
    if config.data.get("num_test_signals", 0):
      n = min(n, int(config.data.num_test_signals))
  else:
    ratio = None
    if support != "full":
      try:
        ratio = float(support)
      except ValueError:
        ratio = -1.0
      if not 0.0 < ratio <= 1.0:
        raise ValueError(f"--support={support!r}: give full, episodes or a ratio in (0, 1].")
    rng = np.random.default_rng(seed)
  for spec in learner.specs:
    y = np.stack([signals[i][spec.name]["y"] for i in range(n)])
    arrays[spec.name] = y.reshape((n,) + spec.grid_shape + (spec.d_out,))
    if episodes is not None:
      ep = episodes[spec.name]
      grid = np.zeros((n, spec.num_points), np.float32)
      for i in range(n):
        grid[i, ep["idx"][i][ep["mask"][i] > 0]] = 1.0
      arrays[f"{spec.name}_mask"] = grid.reshape((n,) + spec.grid_shape)
    elif ratio is not None and ratio < 1.0:
      count = max(1, int(round(ratio * spec.num_points)))
      grid = np.zeros((n, spec.num_points), np.float32)
      for i in range(n):
        grid[i, rng.choice(spec.num_points, count, replace=False)] = 1.0
      arrays[f"{spec.name}_mask"] = grid.reshape((n,) + spec.grid_shape)
    amp = np.stack([np.asarray(signals[i][spec.name].get("amplitude", 1.0)) for i in range(n)])
    arrays[f"{spec.name}_amplitude"] = amp.astype(np.float32)
  return arrays


# ----------------------------------------------------------------------------- pictures


def plot(learner, observations, result, path: str, num_signals: int = 3,
         upsample: int = 1) -> str | None:
  """Draws the first signals' observations and reconstructions to `path`; None if nothing to
  draw (no 1-D or 2-D modality)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  specs = [s for s in learner.specs if s.d_in in (1, 2)]
  n = min(num_signals, next(iter(result.values()))["prediction"].shape[0])
  if not specs or n < 1:
    return None
  fig, axes = plt.subplots(n, len(specs), figsize=(3.2 * len(specs), 2.4 * n), squeeze=False)
  for i in range(n):
    for j, spec in enumerate(specs):
      ax = axes[i, j]
      o = observations.get(spec.name)
      r = result[spec.name]
      fine = r.get("upsampled")
      shape = spec.upsampled_shape(upsample) if fine is not None else spec.grid_shape
      pred = (fine if fine is not None else r["prediction"])[i]
      if spec.d_in == 1:
        x = spec.coordinates(shape)[:, 0]
        if o is not None and o["truth"] is not None:
          ax.plot(spec.coordinates()[:, 0], o["truth"][i, :, 0], color="0.6", lw=1,
                  label="truth")
        ax.plot(x, pred[:, 0], color="C0", lw=1.2, label="reconstruction")
        if o is not None:
          on = o["mask"][i] > 0
          ax.scatter(o["coords"][i, on, 0], o["values"][i, on, 0], s=10, color="C3", zorder=3,
                     label="observed")
        if i == 0 and j == 0:
          ax.legend(fontsize=6, loc="best")
      else:
        img = pred.reshape(shape + (spec.d_out,))
        img = img[..., 0] if spec.d_out != 3 else np.clip(img, 0.0, 1.0)
        ax.imshow(img, cmap=None if spec.d_out == 3 else "viridis")
        if o is not None:
          on = o["mask"][i] > 0
          c = o["coords"][i, on]
          ax.scatter((c[:, 1] + 1) / 2 * (shape[1] - 1), (c[:, 0] + 1) / 2 * (shape[0] - 1),
                     s=2, color="C3")
        ax.set_xticks([])
        ax.set_yticks([])
      count = 0 if o is None else int(o["mask"][i].sum())
      ax.set_title(f"{spec.name}, signal {i}: {count} observed", fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


# ----------------------------------------------------------------------------- the command


def main(argv) -> None:
  from experiments import validate
  from experiments.loading import load_run
  from mia_jax import evaluation

  with validate.exit_on_error(2):
    validate.check_argv(argv)
    if not FLAGS.workdir:
      raise ValueError("Give --workdir, the run to use.")
    if not FLAGS.output:
      raise ValueError("Give --output=FILE.npz, where the predictions and latents go.")
    if bool(FLAGS.observations) == bool(FLAGS.encode):
      raise ValueError("Give one of --observations=FILE.npz (reconstruct your observations) and "
                       "--encode=train|test|FILE.npz (encode a dataset).")
    if FLAGS.upsample < 1:
      raise ValueError(f"--upsample must be an integer >= 1, got {FLAGS.upsample}.")
    if FLAGS.num_plots < 0:
      raise ValueError(f"--num_plots must be >= 0, got {FLAGS.num_plots}.")
    if FLAGS.batch_size < 1:
      raise ValueError(f"--batch_size must be >= 1, got {FLAGS.batch_size}.")
    out_dir = os.path.dirname(os.path.abspath(FLAGS.output))
    if not os.path.isdir(out_dir):
      raise FileNotFoundError(f"--output {FLAGS.output!r}: the folder {out_dir} does not exist.")
    learner, state, config = load_run(FLAGS.workdir, FLAGS.step)
    if FLAGS.encode:
      arrays = dataset_observations(config, learner, FLAGS.encode, FLAGS.support, FLAGS.seed,
                                    FLAGS.workdir)
      where = f"--encode={FLAGS.encode}"
    else:
      arrays = _read_npz(FLAGS.observations)
      where = repr(FLAGS.observations)
    observations = parse_observations(arrays, learner.specs, where)
  with validate.exit_on_error(1):
    result = reconstruct(learner, state, observations, FLAGS.upsample, FLAGS.batch_size)
    out = {}
    for spec in learner.specs:
      r = result[spec.name]
      n = r["prediction"].shape[0]
      out[spec.name] = r["prediction"].reshape((n,) + spec.grid_shape + (spec.d_out,))
      out[f"{spec.name}_latents"] = r["latents"]
      o = observations.get(spec.name)
      out[f"{spec.name}_count"] = (np.zeros(n, np.int64) if o is None
                                   else o["mask"].sum(-1).astype(np.int64))
      if "upsampled" in r:
        out[f"{spec.name}_upsampled"] = r["upsampled"].reshape(
            (n,) + spec.upsampled_shape(FLAGS.upsample) + (spec.d_out,))
    tmp = FLAGS.output + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, FLAGS.output)
    n = next(iter(result.values()))["prediction"].shape[0]
    print(f"Wrote {FLAGS.output}: {n} signal(s), modalities {[s.name for s in learner.specs]}"
          f"{f', upsampled {FLAGS.upsample}x' if FLAGS.upsample > 1 else ''}.")
    if FLAGS.num_plots:
      png = plot(learner, observations, result, os.path.splitext(FLAGS.output)[0] + ".png",
                 FLAGS.num_plots, FLAGS.upsample)
      if png:
        print(f"Picture of the first {min(FLAGS.num_plots, n)} signal(s): {png}")
    metrics = errors(learner, observations, result)
    if metrics:
      names = [s.name for s in learner.specs if f"full_mse/{s.name}/step"
               f"{learner.meta.inner_steps}" in metrics]
      print(f"Errors against the ground truth in the file (K={learner.meta.inner_steps}):\n"
            + evaluation.format_table(metrics, names, learner.meta.inner_steps))


if __name__ == "__main__":
  from experiments import validate as _validate
  _define_flags()
  _validate.run_cli(main)
