"""A user's own arrays: specs read from the data (no benchmark to register), the config fields for
what arrays cannot tell, clear errors, and one CLI run on a 20x30x3 image and a 150-sample signal
(two modality groups)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import benchmarks, sources
from experiments.configs import arrays as arrays_config
from experiments.configs import synthetic as synthetic_config
from experiments.run import build, train
from mia_jax import arrays as arrays_lib
from mia_jax import modalities
from mia_jax.arrays import specs_from_arrays
from tests.paths import ROOT


def _images(rng, n, grid=(20, 30), channels=3):
  """Smooth images in [0.1, 0.9]: a random plane wave per channel."""
  yy, xx = np.meshgrid(*(np.linspace(-1, 1, s) for s in grid), indexing="ij")
  f = rng.uniform(0.5, 2.0, (n, 2, 1, 1, channels))
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, channels))
  wave = np.sin(3 * (f[:, 0] * xx[None, ..., None] + f[:, 1] * yy[None, ..., None]) + phase)
  return (0.5 + 0.4 * wave).astype(np.float32)


def _signals(rng, n, length=150):
  """Smooth 1-D signals `[n, length]` (no channel axis: d_out 1)."""
  t = np.linspace(-1, 1, length)
  return np.sin(rng.uniform(1, 4, (n, 1)) * 3 * t + rng.uniform(0, 2 * np.pi, (n, 1)))


@pytest.fixture
def own_files(tmp_path):
  rng = np.random.default_rng(0)
  train_path, test_path = tmp_path / "train.npz", tmp_path / "test.npz"
  sources.save_npz(train_path, {"img": _images(rng, 12), "sig": _signals(rng, 12)})
  sources.save_npz(test_path, {"img": _images(rng, 8), "sig": _signals(rng, 8)})
  return str(train_path), str(test_path)


def _config(train_path="", test_path="", extra=""):
  return arrays_config.get_config(f"train={train_path},test={test_path},smoke{extra}")


# ------------------------------------------------------------------------------------------------
# specs_from_arrays


def test_specs_from_arrays_reads_grids_and_channels_and_defaults():
  img = np.full((4, 20, 30, 3), 0.25)
  img[:, 0, 0, 0] = 0.25 + 600 * 3 * 0.004  # mean 0.254 -> bias 0.25 (2 decimals)
  specs = specs_from_arrays(
    {
      "img": img,
      "sig": np.zeros((4, 150)),
      "col": np.ones((4, 7, 1), np.int32),
      "vol": np.zeros((4, 3, 4, 5, 2), bool),
    }
  )
  facts = {s.name: (s.d_in, s.grid_shape, s.d_out) for s in specs}
  assert facts == {
    "img": (2, (20, 30), 3),
    "sig": (1, (150,), 1),
    "col": (1, (7,), 1),
    "vol": (3, (3, 4, 5), 2),
  }
  img_spec, sig_spec, col_spec, _ = specs
  assert img_spec.output_bias == 0.25 and sig_spec.output_bias == 0.0
  assert col_spec.output_bias == 1.0
  assert str(sig_spec.output_bias) == "0.0"  # no -0.0
  for s in specs:
    assert s.ratio_range == (0.001, 1.0)
    assert s.ratio_bins == benchmarks.IMAGE_RATIO_BINS
    assert s.error_normaliser == "none" and s.fourier_sigma is None
  np.testing.assert_allclose(img_spec.coordinates()[[0, -1]], [[-1, -1], [1, 1]])
  assert img_spec.coordinates().shape == (600, 2)


def test_specs_from_arrays_one_value_or_per_modality():
  data = {"img": np.zeros((2, 4, 5, 3)), "sig": np.zeros((2, 9))}
  specs = specs_from_arrays(
    data, ratio_range=(0.2, 0.5), output_bias=0.5, error_normaliser="amplitude", fourier_sigma=3
  )
  assert all(
    s.ratio_range == (0.2, 0.5)
    and s.output_bias == 0.5
    and s.fourier_sigma == 3.0
    and s.error_normaliser == "amplitude"
    for s in specs
  )
  # The default bins follow the range: the quarters of [0, Rmax] that reach above Rmin.
  assert specs[0].ratio_bins == ((0.125, 0.25), (0.25, 0.375), (0.375, 0.5))
  img, sig = specs_from_arrays(
    data,
    ratio_range={"sig": np.array([0.25, 1.0])},
    ratio_bins={"img": [(0, 0.5), (0.5, 1)]},
    output_bias={"img": 0.5, "sig": None},
    fourier_sigma={"img": 1.0},
  )
  assert img.ratio_range == (0.001, 1.0) and img.ratio_bins == ((0.0, 0.5), (0.5, 1.0))
  assert sig.ratio_range == (0.25, 1.0)
  assert sig.ratio_bins == ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
  assert (img.output_bias, sig.output_bias) == (0.5, 0.0)
  assert (img.fourier_sigma, sig.fourier_sigma) == (1.0, None)


def test_specs_from_arrays_groups_by_grid_and_channels():
  specs = specs_from_arrays(
    {
      "a": np.zeros((2, 20, 30, 3)),
      "sig": np.zeros((2, 150)),
      "b": np.zeros((2, 20, 30, 3)),
      "gray": np.zeros((2, 20, 30, 1)),
    }
  )
  groups = modalities.group_modalities(specs, default_sigma=1.0)
  assert [g.names for g in groups] == [("a", "b"), ("sig",), ("gray",)]


def test_default_ratio_bins():
  assert arrays_lib.default_ratio_bins((0.001, 1.0)) == benchmarks.IMAGE_RATIO_BINS
  assert arrays_lib.default_ratio_bins((0.25, 1.0)) == ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
  assert arrays_lib.default_ratio_bins((0.01, 0.1))[0] == (0.0, 0.025)
  assert arrays_lib.default_ratio_bins((1.0, 1.0)) == ((0.75, 1.0),)


@pytest.mark.parametrize(
  "array, match",
  [
    (np.zeros(5), r"'m'.*shape \(5,\).*\[num_signals, \*grid, d_out\]"),
    (np.array([["a", "b"]]), r"'m'.*shape \(1, 2\).*dtype <U1.*allowed: bool, integer or float"),
    (np.zeros((2, 3), complex), r"'m'.*complex128"),
    (np.zeros((2, 3), object), r"'m'.*object"),
    (np.zeros((0, 10)), r"'m'.*shape \(0, 10\).*empty"),
    (np.zeros((2, 0, 3)), r"'m'.*shape \(2, 0, 3\).*empty"),
    (np.array([[0.0, np.nan, 1.0], [np.inf, 0, 0]]), r"'m'.*shape \(2, 3\).*2 NaN or infinite"),
  ],
)
def test_bad_arrays_are_clear_errors(array, match):
  with pytest.raises(ValueError, match=match):
    specs_from_arrays({"m": array})


def test_bad_collections_and_values_are_clear_errors():
  with pytest.raises(ValueError, match="non-empty"):
    specs_from_arrays({})
  with pytest.raises(ValueError, match=r"number of signals.*'a': 3.*'b': 2"):
    specs_from_arrays({"a": np.zeros((3, 4)), "b": np.zeros((2, 4))})
  data = {"img": np.zeros((2, 4, 5, 3)), "sig": np.zeros((2, 9))}
  with pytest.raises(ValueError, match=r"output_bias names \['wav'\].*known: img, sig"):
    specs_from_arrays(data, output_bias={"wav": 0.0})
  with pytest.raises(ValueError, match="'img'.*ratio_range"):
    specs_from_arrays(data, ratio_range=(0.5, 0.2))
  with pytest.raises(ValueError, match="'img'.*ratio_range must be a \\(lo, hi\\) pair"):
    specs_from_arrays(data, ratio_range=0.5)
  with pytest.raises(ValueError, match="'sig'.*ratio bin \\(0.5, 0.2\\)"):
    specs_from_arrays(data, ratio_bins={"sig": [(0.5, 0.2)]})
  with pytest.raises(ValueError, match="'img'.*ratio_bins must be a non-empty"):
    specs_from_arrays(data, ratio_bins=[])
  with pytest.raises(ValueError, match="'img'.*output_bias must be a finite number"):
    specs_from_arrays(data, output_bias="half")
  with pytest.raises(ValueError, match="'img'.*fourier_sigma must be >= 0"):
    specs_from_arrays(data, fourier_sigma=-1)
  with pytest.raises(ValueError, match="'img'.*error_normaliser 'max'.*allowed: none, amplitude"):
    specs_from_arrays(data, error_normaliser="max")
  with pytest.raises(ValueError, match="contain no '/'"):
    specs_from_arrays({"a/b": np.zeros((2, 4))})


# ------------------------------------------------------------------------------------------------
# The driver: config fields, file checks, arrays passed from Python (no training here)


def test_config_fields_set_what_arrays_cannot_tell(tmp_path, own_files):
  train_path, test_path = own_files
  config = _config(train_path, test_path)
  assert config.benchmark == "arrays" and config.data.source == "npz"
  assert config.modalities == ""  # every modality in the file
  config.data.ratio_range = "0.01:1,sig=0.25:1"
  config.data.ratio_bins = "img=0:0.5:1"
  config.data.output_bias = "img=0.5"
  config.data.error_normaliser = "sig=amplitude"
  train_source, test_source = build.own_data_sources(config)
  assert train_source.modalities == test_source.modalities == ("img", "sig")
  img, sig = build.own_data_specs(config, train_source)
  assert (img.grid_shape, img.d_out, sig.grid_shape, sig.d_out) == ((20, 30), 3, (150,), 1)
  assert img.ratio_range == (0.01, 1.0) and sig.ratio_range == (0.25, 1.0)
  assert img.ratio_bins == ((0.0, 0.5), (0.5, 1.0)) and sig.ratio_bins[0] == (0.25, 0.5)
  assert img.output_bias == 0.5 and sig.output_bias == round(
    float(np.mean(train_source.arrays["sig"]["y"], dtype=np.float64)), 2
  )
  assert (img.error_normaliser, sig.error_normaliser) == ("none", "amplitude")
  # Per-modality Fourier sigma is model.ff_sigmas; the learner has one group per signature.
  config.model.ff_sigmas = "sig=3"
  learner = build.learner_from_config(config, specs=(img, sig))
  assert [g.names for g in learner.model.groups] == [("img",), ("sig",)]
  assert [s.fourier_sigma for s in learner.model.specs] == [None, 3.0]


@pytest.mark.parametrize(
  "field, value, match",
  [
    ("ratio_range", "0.1", r"data.ratio_range entry '0.1' is malformed \(a range is LO:HI"),
    ("ratio_range", "wav=0.1:1", r"data.ratio_range names \['wav'\].*'.*train.npz'.*\['img', "),
    ("ratio_bins", "0.5:0.2", r"data.ratio_bins entry '0.5:0.2' is malformed.*increasing edges"),
    ("output_bias", "img=x", r"data.output_bias entry 'img=x' is malformed"),
    ("output_bias", "0.5,0.2", r"data.output_bias gives the bare value twice"),
    ("output_bias", "img=0.5,img=0.2", r"data.output_bias gives img twice"),
    ("error_normaliser", "img=max", r"'img'.*unknown error_normaliser 'max'"),
    ("grid_ndims", "2", r"data.grid_ndims entry '2' is malformed.*NAME=VALUE.*'gray=2'"),
  ],
)
def test_bad_config_fields_are_clear_errors(own_files, field, value, match):
  config = _config(*own_files)
  config.data[field] = value
  with pytest.raises(ValueError, match=match):
    build.own_data_specs(config, build.own_data_sources(config)[0])


def test_test_file_must_match_train_file(tmp_path, own_files):
  train_path, _ = own_files
  rng = np.random.default_rng(1)
  cases = {
    "missing": (
      {"img": _images(rng, 4)},
      r"test data do not match the train data '.*train.npz'"
      r".*\['img', 'sig'\].*'sig' is not in '.*missing.npz'",
    ),
    "grid": (
      {"img": _images(rng, 4, grid=(20, 31)), "sig": _signals(rng, 4)},
      r"'img' has grid \(20, 30\) with 3 channels in the train data '.*train.npz' but "
      r"grid \(20, 31\) with 3 channels in the test data '.*grid.npz'",
    ),
    "channels": (
      {"img": _images(rng, 4, channels=1), "sig": _signals(rng, 4)},
      r"'img' has grid \(20, 30\) with 3 channels .* but grid \(20, 30\) with 1",
    ),
  }
  for name, (arrays, match) in cases.items():
    path = tmp_path / f"{name}.npz"
    sources.save_npz(path, arrays)
    with pytest.raises(ValueError, match=match):
      build.own_data_sources(_config(train_path, str(path)))
  # Only the selected modalities are read.
  config = _config(train_path, str(tmp_path / "missing.npz"), ",modalities=img")
  assert build.own_data_sources(config)[1].modalities == ("img",)


def test_bad_values_in_a_file_name_the_modality(tmp_path, own_files):
  train_path, test_path = own_files
  bad = dict(np.load(test_path))
  bad["sig"][3, 7] = np.nan
  bad["sig"][2, 1] = -np.inf
  sources.save_npz(tmp_path / "nan.npz", bad)
  with pytest.raises(
    ValueError,
    match=r"In the train data '.*nan.npz': Modality 'sig': array of "
    r"shape \(8, 150, 1\) holds 2 NaN or infinite",
  ):
    build.own_data_sources(_config(str(tmp_path / "nan.npz"), test_path))
  with pytest.raises(ValueError, match=r"In the test data '.*nan.npz': Modality 'sig'"):
    build.own_data_sources(_config(train_path, str(tmp_path / "nan.npz")))


def test_grayscale_without_channel_axis_and_amplitudes(tmp_path):
  rng = np.random.default_rng(2)
  for split, n in (("train", 6), ("test", 4)):
    sources.save_npz(
      tmp_path / f"{split}.npz",
      {
        "gray": _images(rng, n, grid=(6, 5), channels=1)[..., 0],
        "sig": {"y": _signals(rng, n, 40), "amplitude": rng.uniform(1, 2, n)},
      },
    )
  config = _config(str(tmp_path / "train.npz"), str(tmp_path / "test.npz"))
  config.data.grid_ndims = "gray=2"
  gray, sig = build.own_data_specs(config, build.own_data_sources(config)[0])
  assert (gray.grid_shape, gray.d_out) == ((6, 5), 1)
  # The file gives the signal's amplitudes, so its errors are normalised by them.
  assert (gray.error_normaliser, sig.error_normaliser) == ("none", "amplitude")


def test_arrays_passed_from_python_match_the_file(own_files):
  train_path, test_path = own_files
  from_file = build.own_data_specs(
    _config(train_path, test_path), build.own_data_sources(_config(train_path, test_path))[0]
  )
  data = {
    split: {k: v for k, v in np.load(path).items()}
    for split, path in (("train", train_path), ("test", test_path))
  }
  config = _config()
  train_source, test_source = build.own_data_sources(config, data)
  assert isinstance(train_source, sources.GridSource) and len(test_source) == 8
  assert build.own_data_specs(config, train_source) == from_file
  np.testing.assert_array_equal(train_source.grid_arrays["img"], data["train"]["img"])
  with pytest.raises(ValueError, match="give one or the other"):
    build.own_data_sources(_config(train_path, test_path), data)
  with pytest.raises(ValueError, match=r"data needs a 'test' entry"):
    build.own_data_sources(config, {"train": data["train"]})
  # The driver's checking pass accepts the arrays (no .npz paths), and without them asks for
  # the files, before anything is written.
  run = train.prepare(config, "/nonexistent/w", data)
  assert [s.name for s in run.learner.specs] == ["img", "sig"] and run.num_test == 8
  with pytest.raises(ValueError, match=r"data.source='npz' needs data.npz_train"):
    train.prepare(config, "/nonexistent/w")


def test_benchmark_modalities_in_an_npz_keep_the_benchmark_facts(tmp_path):
  from data_pipelines.synthetic import generate

  sources.save_npz(tmp_path / "train.npz", generate.generate_signals(8, 0, ("sine", "relu")))
  config = synthetic_config.get_config("modalities=sine+relu,smoke")
  config.data.source = "npz"
  config.data.npz_train = str(tmp_path / "train.npz")
  source = build.build_sources(config, "train")
  specs = build.own_data_specs(config, source)
  assert specs == benchmarks.benchmark_specs("synthetic", "sine+relu")


# ------------------------------------------------------------------------------------------------
# End to end: the CLI trains and evaluates on an image and a signal of shapes no benchmark has


@pytest.mark.slow
def test_cli_trains_and_evaluates_own_arrays(tmp_path, own_files):
  train_path, test_path = own_files
  arg = f"train={train_path},test={test_path},method=cavia,inner_steps=1,smoke"
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    f"--config=experiments/configs/arrays.py:{arg}",
    f"--workdir={tmp_path / 'w'}",
    "--config.data.ratio_range=0.001:1,sig=0.25:1",
    "--config.model.ff_sigmas=sig=3",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # The modalities read from the files are logged (absl INFO, stderr); the table is on stdout.
  assert "img: grid 20x30, d_out 3" in proc.stderr and "sig: grid 150, d_out 1" in proc.stderr
  assert "cavia on arrays after 4 meta-steps (8 meta-test signals, K=1)" in proc.stdout
  results = json.loads((tmp_path / "w" / "results.json").read_text())
  assert results["step"] == 4
  assert results["config"]["data"]["ratio_range"] == "0.001:1,sig=0.25:1"
  metrics = results["metrics"]
  for name in ("img", "sig", "avg"):
    for step in (0, 1):
      for measure in ("generalization_mse", "memorization_mse", "full_mse"):
        assert np.isfinite(metrics[f"{measure}/{name}/step{step}"]), (measure, name, step)
  assert any(k.startswith("memorization_mse/img/R0-0.25") for k in metrics)
  assert not any(k.startswith("memorization_mse/sig/R0-") for k in metrics)  # R >= 0.25
  with np.load(tmp_path / "w" / "episodes.npz") as episodes:
    assert episodes["sig/ratio"].min() >= 0.25
  # The run's learner: two modality groups (an image and a signal), built from the same config.
  config = arrays_config.get_config(arg)
  config.data.ratio_range, config.model.ff_sigmas = "0.001:1,sig=0.25:1", "sig=3"
  learner = build.build_learner(config)
  assert [g.names for g in learner.model.groups] == [("img",), ("sig",)]
  assert [s.fourier_sigma for s in learner.model.specs] == [None, 3.0]
