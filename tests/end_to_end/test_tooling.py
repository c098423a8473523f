"""The checks `.ci/run` runs before the tests (ruff check, ruff format, mypy) are really invoked,
and fail on a deliberately bad line: a check that passes everything would pass this repository
too."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.paths import ROOT


def _ci_commands():
  with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
    return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]


def test_ci_runs_the_linter_and_the_type_checker_before_the_tests():
  lines = _ci_commands()
  lint = lines.index("ruff check mia_jax data_pipelines experiments tests")
  fmt = lines.index("ruff format --check mia_jax data_pipelines experiments tests .ci setup.py")
  types = lines.index("mypy")
  tests = lines.index("python -m pytest -n 2 -q tests")
  assert lint < tests and fmt < tests and types < tests
  assert not any(l.endswith("|| true") for l in lines)  # a finding is not ignored


def _tool(name):
  path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
  if not os.path.exists(path):
    pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
  return path


def test_each_check_fails_on_a_bad_line(tmp_path):
  bad = tmp_path / "bad.py"
  bad.write_text("import os\n\n\ndef f(x: int) -> str:\n  return x\n")
  lint = subprocess.run(
    [_tool("ruff"), "check", "--no-cache", str(bad)], cwd=ROOT, capture_output=True, text=True
  )
  assert lint.returncode == 1 and "F401" in lint.stdout, lint.stdout  # `os` unused
  types = subprocess.run(
    [_tool("mypy"), "--no-incremental", str(bad)], cwd=tmp_path, capture_output=True, text=True
  )
  assert types.returncode == 1 and "Incompatible return value type" in types.stdout, types.stdout
  good = tmp_path / "good.py"
  good.write_text("def f(x: int) -> str:\n  return str(x)\n")
  # The formatter, with the project's settings: 4-space indentation would be rewritten.
  config = os.path.join(ROOT, "pyproject.toml")
  four = tmp_path / "four.py"
  four.write_text("def f(x: int) -> str:\n    return str(x)\n")
  fmt = [_tool("ruff"), "format", "--check", "--no-cache", "--config", config]
  out = subprocess.run([*fmt, str(four)], cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 1 and "would be reformatted" in out.stdout, out.stdout
  assert subprocess.run([*fmt, str(good)], cwd=ROOT, capture_output=True).returncode == 0
  assert (
    subprocess.run(
      [_tool("mypy"), "--no-incremental", str(good)], cwd=tmp_path, capture_output=True
    ).returncode
    == 0
  )
