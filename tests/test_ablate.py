"""The ablation runner: both studies end to end (smoke), restart, the report math, clear errors."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments import ablate, studies
from experiments import train
from mia_jax import sampling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "experiments/configs/synthetic.py:smoke"
NAMES = ("sine", "tanh", "gaussian", "relu")


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


def _builder(data_dir, spec=CONFIG):
  return studies.ConfigBuilder.from_spec(spec, {"data.data_dir": data_dir})


def _read_csv(path):
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def _is_png(path):
  with open(path, "rb") as f:
    return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_sft_removal_cli_end_to_end(tmp_path, synthetic_data_dir, jax_cache):
  w = tmp_path / "study"
  cmd = [sys.executable, "-m", "experiments.ablate", f"--config={CONFIG}",
         f"--config.data.data_dir={synthetic_data_dir}", "--study=sft_removal", "--arms=no_sft",
         "--seeds=2", "--steps=4", f"--workdir={w}"]
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=jax_cache)
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert "2 arms x 2 seeds = 4 runs" in out
  for line in ("[1/4] mia seed 0: training", "[4/4] no_sft seed 1: done"):
    assert line in out
  assert "# Study: sft_removal" in out  # the table is printed at the end
  for name in ("results.csv", "results.md", "trajectory.png", "reconstructions.png",
               "study.json"):
    assert (w / name).exists(), name
  assert _is_png(w / "trajectory.png") and _is_png(w / "reconstructions.png")

  columns, rows = _read_csv(w / "results.csv")
  assert tuple(columns) == studies.CSV_COLUMNS
  assert {r["arm"] for r in rows} == {"mia", "no_sft"}
  assert {r["seed"] for r in rows} == {"0", "1"}
  for arm in ("mia", "no_sft"):
    for seed in (0, 1):
      res = json.loads((w / arm / f"seed{seed}" / "results.json").read_text())
      assert res["step"] == 4
      mine = {r["key"]: float(r["value"]) for r in rows
              if r["arm"] == arm and r["seed"] == str(seed)}
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
  builder = _builder(synthetic_data_dir, CONFIG + ",method=cavia")
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
    ablate.run(study, builder, w, seeds=2, steps=4, train_fn=killed_after_first_arm,
               log=lambda s: None)
  finished = [os.path.join(w, "all", f"seed{s}", "results.json") for s in (0, 1)]
  mtimes = [os.stat(p).st_mtime_ns for p in finished]

  calls, logs = [], []

  def counting(config, rundir):
    calls.append(os.path.relpath(rundir, w))
    return train.train_and_evaluate(config, rundir)

  out = ablate.run(study, builder, w, seeds=2, steps=4, train_fn=counting, log=logs.append)
  assert calls == [os.path.join("sine_alone", "seed0"), os.path.join("sine_alone", "seed1")]
  assert [os.stat(p).st_mtime_ns for p in finished] == mtimes
  assert sum("finished earlier" in line for line in logs) == 2

  # Paired: the sine supports of the sine-alone arm are those of the four-modality arm.
  for seed in (0, 1):
    with np.load(os.path.join(w, "all", f"seed{seed}", "episodes.npz")) as a, \
        np.load(os.path.join(w, "sine_alone", f"seed{seed}", "episodes.npz")) as b:
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
  _, rows = _read_csv(out.files["csv"])
  assert {r["modality"] for r in rows if r["arm"] == "sine_alone"} == {"sine", "avg"}
  assert {r["arm"] for r in rows} == {"all", "sine_alone"}
  assert _is_png(out.files["trajectory"]) and _is_png(out.files["reconstructions"])


def _fake_results(w, arm, seed, values, modalities=NAMES, k=1):
  """A results.json whose every metric of `modalities` is `values[measure]`."""
  d = os.path.join(w, arm, f"seed{seed}")
  os.makedirs(d, exist_ok=True)
  metrics = {}
  for measure, v in values.items():
    for mod in tuple(modalities) + ("avg",):
      for step in range(k + 1):
        metrics[f"{measure}/{mod}/step{step}"] = v * (k + 1 - step)
      metrics[f"{measure}/{mod}/R0.01-0.02"] = 2 * v
  with open(os.path.join(d, "results.json"), "w") as f:
    json.dump({"config": {"modalities": "+".join(modalities), "inner_steps": k},
               "step": 10, "metrics": metrics}, f)


def test_aggregation_matches_hand_computation(tmp_path):
  w = str(tmp_path)
  ref = [1.0, 2.0, 3.0]     # mean 2, std (ddof=1) 1
  arm = [3.0, 3.0, 6.0]     # mean 4, std sqrt(3); change +100%
  for s in range(3):
    _fake_results(w, "base", s, {"generalization_mse": ref[s], "memorization_psnr": 10.0 + s})
    _fake_results(w, "other", s, {"generalization_mse": arm[s], "memorization_psnr": 12.0 + s})
  study = studies.Study("toy", {"base": {}, "other": {"method": "cavia"}}, reference="base",
                        measures=("generalization_mse", "memorization_psnr"))
  results = studies.load_results(w, study, [0, 1, 2])
  stats = studies.aggregate(results)
  s = stats["other"]["generalization_mse/sine/step1"]
  assert (s.mean, s.std, s.n) == pytest.approx((4.0, np.sqrt(3.0), 3))
  s = stats["base"]["generalization_mse/sine/step0"]   # step 0 is twice step 1 here
  assert (s.mean, s.std) == pytest.approx((4.0, 2.0))
  assert studies.relative_change(4.0, 2.0, "generalization_mse") == pytest.approx(1.0)
  assert studies.relative_change(13.0, 11.0, "memorization_psnr") == pytest.approx(2.0)

  md = studies.format_markdown(study, results)
  sine = md.split("### sine")[1].split("###")[0]
  assert "| **base** (ref) | 3 | 1 | 2 ± 1 | — | 11.00 ± 1.00 | — |" in sine
  assert "| other | 3 | 1 | 4 ± 1.7 | +100.0% | 13.00 ± 1.00 | +2.00 dB |" in sine
  bins = md.split("## Per support-ratio bin")[1].split("### sine")[1].split("###")[0]
  assert "| 0.01-0.02 | other | 8 ± 3.5 | +100.0% | 26.00 ± 2.00 | +4.00 dB |" in bins
  assert "### avg" in md

  rows = studies.csv_rows("toy", results)
  assert len(rows) == sum(len(r["metrics"]) for by in results.values() for r in by.values())
  studies.write_csv(os.path.join(w, "results.csv"), rows)
  columns, read = _read_csv(os.path.join(w, "results.csv"))
  assert tuple(columns) == studies.CSV_COLUMNS
  row = next(r for r in read if r["key"] == "generalization_mse/tanh/R0.01-0.02"
             and r["arm"] == "other" and r["seed"] == "2")
  assert (row["measure"], row["modality"], row["at"], float(row["value"])) == (
      "generalization_mse", "tanh", "R0.01-0.02", 12.0)

  traj = studies.trajectory(results["other"], "generalization_mse", "sine", 1)
  np.testing.assert_allclose(traj, [[6, 3], [6, 3], [12, 6]])
  studies.plot_trajectories(study, results, os.path.join(w, "trajectory.png"))
  assert _is_png(os.path.join(w, "trajectory.png"))


def test_check_paired_detects_different_supports(tmp_path):
  w = str(tmp_path)
  study = studies.Study("toy", {"all": {}, "sine_alone": {}}, reference="all")
  idx = np.arange(20, dtype=np.int32).reshape(2, 10)
  for arm, shift in (("all", 0), ("sine_alone", 0)):
    d = os.path.join(w, arm, "seed0")
    os.makedirs(d)
    np.savez(os.path.join(d, "episodes.npz"), **{"sine/idx": idx + shift,
                                                 "sine/count": np.array([2, 3]),
                                                 "sine/ratio": np.array([.01, .02])})
  assert studies.check_paired(w, study, [0]) == 1
  np.savez(os.path.join(w, "sine_alone", "seed0", "episodes.npz"),
           **{"sine/idx": idx + 1, "sine/count": np.array([2, 3]),
              "sine/ratio": np.array([.01, .02])})
  with pytest.raises(ValueError, match="Unpaired comparison.*'sine/idx'"):
    studies.check_paired(w, study, [0])


def fake_train(config, workdir):
  """Writes what a finished run writes, instantly (module-level: picklable for parallel runs)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  names = config.modalities.split("+")
  value = 1.0 + config.seed + 0.5 * (config.rule.ablation != "none") + config.inner_steps
  metrics = {f"{m}/{n}/step{k}": value / (k + 1) for m in studies.DEFAULT_MEASURES
             for n in names + ["avg"] for k in range(config.inner_steps + 1)}
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump({"config": config.to_dict(), "step": config.num_train_steps, "metrics": metrics}, f)
  np.savez(os.path.join(workdir, "episodes.npz"),
           **{f"{n}/{k}": np.zeros(4) for n in names for k in ("idx", "count", "ratio")})
  with open(os.path.join(workdir, "calls.txt"), "a") as f:
    f.write("train\n")


