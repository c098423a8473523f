import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines.benchmarks import synthetic_spec
from experiments import syntax
from experiments.run import build
from mia_jax import ModelConfig, MultimodalINR
from mia_jax.inr import ComposerINR
from mia_jax.model import vmapped_apply
from tests.helpers import image_spec, wave_spec


def _numpy_forward(p, fourier_b, coords, latent):
  """Hand-written reference of docs/method.md section 3 (W = U V materialised)."""
  if fourier_b is not None:
    proj = 2 * np.pi * coords @ fourier_b.T
    feats = np.concatenate([np.cos(proj), np.sin(proj)], -1)
  else:
    feats = coords
  relu = lambda x: np.maximum(x, 0)
  h = relu(feats @ p["encoder"]["kernel"] + p["encoder"]["bias"])
  w = p["U"].T @ latent  # W = U V: [hidden, rank] @ [rank, hidden]
  h = relu(h @ w.T)  # h <- ReLU(W h), row form
  i = 0
  while f"hidden_{i}" in p:
    h = relu(h @ p[f"hidden_{i}"]["kernel"] + p[f"hidden_{i}"]["bias"])
    i += 1
  return h @ p["output"]["kernel"] + p["output"]["bias"]


def test_composer_matches_hand_written_forward_with_fourier_features():
  module = ComposerINR(d_out=3, hidden=16, num_layers=5, rank=4, ff_dim=8, ff_sigma=2.0)
  coords = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (7, 2)), jnp.float32)
  variables = module.init(jax.random.PRNGKey(0), coords, jnp.zeros((4, 16)))
  latent = jax.random.normal(jax.random.PRNGKey(1), (4, 16)) * 0.3
  out = module.apply(variables, coords, latent)
  p = jax.tree.map(np.asarray, variables["params"])
  ref = _numpy_forward(
    p, np.asarray(variables["buffers"]["fourier_B"]), np.asarray(coords), np.asarray(latent)
  )
  np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
  assert variables["buffers"]["fourier_B"].shape == (4, 2)
  assert "fourier_B" not in p and "latent_init" not in p  # the learner owns the initial latent
  assert module.latent_shape == (4, 16)
  assert sum(1 for k in p if k.startswith("hidden_")) == 2  # num_layers - 3


def test_lowrank_path_equals_materialised_path():
  coords = jnp.linspace(-1, 1, 11)[:, None]
  kw = dict(d_out=1, hidden=32, num_layers=5, rank=8)
  v = ComposerINR(**kw).init(jax.random.PRNGKey(0), coords, jnp.zeros((8, 32)))
  z = jax.random.normal(jax.random.PRNGKey(2), (8, 32))
  a = ComposerINR(**kw).apply(v, coords, z)
  b = ComposerINR(materialize_lowrank=True, **kw).apply(v, coords, z)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_grouped_predict_equals_per_member_apply_and_adds_bias():
  specs = [synthetic_spec("sine"), image_spec("a"), image_spec("b"), wave_spec()]
  model = MultimodalINR.from_config(specs, ModelConfig(hidden=8, num_layers=4, rank=2, ff_dim=6))
  params, buffers = model.init(jax.random.PRNGKey(0))
  assert [g.names for g in model.groups] == [("sine",), ("a", "b"), ("wav",)]
  assert set(params) == {"sine", "a", "b", "wav"}  # keyed by modality, never by group
  latents = {n: jax.random.normal(jax.random.PRNGKey(i), (3, 2, 8)) for i, n in enumerate(params)}
  pred = model.predict(params, buffers, latents)
  assert pred["a"].shape == (3, 36, 3)
  for n in ("a", "b", "wav"):
    for b in range(3):
      ref = (
        model.modules[n].apply(
          {"params": params[n]["backbone"], **buffers[n]}, model.coords[n], latents[n][b]
        )
        + specs[[s.name for s in specs].index(n)].output_bias
      )
      np.testing.assert_allclose(pred[n][b], ref, rtol=1e-5, atol=1e-6)
  # Members get different initial parameters (independent keys).
  assert not np.allclose(params["a"]["backbone"]["U"], params["b"]["backbone"]["U"])
  assert model.modules["a"].ff_sigma == 3.0 and buffers["sine"] == {}


