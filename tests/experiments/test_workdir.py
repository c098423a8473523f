"""A workdir belongs to one config, a resume logs each step once, and divergence never reaches a
checkpoint (docs/reliability.md)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import synthetic
from experiments.run import train
from experiments.run import workdir as workdir_lib
from mia_jax import meta_step


def _config(data_dir, arg="method=cavia,smoke", **fields):
  config = synthetic.get_config(arg)
  config.data.data_dir = data_dir
  config.data.num_test_signals = 8
  for k, v in fields.items():
    config[k] = v
  return config


def _steps(path):
  return [json.loads(l)["step"] for l in open(path) if "loss" in json.loads(l)]


def test_restart_with_another_config_is_refused_before_writing(tmp_path, synthetic_data_dir):
  w = str(tmp_path)
  train.train_and_evaluate(_config(synthetic_data_dir), w)
  before = {n: open(os.path.join(w, n), "rb").read() for n in ("config.json", "metrics.jsonl")}
  for arg, field in (
    ("method=cavia,smoke,seed=1", "seed: 0 != 1"),
    ("method=cavia,smoke,inner_steps=2", "inner_steps: 3 != 2"),
    ("method=mia,smoke", "method: 'cavia' != 'mia'"),
  ):
    with pytest.raises(ValueError, match=field):
      train.train_and_evaluate(_config(synthetic_data_dir, arg), w)
  with pytest.raises(ValueError, match="learning_rate"):
    train.train_and_evaluate(_config(synthetic_data_dir, learning_rate=3e-4), w)
  after = {n: open(os.path.join(w, n), "rb").read() for n in before}
  assert after == before  # nothing rewritten
  # Budget and logging may change: a longer run continues from the checkpoint.
  out = train.train_and_evaluate(
    _config(synthetic_data_dir, num_train_steps=8, log_every_steps=1), w
  )
  assert out["step"] == 8


def test_a_run_stopped_before_its_first_checkpoint_restarts_from_zero(tmp_path, synthetic_data_dir):
  w = str(tmp_path)
  config = _config(synthetic_data_dir)
  os.makedirs(os.path.join(w, "checkpoints"))  # created at the start, before any step is saved
  with open(os.path.join(w, "config.json"), "w") as f:
    f.write(config.to_json())
  with open(os.path.join(w, "metrics.jsonl"), "w") as f:
    f.write('{"step": 1, "loss": 1.0}\n')
  out = train.train_and_evaluate(config, w)
  assert out["step"] == config.num_train_steps
  with open(os.path.join(w, "metrics.jsonl")) as f:
    steps = [json.loads(l)["step"] for l in f if "loss" in l]
  assert steps == sorted(set(steps)) and 1.0 not in [
    json.loads(l).get("loss") for l in open(os.path.join(w, "metrics.jsonl"))
  ]


def test_lost_checkpoints_are_reported_not_retrained(tmp_path, synthetic_data_dir):
  w = str(tmp_path)
  train.train_and_evaluate(_config(synthetic_data_dir), w)
  metrics = open(os.path.join(w, "metrics.jsonl")).read()
  import shutil

  shutil.rmtree(os.path.join(w, "checkpoints"))
  with pytest.raises(ValueError, match="no checkpoint to resume"):
    train.train_and_evaluate(_config(synthetic_data_dir), w)
  assert open(os.path.join(w, "metrics.jsonl")).read() == metrics


def test_trim_metrics_keeps_each_step_once(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  with open(path, "w") as f:
    for s in (2, 4, 6, 8):
      f.write(json.dumps({"step": s, "loss": 1.0}) + "\n")
  workdir_lib.trim_metrics(path, 4)
  assert _steps(path) == [2, 4]


def test_config_differences_ignore_tolerant_and_one_sided_fields():
  old = {"seed": 0, "log_every_steps": 2, "rule": {"inner_lr": 1.0}, "gone": 1}
  new = {"seed": 0, "log_every_steps": 5, "rule": {"inner_lr": 0.5}, "added": 2}
  assert workdir_lib.config_differences(old, new) == ["rule.inner_lr: 1.0 != 0.5"]


@pytest.mark.slow
def test_diverging_run_keeps_last_good_checkpoint_and_resumes(
  tmp_path, synthetic_data_dir, monkeypatch
):
  """From step 4 on the parameters turn NaN: the run stops before saving step 4 (or later), the
  step-2 checkpoint survives, and a rerun resumes from it and logs each step once."""
  w = str(tmp_path)
  config = _config(synthetic_data_dir, checkpoint_every_steps=2, log_every_steps=3)
  real = meta_step.make_train_step

  def poisoned(learner, mesh, donate=True):
    step_fn = real(learner, mesh, donate=False)

    def run(state, batch):
      state, metrics = step_fn(state, batch)
      bad = state.step >= 4
      params = jax.tree.map(lambda x: jnp.where(bad, jnp.nan, x), state.params)
      return state.replace(params=params), metrics

    return run

  monkeypatch.setattr(meta_step, "make_train_step", poisoned)
  with pytest.raises(FloatingPointError, match="last good checkpoint, step 2"):
    train.train_and_evaluate(config, w)
  saved = sorted(int(n) for n in os.listdir(os.path.join(w, "checkpoints")) if n.isdigit())
  assert saved == [2]
  monkeypatch.setattr(meta_step, "make_train_step", real)
  assert os.path.isfile(os.path.join(w, workdir_lib.DIVERGED_FILE))
  # The message's advice, followed: clipping needs a new workdir (refused here, nothing changed)...
  clipped = _config(synthetic_data_dir, checkpoint_every_steps=2, log_every_steps=3, grad_clip=1.0)
  with pytest.raises(ValueError, match="grad_clip: 0.0 != 1.0.*use a new --workdir"):
    train.train_and_evaluate(clipped, w)
  # ... and a lower learning rate resumes from the last good checkpoint, recorded.
  lower = _config(
    synthetic_data_dir,
    checkpoint_every_steps=2,
    log_every_steps=3,
    learning_rate=config.learning_rate / 10,
  )
  out = train.train_and_evaluate(lower, w)
  assert out["step"] == 6 and np.isfinite(out["metrics"]["generalization_mse/avg/step3"])
  assert _steps(os.path.join(w, "metrics.jsonl")) == [3, 6]  # step 3 once, after the resume
  history = [
    json.loads(line) for line in open(os.path.join(w, workdir_lib.HISTORY_FILE)).read().splitlines()
  ]
  assert history == [
    {
      "step": 2,
      "diverged_at": 4,
      "changed": [f"learning_rate: {config.learning_rate} != {lower.learning_rate}"],
    }
  ]
  assert not os.path.exists(os.path.join(w, workdir_lib.DIVERGED_FILE))
  assert json.load(open(os.path.join(w, "config.json")))["learning_rate"] == lower.learning_rate
  # Without a divergence the learning rate is part of the config lock again.
  with pytest.raises(ValueError, match="learning_rate"):
    train.prepare(config, w)


def test_a_failed_start_does_not_block_the_fix(tmp_path, synthetic_data_dir):
  """A start that wrote its config but trained nothing (failed on its first step) takes the
  corrected config on the next start."""
  w = tmp_path / "w"
  w.mkdir()
  first = _config(synthetic_data_dir, batch_size=16)
  (w / "config.json").write_text(first.to_json())
  (w / "metrics.jsonl").write_text("")
  (w / "checkpoints").mkdir()
  fixed = _config(synthetic_data_dir, batch_size=4)
  train.prepare(fixed, str(w))  # not "a run of another config"
  # A run that has a checkpoint is still held to its config.
  os.makedirs(w / "checkpoints" / "3")
  with pytest.raises(ValueError, match="batch_size: 16 != 4"):
    train.prepare(fixed, str(w))


@pytest.mark.parametrize(
  "name, make",
  [
    ("metrics.jsonl", "folder"),
    ("run.lock", "folder"),
    ("checkpoints", "file"),
    ("results.json", "folder"),
  ],
)
def test_an_entry_of_the_wrong_kind_is_named_before_anything_is_written(tmp_path, name, make):
  w = tmp_path / "w"
  w.mkdir()
  (w / name).mkdir() if make == "folder" else (w / name).write_text("x")
  with pytest.raises(ValueError, match=f"{name} is a {make}, where a run keeps a"):
    workdir_lib.WorkdirLock(str(w)).acquire()
  assert sorted(os.listdir(w)) == [name]


def test_following_the_advice_for_a_wrong_entry_and_torn_metrics(tmp_path, synthetic_data_dir):
  w = str(tmp_path / "w")
  train.train_and_evaluate(_config(synthetic_data_dir), w)
  with open(os.path.join(w, "metrics.jsonl"), "ab") as f:
    f.write(bytes(range(128, 256)))  # a torn, non-UTF-8 tail (found by a sweep: a bare
  os.makedirs(os.path.join(w, "run.lock"))  # UnicodeDecodeError); and a folder named run.lock
  with pytest.raises(ValueError, match="move it out of the workdir"):
    train.train_and_evaluate(_config(synthetic_data_dir, num_train_steps=8), w)
  os.rename(os.path.join(w, "run.lock"), str(tmp_path / "moved"))  # the advice, followed
  out = train.train_and_evaluate(_config(synthetic_data_dir, num_train_steps=8), w)
  assert out["step"] == 8 and _steps(os.path.join(w, "metrics.jsonl")) == [2, 4, 6, 8]
