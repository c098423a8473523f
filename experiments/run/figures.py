"""A run's figure: meta-test reconstructions (`plot_reconstructions`), and the plotting helpers
the study figures (`experiments.studies.plots`) share.

`reconstructions.png`: a few meta-test signals, their supports and every arm's (or the run's)
prediction after K steps (`experiments.run.predict`). Matplotlib only (no JAX computation);
every figure is a bare `Figure`, so it draws whatever pyplot's backend.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def new_figure(width: float, height: float):
  """A bare `Figure` of `width` x `height` inches with constrained layout. It draws with the Agg
  canvas, whatever pyplot's backend (inline in notebooks)."""
  from matplotlib.figure import Figure

  return Figure(figsize=(width, height), layout="constrained")


def arm_colors(arms: Sequence[str]) -> dict[str, Any]:
  """`{arm: colour}` from tab10, in the order given (the same arm, the same colour)."""
  from matplotlib import colormaps

  cmap = colormaps["tab10"]
  return {a: cmap(i % 10) for i, a in enumerate(arms)}


def figure_legend(fig) -> None:
  """One figure legend of every panel's labelled artists (each label once), right of the panels
  and centred on them (clear of the title); none when no panel has a label."""
  handles: dict[str, Any] = {}
  for ax in fig.axes:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  if handles:
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=9)


def _normalise(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
  return np.clip((values - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def _to_image(values: np.ndarray, grid_shape: Sequence[int]) -> np.ndarray:
  """`[N, d_out]` values in [0, 1] -> an image: RGB for 3 channels, else the first channel."""
  img = values.reshape(*grid_shape, -1)
  return img if img.shape[-1] == 3 else img[..., 0]


def plot_reconstructions(
  predictions: Mapping[str, Mapping[str, Mapping]],
  path: str,
  reference: str | None = None,
  title: str = "",
) -> str:
  """Ground truth, supports and every arm's prediction after K steps for a few signals.

  Args:
    predictions: `{arm: predict_run(...)}`; ground truth and supports are taken from the first
      arm that has the modality (the arms share them; see `check_paired`).
    path: the .png to write.
    reference: the arm drawn thickest (1-D) / first (2-D).
    title: the figure title.

  1-D modalities are drawn as lines (ground truth black, supports as dots, one line per arm);
  2-D ones as images (a row per signal: ground truth, supports, then each arm).
  """
  arms = list(predictions)
  if reference in arms:
    arms = [reference] + [a for a in arms if a != reference]
  colors = arm_colors(list(predictions))
  mods: dict[str, Mapping] = {}
  for arm in arms:
    for m, d in predictions[arm].items():
      mods.setdefault(m, d)
  if not mods:
    raise ValueError("No predictions to plot.")
  n = max(d["y"].shape[0] for d in mods.values())
  one_d = all(d["spec"].d_in == 1 for d in mods.values())
  if one_d:  # rows = signals, columns = modalities
    fig = new_figure(3.4 * len(mods) + 1.5, 2.3 * n)
    axes = fig.subplots(n, len(mods), squeeze=False)
    panels = {(m, i): axes[i][c] for c, m in enumerate(mods) for i in range(n)}
  else:  # a row per (modality, signal): 1-D rows span the width, 2-D rows are image strips
    ncols = 2 + len(arms)
    fig = new_figure(2.2 * ncols, 2.2 * n * len(mods))
    grid = fig.add_gridspec(n * len(mods), ncols)
    panels = {}
    for j, (m, d) in enumerate(mods.items()):
      for i in range(n):
        r = j * n + i
        if d["spec"].d_in == 1:
          panels[(m, i)] = fig.add_subplot(grid[r, :])
        else:
          panels[(m, i)] = [fig.add_subplot(grid[r, c]) for c in range(ncols)]
  for m, d in mods.items():
    spec = d["spec"]
    coords = spec.coordinates()
    for i in range(d["y"].shape[0]):
      y = d["y"][i]
      support = d["idx"][i, : d["count"][i]]
      target = panels[(m, i)]
      if spec.d_in == 1:
        ax = target
        x = coords[:, 0]
        ax.plot(x, y[:, 0], color="black", lw=1.0, label="ground truth")
        ax.scatter(x[support], y[support, 0], color="black", s=14, zorder=5, label="support")
        for arm in arms:
          if m in predictions[arm]:
            ax.plot(
              x,
              predictions[arm][m]["prediction"][i][:, 0],
              color=colors[arm],
              lw=2.0 if arm == reference else 1.2,
              label=arm,
            )
        ax.set_title(f"{m}, signal {i}", fontsize=9)
        ax.tick_params(labelsize=7)
      else:
        lo, hi = float(y.min()), float(y.max())  # every panel on the ground truth's range
        gt = _normalise(y, lo, hi)
        shown = np.full_like(gt, 0.5)  # points off the support in grey
        shown[support] = gt[support]
        imgs = [
          ("ground truth", _to_image(gt, spec.grid_shape)),
          (f"support ({len(support)})", _to_image(shown, spec.grid_shape)),
        ]
        imgs += [
          (
            arm,
            _to_image(_normalise(predictions[arm][m]["prediction"][i], lo, hi), spec.grid_shape),
          )
          if m in predictions[arm]
          else (arm, None)
          for arm in arms
        ]
        for ax, (label, img) in zip(target, imgs):
          ax.set_axis_off()
          if img is not None:
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(f"{m} {i}: {label}", fontsize=8)
  figure_legend(fig)
  fig.suptitle(title or "meta-test reconstructions after K inner steps", fontsize=11)
  fig.savefig(path, dpi=110)
  return path
