"""Bad command lines fail before anything is written: one line `error: ...`, exit code 2.

Every case fails during validation (none trains), so each is a couple of seconds.
"""

import os
import re
import subprocess
import sys

import pytest

from experiments import validate
from tests.study_helpers import ROOT

SYN = "experiments/configs/synthetic.py"
SMOKE = f"--config={SYN}:smoke"

# (module, arguments, what the one-line message must contain).
CASES = {
    "unknown_method": ("main", [f"--config={SYN}:method=foo,smoke"],
                       ["'foo'", "alfa, cavia, gap, metasgd, mia"]),
    "unknown_preset": ("main", [f"--config={SYN}:smok"], ["'smok'", "smoke, cpu, full"]),
    "unknown_argument": ("main", [f"--config={SYN}:foo=1,smoke"], ["'foo'", "inner_steps"]),
    "bad_int_argument": ("main", [f"--config={SYN}:inner_steps=x,smoke"],
                         ["inner_steps='x'", "int"]),
    "negative_steps": ("main", [SMOKE, "--config.num_train_steps=-5"],
                       ["num_train_steps=-5", ">= 1"]),
    "keep_no_checkpoints": ("main", [SMOKE, "--config.keep_checkpoints=0"],
                            ["keep_checkpoints=0", ">= 1"]),
    "negative_learning_rate": ("main", [SMOKE, "--config.learning_rate=-1"],
                               ["learning_rate=-1", "> 0"]),
    "zero_eval_batch": ("main", [SMOKE, "--config.eval.batch_size=0"],
                        ["eval.batch_size=0", ">= 1"]),
    "zero_checkpoint_every": ("main", [SMOKE, "--config.checkpoint_every_steps=0"],
                              ["checkpoint_every_steps=0", ">= 1"]),
    "unknown_field": ("main", [SMOKE, "--config.xyz=1"], ["config.xyz", "'xyz'"]),
    "missing_config_file": ("main", ["--config=experiments/configs/nope.py:smoke"],
                            ["nope.py", "No such file"]),
    "unknown_study": ("ablate", [SMOKE, "--study=nope"], ["'nope'", "sft_removal"]),
    "unknown_arm": ("ablate", [SMOKE, "--study=sft_removal", "--arms=zzz"],
                    ["'zzz'", "no_sft"]),
    "bad_grid_value": ("ablate", [SMOKE, "--grid=inner_steps=0|1"],
                       ["inner_steps=0", ">= 1"]),
    "negative_study_steps": ("ablate", [SMOKE, "--study=sft_removal", "--steps=-3"],
                             ["--steps=-3", ">= 1"]),
}


def run_cli(module, args, workdir):
  cmd = [sys.executable, "-m", f"experiments.{module}", *args, f"--workdir={workdir}"]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def message_lines(proc):
  """The non-empty output lines, leaving out absl/jax warnings."""
  lines = (proc.stdout + proc.stderr).splitlines()
  return [l for l in lines if l.strip() and not re.match(r"W\d{4} |WARNING:", l)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_usage_error(case, tmp_path):
  module, args, expected = CASES[case]
  workdir = tmp_path / "w"
  proc = run_cli(module, args, workdir)
  lines = message_lines(proc)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert 1 <= len(lines) <= 3, lines
  error = [l for l in lines if l.startswith("error: ")]
  assert len(error) == 1, lines
  for text in expected:
    assert text in error[0], (text, error[0])
  assert not workdir.exists() or not os.listdir(workdir)


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file.txt"
  blocker.write_text("not a directory")
  proc = run_cli("main", [SMOKE], blocker / "sub")
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines() == [
      f"error: --workdir {blocker / 'sub'} is not writable: {blocker} is not a directory."]


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
  config = synthetic.get_config("method=cavia,smoke")
  config.rule.ablation = "no_msft"
  with pytest.raises(ValueError, match="applies to method='mia' only"):
    validate.validate_config(config)


def test_one_line_keeps_the_reason_of_a_config_file_failure():
  error = ValueError("flag --config=x.py:bad: Error whilst parsing config file:\n\nTraceback ...\n"
                     "  File ...\nValueError: Unknown config flag 'bad'.\n")
  assert validate.one_line(error) == "--config: Unknown config flag 'bad'."
  assert validate.one_line(KeyError("No config field 'a.b'.")) == "No config field 'a.b'."


def test_unknown_modality_and_missing_dataset_folder(tmp_path):
  """An unknown modality is a usage error; a missing dataset folder is reported by the first line
  of its message (the reason), not the last line of the folder tree it then describes."""
  proc = run_cli("main", ["--config=experiments/configs/synthetic.py:"
                                      "modalities=sine+cosine,smoke"], tmp_path / "w")
  assert proc.returncode == 2 and "Unknown modality 'cosine'" in proc.stderr
  assert "allowed: sine, tanh, gaussian, relu" in proc.stderr
  proc = run_cli("main", [f"--config=experiments/configs/celeba.py:smoke,"
                                      f"data_dir={tmp_path / 'none'}"], tmp_path / "w2")
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert proc.returncode == 1 and len(errors) == 1
  assert "celeba_trimodal is missing or empty" in errors[0] and "--debug" in errors[0]
  assert not (tmp_path / "w2").exists()  # nothing written before the data were found
