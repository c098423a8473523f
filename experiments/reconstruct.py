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
from typing import Mapping

from absl import flags
import numpy as np

from experiments import atomic, cli
from experiments.run.observations import (  # noqa: F401  (re-exported: the command's file helpers)
  parse_observations,
  read_npz,
  save_observations,
)
from mia_jax import episodes_file

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "The run's --workdir (config.json, checkpoints/).")
  flags.DEFINE_string("observations", None, "An .npz of observations (see the module doc).")
  flags.DEFINE_string(
    "encode",
    None,
    "Instead of --observations: encode every signal of a split "
    "of the run's data (train or test) or of an .npz of grid arrays (the "
    "format of data_pipelines.sources.save_npz).",
  )
  flags.DEFINE_string(
    "support",
    "full",
    "With --encode: the observed points, 'full' (all), "
    "'episodes' (the run's fixed meta-test supports; test split only) or a "
    "ratio in (0, 1] (that share of points per signal, drawn with --seed).",
  )
  flags.DEFINE_integer("seed", 0, "With --encode --support=RATIO: the draw of the points.")
  flags.DEFINE_string("output", None, "The .npz to write.")
  flags.DEFINE_integer("upsample", 1, "Also predict on a grid this many times finer per axis.")
  flags.DEFINE_integer("num_plots", 3, "Signals drawn to OUTPUT.png (0: no picture).")
  flags.DEFINE_integer("batch_size", 64, "Signals adapted at once.")
  flags.DEFINE_integer("step", None, "The checkpoint step to load (default: the latest).")


# ----------------------------------------------------------------------------- the model


def reconstruct(
  learner,
  state,
  observations: Mapping[str, dict],
  upsample: int = 1,
  batch_size: int = 64,
  progress: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
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
      learner.model, learner.rule, params, buffers, obs, k, compute_dtype=learner.meta.compute_dtype
    )
    up = {}
    if fine:
      b = next(iter(latents.values())).shape[0]
      query = {m: jnp.broadcast_to(c, (b,) + c.shape) for m, c in fine.items()}
      up = learner.model.predict(params["inr"], buffers, latents, query)
    return latents, pred, up

  params, buffers = jax.device_get((state.params, state.buffers))
  parts: dict[str, dict[str, list]] = {
    s.name: {"prediction": [], "latents": [], "upsampled": []} for s in specs
  }
  bar = tqdm(total=n, desc="reconstruct", unit="signal", disable=not progress or n <= batch_size)
  for start in range(0, n, batch_size):
    stop = min(start + batch_size, n)
    obs = {}
    for name, o in observations.items():
      chunk = {key: o[key][start:stop] for key in ("coords", "values", "mask")}
      if stop - start < batch_size and n > batch_size:  # one compiled shape: pad the last batch
        pad = batch_size - (stop - start)
        chunk = {
          key: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)])
          for key, v in chunk.items()
        }
      obs[name] = {key: np.asarray(v, np.float32) for key, v in chunk.items()}
    latents, pred, up = jax.device_get(run(params, buffers, obs))
    for name in parts:
      parts[name]["prediction"].append(np.asarray(pred[name])[: stop - start])
      parts[name]["latents"].append(np.asarray(latents[name])[: stop - start])
      if up:
        parts[name]["upsampled"].append(np.asarray(up[name])[: stop - start])
    bar.update(stop - start)
  bar.close()
  return {name: {key: np.concatenate(v) for key, v in d.items() if v} for name, d in parts.items()}


def errors(
  learner, observations: Mapping[str, dict], result: Mapping[str, dict]
) -> dict[str, float] | None:
  """The results table's metrics (`{measure}/{name}/step{K}`) for the modalities observed on the
  grid with known ground truth (`parse_observations`'s truth); None when none has it."""
  from mia_jax import evaluation

  k = learner.meta.inner_steps
  specs = [
    s for s in learner.specs if s.name in observations and observations[s.name]["truth"] is not None
  ]
  if not specs:
    return None
  per_signal = {}
  for spec in specs:
    o = observations[spec.name]
    truth, pred = o["truth"], result[spec.name]["prediction"].astype(np.float64)
    norm = (
      np.ones(truth.shape[0])
      if o["amplitude"] is None or spec.error_normaliser != "amplitude"
      else np.square(o["amplitude"])
    )
    sq = np.mean(np.square(pred - truth), -1) / norm[:, None]
    inside = o["grid_mask"].astype(np.float64)
    outside = 1.0 - inside
    per_signal[spec.name] = {
      "generalization": (np.sum(sq * outside, -1) / np.maximum(outside.sum(-1), 1))[None],
      "memorization": (np.sum(sq * inside, -1) / np.maximum(inside.sum(-1), 1))[None],
      "full": np.mean(sq, -1)[None],
      "ratio": inside.sum(-1) / spec.num_points,
      "has_gen": inside.sum(-1) < spec.num_points,
    }
  metrics = evaluation.summarize(per_signal, specs, 0)
  return {
    key.replace("/step0", f"/step{k}") if key.endswith("/step0") else key: v
    for key, v in metrics.items()
  }


# ----------------------------------------------------------------------------- encode


def dataset_observations(
  config, learner, split_or_path: str, support: str, seed: int, workdir: str
) -> dict[str, np.ndarray]:
  """The arrays of an observations file for every signal of a split (`--encode`)."""
  from data_pipelines import sources
  from experiments.run import build

  if split_or_path in ("train", "test"):
    if config.data.source == "npz" and not config.data.get(f"npz_{split_or_path}"):
      raise ValueError(
        f"The run in {workdir!r} trained on arrays passed from Python; its "
        f"{split_or_path} split is not on disk. Save them with "
        "data_pipelines.sources.save_npz and pass --encode=FILE.npz."
      )
    source = build.build_sources(config, split_or_path, modalities=[s.name for s in learner.specs])
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
      raise ValueError(
        "--support=episodes uses the run's meta-test supports: only with --encode=test."
      )
    path = config.eval.episodes_path or os.path.join(workdir, "episodes.npz")
    episodes = episodes_file.load_episodes(path, learner.specs)
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