def _calls(w):
  out = {}
  for root, _, files in os.walk(w):
    if "calls.txt" in files:
      with open(os.path.join(root, "calls.txt")) as f:
        out[os.path.relpath(root, w)] = len(f.read().split())
  return out


def test_grid_parallel_and_restart_reuse(tmp_path, synthetic_data_dir):
  builder = _builder(synthetic_data_dir)
  study = studies.grid_study("method=cavia|mia;inner_steps=1|3")
  assert list(study.arms) == ["method=cavia,inner_steps=1", "method=cavia,inner_steps=3",
                              "method=mia,inner_steps=1", "method=mia,inner_steps=3"]
  w = str(tmp_path / "grid")
  logs = []
  out = ablate.run(study, builder, w, seeds=[0, 1], train_fn=fake_train, parallel=2,
                   num_reconstructions=0, log=logs.append)
  calls = _calls(w)
  assert len(calls) == 8 and set(calls.values()) == {1}
  assert os.path.join("method-mia_inner_steps-3", "seed1") in calls
  assert "Δ" in out.markdown and "method=mia,inner_steps=3" in out.markdown
  config = json.loads(open(os.path.join(w, "method-mia_inner_steps-3", "seed1",
                                        "results.json")).read())["config"]
  assert (config["method"], config["inner_steps"], config["seed"]) == ("mia", 3, 1)
  # Restart: nothing is retrained; a longer budget reruns (resumes) every run.
  ablate.run(study, builder, w, seeds=[0, 1], train_fn=fake_train, num_reconstructions=0,
             log=logs.append)
  assert set(_calls(w).values()) == {1}
  ablate.run(study, builder, w, seeds=[0, 1], steps=12, train_fn=fake_train,
             num_reconstructions=0, log=logs.append)
  assert set(_calls(w).values()) == {2}
  assert any("[8/8]" in line for line in logs)


