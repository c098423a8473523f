"""The quickstart notebook runs top to bottom on the smoke preset (so it never rots), and its
Colab set-up cell clones REPO_URL and installs what the notebook imports."""

import ast
import os
import re
import shutil
import subprocess
import sys
import types

import pytest

from tests.paths import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")


def _text(outputs):
  out = []
  for o in outputs:
    if o.get("output_type") == "stream":
      out.append(o["text"])
    elif "data" in o:
      out.append(o["data"].get("text/markdown", "") + o["data"].get("text/plain", ""))
  return "".join(out)


def test_quickstart_notebook_executes(tmp_path, synthetic_data_dir, tmp_path_factory, monkeypatch):
  monkeypatch.setenv("MIA_JAX_PRESET", "smoke")
  monkeypatch.setenv("MIA_JAX_DATA_DIR", synthetic_data_dir)
  monkeypatch.setenv("MIA_JAX_WORKDIR", str(tmp_path))
  # Shared with tests/experiments/test_ablate.py.
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    monkeypatch.setenv(
      "JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "jax_cache")
    )
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(
    nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}
  )
  client.execute()
  cells = [c for c in nb.cells if c.cell_type == "code"]
  text = "".join(_text(c.get("outputs", [])) for c in cells)
  images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
  assert "preset smoke" in text
  assert "mia (K=3, 6 meta-steps)" in text and "cavia (K=3, 6 meta-steps)" in text
  assert "# Study: mia_vs_cavia" in text
  assert "studies: sft_removal, modality_replacement, methods" in text
  assert "# Study: sft_removal" in text and "no_sft" in text
  # trajectories and reconstructions, of the pair and of the ablation, and the new signal
  assert images >= 5
  # The trained run, loaded from its workdir, reconstructs a new signal on the 4x grid.
  for name in ("sine", "tanh", "gaussian"):
    assert f"new signal, {name}: 10 observed points; prediction 797 points" in text
  assert "new signal, relu: unobserved; prediction 797 points" in text
  assert (tmp_path / "new_signal.png").stat().st_size > 1000
  for name in ("mia", "cavia"):
    assert (tmp_path / name / "results.json").exists()
  assert (tmp_path / "sft_removal" / "results.csv").exists()


# ------------------------------------------------------------------------------------------------
# The Colab set-up cell, run against a local clone (no network: pip is recorded, not run).


def _setup_cell():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  return next(c.source for c in nb.cells if c.cell_type == "code")


def _setup_extras():
  """setup.py's extras_require: {extra: its list literal's strings, or None for an expression}."""
  with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  call = next(
    n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setup"
  )
  extras = next(k.value for k in call.keywords if k.arg == "extras_require")
  return {
    k.value: ([e.value for e in v.elts] if isinstance(v, ast.List) else None)
    for k, v in zip(extras.keys, extras.values)
  }


def _notebook_packages():
  """The top-level packages of this project the notebook's code cells import."""
  nb = nbformat.read(NOTEBOOK, as_version=4)
  code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
  found = set(re.findall(r"^\s*(?:from|import)\s+(\w+)", code, flags=re.M))
  return found & {"mia_jax", "data_pipelines", "experiments"}


# Which extras provide each package (setup.py's docstring: experiments includes data).
PROVIDED_BY = {
  "mia_jax": None,
  "data_pipelines": {"data", "experiments", "test"},
  "experiments": {"experiments", "test"},
}


def _run_cell(source, colab, monkeypatch, gpu=False):
  """Executes the set-up cell as Colab (or not) would, with `git` run and `pip` recorded.

  Returns the commands the cell ran (argument lists)."""
  commands = []
  real_run = subprocess.run

  def fake_run(command, *args, **kwargs):
    commands.append(list(command))
    if command[0] == "git":
      return real_run(command, *args, **kwargs)
    return subprocess.CompletedProcess(command, 0, "", "")

  real_which = shutil.which
  monkeypatch.setattr(subprocess, "run", fake_run)
  monkeypatch.setattr(
    shutil,
    "which",
    lambda name, *a, **k: (
      ("/usr/bin/nvidia-smi" if gpu else None)
      if name == "nvidia-smi"
      else real_which(name, *a, **k)
    ),
  )
  monkeypatch.setattr(sys, "path", list(sys.path))  # the cell puts the checkout on the path
  if colab:
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
  else:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
  exec(compile(source, "quickstart setup cell", "exec"), {"__name__": "__main__"})
  return commands


