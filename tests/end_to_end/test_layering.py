"""The layering of docs/architecture.md: mia_jax <- data_pipelines <- experiments.

The library imports neither the data pipelines nor the experiments, nor the experiment stack
(ml_collections, orbax, tqdm, matplotlib, tfds, grain); the data pipelines do not import the
experiments. Checked on the source (every import statement, also inside functions) and on a fresh
interpreter's `sys.modules`.
"""

import ast
import os
import subprocess
import sys

import pytest

from tests.paths import ROOT

LIBRARY_FORBIDDEN = (
  "data_pipelines",
  "experiments",
  "ml_collections",
  "orbax",
  "tqdm",
  "matplotlib",
  "tensorflow_datasets",
  "grain",
)


def _python_files(package):
  for folder, _, files in os.walk(os.path.join(ROOT, package)):
    yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def _imported_roots(path):
  """The top-level names of every module a file imports (absolute imports, anywhere in it)."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      yield node.module.split(".")[0]


@pytest.mark.parametrize(
  "package,forbidden",
  [
    ("mia_jax", LIBRARY_FORBIDDEN),
    ("data_pipelines", ("experiments",)),
  ],
)
def test_source_imports_respect_layers(package, forbidden):
  bad = {
    os.path.relpath(p, ROOT): sorted(set(_imported_roots(p)) & set(forbidden))
    for p in _python_files(package)
  }
  assert not {p: m for p, m in bad.items() if m}


def _fresh_modules(statement):
  code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
  )
  return {m.split(".")[0] for m in out.stdout.split()}


def test_fresh_import_of_the_library_loads_no_experiment_stack():
  loaded = _fresh_modules("import mia_jax, mia_jax.rules, mia_jax.inr")
  assert "mia_jax" in loaded and "flax" in loaded  # the check sees what was imported
  assert not loaded & set(LIBRARY_FORBIDDEN)


def test_fresh_import_of_the_data_pipelines_loads_no_experiments():
  modules = sorted(
    os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
    for p in _python_files("data_pipelines")
  )
  loaded = _fresh_modules("; ".join(f"import {m}" for m in modules))
  assert "data_pipelines" in loaded and "experiments" not in loaded


def test_library_check_script_runs():
  """The script `.ci/run` runs after a plain `pip install .` (here in the test environment)."""
  out = subprocess.run(
    [sys.executable, os.path.join(ROOT, ".ci", "library_check.py")],
    capture_output=True,
    text=True,
    cwd=ROOT,
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert "adapt and outer steps ok" in out.stdout


def test_files_stay_small():
  """One concept per file: no Python file over 450 lines, benchmark configs under 80."""
  sizes = {}
  for package in ("mia_jax", "data_pipelines", "experiments", "tests"):
    for p in _python_files(package):
      with open(p, encoding="utf-8") as f:
        sizes[os.path.relpath(p, ROOT)] = sum(1 for _ in f)
  assert not {p: n for p, n in sizes.items() if n > 450}
  configs = {
    p: n
    for p, n in sizes.items()
    if p.startswith(os.path.join("experiments", "configs"))
    and os.path.basename(p) not in ("common.py", "shared.py")  # shared, not a benchmark
  }
  assert len(configs) >= 7 and not {p: n for p, n in configs.items() if n >= 80}


# The library's one file format (docs/architecture.md): the only module that touches files.
LIBRARY_FILE_MODULE = os.path.join("mia_jax", "episodes_file.py")
FILE_CALLS = {
  ("np", "load"),
  ("np", "save"),
  ("np", "savez"),
  ("np", "savez_compressed"),
  ("np", "loadtxt"),
  ("np", "fromfile"),
  ("json", "load"),
  ("json", "dump"),
  ("json", "loads"),
  ("json", "dumps"),
  ("pickle", "load"),
  ("pickle", "dump"),
  ("os", "remove"),
  ("os", "replace"),
  ("os", "rename"),
  ("os", "makedirs"),
  ("shutil", "copy"),
  ("shutil", "rmtree"),
}
SYNTAX_SEPARATORS = (",", "=", "+", ":", ";")  # "a=1,b=2", "sine+tanh", "0.01:1"


def _file_and_syntax_uses(path):
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call):
      continue
    fn = node.func
    if isinstance(fn, ast.Name) and fn.id == "open":
      yield f"line {node.lineno}: open()"
    if isinstance(fn, ast.Attribute):
      if isinstance(fn.value, ast.Name) and (fn.value.id, fn.attr) in FILE_CALLS:
        yield f"line {node.lineno}: {fn.value.id}.{fn.attr}()"
      separators = [a.value for a in node.args if isinstance(a, ast.Constant)]
      if fn.attr in ("split", "partition", "rpartition") and any(
        s in SYNTAX_SEPARATORS for s in separators
      ):
        yield f"line {node.lineno}: .{fn.attr}({separators[0]!r}) (config-string parsing)"


def test_the_library_parses_no_config_strings_and_touches_no_files():
  """Issue 32: `mia_jax` takes typed values. Config strings ("a=1,b=2", "sine+tanh", "0.01,0.1")
  are parsed in the experiments (`experiments/syntax.py`, `experiments/methods.py`) and the data
  pipelines; only the episodes file's module reads or writes files."""
  found = {}
  for path in _python_files("mia_jax"):
    rel = os.path.relpath(path, ROOT)
    uses = list(_file_and_syntax_uses(path))
    if rel == LIBRARY_FILE_MODULE:
      assert uses, "the episodes file module should be the one that writes files"
      continue
    if uses:
      found[rel] = uses
  assert not found, found


def test_the_file_and_syntax_check_finds_what_it_looks_for(tmp_path):
  bad = tmp_path / "bad.py"
  bad.write_text(
    'import json\nimport numpy as np\nnp.load("x")\nopen("y")\n'
    'json.dumps({})\n"a=1,b=2".split(",")\nkey.split("/")\n'
  )
  uses = list(_file_and_syntax_uses(str(bad)))
  assert [u.split(":")[0] for u in uses] == ["line 3", "line 4", "line 5", "line 6"], uses