def test_initialisation_of_a_modality_does_not_depend_on_the_others():
  one = MultimodalINR.from_config([synthetic_spec("relu")], ModelConfig(hidden=8, rank=2))
  two = MultimodalINR.from_config(
    [synthetic_spec("sine"), synthetic_spec("relu")], ModelConfig(hidden=8, rank=2)
  )
  a, b = one.init(jax.random.PRNGKey(0))[0], two.init(jax.random.PRNGKey(0))[0]
  for x, y in zip(jax.tree.leaves(a["relu"]), jax.tree.leaves(b["relu"])):
    np.testing.assert_array_equal(x, y)


def test_initial_latents_broadcast_the_meta_learned_init():
  model = MultimodalINR.from_config(
    [synthetic_spec("sine"), synthetic_spec("relu")], ModelConfig(hidden=8, num_layers=4, rank=2)
  )
  params, _ = model.init(jax.random.PRNGKey(0))
  z = model.initial_latents(params, 5)
  assert z["relu"].shape == (5, 2, 8)
  np.testing.assert_array_equal(z["relu"][3], params["relu"]["latent_init"])
  # init N(0, 0.2^2)
  big = MultimodalINR.from_config([synthetic_spec("sine")], ModelConfig(hidden=128, rank=64))
  std = float(np.std(big.init(jax.random.PRNGKey(0))[0]["sine"]["latent_init"]))
  assert 0.18 < std < 0.22


def test_latent_map_ln_linear_option():
  coords = jnp.linspace(-1, 1, 9)[:, None]
  module = ComposerINR(d_out=1, hidden=16, num_layers=4, rank=4, latent_map="ln_linear")
  v = module.init(jax.random.PRNGKey(0), coords, jnp.zeros((4, 16)))
  assert "latent_map" in v["params"] and "latent_norm" in v["params"]
  z = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
  # LayerNorm makes the map invariant to the latent's scale (per row): a real behaviour change.
  np.testing.assert_allclose(
    module.apply(v, coords, z), module.apply(v, coords, 3.0 * z), rtol=1e-4, atol=1e-5
  )


@pytest.mark.slow
@pytest.mark.parametrize(
  "kw",
  [
    dict(ff_sigma=0.0),
    dict(ff_sigma=2.0, ff_dim=8),
    dict(latent_map="ln_linear"),
    dict(materialize_lowrank=True),
  ],
)
def test_batched_apply_equals_vmapped_module(kw):
  module = ComposerINR(d_out=2, hidden=16, num_layers=5, rank=4, **kw)
  d_in = 2
  coords = jax.random.uniform(jax.random.PRNGKey(0), (7, d_in), minval=-1, maxval=1)
  keys = jax.random.split(jax.random.PRNGKey(1), 3)
  variables = jax.vmap(lambda k: module.init(k, coords, jnp.zeros((4, 16))))(keys)
  params, buffers = variables["params"], variables.get("buffers", {})
  latents = 0.3 * jax.random.normal(jax.random.PRNGKey(2), (3, 5, 4, 16))
  one = lambda p, b, z, x: module.apply({"params": p, "buffers": b}, x, z)
  ref_shared = jax.vmap(jax.vmap(one, (None, None, 0, None)), (0, 0, 0, None))(
    params, buffers, latents, coords
  )
  variables = {"params": params, **({"buffers": buffers} if buffers else {})}
  np.testing.assert_allclose(
    module.batched_apply(variables, latents, coords), ref_shared, rtol=1e-5, atol=1e-5
  )
  # ... and the library's plain path (vmap over modalities and signals) gives the same.
  np.testing.assert_allclose(
    vmapped_apply(module, variables, latents, coords), ref_shared, rtol=1e-5, atol=1e-5
  )
  per_signal = jax.random.uniform(jax.random.PRNGKey(3), (3, 5, 6, d_in), minval=-1, maxval=1)
  ref = jax.vmap(jax.vmap(one, (None, None, 0, 0)), (0, 0, 0, 0))(
    params, buffers, latents, per_signal
  )
  np.testing.assert_allclose(
    module.batched_apply(variables, latents, per_signal), ref, rtol=1e-5, atol=1e-5
  )
  np.testing.assert_allclose(
    vmapped_apply(module, variables, latents, per_signal), ref, rtol=1e-5, atol=1e-5
  )