def _with(source, name, value):
  """The cell with `NAME = ...` (one line, at the top level) set to `value`."""
  source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", source, flags=re.M)
  assert n == 1, f"the set-up cell should assign {name} on exactly one line"
  return source


def test_setup_cell_takes_the_repository_url_from_one_variable_at_the_top():
  source = _setup_cell()
  statements = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")]
  assert re.fullmatch(r'REPO_URL = "https://github\.com/[^"]+" +# .*(set|SET).*', statements[0])
  assert len(re.findall(r"https?://", source)) == 1  # no other URL to edit
  assert "!git" not in source and "%pip" not in source  # plain Python: testable, no magics


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu_runtime", "gpu_runtime"])
def test_setup_cell_clones_repo_url_and_installs_the_notebooks_extras(gpu, tmp_path, monkeypatch):
  if shutil.which("git") is None or not os.path.exists(os.path.join(ROOT, ".git")):
    pytest.skip("needs git and a git checkout to clone")
  clone = str(tmp_path / "mia-jax")
  source = _with(_with(_setup_cell(), "REPO_URL", ROOT), "CLONE_DIR", clone)
  monkeypatch.chdir(tmp_path)
  commands = _run_cell(source, True, monkeypatch, gpu=gpu)

  # The clone: from REPO_URL into CLONE_DIR, and it is the project.
  assert commands[0][:2] == ["git", "clone"] and commands[0][-2:] == [ROOT, clone]
  assert os.path.isfile(os.path.join(clone, "setup.py"))
  assert os.path.isfile(os.path.join(clone, "notebooks", "quickstart.ipynb"))
  assert os.getcwd() == clone and sys.path[0] == clone  # the notebook then runs from it

  # The install: this interpreter's pip, editable, of the clone, with the extras it needs.
  assert len(commands) == 2
  pip = commands[1]
  assert pip[:4] == [sys.executable, "-m", "pip", "install"] and "-e" in pip
  target, extras = re.fullmatch(r"(.*)\[([\w,-]+)\]", pip[-1]).groups()
  assert target == clone
  extras = set(extras.split(","))
  known = _setup_extras()
  assert extras <= set(known), (extras, sorted(known))
  packages = _notebook_packages()
  assert {"experiments", "data_pipelines", "mia_jax"} <= packages  # what the notebook uses
  for package in packages:
    if PROVIDED_BY[package]:
      assert extras & PROVIDED_BY[package], f"the notebook imports {package}; extras {extras}"
  # The CUDA build of jax on a GPU runtime only.
  assert ("gpu" in extras) == gpu
  assert any(r.startswith("jax[cuda") for r in known["gpu"])

  # Running the cell again keeps the clone and only installs.
  monkeypatch.chdir(tmp_path)
  again = _run_cell(source, True, monkeypatch, gpu=gpu)
  assert [c[:4] for c in again] == [pip[:4]]


def test_setup_cell_outside_colab_installs_nothing(tmp_path, monkeypatch):
  monkeypatch.chdir(os.path.join(ROOT, "notebooks"))
  assert _run_cell(_setup_cell(), False, monkeypatch) == []
  assert os.getcwd() == ROOT  # from notebooks/ to the root


def test_setup_cell_in_colab_without_repo_url_says_to_set_it(monkeypatch, tmp_path):
  monkeypatch.chdir(tmp_path)
  source = _with(_setup_cell(), "REPO_URL", "https://github.com/OWNER/mia-jax.git")
  with pytest.raises(ValueError, match="Set REPO_URL at the top of this cell"):
    _run_cell(source, True, monkeypatch)
  assert os.listdir(tmp_path) == []  # nothing cloned
