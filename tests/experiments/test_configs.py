import jax
import pytest

from experiments import methods
from experiments.configs import synthetic
from experiments.run import build
from tests import paths


@pytest.mark.parametrize(
  "arg",
  [
    "",
    "smoke",
    "cpu",
    "full",
    "method=cavia",
    "method=metasgd,smoke",
    "modalities=sine+relu,inner_steps=5,seed=3",
    "first_order=true,remat=1",
    "batch_size=32,num_train_steps=10",
    "method=mia,ablation=no_msft",
    "ablation=grad_only,cpu",
    "method=alfa",
    "method=gap",
    "backbone=functa",
    "backbone=functa,method=cavia,smoke",
  ],
)
def test_every_argument_loads_and_builds(arg):
  config = synthetic.get_config(arg)
  learner = build.learner_from_config(config)
  pieces = list(learner.rule.init(jax.random.PRNGKey(0), learner.model.token_shapes))
  expected = {
    "mia": ["scale", "lr", "sft"],
    "cavia": ["lr"],
    "metasgd": ["learned_lr"],
    "alfa": ["alfa"],
    "gap": ["lr", "gap"],
  }[config.method]
  if config.rule.lr_position == "post":  # the rate after the method's core (functa preset)
    expected = [p for p in expected if p != "lr"] + (["lr"] if "lr" in expected else [])
  assert pieces == expected
  assert [s.name for s in learner.specs] == config.modalities.split("+")
  assert (
    type(learner.model.modules["sine"]).__name__
    == {"composer": "ComposerINR", "functa": "FunctaINR"}[config.model.backbone]
  )


@pytest.mark.parametrize("method", methods.METHODS)
def test_every_method_builds(method):
  assert build.learner_from_config(synthetic.get_config(f"method={method},smoke"))


def test_no_sft_ablation_is_cavia_with_mias_backbone():
  learner = build.learner_from_config(synthetic.get_config("ablation=no_sft"))
  assert list(learner.rule.init(jax.random.PRNGKey(0), learner.model.token_shapes)) == ["lr"]


def test_config_defaults_are_the_librarys():
  """The model and rule sections are the library's dataclasses (defaults written once)."""
  import dataclasses

  from mia_jax import ModelConfig

  config = synthetic.get_config("")
  assert set(config.model) == {f.name for f in dataclasses.fields(ModelConfig)}
  assert set(config.rule) == {f.name for f in dataclasses.fields(methods.RuleConfig)}
  assert config.rule.sft_width == 192 and config.rule.head_dim == 64


def test_presets_set_sizes():
  assert synthetic.get_config("cpu").num_train_steps == 2000
  assert synthetic.get_config("cpu").batch_size == 64
  assert synthetic.get_config("smoke").num_train_steps < 20


@pytest.mark.parametrize(
  "arg, match",
  [
    ("method=maml", "Unknown method 'maml'"),
    ("ablation=no_attention", "Unknown ablation 'no_attention'"),
    ("method=cavia,ablation=no_msft", "applies to method='mia' only"),
    ("modalities=sine+cosine", "Unknown modality 'cosine'"),
    ("tiny", "Unknown config flag 'tiny'"),
    ("steps=3", "Unknown config argument 'steps'"),
    ("inner_steps=three", "not a valid int"),
    ("backbone=siren", "Unknown backbone 'siren'; allowed: composer, functa"),
  ],
)
def test_bad_arguments_name_the_bad_value(arg, match):
  with pytest.raises(ValueError, match=match):
    build.learner_from_config(synthetic.get_config(arg))


def test_a_preset_may_set_inner_steps_and_the_argument_wins():
  from experiments.configs import common

  spec = common.standard_args("a+b")
  make = lambda arg: common.benchmark_config(
    arg, spec, benchmark="synthetic", presets={"cpu": {"inner_steps": 5}}
  )
  assert make("cpu").inner_steps == 5
  assert make("inner_steps=2,cpu").inner_steps == 2
  assert make("smoke").inner_steps == 3  # base_config's


def test_the_avdigits_study_before_the_audio_probe_is_still_reproducible():
  # The avdigits `cpu` preset changed with the audio probe; its archived modality-replacement
  # study is the preset's config with CPU_BEFORE_PROBE over it, and docs/results.md gives those
  # overrides in the study's command.
  import json
  import pathlib

  from experiments.configs import avdigits, common
  from experiments.run import workdir

  root = pathlib.Path(paths.ROOT)
  archived = json.loads(
    (root / "docs/results/avdigits_modality_replacement/multimodal/seed0/config.json").read_text()
  )
  config = avdigits.get_config("cpu,variant=spec")
  assert workdir.config_differences(archived, json.loads(config.to_json()))  # the preset moved
  common.set_fields(config, avdigits.CPU_BEFORE_PROBE)
  assert workdir.config_differences(archived, json.loads(config.to_json())) == []
  docs = (root / "docs/results.md").read_text()
  for key, value in avdigits.CPU_BEFORE_PROBE.items():
    if key == "inner_steps":  # a config argument, not a field flag
      flag = f"inner_steps={value},"
    else:
      flag = (
        f"--config.{key}={value:g} " if isinstance(value, float) else f"--config.{key}={value} "
      )
    assert flag in docs, flag
