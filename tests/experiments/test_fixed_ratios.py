"""Fixed-ratio evaluation: supports of exactly floor(r N) points, paired, and consistent with the
binned numbers (every signal at its own support size gives the binned mean back exactly)."""

import json

import jax
import numpy as np
import pytest

from experiments import syntax
from experiments.configs import synthetic
from experiments.run import build, evaluate, train
from experiments.studies import definitions as studies
from mia_jax import episodes_file, meta_step, sampling
from mia_jax.modalities import ModalitySpec

SPECS = (
  ModalitySpec("a", 1, (40,), 1, ratio_range=(0.05, 0.5)),
  ModalitySpec("b", 2, (30, 30), 3, ratio_range=(0.001, 1.0)),
)


def test_parse_fixed_ratios():
  assert syntax.parse_fixed_ratios("0.5, 0.01,0.5") == (0.01, 0.5)
  assert syntax.parse_fixed_ratios("") == () and syntax.parse_fixed_ratios(None) == ()
  for bad in ("0", "1.5", "x", "-0.1"):
    with pytest.raises(ValueError, match="fixed_ratios"):
      syntax.parse_fixed_ratios(bad)


def test_counts_are_floor_rn_clipped_and_nested():
  ratios = (0.002, 0.01, 0.05, 0.25, 0.5, 1.0)
  episode = sampling.make_eval_episodes(3, SPECS, 10)
  fixed = sampling.fixed_ratio_episodes(episode, SPECS, ratios)
  assert list(fixed) == [sampling.ratio_label(r) for r in ratios]
  for spec in SPECS:
    lo, hi = spec.ratio_range
    prev = 0
    for r in ratios:
      ep = fixed[sampling.ratio_label(r)][spec.name]
      want = max(1, int(np.floor(min(max(r, lo), hi) * spec.num_points + 1e-9)))
      assert (ep["mask"].sum(-1) == want).all(), (spec.name, r)
      np.testing.assert_array_equal(ep["idx"], episode[spec.name]["idx"])  # the same order
      np.testing.assert_allclose(ep["ratio"], want / spec.num_points)
      assert want >= prev
      prev = want
  # b (900 points, full range): 0.002 -> 1 point, 1.0 -> all 900; a: clipped to 2 .. 20.
  counts = lambda name: [int(fixed[sampling.ratio_label(r)][name]["mask"][0].sum()) for r in ratios]
  assert counts("b") == [1, 9, 45, 225, 450, 900]
  assert counts("a") == [2, 2, 2, 10, 20, 20]


def test_paired_across_modality_sets_and_saved(tmp_path):
  """A modality's fixed supports do not depend on the other modalities; the file round-trips and
  a file written for other ratios is refused."""
  ratios = (0.01, 0.1)
  both = sampling.fixed_ratio_episodes(sampling.make_eval_episodes(7, SPECS, 6), SPECS, ratios)
  alone = sampling.fixed_ratio_episodes(
    sampling.make_eval_episodes(7, SPECS[1:], 6), SPECS[1:], ratios
  )
  for label in both:
    for k in ("idx", "mask", "ratio"):
      np.testing.assert_array_equal(both[label]["b"][k], alone[label]["b"][k])
  path = tmp_path / "episodes.npz"
  episode = sampling.make_eval_episodes(7, SPECS, 6)
  episodes_file.save_episodes(path, episode, SPECS, ratios)
  with np.load(path) as f:
    assert f["b/fixed_count"].tolist() == [9, 90] and f["a/fixed_count"].tolist() == [2, 4]
  loaded = episodes_file.load_episodes(path, SPECS, ratios)
  np.testing.assert_array_equal(loaded["b"]["idx"], episode["b"]["idx"])
  with pytest.raises(ValueError, match=r"a/fixed_ratio is \[0.01, 0.1\].*gives \[0.01, 0.2\]"):
    episodes_file.load_episodes(path, SPECS, (0.01, 0.2))


def test_arms_must_share_fixed_ratios():
  a = synthetic.get_config("smoke")
  b = synthetic.get_config("smoke")
  b.eval.fixed_ratios = "0.01"
  with pytest.raises(ValueError, match="eval.fixed_ratios"):
    studies.check_shared_test_set({"a": a, "b": b})


