"""The ablation runner: both studies end to end (smoke), restart, planning, clear errors."""

import contextlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from experiments import syntax
from experiments.run import train
from experiments.studies import definitions as studies
from experiments.studies import report, runner
from tests.paths import ROOT
from tests.study_helpers import (
  CONFIG,
  NAMES,
  fake_train,
  is_png,
  make_builder,
  read_csv,
  run_calls,
)

pytestmark = pytest.mark.slow  # trains, or runs the command line


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
  """A persistent compilation cache for this module's runs and subprocesses (and the notebook
  test, which looks in the same place): seeds and repeated arms skip compilation."""
  import jax
  from jax.experimental.compilation_cache import compilation_cache

  previous = jax.config.jax_compilation_cache_dir
  if previous:
    yield previous
    return
  path = str(tmp_path_factory.getbasetemp() / "jax_cache")
  compilation_cache.set_cache_dir(path)
  yield path
  jax.config.update("jax_compilation_cache_dir", None)
  compilation_cache.reset_cache()


def test_sft_removal_cli_end_to_end(tmp_path, synthetic_data_dir, jax_cache):
  w = tmp_path / "study"
  cmd = [
    sys.executable,
    "-m",
    "experiments.ablate",
    f"--config={CONFIG}",
    f"--config.data.data_dir={synthetic_data_dir}",
    "--study=sft_removal",
    "--arms=no_sft",
    "--seeds=2",
    "--steps=4",
    f"--workdir={w}",
  ]
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=jax_cache)
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out, log = proc.stdout, proc.stderr  # the progress lines are absl INFO records
  assert "2 arms x 2 seeds = 4 runs" in log
  for line in ("[1/4] mia seed 0: training", "[4/4] no_sft seed 1: done"):
    assert re.search(r"^I\d{4} .*(runs|runner).py:\d+\] .*" + re.escape(line), log, re.M), line
    assert line not in out
  assert "# Study: sft_removal" in out  # the table is printed at the end
  for name in ("results.csv", "results.md", "trajectory.png", "reconstructions.png", "study.json"):
    assert (w / name).exists(), name
  assert is_png(w / "trajectory.png") and is_png(w / "reconstructions.png")

  columns, rows = read_csv(w / "results.csv")
  assert tuple(columns) == report.CSV_COLUMNS
  assert {r["arm"] for r in rows} == {"mia", "no_sft"}
  assert {r["seed"] for r in rows} == {"0", "1"}
  for arm in ("mia", "no_sft"):
    for seed in (0, 1):
      res = json.loads((w / arm / f"seed{seed}" / "results.json").read_text())
      assert res["step"] == 4
      mine = {
        r["key"]: float(r["value"]) for r in rows if r["arm"] == arm and r["seed"] == str(seed)
      }
      assert mine == pytest.approx(res["metrics"])  # one row per metric key of the contract

  md = (w / "results.md").read_text()
  assert "**mia** (ref)" in md and "| no_sft |" in md
  for name in NAMES + ("avg",):
    assert f"### {name}" in md
  assert "generalization MSE" in md and "memorization MSE" in md and " ± " in md
  assert "%" in md and "--steps=4" in md
  assert "## Per support-ratio bin" in md and "| 0.01-0.02 |" in md
  assert "paired:" in md


def test_modality_replacement_paired_and_restart(tmp_path, synthetic_data_dir, jax_cache):
  # CAVIA as the base method: the study is method-agnostic, and CAVIA compiles in seconds.
  builder = make_builder(synthetic_data_dir, CONFIG + ",method=cavia")
  study = builder.study("modality_replacement").select(["sine_alone"])
  assert list(study.arms) == ["all", "sine_alone"] and study.reference == "all"
  w = str(tmp_path / "study")

  class Killed(Exception):
    pass

  def killed_after_first_arm(config, rundir):
    if "sine_alone" in rundir:
      raise Killed
    return train.train_and_evaluate(config, rundir)

  with pytest.raises(Killed):
    runner.run(
      study, builder, w, seeds=2, steps=4, train_fn=killed_after_first_arm, log=lambda s: None
    )
  finished = [os.path.join(w, "all", f"seed{s}", "results.json") for s in (0, 1)]
  mtimes = [os.stat(p).st_mtime_ns for p in finished]

  calls, logs = [], []

  def counting(config, rundir):
    calls.append(os.path.relpath(rundir, w))
    return train.train_and_evaluate(config, rundir)

  out = runner.run(study, builder, w, seeds=2, steps=4, train_fn=counting, log=logs.append)
  assert calls == [os.path.join("sine_alone", "seed0"), os.path.join("sine_alone", "seed1")]
  assert [os.stat(p).st_mtime_ns for p in finished] == mtimes
  assert sum("finished earlier" in line for line in logs) == 2

  # Paired: the sine supports of the sine-alone arm are those of the four-modality arm.
  for seed in (0, 1):
    with (
      np.load(os.path.join(w, "all", f"seed{seed}", "episodes.npz")) as a,
      np.load(os.path.join(w, "sine_alone", f"seed{seed}", "episodes.npz")) as b,
    ):
      assert sorted(b.files) == ["sine/count", "sine/idx", "sine/ratio"]
      for key in b.files:
        np.testing.assert_array_equal(a[key], b[key])

  md = out.markdown
  assert md == open(out.files["md"]).read()
  sine = md.split("### sine")[1].split("###")[0]
  assert "**all** (ref)" in sine and "| sine_alone |" in sine
  tanh = md.split("### tanh")[1].split("###")[0]
  assert "sine_alone" not in tanh
  assert "### avg" not in md  # averages over different modality sets are not comparable
  _, rows = read_csv(out.files["csv"])
  assert {r["modality"] for r in rows if r["arm"] == "sine_alone"} == {"sine", "avg"}
  assert {r["arm"] for r in rows} == {"all", "sine_alone"}
  assert is_png(out.files["trajectory"]) and is_png(out.files["reconstructions"])


