"""The one-line error machinery of `experiments/cli.py` and the checks of
`experiments/run/validate.py`: the unwritable workdir, --debug, the config checks in-process,
and message extraction. The broad bad-input sweep through both
programs is `tests/end_to_end/test_reliability.py`.
"""

import os
import subprocess
import sys

import pytest

from experiments import cli
from experiments.run import validate
from tests.paths import ROOT

SYN = "experiments/configs/synthetic.py"
SMOKE = f"--config={SYN}:smoke"


def run_cli(module, args, workdir):
  cmd = [sys.executable, "-m", f"experiments.{module}", *args, f"--workdir={workdir}"]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file.txt"
  blocker.write_text("not a directory")
  proc = run_cli("main", [SMOKE], blocker / "sub")
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines() == [
    f"error: --workdir {blocker / 'sub'} is not writable: {blocker} is not a directory."
  ]


def test_a_directory_nothing_can_be_made_in_is_refused(tmp_path, monkeypatch):
  # Permission bits can say "writable" where nothing can be made (root on /proc): the check
  # tries, names the flag and the OS's reason, and leaves nothing behind where it can make one.
  validate.check_writable_dir(str(tmp_path / "a" / "b"), "workdir")
  assert list(tmp_path.iterdir()) == []
  if os.geteuid() == 0 and os.path.isdir("/proc/self"):
    with pytest.raises(
      ValueError,
      match=r"--config.data.data_dir /proc/nope/x is not usable: "
      r"cannot create a directory in /proc \(",
    ):
      validate.check_writable_dir("/proc/nope/x", "config.data.data_dir", need_write=False)

  def refuse(**kwargs):
    raise FileNotFoundError(2, "No such file or directory")

  monkeypatch.setattr(validate.tempfile, "mkdtemp", refuse)
  with pytest.raises(ValueError) as info:
    validate.check_writable_dir(str(tmp_path / "w"), "workdir")
  assert str(info.value) == (
    f"--workdir {tmp_path / 'w'} is not writable: cannot create a "
    f"directory in {tmp_path} (No such file or directory)."
  )


def test_debug_shows_the_traceback(tmp_path):
  proc = run_cli("main", [SMOKE, "--config.keep_checkpoints=0", "--debug"], tmp_path / "w")
  assert proc.returncode != 0
  assert "Traceback (most recent call last)" in proc.stderr
  assert "keep_checkpoints=0" in proc.stderr


def test_validate_config_accepts_presets_and_names_the_field():
  from experiments.configs import synthetic

  for arg in ("smoke", "cpu", "full", "backbone=functa,smoke", "method=cavia,cpu"):
    validate.validate_config(synthetic.get_config(arg))
  config = synthetic.get_config("smoke")
  config.grad_clip = float("nan")
  with pytest.raises(ValueError, match=r"config.grad_clip=nan .* >= 0"):
    validate.validate_config(config)
  config = synthetic.get_config("smoke")
  config.lr_schedule = "cosine"
  with pytest.raises(
    ValueError,
    match=r"config.lr_schedule='cosine' is not allowed; expected "
    r"one of constant, warmup_cosine",
  ):
    validate.validate_config(config)
  config.lr_schedule, config.warmup_steps = "warmup_cosine", config.num_train_steps
  with pytest.raises(
    ValueError,
    match=r"config.warmup_steps=6 must be below "
    r"config.num_train_steps=6",
  ):
    validate.validate_config(config)
  config.warmup_steps = 2  # following the advice: accepted, and the learner builds
  validate.validate_config(config)
  from experiments.run import build

  assert build.learner_from_config(config).meta.decay_steps == 6
  config = synthetic.get_config("method=cavia,smoke")
  config.rule.ablation = "no_msft"
  with pytest.raises(ValueError, match="applies to method='mia' only"):
    validate.validate_config(config)


def test_one_line_keeps_the_reason_of_a_config_file_failure():
  error = ValueError(
    "flag --config=x.py:bad: Error whilst parsing config file:\n\nTraceback ...\n"
    "  File ...\nValueError: Unknown config flag 'bad'.\n"
  )
  assert cli.one_line(error) == "--config: Unknown config flag 'bad'."
  assert cli.one_line(KeyError("No config field 'a.b'.")) == "No config field 'a.b'."


def test_unknown_modality_and_missing_dataset_folder(tmp_path):
  """An unknown modality is a usage error; a missing dataset folder is reported by the first line
  of its message (the reason), not the last line of the folder tree it then describes."""
  proc = run_cli(
    "main",
    ["--config=experiments/configs/synthetic.py:modalities=sine+cosine,smoke"],
    tmp_path / "w",
  )
  assert proc.returncode == 2 and "Unknown modality 'cosine'" in proc.stderr
  assert "allowed: sine, tanh, gaussian, relu" in proc.stderr
  proc = run_cli(
    "main",
    [f"--config=experiments/configs/celeba.py:smoke,data_dir={tmp_path / 'none'}"],
    tmp_path / "w2",
  )
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert proc.returncode == 2 and len(errors) == 1
  assert "celeba_trimodal is missing or empty" in errors[0] and "--debug" in errors[0]
  assert not (tmp_path / "w2").exists()  # nothing written before the data were found