def test_restart_with_another_config_is_a_clear_error(tmp_path, synthetic_data_dir):
  builder = _builder(synthetic_data_dir)
  w = str(tmp_path)
  study = builder.study("sft_removal").select(["no_sft"])
  ablate.run(study, builder, w, seeds=1, train_fn=fake_train, num_reconstructions=0,
             log=lambda s: None)
  other = studies.Study("sft_removal", {"mia": {"ablation": "none"},
                                        "no_sft": {"ablation": "no_usft"}}, reference="mia")
  with pytest.raises(ValueError, match=r"no_sft/seed0 holds a run of another config "
                                       r"\(rule.ablation: 'no_sft' != 'no_usft'\)"):
    ablate.run(other, builder, w, seeds=1, train_fn=fake_train, num_reconstructions=0,
               log=lambda s: None)


def test_arms_must_share_the_meta_test_set(tmp_path, synthetic_data_dir):
  builder = _builder(synthetic_data_dir)
  study = studies.Study("bad", {"a": {}, "b": {"eval.episode_seed": 7}}, reference="a")
  with pytest.raises(ValueError, match="Arm 'b' changes the meta-test data or episodes"):
    ablate.run(study, builder, str(tmp_path), seeds=1, train_fn=fake_train, log=lambda s: None)


def test_unknown_study_arm_metric_and_override_errors(synthetic_data_dir):
  builder = _builder(synthetic_data_dir)
  with pytest.raises(ValueError, match="Unknown study 'sft'; known studies: sft_removal, "
                                       "modality_replacement, methods"):
    builder.study("sft")
  with pytest.raises(ValueError, match="Unknown arm 'no_sfts' in study 'sft_removal'; its arms: "
                                       "mia, no_sft, no_usft, no_msft, no_fuser, grad_only, "
                                       "latent_only"):
    builder.study("sft_removal").select(["no_sfts"])
  with pytest.raises(ValueError, match="Unknown metric 'mse'; known measures: "
                                       "generalization_mse, memorization_mse, full_mse, "
                                       "generalization_psnr, memorization_psnr"):
    builder.study("sft_removal").with_measures(["mse"])
  with pytest.raises(ValueError, match="Unknown override 'rule.width'"):
    builder.build({"rule.width": 3})
  with pytest.raises(ValueError, match="Bad grid axis 'method'"):
    studies.grid_study("method")
  with pytest.raises(ValueError, match="Unknown reference arm 'x'"):
    studies.grid_study("method=cavia|mia", reference="x")
  # Config arguments rebuild the config (so dependent defaults follow); fields are set after.
  config = builder.build({"method": "cavia", "learning_rate": "3e-4", "rule.sft_width": 12},
                         seed=4, steps=9)
  assert (config.method, config.rule.grad_scale, config.learning_rate) == ("cavia", 0.0, 3e-4)
  assert (config.rule.sft_width, config.seed, config.num_train_steps) == (12, 4, 9)
  assert config.data.data_dir == synthetic_data_dir and config.preset == "smoke"


