import pytest

from experiments.configs import synthetic
from mia_jax import meta_step
from mia_jax.rules import RULES


@pytest.mark.parametrize("arg", [
    "", "smoke", "cpu", "full", "method=cavia", "method=metasgd,smoke",
    "modalities=sine+relu,inner_steps=5,seed=3", "first_order=true,remat=1",
    "batch_size=32,num_train_steps=10", "method=mia,ablation=no_msft", "ablation=grad_only,cpu",
    "method=alfa", "method=gap",
])
def test_every_argument_loads_and_builds(arg):
  config = synthetic.get_config(arg)
  learner = meta_step.learner_from_config(config)
  assert learner.rule.name == config.method
  if config.method == "mia":
    assert learner.rule.ablation == config.rule.ablation and learner.rule.grad_scale == 10.0
  assert [s.name for s in learner.specs] == config.modalities.split("+")


@pytest.mark.parametrize("method", sorted(RULES))
def test_every_method_builds(method):
  assert meta_step.learner_from_config(synthetic.get_config(f"method={method},smoke"))


def test_no_sft_ablation_is_cavia_with_mias_backbone():
  learner = meta_step.learner_from_config(synthetic.get_config("ablation=no_sft"))
  assert learner.rule.name == "cavia" and learner.rule.grad_scale is None


def test_presets_set_sizes():
  assert synthetic.get_config("cpu").num_train_steps == 2000
  assert synthetic.get_config("cpu").batch_size == 64
  assert synthetic.get_config("smoke").num_train_steps < 20


@pytest.mark.parametrize("arg, match", [
    ("method=maml", "Unknown method 'maml'"),
    ("ablation=no_attention", "Unknown ablation 'no_attention'"),
    ("method=cavia,ablation=no_msft", "applies to method='mia' only"),
    ("modalities=sine+cosine", "Unknown modality 'cosine'"),
    ("tiny", "Unknown config flag 'tiny'"),
    ("steps=3", "Unknown config argument 'steps'"),
    ("inner_steps=three", "not a valid int"),
])
def test_bad_arguments_name_the_bad_value(arg, match):
  with pytest.raises(ValueError, match=match):
    meta_step.learner_from_config(synthetic.get_config(arg))
