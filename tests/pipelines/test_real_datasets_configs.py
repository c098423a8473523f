"""The real-data benchmarks' configs: they load, build a learner, define their studies, and
CelebA's trains end to end on a tiny dataset."""

import json
import os

import numpy as np
import pytest

from data_pipelines import benchmarks
from experiments.configs import avmnist as avmnist_config
from experiments.configs import celeba as celeba_config
from experiments.configs import era5 as era5_config
from experiments.run import build
from tests.real_data_files import manual_folder, write_celeba

_CONFIGS = {"celeba": celeba_config, "avmnist": avmnist_config, "era5": era5_config}


@pytest.mark.parametrize("benchmark", sorted(_CONFIGS))
@pytest.mark.parametrize(
  "arg",
  [
    "",
    "method=mia",
    "smoke",
    "cpu",
    "method=cavia,inner_steps=5,seed=2",
    "ablation=no_msft,first_order=true",
    "method=metasgd,batch_size=8,num_train_steps=10",
    "data_dir=/tmp/x,remat=1",
  ],
)
def test_configs_load_and_build(benchmark, arg):
  module = _CONFIGS[benchmark]
  names = list(benchmarks.BENCHMARKS[benchmark][0])
  config = module.get_config(arg)
  learner = build.learner_from_config(config)
  assert [s.name for s in learner.specs] == names
  assert config.benchmark == benchmark
  if config.preset == "full":  # the paper's image settings
    assert config.batch_size == (8 if "batch_size=8" in arg else 32)
    assert config.model.rank == 64
    assert (config.model.ff_sigma, config.model.ff_dim) == (30.0, 128)
  if arg == "cpu":  # as the offline sets' cpu presets: image sigma 1 (wav keeps 30), lr 1e-3
    sigmas = {n: m.ff_sigma for n, m in learner.model.modules.items()}
    assert sigmas == {n: (30.0 if n == "wav" else 1.0) for n in names}
    assert config.learning_rate == 1e-3
  if "data_dir=" in arg:
    assert config.data.data_dir == "/tmp/x"
  first = names[0]
  alone = build.learner_from_config(module.get_config(f"modalities={first}"))
  assert [s.name for s in alone.specs] == [first]


@pytest.mark.parametrize("benchmark", sorted(_CONFIGS))
def test_configs_define_modality_replacement(benchmark):
  from experiments.studies import definitions as studies_lib

  builder = studies_lib.ConfigBuilder.from_spec(f"experiments/configs/{benchmark}.py:smoke")
  study = builder.study("modality_replacement")
  names = list(benchmarks.BENCHMARKS[benchmark][0])
  assert study.reference == "multimodal"
  assert list(study.arms) == ["multimodal", *(f"{m}_alone" for m in names)]
  for arm in study.arms:  # every arm's config builds a learner on its modalities
    config = builder.build(study.arms[arm], seed=0)
    learner = build.learner_from_config(config)
    assert [s.name for s in learner.specs] == (names if arm == "multimodal" else [arm[:-6]])


@pytest.mark.slow
def test_celeba_smoke_trains_end_to_end(tmp_path):
  """The celeba config trains and evaluates on a tiny CelebA (cheapest method: CAVIA, one step)."""
  from experiments.run import train

  data_dir = str(tmp_path / "tfds")
  write_celeba(manual_folder(data_dir, "celeba_trimodal"))
  config = celeba_config.get_config(
    f"method=cavia,inner_steps=1,smoke,batch_size=2,num_train_steps=2,data_dir={data_dir}"
  )
  config.eval.batch_size = 2
  workdir = str(tmp_path / "work")
  train.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert results["step"] == 2
  assert np.isfinite(results["metrics"]["generalization_mse/rgb/step1"])
