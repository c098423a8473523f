"""Observation files (`experiments.run.observations`, read by `experiments.reconstruct`): the grid
and the point forms parse to the same points, and bad files are one clear error."""

import numpy as np
import pytest

from experiments import reconstruct
from tests.helpers import image_spec, wave_spec

SPECS = (wave_spec("wav", 20), image_spec("img", 6, 3))


def _parse(arrays):
  return reconstruct.parse_observations(arrays, SPECS, "'obs.npz'")


def test_grid_and_point_observations_parse_to_the_same_points():
  rng = np.random.default_rng(0)
  wav = rng.normal(size=(3, 20)).astype(np.float32)
  mask = np.zeros((3, 20))
  mask[:, [2, 5, 11]] = 1
  mask[2, 7] = 1
  grid = _parse({"wav": wav, "wav_mask": mask})["wav"]
  assert grid["truth"].shape == (3, 20, 1) and grid["mask"].sum(1).tolist() == [3, 3, 4]
  coords = SPECS[0].coordinates()[[2, 5, 11, 7]][None].repeat(3, 0)
  values = wav[:, [2, 5, 11, 7]]
  pts = _parse(
    {"wav_coords": coords[..., 0], "wav_values": values, "wav_count": np.array([3, 3, 4])}
  )["wav"]
  for i in range(3):
    on = grid["mask"][i] > 0
    order = np.argsort(pts["coords"][i, pts["mask"][i] > 0, 0])
    np.testing.assert_allclose(grid["coords"][i, on], pts["coords"][i, pts["mask"][i] > 0][order])
    np.testing.assert_allclose(grid["values"][i, on], pts["values"][i, pts["mask"][i] > 0][order])
  # Unknown values (NaN) where unobserved: no ground truth, still reconstructable.
  wav_nan = np.where(mask > 0, wav, np.nan)
  assert _parse({"wav": wav_nan, "wav_mask": mask})["wav"]["truth"] is None


@pytest.mark.parametrize(
  "arrays, match",
  [
    (
      {"audio": np.zeros((2, 20))},
      r"'audio' that names no modality of the run; the run's "
      r"modalities are \['img', 'wav'\]",
    ),
    ({"wav": np.zeros((2, 21))}, r"'wav' has grid \(21,\); the run's 'wav' is on \(20,\)"),
    ({"img": np.zeros((2, 6, 6, 4))}, r"expected \[n, 6, 6, 3\]"),
    ({"wav": np.zeros((2, 20)), "wav_mask": np.full((2, 20), 0.5)}, "must hold 0"),
    ({"wav": np.full((2, 20), np.nan)}, "NaN or infinite values at observed points"),
    ({"wav": np.zeros((2, 20)), "wav_coords": np.zeros((2, 3))}, "both on the grid"),
    ({"wav_coords": np.zeros((2, 3))}, "no wav_values"),
    (
      {"wav_coords": np.full((2, 3), 1.5), "wav_values": np.zeros((2, 3))},
      r"wav_coords\[0, 0\] = \[1.5\] lies outside the domain the run was trained on, \[-1, 1\]",
    ),
    (
      {"img_coords": np.zeros((2, 3, 1)), "img_values": np.zeros((2, 3, 3))},
      r"expected \[n, S, 2\] \(modality 'img' has d_in=2\)",
    ),
    ({"img_coords": np.zeros((2, 3, 2)), "img_values": np.zeros((2, 3, 1))}, r"has d_out=3"),
    (
      {"wav_coords": np.zeros((2, 3)), "wav_values": np.zeros((2, 3)), "wav_count": [1, 4]},
      r"wav_count must be \[2\] whole numbers in 0..3",
    ),
    ({"wav": np.zeros((2, 20)), "img": np.zeros((3, 6, 6, 3))}, "different numbers of signals"),
    ({"wav": np.zeros((2, 20)), "wav_amplitude": np.array([1.0, -1.0])}, "positive numbers"),
    ({"wav_mask": np.ones((2, 20))}, "no observations of 'wav'"),
  ],
)
def test_bad_observation_files_are_clear_errors(arrays, match):
  with pytest.raises(ValueError, match=match):
    _parse(arrays)