def test_curve_matches_the_binned_numbers(synthetic_data_dir):
  """With a fixed ratio at every support size of the training range, each signal's fixed-ratio
  error at its own meta-test support size is its meta-test error, so every bin's mean is the
  mean of the curve's per-signal errors over the bin's signals."""
  config = synthetic.get_config("modalities=sine,smoke")
  config.data.data_dir = synthetic_data_dir
  learner = build.learner_from_config(config)
  spec = learner.specs[0]
  counts = range(1, spec.max_support + 1)
  ratios = tuple(c / spec.num_points for c in counts)
  mesh = meta_step.data_mesh()
  state = meta_step.put_replicated(learner.init(jax.random.PRNGKey(0)), mesh)
  source = build.build_sources(config, "test")
  n = 16
  episodes = sampling.make_eval_episodes(config.eval.episode_seed, learner.specs, n)
  metrics, accs = evaluate.evaluate(learner, state, source, episodes, 8, mesh, fixed_ratios=ratios)
  k = learner.meta.inner_steps
  main = accs["meta_test"].per_signal()[spec.name]
  own_count = episodes[spec.name]["mask"].sum(-1).astype(int)
  curve = np.empty_like(main["generalization"][k])
  for i, c in enumerate(own_count):
    label = sampling.ratio_label(syntax.parse_fixed_ratios([c / spec.num_points])[0])
    fixed = accs[label].per_signal()[spec.name]
    np.testing.assert_allclose(
      fixed["generalization"][:, i], main["generalization"][:, i], rtol=1e-6
    )
    curve[i] = fixed["generalization"][k, i]
  checked = 0
  for lo, hi in spec.ratio_bins:
    in_bin = (main["ratio"] >= lo) & (main["ratio"] < hi)
    key = f"generalization_mse/sine/R{lo:g}-{hi:g}"
    if in_bin.any():
      assert metrics[key] == pytest.approx(curve[in_bin].mean(), rel=1e-6)
      checked += 1
  assert checked >= 2
  # The keys of every ratio, and the curve is an actual function of the support size.
  values = [metrics[f"generalization_mse/sine/{sampling.ratio_label(r)}"] for r in ratios]
  assert len(values) == len(ratios) and len(set(values)) > len(values) // 2


@pytest.mark.slow  # trains
def test_results_have_fixed_ratio_keys(tmp_path, synthetic_data_dir):
  config = synthetic.get_config("method=cavia,modalities=sine+tanh,smoke")
  config.data.data_dir = synthetic_data_dir
  config.num_train_steps = 2
  config.eval.fixed_ratios = "0.002,0.05,1"
  train.train_and_evaluate(config, str(tmp_path))
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["fixed_supports"]["sine"] == {
    "ratio0.002": {"count": 2, "ratio": 0.01},
    "ratio0.05": {"count": 10, "ratio": 0.05},
    "ratio1": {"count": 20, "ratio": 0.1},
  }
  m = results["metrics"]
  for label in ("ratio0.002", "ratio0.05", "ratio1"):
    assert m[f"memorization_mse/avg/{label}"] == pytest.approx(
      (m[f"memorization_mse/sine/{label}"] + m[f"memorization_mse/tanh/{label}"]) / 2
    )
  with np.load(tmp_path / "episodes.npz") as f:
    assert f["tanh/fixed_count"].tolist() == [2, 10, 20]


def test_report_curves_and_runs_without_them(tmp_path):
  """The curve's x is the clipped support's ratio (ratios with the same support shown once), the
  report tables the fixed ratios and names the runs archived without them, the figure is drawn."""
  from experiments.studies import plots, report

  def results(scale, fixed=True):
    metrics = {
      "generalization_mse/sine/step3": scale,
      "memorization_mse/sine/step3": scale,
      "generalization_mse/avg/step3": scale,
      "memorization_mse/avg/step3": scale,
    }
    if fixed:
      for label, v in (("ratio0.002", 4.0), ("ratio0.01", 4.0), ("ratio0.05", 2.0)):
        for m in ("generalization_mse", "memorization_mse"):
          metrics[f"{m}/sine/{label}"] = metrics[f"{m}/avg/{label}"] = v * scale
    out = {"config": {"modalities": "sine", "inner_steps": 3}, "step": 10, "metrics": metrics}
    if fixed:
      out["fixed_supports"] = {
        "sine": {
          "ratio0.002": {"count": 2, "ratio": 0.01},
          "ratio0.01": {"count": 2, "ratio": 0.01},
          "ratio0.05": {"count": 10, "ratio": 0.05},
        }
      }
    return out

  study = studies.Study(
    "s",
    {"mia": {}, "cavia": {"method": "cavia"}},
    "mia",
    ("generalization_mse", "memorization_mse"),
  )
  res = {"mia": {0: results(1.0), 1: results(2.0)}, "cavia": {0: results(1.0, fixed=False)}}
  x, values, labels = report.support_curve(res["mia"], "generalization_mse", "sine")
  np.testing.assert_allclose(x, [0.01, 0.05])
  assert labels == ["ratio0.002", "ratio0.05"]
  np.testing.assert_allclose(values, [[4.0, 2.0], [8.0, 4.0]])
  np.testing.assert_allclose(
    report.support_curve(res["mia"], "generalization_mse", "avg")[0], [0.01, 0.05]
  )
  assert report.lacking_fixed_ratios(res) == ["cavia/seed0"]
  md = report.format_markdown(study, res)
  assert "Runs without fixed-ratio results (not in these tables): cavia/seed0." in md
  assert "| 0.05 | **mia** (ref) | 3 ± 1.4 |" in md
  assert plots.plot_support_curves(study, res, str(tmp_path / "s.png")) == str(tmp_path / "s.png")
  assert (tmp_path / "s.png").stat().st_size > 10_000
  none = {"mia": {0: results(1.0, fixed=False)}}
  assert plots.plot_support_curves(study, none, str(tmp_path / "n.png")) is None
