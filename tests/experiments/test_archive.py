"""The study archive: small files kept per run, episodes once per content, restore elsewhere."""

import os
import shutil

import numpy as np
import pytest

from experiments.studies import archive as archive_lib
from experiments.studies import definitions as studies
from experiments.studies import runner
from mia_jax import episodes_file
from tests.study_helpers import fake_train, make_builder, run_calls


def test_archive_keeps_small_files_and_resumes_on_another_machine(tmp_path, synthetic_data_dir):
  builder = make_builder(synthetic_data_dir)
  study = builder.study("sft_removal").select(["no_sft"])
  archive = str(tmp_path / "archive")
  first = str(tmp_path / "machine1")
  out1 = runner.run(
    study,
    builder,
    first,
    seeds=2,
    train_fn=fake_train,
    num_reconstructions=0,
    archive=archive,
    log=lambda s: None,
  )
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
  out2 = runner.run(
    study,
    builder,
    second,
    seeds=2,
    train_fn=fake_train,
    num_reconstructions=0,
    archive=archive,
    log=logs.append,
  )
  assert run_calls(second) == {}
  assert out2.markdown == out1.markdown
  assert sum("restored from" in line for line in logs) == 4
  restored = os.path.join(second, "no_sft", "seed1", "episodes.npz")
  assert archive_lib.episodes_digest(restored) == archive_lib.episodes_digest(
    os.path.join(first, "no_sft", "seed1", "episodes.npz")
  )
  runner.run(
    study,
    builder,
    second,
    seeds=3,
    train_fn=fake_train,
    num_reconstructions=0,
    archive=archive,
    log=lambda s: None,
  )
  assert run_calls(second) == {os.path.join("mia", "seed2"): 1, os.path.join("no_sft", "seed2"): 1}
  assert os.path.isfile(os.path.join(archive, "no_sft", "seed2", "results.json"))
  # An archive of another budget or config is a clear error, not silently mixed in.
  with pytest.raises(
    ValueError,
    match=r"archive does not match.*trained for 6 meta-steps, "
    r"more than the 3 asked for",
  ):
    runner.run(
      study,
      builder,
      str(tmp_path / "machine3"),
      seeds=1,
      steps=3,
      train_fn=fake_train,
      num_reconstructions=0,
      archive=archive,
      log=lambda s: None,
    )
  other = studies.Study(
    "sft_removal", {"mia": {"ablation": "none"}, "no_sft": {"ablation": "no_usft"}}, reference="mia"
  )
  with pytest.raises(ValueError, match=r"no_sft/seed0 holds a run of another config"):
    runner.run(
      other,
      builder,
      str(tmp_path / "machine4"),
      seeds=1,
      train_fn=fake_train,
      num_reconstructions=0,
      archive=archive,
      log=lambda s: None,
    )
  with pytest.raises(ValueError, match="archive must be another directory"):
    runner.run(
      study, builder, archive, seeds=1, train_fn=fake_train, archive=archive, log=lambda s: None
    )