def test_grid_parallel_and_restart_reuse(tmp_path, synthetic_data_dir):
  builder = make_builder(synthetic_data_dir)
  study = studies.grid_study("method=cavia|mia;inner_steps=1|3")
  assert list(study.arms) == [
    "method=cavia,inner_steps=1",
    "method=cavia,inner_steps=3",
    "method=mia,inner_steps=1",
    "method=mia,inner_steps=3",
  ]
  w = str(tmp_path / "grid")
  logs = []
  out = runner.run(
    study,
    builder,
    w,
    seeds=[0, 1],
    train_fn=fake_train,
    parallel=2,
    num_reconstructions=0,
    log=logs.append,
  )
  calls = run_calls(w)
  assert len(calls) == 8 and set(calls.values()) == {1}
  assert os.path.join("method-mia_inner_steps-3", "seed1") in calls
  assert "Δ" in out.markdown and "method=mia,inner_steps=3" in out.markdown
  config = json.loads(
    open(os.path.join(w, "method-mia_inner_steps-3", "seed1", "results.json")).read()
  )["config"]
  assert (config["method"], config["inner_steps"], config["seed"]) == ("mia", 3, 1)
  # Restart: nothing is retrained; a longer budget reruns (resumes) every run.
  runner.run(
    study, builder, w, seeds=[0, 1], train_fn=fake_train, num_reconstructions=0, log=logs.append
  )
  assert set(run_calls(w).values()) == {1}
  runner.run(
    study,
    builder,
    w,
    seeds=[0, 1],
    steps=12,
    train_fn=fake_train,
    num_reconstructions=0,
    log=logs.append,
  )
  assert set(run_calls(w).values()) == {2}
  assert any("[8/8]" in line for line in logs)


def test_restart_with_another_config_is_a_clear_error(tmp_path, synthetic_data_dir):
  builder = make_builder(synthetic_data_dir)
  w = str(tmp_path)
  study = builder.study("sft_removal").select(["no_sft"])
  runner.run(
    study, builder, w, seeds=1, train_fn=fake_train, num_reconstructions=0, log=lambda s: None
  )
  other = studies.Study(
    "sft_removal", {"mia": {"ablation": "none"}, "no_sft": {"ablation": "no_usft"}}, reference="mia"
  )
  with pytest.raises(
    ValueError,
    match=r"no_sft/seed0 holds a run of another config "
    r"\(rule.ablation: 'no_sft' != 'no_usft'\)",
  ):
    runner.run(
      other, builder, w, seeds=1, train_fn=fake_train, num_reconstructions=0, log=lambda s: None
    )


def test_arms_must_share_the_meta_test_set(tmp_path, synthetic_data_dir):
  builder = make_builder(synthetic_data_dir)
  study = studies.Study("bad", {"a": {}, "b": {"eval.episode_seed": 7}}, reference="a")
  with pytest.raises(ValueError, match="Arm 'b' changes the meta-test data or episodes"):
    runner.run(study, builder, str(tmp_path), seeds=1, train_fn=fake_train, log=lambda s: None)


def test_unknown_study_arm_metric_and_override_errors(synthetic_data_dir):
  builder = make_builder(synthetic_data_dir)
  with pytest.raises(
    ValueError,
    match="Unknown study 'sft'; known studies: sft_removal, modality_replacement, methods",
  ):
    builder.study("sft")
  with pytest.raises(
    ValueError,
    match="Unknown arm 'no_sfts' in study 'sft_removal'; its arms: "
    "mia, no_sft, no_usft, no_msft, no_fuser, grad_only, "
    "latent_only",
  ):
    builder.study("sft_removal").select(["no_sfts"])
  with pytest.raises(
    ValueError,
    match="Unknown metric 'mse'; known measures: "
    "generalization_mse, memorization_mse, full_mse, "
    "generalization_psnr, memorization_psnr",
  ):
    builder.study("sft_removal").with_measures(["mse"])
  with pytest.raises(ValueError, match="Unknown override 'rule.width'"):
    builder.build({"rule.width": 3})
  with pytest.raises(ValueError, match="Bad grid axis 'method'"):
    studies.grid_study("method")
  with pytest.raises(ValueError, match="Unknown reference arm 'x'"):
    studies.grid_study("method=cavia|mia", reference="x")
  # Config arguments rebuild the config (so dependent defaults follow); fields are set after.
  config = builder.build(
    {"method": "cavia", "learning_rate": "3e-4", "rule.sft_width": 12}, seed=4, steps=9
  )
  assert (config.method, config.rule.grad_scale, config.learning_rate) == ("cavia", 0.0, 3e-4)
  assert (config.rule.sft_width, config.seed, config.num_train_steps) == (12, 4, 9)
  assert config.data.data_dir == synthetic_data_dir and config.preset == "smoke"