def test_cli_unknown_study_and_arm_are_clear_errors(tmp_path):
  base = [sys.executable, "-m", "experiments.ablate", f"--config={CONFIG}",
          f"--workdir={tmp_path}"]
  proc = subprocess.run(base + ["--study=nope"], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode != 0
  assert ("Unknown study 'nope'; known studies: sft_removal, modality_replacement, methods"
          in proc.stderr)
  proc = subprocess.run(base + ["--study=modality_replacement", "--arms=sine"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert ("Unknown arm 'sine' in study 'modality_replacement'; its arms: all, sine_alone, "
          "tanh_alone, gaussian_alone, relu_alone" in proc.stderr)


def test_reconstruction_plot_handles_images_and_waveforms(tmp_path):
  from tests.helpers import image_spec, wave_spec
  rng = np.random.default_rng(0)

  def entry(spec, n=2):
    y = rng.uniform(size=(n, spec.num_points, spec.d_out)).astype(np.float32)
    idx = np.stack([rng.permutation(spec.num_points)[:spec.max_support] for _ in range(n)])
    return {"y": y, "prediction": y + 0.1, "idx": idx, "count": np.array([3, 5]), "spec": spec}

  rgb, depth, audio = image_spec("rgb", 6, 3), image_spec("depth", 6, 1), wave_spec("audio")
  predictions = {"all": {"rgb": entry(rgb), "depth": entry(depth), "audio": entry(audio)},
                 "rgb_alone": {"rgb": entry(rgb)}}
  path = studies.plot_reconstructions(predictions, str(tmp_path / "r.png"), reference="all")
  assert _is_png(path)


def test_other_seeds_runs_fewer_seeds_for_non_headline_arms(tmp_path, synthetic_data_dir):
  builder = studies.ConfigBuilder.from_spec(CONFIG, {"data.data_dir": synthetic_data_dir})
  study = builder.study("sft_removal")
  assert study.headline == ("mia", "no_sft")
  runs = ablate.plan(study, builder, str(tmp_path), [0, 1, 2], steps=2, other_seeds=1)
  by_arm = {}
  for r in runs:
    by_arm.setdefault(r.arm, []).append(r.seed)
  assert by_arm["mia"] == [0, 1, 2] and by_arm["no_sft"] == [0, 1, 2]
  assert all(by_arm[a] == [0] for a in study.arms if a not in ("mia", "no_sft"))
  assert len(ablate.plan(study, builder, str(tmp_path), [0, 1], steps=2)) == 2 * len(study.arms)
  with pytest.raises(ValueError, match="headline arms \\['nope'\\]"):
    studies.Study(name="x", arms={"a": {}}, reference="a", headline=("nope",))


def test_archive_keeps_small_files_and_resumes_on_another_machine(tmp_path, synthetic_data_dir):
  builder = _builder(synthetic_data_dir)
  study = builder.study("sft_removal").select(["no_sft"])
  archive = str(tmp_path / "archive")
  first = str(tmp_path / "machine1")
  out1 = ablate.run(study, builder, first, seeds=2, train_fn=fake_train, num_reconstructions=0,
                    archive=archive, log=lambda s: None)
  for arm in ("mia", "no_sft"):
    for seed in (0, 1):
      d = os.path.join(archive, arm, f"seed{seed}")
      assert sorted(os.listdir(d)) == ["config.json", "episodes.sha256", "results.json"]
  # The four runs' episodes have one content: kept once.
  assert len(os.listdir(os.path.join(archive, "episodes"))) == 1
  for name in ("results.md", "results.csv", "study.json", "trajectory.png"):
    assert os.path.isfile(os.path.join(archive, name)), name
  # Another machine: an empty workdir and the archive. Nothing is retrained, the report is the
  # same; a third seed is trained (only it), and archived.
  second = str(tmp_path / "machine2")
  logs = []
  out2 = ablate.run(study, builder, second, seeds=2, train_fn=fake_train, num_reconstructions=0,
                    archive=archive, log=logs.append)
  assert _calls(second) == {}
  assert out2.markdown == out1.markdown
  assert sum("restored from" in line for line in logs) == 4
  restored = os.path.join(second, "no_sft", "seed1", "episodes.npz")
  assert ablate.episodes_digest(restored) == ablate.episodes_digest(
      os.path.join(first, "no_sft", "seed1", "episodes.npz"))
  ablate.run(study, builder, second, seeds=3, train_fn=fake_train, num_reconstructions=0,
             archive=archive, log=lambda s: None)
  assert _calls(second) == {os.path.join("mia", "seed2"): 1, os.path.join("no_sft", "seed2"): 1}
  assert os.path.isfile(os.path.join(archive, "no_sft", "seed2", "results.json"))
  # An archive of another budget or config is a clear error, not silently mixed in.
  with pytest.raises(ValueError, match=r"archive does not match.*trained for 6 meta-steps, "
                                       r"more than the 3 asked for"):
    ablate.run(study, builder, str(tmp_path / "machine3"), seeds=1, steps=3, train_fn=fake_train,
               num_reconstructions=0, archive=archive, log=lambda s: None)
  other = studies.Study("sft_removal", {"mia": {"ablation": "none"},
                                        "no_sft": {"ablation": "no_usft"}}, reference="mia")
  with pytest.raises(ValueError, match=r"no_sft/seed0 holds a run of another config"):
    ablate.run(other, builder, str(tmp_path / "machine4"), seeds=1, train_fn=fake_train,
               num_reconstructions=0, archive=archive, log=lambda s: None)
  with pytest.raises(ValueError, match="archive must be another directory"):
    ablate.run(study, builder, archive, seeds=1, train_fn=fake_train, archive=archive,
               log=lambda s: None)


def test_archive_episodes_shared_by_content_and_checked(tmp_path, synthetic_data_dir):
  """Runs whose episodes differ get their own shared file; a missing or corrupt shared file and
  an archive of the older layout (a full episodes.npz per run) are handled on restore."""
  builder = _builder(synthetic_data_dir)
  study = builder.study("modality_replacement").select(["sine_alone"])
  archive = str(tmp_path / "archive")

  def train_with_episodes(config, workdir):
    fake_train(config, workdir)
    names = config.modalities.split("+")
    sampling.write_episode_arrays(  # as train writes them: one row per signal, by modality name
        os.path.join(workdir, "episodes.npz"),
        {f"{n}/{k}": np.arange(6).reshape(2, 3) + i for i, n in enumerate(names)
         for k in ("idx", "count", "ratio")})

  ablate.run(study, builder, str(tmp_path / "w1"), seeds=2, train_fn=train_with_episodes,
             num_reconstructions=0, archive=archive, log=lambda s: None)
  shared = sorted(os.listdir(os.path.join(archive, "episodes")))
  assert len(shared) == 2  # `all` and `sine_alone`: two contents, each over two seeds
  with open(os.path.join(archive, "sine_alone", "seed1", "episodes.sha256")) as f:
    digest = f.read().strip()
  # An archive written before the shared folder (a full copy in the run's folder) still restores.
  old_run = os.path.join(archive, "all", "seed0")
  shutil.copy2(os.path.join(tmp_path, "w1", "all", "seed0", "episodes.npz"), old_run)
  os.remove(os.path.join(old_run, "episodes.sha256"))
  out = ablate.run(study, builder, str(tmp_path / "w2"), seeds=2, train_fn=train_with_episodes,
                   num_reconstructions=0, archive=archive, log=lambda s: None)
  assert _calls(str(tmp_path / "w2")) == {}
  assert any("paired" in line for line in out.markdown.splitlines())
  # The rerun archived the old-layout run the new way.
  assert sorted(os.listdir(old_run)) == ["config.json", "episodes.sha256", "results.json"]
  path = os.path.join(archive, "episodes", f"{digest[:16]}.npz")
  with open(path, "wb") as f:
    f.write(b"not an npz")
  with pytest.raises(ValueError, match=rf"{digest[:16]}.npz is corrupt"):
    ablate.run(study, builder, str(tmp_path / "w3"), seeds=2, train_fn=train_with_episodes,
               num_reconstructions=0, archive=archive, log=lambda s: None)
  os.remove(path)
  with pytest.raises(ValueError, match=rf"names the episodes {digest[:16]}, but .* is missing"):
    ablate.run(study, builder, str(tmp_path / "w4"), seeds=2, train_fn=train_with_episodes,
               num_reconstructions=0, archive=archive, log=lambda s: None)