def test_archive_episodes_shared_by_content_and_checked(tmp_path, synthetic_data_dir):
  """Runs whose episodes differ get their own shared file; a missing or corrupt shared file and
  an archive of the older layout (a full episodes.npz per run) are handled on restore."""
  builder = make_builder(synthetic_data_dir)
  study = builder.study("modality_replacement").select(["sine_alone"])
  archive = str(tmp_path / "archive")

  def train_with_episodes(config, workdir):
    fake_train(config, workdir)
    names = config.modalities.split("+")
    # As train writes them: one row per signal, by modality name.
    episodes_file.write_episode_arrays(
      os.path.join(workdir, "episodes.npz"),
      {
        f"{n}/{k}": np.arange(6).reshape(2, 3) + i
        for i, n in enumerate(names)
        for k in ("idx", "count", "ratio")
      },
    )

  runner.run(
    study,
    builder,
    str(tmp_path / "w1"),
    seeds=2,
    train_fn=train_with_episodes,
    num_reconstructions=0,
    archive=archive,
    log=lambda s: None,
  )
  shared = sorted(os.listdir(os.path.join(archive, "episodes")))
  assert len(shared) == 2  # `all` and `sine_alone`: two contents, each over two seeds
  with open(os.path.join(archive, "sine_alone", "seed1", "episodes.sha256")) as f:
    digest = f.read().strip()
  # An archive written before the shared folder (a full copy in the run's folder) still restores.
  old_run = os.path.join(archive, "all", "seed0")
  shutil.copy2(os.path.join(tmp_path, "w1", "all", "seed0", "episodes.npz"), old_run)
  os.remove(os.path.join(old_run, "episodes.sha256"))
  out = runner.run(
    study,
    builder,
    str(tmp_path / "w2"),
    seeds=2,
    train_fn=train_with_episodes,
    num_reconstructions=0,
    archive=archive,
    log=lambda s: None,
  )
  assert run_calls(str(tmp_path / "w2")) == {}
  assert any("paired" in line for line in out.markdown.splitlines())
  # The rerun archived the old-layout run the new way.
  assert sorted(os.listdir(old_run)) == ["config.json", "episodes.sha256", "results.json"]
  path = os.path.join(archive, "episodes", f"{digest[:16]}.npz")
  with open(path, "wb") as f:
    f.write(b"not an npz")
  with pytest.raises(ValueError, match=rf"{digest[:16]}.npz is corrupt"):
    runner.run(
      study,
      builder,
      str(tmp_path / "w3"),
      seeds=2,
      train_fn=train_with_episodes,
      num_reconstructions=0,
      archive=archive,
      log=lambda s: None,
    )
  os.remove(path)
  with pytest.raises(ValueError, match=rf"names the episodes {digest[:16]}, but .* is missing"):
    runner.run(
      study,
      builder,
      str(tmp_path / "w4"),
      seeds=2,
      train_fn=train_with_episodes,
      num_reconstructions=0,
      archive=archive,
      log=lambda s: None,
    )


def test_a_rerun_after_a_restore_checks_only_the_runs_it_will_train(tmp_path, synthetic_data_dir):
  """The command line's input checks (`ablate.unfinished_runs`, `prepare_runs`) on a workdir
  whose runs were restored from an archive (results, no checkpoints): the finished runs are not
  prepared, which would refuse them as workdirs to resume; a new arm or seed still is."""
  from experiments import ablate
  from experiments.run import train

  builder = make_builder(synthetic_data_dir)
  study = builder.study("sft_removal").select(["no_sft"])
  archive, first, second = (str(tmp_path / n) for n in ("archive", "machine1", "machine2"))
  runner.run(
    study,
    builder,
    first,
    seeds=1,
    train_fn=fake_train,
    num_reconstructions=0,
    archive=archive,
    log=lambda s: None,
  )
  runner.run(
    study,
    builder,
    second,
    seeds=1,
    train_fn=fake_train,
    num_reconstructions=0,
    archive=archive,
    log=lambda s: None,
  )  # restores both runs
  restored = runner.plan(study, builder, second, [0])
  assert not os.path.isdir(os.path.join(restored[0].rundir, "checkpoints"))
  with pytest.raises(ValueError, match="no checkpoint to resume from"):
    train.prepare(restored[0].config, restored[0].rundir)  # what the checks ran before
  assert ablate.unfinished_runs(restored) == []
  ablate.prepare_runs(ablate.unfinished_runs(restored))  # nothing to prepare, no error
  more = runner.plan(study, builder, second, [0, 1])
  todo = ablate.unfinished_runs(more)
  assert [(r.arm, r.seed) for r in todo] == [("mia", 1), ("no_sft", 1)]
  ablate.prepare_runs(todo)  # the new seed's data and episodes are checked