def test_per_modality_fourier_sigma_overrides():
  """`ff_sigmas` sets one modality's Fourier sigma (splitting its group off); bad values are clear
  errors naming the value, and the experiments' strings are parsed outside the library."""
  specs = [image_spec("rgb"), image_spec("sketch")]
  same = MultimodalINR.from_config(specs, ModelConfig(hidden=16, rank=4, ff_dim=8, ff_sigma=30.0))
  assert [g.names for g in same.groups] == [("rgb", "sketch")]
  model = MultimodalINR.from_config(
    specs, ModelConfig(hidden=16, rank=4, ff_dim=8, ff_sigma=30.0, ff_sigmas={"sketch": 1.5})
  )
  sigmas = {g.names: model.modules[g.names[0]].ff_sigma for g in model.groups}
  assert sigmas == {("rgb",): 3.0, ("sketch",): 1.5}  # rgb keeps its spec's 3; sketch overridden
  with pytest.raises(
    ValueError,
    match=r"ff_sigmas names modality 'wav', which is not among the "
    r"specs; the specs have: rgb, sketch",
  ):
    MultimodalINR.from_config(specs, ModelConfig(ff_sigmas={"wav": 30.0}))
  for bad in (-1.0, float("nan"), "1"):
    with pytest.raises(ValueError, match=rf"ModelConfig.ff_sigmas\['rgb'\]={bad!r} is not"):
      ModelConfig(ff_sigmas={"rgb": bad})
  with pytest.raises(TypeError, match=r"ff_sigmas must be a mapping .* 'rgb=1'.*parse_sigmas"):
    ModelConfig(ff_sigmas="rgb=1")  # type: ignore[arg-type]
  for bad in ("rgb", "rgb=x", "rgb=-1", "rgb=nan"):
    with pytest.raises(ValueError, match=rf"entry {bad!r} is not name=sigma"):
      syntax.parse_sigmas(bad, ["rgb"])


@pytest.mark.parametrize(
  "field,value,allowed",
  [
    ("hidden", 0, "an integer >= 1"),
    ("num_layers", 2, "an integer >= 3"),
    ("ff_dim", 7, "an even integer >= 2"),
    ("rank", 1.5, "an integer >= 1"),
    ("w0", 0.0, "a finite number > 0"),
    ("latent_init_std", -0.1, "a finite number >= 0"),
    ("ff_sigma", float("inf"), "a finite number >= 0"),
    ("token_width", -1, "an integer >= 0"),
  ],
)
def test_model_config_checks_its_fields_when_built(field, value, allowed):
  with pytest.raises(
    ValueError,
    match=rf"ModelConfig.{field}={value!r} is not allowed; "
    rf"expected {allowed}",
  ):
    ModelConfig(**{field: value})


def test_sigma_overrides_kept_to_the_configured_modalities():
  """The experiments' `model.ff_sigmas` string: entries for the benchmark's other modalities are
  dropped, the rest kept exactly (no rounding), and a modality the benchmark does not have is
  still rejected."""
  fields = {"ff_sigmas": "rgb=1.23456789, wav=30"}
  assert build.model_config_from(fields, ["wav"], ["rgb", "wav"]).ff_sigmas == {"wav": 30.0}
  assert build.model_config_from(fields, ["rgb"], ["rgb", "wav"]).ff_sigmas == {"rgb": 1.23456789}
  assert build.model_config_from(fields).ff_sigmas == {"rgb": 1.23456789, "wav": 30.0}
  with pytest.raises(ValueError, match=r"names modality 'depth'.*configured: rgb, wav"):
    build.model_config_from({"ff_sigmas": "depth=2"}, ["rgb"], ["rgb", "wav"])
  with pytest.raises(ValueError, match=r"Unknown model config fields \['hiden'\]"):
    build.model_config_from({"hiden": 3})
