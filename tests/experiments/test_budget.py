"""Issue 35's comparison of one study at several budgets (`experiments.studies.budget`,
`python -m experiments.budget`): gains against hand-computed ones, the files, clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.studies import budget
from tests.paths import ROOT

RATIOS = {"ratio0.002": 0.002, "ratio0.01": 0.01, "ratio0.1": 0.1}


def _archive(root, steps, errors, labels=RATIOS):
  """`errors`: {arm: {seed: [error per ratio]}} -> an archive of results.json files."""
  for arm, by_seed in errors.items():
    for seed, values in by_seed.items():
      d = os.path.join(root, arm, f"seed{seed}")
      os.makedirs(d)
      metrics = {f"generalization_mse/rgb/{k}": v for k, v in zip(labels, values)}
      metrics["generalization_mse/rgb/step3"] = float(np.mean(values))
      supports = {"rgb": {k: {"count": int(r * 1000), "ratio": r} for k, r in labels.items()}}
      with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(
          {
            "step": steps,
            "config": {"num_train_steps": steps},
            "metrics": metrics,
            "fixed_supports": supports,
          },
          f,
        )
  return str(root)


@pytest.fixture
def archives(tmp_path):
  small = _archive(
    tmp_path / "800",
    800,
    {
      "multimodal": {0: [0.09, 0.05, 0.02], 1: [0.08, 0.05, 0.02], 2: [0.10, 0.04, 0.02]},
      "rgb_alone": {0: [0.10, 0.05, 0.02], 1: [0.10, 0.05, 0.02], 2: [0.10, 0.05, 0.02]},
      "wav_alone": {0: [1.0, 1.0, 1.0]},
    },
  )
  large = _archive(
    tmp_path / "3200",
    3200,
    {
      "multimodal": {0: [0.06, 0.03, 0.01], 1: [0.06, 0.03, 0.01]},
      "rgb_alone": {0: [0.08, 0.04, 0.01], 1: [0.06, 0.03, 0.01], 2: [0.1, 0.1, 0.1]},
    },
  )
  return small, large


def test_gains_are_paired_by_seed_and_ordered_by_budget(archives):
  small, large = archives
  g = budget.gains([large, small])  # any order: sorted by the runs' budgets
  assert g.budgets == (800, 3200) and g.ratios == (0.002, 0.01, 0.1)
  np.testing.assert_allclose(g.values[800], [[0.1, 0, 0], [0.2, 0, 0], [0.0, 0.2, 0]], atol=1e-12)
  # Seed 2 of rgb_alone at 3,200 steps has no multimodal partner: left out, not compared.
  assert g.seeds == {800: [0, 1, 2], 3200: [0, 1]}
  np.testing.assert_allclose(g.values[3200], [[0.25, 0.25, 0], [0, 0, 0]], atol=1e-12)
  mean, std = g.mean_std(800)
  np.testing.assert_allclose(mean, [0.1, 0.2 / 3, 0], atol=1e-12)
  np.testing.assert_allclose(std[0], np.std([0.1, 0.2, 0.0], ddof=1))
  table = budget.format_markdown(g)
  assert "| 0.002 | +10.0% ± 10.0 (3) | +12.5% ± 17.7 (2) |" in table, table


def test_the_files(archives, tmp_path):
  g = budget.gains(list(archives))
  files = budget.write(g, str(tmp_path / "out"), num_ratios=2)
  with open(files["png"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(files["csv"]) as f:
    rows = f.read().splitlines()
  assert rows[0] == "budget,ratio,label,seed,gain" and len(rows) == 1 + (3 + 2) * 3
  with open(files["json"]) as f:
    assert json.load(f)["archives"] == {"800": archives[0], "3200": archives[1]}


def test_clear_errors(archives, tmp_path):
  small, large = archives
  with pytest.raises(ValueError, match=r"No arm 'rgb' in .*its arms: multimodal, rgb_alone, wav"):
    budget.gains([small], arm="rgb")
  with pytest.raises(ValueError, match="are both of 800 meta-steps"):
    budget.gains([small, small])
  with pytest.raises(ValueError, match="is not a directory"):
    budget.gains([str(tmp_path / "nowhere")])
  other = _archive(
    tmp_path / "other",
    1600,
    {"multimodal": {0: [0.1]}, "rgb_alone": {0: [0.1]}},
    labels={"ratio0.5": 0.5},
  )
  with pytest.raises(ValueError, match="other fixed ratios"):
    budget.gains([small, other])
  with pytest.raises(ValueError, match="no common fixed-ratio keys for generalization_mse/wav"):
    budget.gains([small], modality="wav")


@pytest.mark.slow
def test_the_command(archives, tmp_path):
  base = [sys.executable, "-m", "experiments.budget", f"--archives={','.join(archives)}"]
  out = subprocess.run(
    [*base, f"--out={tmp_path / 'o'}"], cwd=ROOT, capture_output=True, text=True, timeout=300
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert "| 0.002 | +10.0% ± 10.0 (3) |" in out.stdout and os.path.isfile(tmp_path / "o/gain.png")
  bad = subprocess.run(
    [*base, "--measure=generalization_psnr", f"--out={tmp_path / 'p'}"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
    "error: --measure='generalization_psnr' is not allowed"
  ), bad.stderr