def plot(
  learner, observations, result, path: str, num_signals: int = 3, upsample: int = 1
) -> str | None:
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
          ax.plot(spec.coordinates()[:, 0], o["truth"][i, :, 0], color="0.6", lw=1, label="truth")
        ax.plot(x, pred[:, 0], color="C0", lw=1.2, label="reconstruction")
        if o is not None:
          on = o["mask"][i] > 0
          ax.scatter(
            o["coords"][i, on, 0],
            o["values"][i, on, 0],
            s=10,
            color="C3",
            zorder=3,
            label="observed",
          )
        if i == 0 and j == 0:
          ax.legend(fontsize=6, loc="best")
      else:
        img = pred.reshape(shape + (spec.d_out,))
        img = img[..., 0] if spec.d_out != 3 else np.clip(img, 0.0, 1.0)
        ax.imshow(img, cmap=None if spec.d_out == 3 else "viridis")
        if o is not None:
          on = o["mask"][i] > 0
          c = o["coords"][i, on]
          ax.scatter(
            (c[:, 1] + 1) / 2 * (shape[1] - 1), (c[:, 0] + 1) / 2 * (shape[0] - 1), s=2, color="C3"
          )
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
  from experiments.run.loading import load_run
  from mia_jax import evaluation

  with cli.exit_on_error(2):
    cli.check_argv(argv)
    if not FLAGS.workdir:
      raise ValueError("Give --workdir, the run to use.")
    if not FLAGS.output:
      raise ValueError("Give --output=FILE.npz, where the predictions and latents go.")
    if bool(FLAGS.observations) == bool(FLAGS.encode):
      raise ValueError(
        "Give one of --observations=FILE.npz (reconstruct your observations) and "
        "--encode=train|test|FILE.npz (encode a dataset)."
      )
    if FLAGS.upsample < 1:
      raise ValueError(f"--upsample must be an integer >= 1, got {FLAGS.upsample}.")
    if FLAGS.num_plots < 0:
      raise ValueError(f"--num_plots must be >= 0, got {FLAGS.num_plots}.")
    if FLAGS.batch_size < 1:
      raise ValueError(f"--batch_size must be >= 1, got {FLAGS.batch_size}.")
    out_dir = os.path.dirname(os.path.abspath(FLAGS.output))
    if not os.path.isdir(out_dir):
      raise FileNotFoundError(f"--output {FLAGS.output!r}: the folder {out_dir} does not exist.")
    if os.path.isdir(FLAGS.output):
      raise ValueError(
        f"--output {FLAGS.output!r} is a folder; give a file in it, e.g. "
        f"--output={os.path.join(FLAGS.output, 'reconstruction.npz')}."
      )
    if not os.access(out_dir, os.W_OK):
      raise ValueError(f"--output {FLAGS.output!r}: the folder {out_dir} is not writable.")
    learner, state, config = load_run(FLAGS.workdir, FLAGS.step)
    if FLAGS.encode:
      arrays = dataset_observations(
        config, learner, FLAGS.encode, FLAGS.support, FLAGS.seed, FLAGS.workdir
      )
      where = f"--encode={FLAGS.encode}"
    else:
      arrays = read_npz(FLAGS.observations)
      where = repr(FLAGS.observations)
    observations = parse_observations(arrays, learner.specs, where)
  with cli.exit_on_error(1):
    result = reconstruct(learner, state, observations, FLAGS.upsample, FLAGS.batch_size)
    out = {}
    for spec in learner.specs:
      r = result[spec.name]
      n = r["prediction"].shape[0]
      out[spec.name] = r["prediction"].reshape((n,) + spec.grid_shape + (spec.d_out,))
      out[f"{spec.name}_latents"] = r["latents"]
      o = observations.get(spec.name)
      out[f"{spec.name}_count"] = (
        np.zeros(n, np.int64) if o is None else o["mask"].sum(-1).astype(np.int64)
      )
      if "upsampled" in r:
        out[f"{spec.name}_upsampled"] = r["upsampled"].reshape(
          (n,) + spec.upsampled_shape(FLAGS.upsample) + (spec.d_out,)
        )
    atomic.write_npz(FLAGS.output, out)
    n = next(iter(result.values()))["prediction"].shape[0]
    print(
      f"Wrote {FLAGS.output}: {n} signal(s), modalities {[s.name for s in learner.specs]}"
      f"{f', upsampled {FLAGS.upsample}x' if FLAGS.upsample > 1 else ''}."
    )
    if FLAGS.num_plots:
      png = plot(
        learner,
        observations,
        result,
        os.path.splitext(FLAGS.output)[0] + ".png",
        FLAGS.num_plots,
        FLAGS.upsample,
      )
      if png:
        print(f"Picture of the first {min(FLAGS.num_plots, n)} signal(s): {png}")
    metrics = errors(learner, observations, result)
    if metrics:
      names = [
        s.name
        for s in learner.specs
        if f"full_mse/{s.name}/step{learner.meta.inner_steps}" in metrics
      ]
      print(
        f"Errors against the ground truth in the file (K={learner.meta.inner_steps}):\n"
        + evaluation.format_table(metrics, names, learner.meta.inner_steps)
      )


if __name__ == "__main__":
  _define_flags()
  cli.run_cli(main)
