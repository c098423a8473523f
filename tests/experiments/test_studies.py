"""Study definitions and arm configs: config arguments against fields, typed overrides, pairing."""

import os
import types

import ml_collections
import numpy as np
import pytest

from experiments.configs import common
from experiments.studies import definitions as studies


def test_check_paired_detects_different_supports(tmp_path):
  w = str(tmp_path)
  study = studies.Study("toy", {"all": {}, "sine_alone": {}}, reference="all")
  idx = np.arange(20, dtype=np.int32).reshape(2, 10)
  for arm, shift in (("all", 0), ("sine_alone", 0)):
    d = os.path.join(w, arm, "seed0")
    os.makedirs(d)
    np.savez(
      os.path.join(d, "episodes.npz"),
      **{
        "sine/idx": idx + shift,
        "sine/count": np.array([2, 3]),
        "sine/ratio": np.array([0.01, 0.02]),
      },
    )
  assert studies.check_paired(w, study, [0]) == 1
  np.savez(
    os.path.join(w, "sine_alone", "seed0", "episodes.npz"),
    **{"sine/idx": idx + 1, "sine/count": np.array([2, 3]), "sine/ratio": np.array([0.01, 0.02])},
  )
  with pytest.raises(ValueError, match="Unpaired comparison.*'sine/idx'"):
    studies.check_paired(w, study, [0])


TOY_ARGS = {"method": "mia", "steps": 3, "preset": "full"}


def _toy_config(arg):
  """A config file's `get_config` in miniature: `method` rebuilds `grad_scale` (a dependent
  default), `steps` is typed; `lr`, `flag` and `model.width` are fields."""
  args = common.parse_arg(arg, TOY_ARGS)
  return ml_collections.ConfigDict(
    dict(
      method=args["method"],
      steps=args["steps"],
      preset=args["preset"],
      grad_scale=1000.0 if args["method"] == "mia" else 0.0,
      lr=1e-3,
      flag=False,
      seed=0,
      num_train_steps=10,
      model=dict(width=8),
    )
  )


def test_config_builder_tells_arguments_from_fields_by_the_args_spec():
  module = types.SimpleNamespace(get_config=_toy_config, ARGS=TOY_ARGS)
  for builder in (
    studies.ConfigBuilder(_toy_config, "smoke", args=TOY_ARGS),
    studies.ConfigBuilder(_toy_config, "smoke", module=module),
  ):
    assert builder.args == ("method", "steps", "preset")
    config = builder.build(
      {"method": "cavia", "steps": "5", "lr": "3e-4", "flag": "true", "model.width": "16"},
      seed=2,
      steps=7,
    )
    # Arguments rebuild the config (the dependent default follows); fields are typed and set.
    assert (config.method, config.grad_scale, config.steps, config.preset) == (
      "cavia",
      0.0,
      5,
      "smoke",
    )
    assert (config.lr, config.flag, config.model.width) == (3e-4, True, 16)
    assert (config.seed, config.num_train_steps) == (2, 7)
    assert builder.build({"preset": "cpu"}).preset == "cpu"
    with pytest.raises(
      ValueError,
      match="Unknown override 'width': no config field 'width'.*"
      "Config arguments: method, preset, steps",
    ):
      builder.build({"width": 3})
  # Explicit args win over the module's; without either, every override is a field (set as is,
  # so the argument's dependent default does not follow).
  only_steps = studies.ConfigBuilder(_toy_config, module=module, args=("steps",))
  assert only_steps.build({"method": "cavia"}).grad_scale == 1000.0
  bare = studies.ConfigBuilder(_toy_config, module=types.SimpleNamespace())
  assert bare.args == ()
  config = bare.build({"method": "cavia", "steps": "4"})
  assert (config.method, config.grad_scale, config.steps) == ("cavia", 1000.0, 4)


def test_typed_overrides_name_the_key_and_value():
  builder = studies.ConfigBuilder(_toy_config, args=TOY_ARGS)
  for overrides, match in (
    ({"lr": "fast"}, r"lr='fast' is not a valid float"),
    ({"flag": "yes"}, r"flag='yes' is not a valid bool"),
    ({"model.width": "1.5"}, r"model.width='1.5' is not a valid int"),
    ({"steps": "many"}, r"steps='many' is not a valid int"),
  ):
    with pytest.raises(ValueError, match=match):
      builder.build(overrides)
