"""The offline image/audio benchmarks: rendered shapes and audio-visual digits.

Generators (determinism, ranges, the physics of the renderings, pairing by label, class structure
of the synthesised speech), the tfds builders read through the dataset registry, clear errors,
both configs' smoke presets end to end, and a heterogeneous (image + audio) MIA step.
"""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from data_pipelines import benchmarks, registry
from data_pipelines.avdigits import avdigits as avdigits_builder
from data_pipelines.avdigits import generate as avd
from data_pipelines.avdigits import speech
from data_pipelines.shapes import generate as shapes
from experiments.configs import avdigits as avdigits_config
from experiments.configs import shapes as shapes_config
from experiments.run import build
from mia_jax import adaptation
from tests.paths import ROOT


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A tfds data dir with the small configs of both datasets built once."""
  d = str(tmp_path_factory.mktemp("tfds_offline"))
  registry.load("shapes_trimodal", d, "train", config="small")
  registry.load("avdigits", d, "train", config="small")
  return d


# -- rendered shapes -----------------------------------------------------------------------------


def test_shapes_deterministic_by_seed_and_prefix_stable():
  a = shapes.generate_signals(6, seed=3)
  b = shapes.generate_signals(6, seed=3)
  prefix = shapes.generate_signals(4, seed=3, chunk_size=3)
  other = shapes.generate_signals(6, seed=4)
  for name in shapes.MODALITIES:
    np.testing.assert_array_equal(a[name]["y"], b[name]["y"])
    np.testing.assert_array_equal(a[name]["y"][:4], prefix[name]["y"])
    assert not np.allclose(a[name]["y"], other[name]["y"])


def test_shapes_shapes_dtypes_and_ranges():
  out = shapes.generate_signals(20, seed=0, modalities=("sketch", "rgb"))
  assert list(out) == ["sketch", "rgb"]
  for arrays in out.values():
    y = arrays["y"]
    assert y.shape == (20, 32 * 32, 3) and y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    np.testing.assert_array_equal(arrays["amplitude"], np.ones(20, np.float32))
  sketch = out["sketch"]["y"]
  np.testing.assert_array_equal(sketch[..., 0], sketch[..., 1])  # grey lines on white
  assert 0.5 < sketch.mean() < 1.0 and sketch.min() == 0.0  # mostly white, some lines


def test_normal_map_is_unit_and_agrees_with_the_depth_and_the_shading():
  scenes = shapes.draw_scenes(16, seed=5)
  r = shapes.render(scenes)
  n = 2.0 * r["normal"].astype(np.float64) - 1.0  # decoded from the stored map
  np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-5)
  assert (n[..., 2] >= 0).all()  # seen from above
  # Exact normals: on the smooth ground, central differences of the depth map give the slope
  # -n_x / n_z (x along columns) and -n_y / n_z (y up, rows go down).
  h = 2.0 / 31
  ground = r["surface"] == 0
  inner = (
    ground[:, 1:-1, 1:-1]
    & ground[:, 1:-1, 2:]
    & ground[:, 1:-1, :-2]
    & ground[:, 2:, 1:-1]
    & ground[:, :-2, 1:-1]
  )
  d = r["depth"].astype(np.float64)
  dzdx = (d[:, 1:-1, 2:] - d[:, 1:-1, :-2]) / (2 * h)
  dzdy = (d[:, :-2, 1:-1] - d[:, 2:, 1:-1]) / (2 * h)
  nc = n[:, 1:-1, 1:-1]
  assert inner.sum() > 1000
  np.testing.assert_allclose(dzdx[inner], -nc[..., 0][inner] / nc[..., 2][inner], atol=0.05)
  np.testing.assert_allclose(dzdy[inner], -nc[..., 1][inner] / nc[..., 2][inner], atol=0.05)
  # Lambertian shading from the decoded normal at a few pixels, by hand.
  for s, i, j in [(0, 3, 4), (5, 16, 16), (11, 30, 2)]:
    lambert = max(0.0, float(n[s, i, j] @ scenes["light"][s]))
    expected = r["albedo"][s, i, j] * (shapes.AMBIENT + (1 - shapes.AMBIENT) * lambert)
    np.testing.assert_allclose(r["rgb"][s, i, j], expected, atol=1e-5)


def _one_object_scene(kind, light=(0.0, 0.6, 0.8), albedo=(0.9, 0.5, 0.2)):
  """A flat ground (no tilt, no bumps) and one object centred at the origin."""
  o = shapes.MAX_OBJECTS
  scenes = dict(
    tilt=np.zeros((1, 2)),
    bumps=np.tile([[5.0, 5.0, 0.0, 0.3]], (1, shapes.NUM_BUMPS, 1)),
    ground_albedo=np.array([[0.5, 0.5, 0.5]]),
    present=np.array([[True] + [False] * (o - 1)]),
    kind=np.array([[shapes.OBJECT_TYPES.index(kind)] * o]),
    objects=np.tile([[0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0]], (1, o, 1)),
    albedo=np.tile(np.array(albedo)[None, None], (1, o, 1)),
    light=np.array([light]),
  )
  return shapes.render(scenes, size=33)  # odd size: pixel 16 is the origin


def test_sphere_and_pyramid_normals_and_shading_by_hand():
  r = _one_object_scene("ellipsoid")  # a sphere of radius 0.5 centred on the ground
  step = 2.0 / 32
  for i, j in [(16, 16), (16, 19), (12, 18)]:
    x, y = (j - 16) * step, (16 - i) * step
    expected = np.array([x, y, np.sqrt(0.25 - x * x - y * y)]) / 0.5
    np.testing.assert_allclose(r["unit_normal"][0, i, j], expected, atol=1e-5)
    np.testing.assert_allclose(2 * r["normal"][0, i, j] - 1, expected, atol=1e-5)
    lambert = max(0.0, expected @ np.array([0.0, 0.6, 0.8]))
    np.testing.assert_allclose(
      r["rgb"][0, i, j], np.array([0.9, 0.5, 0.2]) * (0.25 + 0.75 * lambert), atol=1e-5
    )
  assert r["surface"][0, 16, 16] == 1 and r["surface"][0, 0, 0] == 0
  np.testing.assert_allclose(2 * r["normal"][0, 0, 0] - 1, [0, 0, 1], atol=1e-6)  # flat ground
  np.testing.assert_allclose(r["rgb"][0, 0, 0], 0.5 * (0.25 + 0.75 * 0.8), atol=1e-6)
  # Silhouette: the outermost sphere pixel on row 16 is a line, the ground next to it is not.
  col = max(j for j in range(33) if r["surface"][0, 16, j] == 1)
  assert r["sketch"][0, 16, col, 0] == 0.0 and r["sketch"][0, 16, col + 1, 0] == 1.0
  assert r["sketch"][0, 16, 16, 0] == 1.0 and r["sketch"][0, 2, 2, 0] == 1.0

  p = _one_object_scene("pyramid")  # half-size 0.5, height 0.5: faces of slope 1
  np.testing.assert_allclose(
    p["unit_normal"][0, 16, 20], np.array([1, 0, 1]) / np.sqrt(2), atol=1e-6
  )  # the +x face
  np.testing.assert_allclose(
    p["unit_normal"][0, 12, 16], np.array([0, 1, 1]) / np.sqrt(2), atol=1e-6
  )  # the +y face (up = lower row index)
  assert p["sketch"][0, 12, 12, 0] < 0.5  # a diagonal ridge is drawn


def test_unknown_shapes_modality_lists_allowed():
  with pytest.raises(ValueError, match="'depth'.*allowed.*rgb.*normal.*sketch"):
    shapes.generate_signals(2, 0, modalities=("rgb", "depth"))


# -- audio-visual digits ---------------------------------------------------------------------------


def test_avdigits_deterministic_ranges_and_pairing_by_label():
  a = avd.generate_signals(30, seed=2, split="train")
  b = avd.generate_signals(30, seed=2, split="train")
  prefix = avd.generate_signals(7, seed=2, split="train")
  for name in avd.MODALITIES:
    np.testing.assert_array_equal(a[name]["y"], b[name]["y"])
    np.testing.assert_array_equal(a[name]["y"][:7], prefix[name]["y"])
  rgb, wav = a["rgb"], a["wav"]
  assert rgb["y"].shape == (30, 28 * 28, 1) and wav["y"].shape == (30, speech.LENGTH, 1)
  assert rgb["y"].dtype == wav["y"].dtype == np.float32
  assert rgb["y"].min() >= 0.0 and rgb["y"].max() <= 1.0
  np.testing.assert_allclose(np.abs(wav["y"]).max(axis=(1, 2)), 1.0, rtol=1e-6)
  # Paired by label: the image's own scikit-learn label is the spoken word's label.
  images, labels = avd.digit_images()
  np.testing.assert_array_equal(rgb["label"], wav["label"])
  np.testing.assert_array_equal(labels[rgb["image_index"]], wav["label"])
  np.testing.assert_array_equal(rgb["y"][:, :, 0], images[rgb["image_index"]].reshape(30, -1))
  assert set(rgb["image_index"]) <= set(avd.split_image_indices("train"))
  assert len(set(wav["label"])) > 5


def test_avdigits_image_is_the_upsampled_digit():
  from sklearn.datasets import load_digits

  images, _ = avd.digit_images()
  raw = load_digits().images[0] / 16.0
  # Bilinear with pixel centres aligned: output pixel i samples input position
  # (i + 0.5) * 8 / 28 - 0.5 (clamped), interpolated along rows, then columns.
  pos = np.clip((np.arange(28) + 0.5) * 8 / 28 - 0.5, 0, 7)
  rows = np.stack([np.interp(pos, np.arange(8), r) for r in raw])  # [8, 28]
  expected = np.stack([np.interp(pos, np.arange(8), c) for c in rows.T]).T  # [28, 28]
  np.testing.assert_allclose(images[0], expected, atol=1e-6)
  np.testing.assert_allclose(avd.upsample_matrix(8, 28).sum(1), 1.0)
  train, test = avd.split_image_indices("train"), avd.split_image_indices("test")
  assert len(train) + len(test) == 1797 and not set(train) & set(test)


def test_synthesised_speech_carries_the_digit():
  labels = np.tile(np.arange(10), 12)
  x = speech.synthesise(labels, np.random.default_rng(0))
  frames = np.stack(
    [x[:, i : i + 128] * np.hanning(128) for i in range(0, x.shape[1] - 128, 64)], 1
  )
  spec = np.log(np.abs(np.fft.rfft(frames, axis=-1)) ** 2 + 1e-3)
  feats = np.concatenate([spec.mean(1), spec.std(1)], 1)
  feats = (feats - feats.mean(0)) / feats.std(0)
  dist = ((feats[:, None] - feats[None]) ** 2).sum(-1)
  np.fill_diagonal(dist, np.inf)
  accuracy = np.mean(labels[dist.argmin(1)] == labels)  # leave-one-out nearest neighbour
  assert accuracy > 0.6, accuracy  # chance is 0.1; each waveform has its own random speaker
  with pytest.raises(ValueError, match="digits 0-9"):
    speech.synthesise(np.array([3, 10]), np.random.default_rng(0))


# -- builders, registry, specs -------------------------------------------------------------------


def test_builders_read_through_the_registry(data_dir):
  src = registry.load(
    "shapes_trimodal", data_dir, "test", config="small", modalities=["sketch", "rgb"]
  )
  assert len(src) == 32 and src.modalities == ("sketch", "rgb")
  assert src[0]["rgb"]["y"].shape == (1024, 3) and src[0]["rgb"]["y"].dtype == np.float32
  ref = shapes.generate_signals(3, seed=1)
  np.testing.assert_array_equal(src[2]["sketch"]["y"], ref["sketch"]["y"][2])

  av = registry.load("avdigits", data_dir, "train", config="small", in_memory=True)
  assert len(av) == 64 and av[0]["wav"]["y"].shape == (speech.LENGTH, 1)
  assert av[0]["rgb"]["y"].shape == (784, 1)
  for spec in benchmarks.benchmark_specs("avdigits", "rgb+wav"):  # the data fit the specs
    assert av.arrays[spec.name]["y"].shape[1:] == (spec.num_points, spec.d_out)
  for spec in benchmarks.benchmark_specs("shapes", "rgb+normal+sketch"):
    assert (spec.num_points, spec.d_out) == (shapes.IMAGE_SIZE**2, 3)
  # The stored labels pair every image with a spoken digit of its class.
  stored = avdigits_builder.AvDigits(
    config="small", data_dir=data_dir, file_format="array_record"
  ).as_data_source("train")
  _, labels = avd.digit_images()
  for i in range(len(stored)):
    e = stored[i]
    assert e["rgb"]["label"] == e["wav"]["label"] == labels[e["rgb"]["image_index"]]


@pytest.mark.parametrize(
  "call, match",
  [
    (
      lambda d: registry.load("shapes3d", d, "train"),
      "Unknown dataset 'shapes3d'; allowed:.*avdigits.*shapes_trimodal.*synthetic_functions",
    ),
    (
      lambda d: registry.load("avdigits", d, "train", modalities=["rgb", "audio"]),
      "Unknown avdigits modality 'audio'; allowed: rgb, wav",
    ),
    (
      lambda d: registry.load("shapes_trimodal", d, "train", config="tiny"),
      "Unknown shapes_trimodal config 'tiny'; allowed: default, small",
    ),
    (
      lambda d: benchmarks.benchmark_specs("shapes", "rgb+depth"),
      "Unknown modality 'depth'; allowed: rgb, normal, sketch",
    ),
    (lambda d: benchmarks.avdigits_spec("audio"), "allowed: rgb, wav"),
    (
      lambda d: build.learner_from_config(shapes_config.get_config("modalities=rgb+depth")),
      "Unknown modality 'depth'",
    ),
  ],
)
def test_bad_names_are_clear_errors(data_dir, call, match):
  with pytest.raises(ValueError, match=match):
    call(data_dir)


def test_specs_follow_the_spec_tables():
  rgb, wav = benchmarks.benchmark_specs("avdigits", "rgb+wav")
  assert (rgb.d_in, rgb.d_out, rgb.output_bias, rgb.ratio_range) == (2, 1, 0.5, (0.001, 1.0))
  assert (wav.d_in, wav.d_out, wav.output_bias, wav.ratio_range) == (1, 1, 0.0, (0.25, 1.0))
  assert wav.grid_shape == (speech.LENGTH,) and rgb.grid_shape == (avd.IMAGE_SIZE,) * 2
  for name in ("celeba", "shapes"):
    for s in benchmarks.benchmark_specs(name, "rgb+normal+sketch"):
      assert (s.grid_shape, s.d_out, s.output_bias) == ((32, 32), 3, 0.5)
      assert s.ratio_bins == ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
  era5 = benchmarks.benchmark_specs("era5", "temperature")[0]
  assert (era5.grid_shape, era5.d_out, era5.output_bias) == ((46, 90), 1, 0.5)


@pytest.mark.parametrize("module", [shapes_config, avdigits_config])
def test_configs_use_fourier_features_and_the_papers_settings(module):
  names = benchmarks.BENCHMARKS[module.get_config("").benchmark][0]
  for arg in ("", "smoke", "method=cavia", "ablation=no_msft", "modalities=rgb"):
    config = module.get_config(arg)
    learner = build.learner_from_config(config)
    for group in learner.groups:  # sigma 30 reaches every learner, image and audio alike
      assert learner.model.modules[group.names[0]].ff_sigma == 30.0
  # The cpu preset: smooth features for the images (their grid cannot carry sigma 30), 30 for
  # the waveform, and a faster outer loop (see the preset's comment); avdigits the audio probe's
  # setting (docs/results.md, "Audio probe").
  learner = build.learner_from_config(module.get_config("cpu"))
  sigmas = {n: m.ff_sigma for n, m in learner.model.modules.items()}
  assert sigmas == {n: (30.0 if n == "wav" else 1.0) for n in names}
  cpu = module.get_config("cpu")
  if module is avdigits_config:
    assert (
      cpu.data.builder_config,
      cpu.model.rank,
      cpu.inner_steps,
      cpu.learning_rate,
      cpu.grad_clip,
    ) == ("8khz", 64, 5, 3e-4, 1.0)
  else:
    assert (cpu.learning_rate, cpu.grad_clip) == (1e-3, 0.0)
  for name in names:  # every arm of the study builds from the one preset
    alone = build.learner_from_config(module.get_config(f"cpu,modalities={name}"))
    assert [m.ff_sigma for m in alone.model.modules.values()] == [sigmas[name]]
  bad = module.get_config("cpu")
  bad.model.ff_sigmas = "depth=2"
  with pytest.raises(ValueError, match=r"names modality 'depth'.*configured: "):
    build.learner_from_config(bad)
  full = module.get_config("")
  assert (full.batch_size, full.inner_steps, full.model.rank) == (32, 3, 64)
  assert full.rule.grad_scale == 1000.0 and module.get_config("method=cavia").rule.grad_scale == 0
  study = module.studies()["modality_replacement"]
  assert study["arms"]["rgb_alone"] == {"modalities": "rgb"}
  assert study["arms"][study["reference"]] == {"modalities": "+".join(names)}


# -- end to end and the heterogeneous step --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("config", ["shapes.py:method=mia,smoke", "avdigits.py:method=mia,smoke"])
def test_smoke_preset_end_to_end(tmp_path, data_dir, config):
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    f"--config=experiments/configs/{config}",
    f"--config.data.data_dir={data_dir}",
    f"--workdir={tmp_path}",
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "results.json") as f:
    results = json.load(f)
  names = results["config"]["modalities"].split("+")
  for name in names:
    assert np.isfinite(results["metrics"][f"generalization_mse/{name}/step3"])
    assert f"generalization_mse/{name}/R0.75-1" in results["metrics"] or name == "wav"


@pytest.mark.slow  # builds avdigits and compiles MIA's step (about 20 s)
def test_audio_support_changes_the_image_update_only_through_the_msft(data_dir):
  """Image (2-D) and audio (1-D) learners are two groups; the audio support data reach the
  image's adapted latents through MIA's multimodal SFT, and only through it."""
  from mia_jax import sampling

  src = registry.load("avdigits", data_dir, "test", config="small", in_memory=True)
  batch = {name: {k: v[:2] for k, v in arrays.items()} for name, arrays in src.arrays.items()}
  swapped = {"rgb": batch["rgb"], "wav": dict(batch["wav"], y=src.arrays["wav"]["y"][2:4])}
  same = {}
  for ablation in ("none", "no_msft"):
    config = avdigits_config.get_config(f"ablation={ablation},inner_steps=1,smoke")
    learner = build.learner_from_config(config)
    assert [g.names for g in learner.groups] == [("rgb",), ("wav",)]
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))  # jitted: eager init is slower
    episode = jax.jit(lambda k: sampling.sample_episode(k, learner.specs, 2))(  # noqa: B023
      jax.random.PRNGKey(3)
    )

    @jax.jit
    def rgb_latents(b):
      return adaptation.adapt(
        learner.model, learner.rule, state.params, state.buffers, b, episode, config.inner_steps
      )[0]["rgb"]

    same[ablation] = np.array_equal(rgb_latents(batch), rgb_latents(swapped))
  assert same == {"none": False, "no_msft": True}


def test_avdigits_8khz_config_is_the_same_words_at_twice_the_rate(tmp_path):
  """`8khz_small`: the same images and words as `small`, the audio synthesised at 8 kHz into the
  same 2000 samples (the spec is unchanged); smoother per sample than at 4 kHz."""
  from data_pipelines import tfds_loading

  fast = registry.load("avdigits", str(tmp_path), "test", config="8khz_small", in_memory=True)
  slow = registry.load("avdigits", str(tmp_path), "test", config="small", in_memory=True)
  assert len(fast) == 32 and fast[0]["wav"]["y"].shape == (speech.LENGTH, 1)
  np.testing.assert_array_equal(fast.arrays["rgb"]["y"], slow.arrays["rgb"]["y"])
  ref = avd.generate_signals(
    32, tfds_loading.SPLIT_SEEDS["test"], "test", ("wav",), sample_rate=8000
  )
  np.testing.assert_array_equal(fast.arrays["wav"]["y"], ref["wav"]["y"])
  step = lambda y: np.mean(np.diff(y[..., 0], axis=-1) ** 2) / np.mean(y**2)
  assert step(fast.arrays["wav"]["y"]) < 0.5 * step(slow.arrays["wav"]["y"])
  assert np.abs(fast.arrays["wav"]["y"]).max() == pytest.approx(1.0)
