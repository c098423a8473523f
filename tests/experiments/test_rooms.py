"""The rooms of experiments/ (docs/architecture.md): each imports only the rooms below it.

  programs   experiments.main, .ablate, .reconstruct (and their plumbing, .cli)
  studies    experiments.studies.*     many runs: definitions, runner, report, plots, archive
  speed      experiments.speed.*       speed and memory benchmarks
  run        experiments.run.*         one run: build, validate, train, evaluate, checkpoints, ...
  configs    experiments.configs.*     the ml_collections configs
  base       experiments.syntax, .methods, .atomic

Checked on the source (every import statement, also inside functions): no upward edge (the run
layer never imports a study), speed and studies do not import each other, no program imports
another, and the import graph of experiments/ has no cycle.
"""

import ast
import os

from tests.paths import ROOT

ROOMS = ("base", "configs", "run", "speed", "studies", "programs")
# What each room may import (besides itself, the library and the data pipelines).
ALLOWED = {
  "base": set(),
  "configs": {"base"},
  "run": {"base", "configs"},
  "speed": {"base", "configs", "run"},
  "studies": {"base", "configs", "run"},
  "programs": {"base", "configs", "run", "studies", "cli"},
  "cli": {"base", "configs", "run"},
}
BASE = {"experiments.syntax", "experiments.methods", "experiments.atomic", "experiments"}
PROGRAMS = {
  "experiments.main",
  "experiments.ablate",
  "experiments.reconstruct",
  "experiments.budget",
}


def room(module: str) -> str:
  if module in BASE:
    return "base"
  if module == "experiments.cli":
    return "cli"
  if module in PROGRAMS:
    return "programs"
  parts = module.split(".")
  if len(parts) >= 2 and parts[1] in ("configs", "run", "speed", "studies"):
    return parts[1]
  raise AssertionError(f"{module} is in no room; add it to docs/architecture.md and this test")


def _modules():
  """`{module name: path}` of every Python file under experiments/."""
  out = {}
  for folder, _, files in os.walk(os.path.join(ROOT, "experiments")):
    for f in sorted(files):
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, ".")
        out[rel.removesuffix(".__init__")] = os.path.join(folder, f)
  return out


def _imports(path: str, modules) -> set[str]:
  """The experiments modules a file imports (absolute imports, anywhere in it)."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      for a in node.names:
        sub = f"{node.module}.{a.name}"
        out.add(sub if sub in modules else node.module)
  return {m for m in out if m.split(".")[0] == "experiments"}


def _graph():
  modules = _modules()
  return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def _upward_edges(graph):
  bad = []
  for m, deps in graph.items():
    r = room(m)
    for d in deps:
      rd = room(d)
      if rd != r and rd not in ALLOWED[r]:
        bad.append(f"{m} ({r}) imports {d} ({rd})")
      elif r == rd == "programs":
        bad.append(f"program {m} imports program {d}")
  return sorted(bad)


def _cycles(graph):
  """Every cycle found by a depth-first search, as a list of modules."""
  found, state = [], {}

  def visit(m, path):
    state[m] = "open"
    for d in sorted(graph.get(m, ())):
      if state.get(d) == "open":
        found.append(path[path.index(d) :] + [d])
      elif d not in state:
        visit(d, path + [d])
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [m])
  return found


def test_every_module_is_in_a_room():
  graph = _graph()
  assert {
    "experiments.run.train",
    "experiments.studies.runner",
    "experiments.speed.meta_step",
    "experiments.configs.synthetic",
    "experiments.syntax",
    "experiments.main",
  } <= set(graph)
  for m in graph:
    room(m)


def test_rooms_import_only_the_rooms_below():
  assert _upward_edges(_graph()) == []


def test_experiments_has_no_import_cycle():
  assert _cycles(_graph()) == []


def test_the_checks_find_an_upward_edge_and_a_cycle():
  graph = _graph()
  graph["experiments.run.train"] = graph["experiments.run.train"] | {"experiments.studies.plots"}
  graph["experiments.run.predict"] = graph["experiments.run.predict"] | {"experiments.run.train"}
  assert _upward_edges(graph) == [
    "experiments.run.train (run) imports experiments.studies.plots (studies)"
  ]
  assert any(
    c[0] == c[-1] and {"experiments.run.train", "experiments.run.predict"} <= set(c)
    for c in _cycles(graph)
  )


def test_an_old_import_names_the_new_place():
  import pytest

  with pytest.raises(ImportError, match=r"experiments\.train moved to experiments\.run\.train"):
    from experiments import train  # noqa: F401
  with pytest.raises(ImportError, match=r"experiments\.speed"):
    from experiments import benchmarks  # noqa: F401


def test_every_folder_of_code_is_a_package_that_setup_installs():
  """A folder without `__init__.py` imports from a checkout (a namespace package) but is left out
  of `find_packages`, so `pip install .` would ship experiments/ without it."""
  import setuptools

  found = set(
    setuptools.find_packages(ROOT, include=["mia_jax*", "experiments*", "data_pipelines*"])
  )
  folders = {
    os.path.relpath(folder, ROOT).replace(os.sep, ".")
    for package in ("mia_jax", "data_pipelines", "experiments")
    for folder, _, files in os.walk(os.path.join(ROOT, package))
    if any(f.endswith(".py") for f in files)
  }
  assert folders - found == set()
  assert {"experiments.run", "experiments.studies", "experiments.speed"} <= found
