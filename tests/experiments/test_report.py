"""The study reports: statistics and tables against hand computation, csv rows, the plots."""

import json
import os

import numpy as np
import pytest

from experiments.run import figures
from experiments.studies import definitions as studies
from experiments.studies import plots, report
from tests.study_helpers import NAMES, is_png, read_csv


def _fake_results(w, arm, seed, values, modalities=NAMES, k=1):
  """A results.json whose every metric of `modalities` is `values[measure]`."""
  d = os.path.join(w, arm, f"seed{seed}")
  os.makedirs(d, exist_ok=True)
  metrics = {}
  for measure, v in values.items():
    for mod in tuple(modalities) + ("avg",):
      for step in range(k + 1):
        metrics[f"{measure}/{mod}/step{step}"] = v * (k + 1 - step)
      metrics[f"{measure}/{mod}/R0.01-0.02"] = 2 * v
  with open(os.path.join(d, "results.json"), "w") as f:
    json.dump(
      {
        "config": {"modalities": "+".join(modalities), "inner_steps": k},
        "step": 10,
        "metrics": metrics,
      },
      f,
    )


def test_aggregation_matches_hand_computation(tmp_path):
  w = str(tmp_path)
  ref = [1.0, 2.0, 3.0]  # mean 2, std (ddof=1) 1
  arm = [3.0, 3.0, 6.0]  # mean 4, std sqrt(3); change +100%
  for s in range(3):
    _fake_results(w, "base", s, {"generalization_mse": ref[s], "memorization_psnr": 10.0 + s})
    _fake_results(w, "other", s, {"generalization_mse": arm[s], "memorization_psnr": 12.0 + s})
  study = studies.Study(
    "toy",
    {"base": {}, "other": {"method": "cavia"}},
    reference="base",
    measures=("generalization_mse", "memorization_psnr"),
  )
  results = report.load_results(w, study, [0, 1, 2])
  stats = report.aggregate(results)
  s = stats["other"]["generalization_mse/sine/step1"]
  assert (s.mean, s.std, s.n) == pytest.approx((4.0, np.sqrt(3.0), 3))
  s = stats["base"]["generalization_mse/sine/step0"]  # step 0 is twice step 1 here
  assert (s.mean, s.std) == pytest.approx((4.0, 2.0))
  assert report.relative_change(4.0, 2.0, "generalization_mse") == pytest.approx(1.0)
  assert report.relative_change(13.0, 11.0, "memorization_psnr") == pytest.approx(2.0)

  md = report.format_markdown(study, results)
  sine = md.split("### sine")[1].split("###")[0]
  assert "| **base** (ref) | 3 | 1 | 2 ± 1 | — | 11.00 ± 1.00 | — |" in sine
  assert "| other | 3 | 1 | 4 ± 1.7 | +100.0% | 13.00 ± 1.00 | +2.00 dB |" in sine
  bins = md.split("## Per support-ratio bin")[1].split("### sine")[1].split("###")[0]
  assert "| 0.01-0.02 | other | 8 ± 3.5 | +100.0% | 26.00 ± 2.00 | +4.00 dB |" in bins
  assert "### avg" in md

  rows = report.csv_rows("toy", results)
  assert len(rows) == sum(len(r["metrics"]) for by in results.values() for r in by.values())
  report.write_csv(os.path.join(w, "results.csv"), rows)
  columns, read = read_csv(os.path.join(w, "results.csv"))
  assert tuple(columns) == report.CSV_COLUMNS
  row = next(
    r
    for r in read
    if r["key"] == "generalization_mse/tanh/R0.01-0.02" and r["arm"] == "other" and r["seed"] == "2"
  )
  assert (row["measure"], row["modality"], row["at"], float(row["value"])) == (
    "generalization_mse",
    "tanh",
    "R0.01-0.02",
    12.0,
  )

  traj = report.trajectory(results["other"], "generalization_mse", "sine", 1)
  np.testing.assert_allclose(traj, [[6, 3], [6, 3], [12, 6]])
  plots.plot_trajectories(study, results, os.path.join(w, "trajectory.png"))
  assert is_png(os.path.join(w, "trajectory.png"))