def test_cli_unknown_study_and_arm_are_clear_errors(tmp_path):
  base = [sys.executable, "-m", "experiments.ablate", f"--config={CONFIG}", f"--workdir={tmp_path}"]
  proc = subprocess.run(
    base + ["--study=nope"], cwd=ROOT, capture_output=True, text=True, timeout=300
  )
  assert proc.returncode != 0
  assert (
    "Unknown study 'nope'; known studies: sft_removal, modality_replacement, methods" in proc.stderr
  )
  proc = subprocess.run(
    base + ["--study=modality_replacement", "--arms=sine"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode != 0
  assert (
    "Unknown arm 'sine' in study 'modality_replacement'; its arms: all, sine_alone, "
    "tanh_alone, gaussian_alone, relu_alone" in proc.stderr
  )


def test_other_seeds_runs_fewer_seeds_for_non_headline_arms(tmp_path, synthetic_data_dir):
  builder = studies.ConfigBuilder.from_spec(CONFIG, {"data.data_dir": synthetic_data_dir})
  study = builder.study("sft_removal")
  assert study.headline == ("mia", "no_sft")
  runs = runner.plan(study, builder, str(tmp_path), [0, 1, 2], steps=2, other_seeds=1)
  by_arm = {}
  for r in runs:
    by_arm.setdefault(r.arm, []).append(r.seed)
  assert by_arm["mia"] == [0, 1, 2] and by_arm["no_sft"] == [0, 1, 2]
  assert all(by_arm[a] == [0] for a in study.arms if a not in ("mia", "no_sft"))
  assert len(runner.plan(study, builder, str(tmp_path), [0, 1], steps=2)) == 2 * len(study.arms)
  with pytest.raises(ValueError, match="headline arms \\['nope'\\]"):
    studies.Study(name="x", arms={"a": {}}, reference="a", headline=("nope",))


def test_shards_train_every_run_once_and_report_only_equals_the_report(
  tmp_path, synthetic_data_dir
):
  """Three machines (workdirs), one shard each, one shared archive; then the report alone."""
  builder = make_builder(synthetic_data_dir)
  study = studies.grid_study("method=cavia|mia;inner_steps=1|3")
  archive = str(tmp_path / "archive")
  trained = []

  def counting(config, rundir):
    trained.append((config.method, config.inner_steps, config.seed))
    fake_train(config, rundir)

  for i in range(3):
    logs = []
    with (
      pytest.raises(runner.StudyUnfinished, match=rf"Shard {i}/3 is done")
      if i < 2
      else contextlib.nullcontext()
    ):
      runner.run(
        study,
        builder,
        str(tmp_path / f"machine{i}"),
        seeds=[0, 1],
        train_fn=counting,
        num_reconstructions=0,
        archive=archive,
        shard=(i, 3),
        log=logs.append,
      )
    assert any(f"Shard {i}/3" in line for line in logs)
  # Every run of the study trained exactly once, across the shards.
  assert len(trained) == 8 and len(set(trained)) == 8
  assert {t[2] for t in trained} == {0, 1}
  # The last shard found every run finished (restored from the archive) and wrote the report;
  # --report_only elsewhere writes the same one from the archive, training nothing.
  last = open(tmp_path / "machine2" / "results.md").read()
  out = runner.run(
    study,
    builder,
    str(tmp_path / "reporter"),
    seeds=[0, 1],
    train_fn=counting,
    num_reconstructions=0,
    archive=archive,
    report_only=True,
    log=lambda s: None,
  )
  assert len(trained) == 8
  assert out.markdown == last
  # A single runner's report of the same study is the same too.
  single = runner.run(
    study,
    builder,
    str(tmp_path / "single"),
    seeds=[0, 1],
    train_fn=fake_train,
    num_reconstructions=0,
    log=lambda s: None,
  )
  assert single.markdown == last
  # Report-only with runs missing names them; a bad shard is refused.
  with pytest.raises(ValueError, match=r"--report_only: 8 of 8 runs are not finished"):
    runner.run(
      study,
      builder,
      str(tmp_path / "empty"),
      seeds=[0, 1],
      report_only=True,
      num_reconstructions=0,
      log=lambda s: None,
    )
  for bad in ("3/3", "1", "-1/2", "a/b", "0/0"):
    with pytest.raises(ValueError, match="expected I/N with 0 <= I < N"):
      syntax.parse_shard(bad)
  assert syntax.parse_shard("2/5") == (2, 5)