def test_reconstruction_plot_handles_images_and_waveforms(tmp_path):
  from tests.helpers import image_spec, wave_spec

  rng = np.random.default_rng(0)

  def entry(spec, n=2):
    y = rng.uniform(size=(n, spec.num_points, spec.d_out)).astype(np.float32)
    idx = np.stack([rng.permutation(spec.num_points)[: spec.max_support] for _ in range(n)])
    return {"y": y, "prediction": y + 0.1, "idx": idx, "count": np.array([3, 5]), "spec": spec}

  rgb, depth, audio = image_spec("rgb", 6, 3), image_spec("depth", 6, 1), wave_spec("audio")
  predictions = {
    "all": {"rgb": entry(rgb), "depth": entry(depth), "audio": entry(audio)},
    "rgb_alone": {"rgb": entry(rgb)},
  }
  path = figures.plot_reconstructions(predictions, str(tmp_path / "r.png"), reference="all")
  assert is_png(path)


def test_avg_is_reported_only_for_a_shared_set_of_several_modalities():
  def info(*sets):
    return {f"arm{i}": {"modalities": list(s)} for i, s in enumerate(sets)}

  assert report.report_modalities(info(["rgb", "wav"], ["rgb", "wav"]), "arm0") == [
    "rgb",
    "wav",
    "avg",
  ]
  # One modality: its average would repeat its own panel.
  assert report.report_modalities(info(["wav"], ["wav"]), "arm0") == ["wav"]
  # Different sets (modality replacement): an average over different sets is not comparable.
  assert report.report_modalities(info(["rgb"], ["rgb", "wav"], ["wav"]), "arm1") == ["rgb", "wav"]


def test_an_arm_with_fewer_seeds_is_compared_on_the_reference_seeds_it_has(tmp_path):
  w = str(tmp_path)
  for s, v in enumerate([1.0, 4.0, 1.0]):  # the reference: one bad seed, mean 2
    _fake_results(w, "base", s, {"generalization_mse": v})
  _fake_results(w, "other", 0, {"generalization_mse": 1.1})  # seed 0 only (--other_seeds=1)
  _fake_results(w, "full", 0, {"generalization_mse": 2.0})
  _fake_results(w, "full", 1, {"generalization_mse": 2.0})
  _fake_results(w, "full", 2, {"generalization_mse": 5.0})
  study = studies.Study(
    "toy",
    {"base": {}, "other": {"a": 1}, "full": {"a": 2}},
    reference="base",
    measures=("generalization_mse",),
  )
  results = report.load_results(w, study, [0, 1, 2])
  assert report.paired_means(
    results["other"], results["base"], "generalization_mse/sine/step1"
  ) == pytest.approx((1.1, 1.0))
  md = report.format_markdown(study, results)
  sine = md.split("### sine")[1].split("###")[0]
  # +10% against the reference's seed 0, not -45% against its 3-seed mean.
  assert "| other | 1 | 1 | 1.1 ± – | +10.0% |" in sine
  # The same seeds: against the reference row's mean, as before (3 against 2).
  assert "| full | 3 | 1 | 3 ± 1.7 | +50.0% |" in sine
  assert "- paired by seed: `other` has fewer seeds than `base`" in md

  # The figures pair the same way: the sparse arm's panel adds the reference on its seed 0.
  curve = lambda by_seed, measure, mod, k: (
    np.arange(k + 1),
    report.trajectory(by_seed, measure, mod, k),
  )
  lines = plots.panel_lines(study, results, "generalization_mse", "sine", curve)
  by_label = {l["label"]: l for l in lines}
  assert list(by_label) == ["base", "other", "full", "base (seed 0)"]
  np.testing.assert_allclose(by_label["base"]["mean"], [4.0, 2.0])  # steps 0, 1: 2x, 1x
  np.testing.assert_allclose(by_label["base"]["hi"], [8.0, 4.0])
  np.testing.assert_allclose(by_label["base (seed 0)"]["mean"], [2.0, 1.0])
  assert by_label["base (seed 0)"]["paired"] and not by_label["full"]["paired"]
  assert by_label["other"]["lo"] is None  # one seed: no band
  dense = {a: results[a] for a in ("base", "full")}
  assert not any(
    l["paired"] for l in plots.panel_lines(study, dense, "generalization_mse", "sine", curve)
  )
  path = str(tmp_path / "t.png")
  assert plots.plot_trajectories(study, results, path) == path and is_png(path)
