"""`experiments.atomic`: a state file is the old one or the whole new one, and is the only writer
that renames files into place."""

import json
import os
import pathlib
import stat

import numpy as np
import pytest

from experiments import atomic
from tests import paths

ROOT = pathlib.Path(paths.ROOT)


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
  path = tmp_path / "results.json"
  atomic.write_json(path, {"step": 1})

  def fill(f):
    f.write('{"step": 2, "half')
    raise KeyboardInterrupt  # a kill mid-write

  with pytest.raises(KeyboardInterrupt):
    atomic.write(path, fill)
  assert json.loads(path.read_text()) == {"step": 1}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_text_json_and_npz_round_trip_with_the_usual_permissions(tmp_path):
  atomic.write_text(tmp_path / "a.md", "ünïcode\n")
  atomic.write_json(tmp_path / "b.json", {"x": [1, 2]}, indent=1)
  atomic.write_npz(tmp_path / "c.out", {"a": np.arange(3)})  # numpy would add .npz to a name
  assert (tmp_path / "a.md").read_text(encoding="utf-8") == "ünïcode\n"
  assert json.loads((tmp_path / "b.json").read_text()) == {"x": [1, 2]}
  with np.load(tmp_path / "c.out") as data:
    np.testing.assert_array_equal(data["a"], [0, 1, 2])
  umask = os.umask(0)
  os.umask(umask)
  for name in ("a.md", "b.json", "c.out"):  # as open() makes them, not mkstemp's 0o600
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.json", "c.out"]


def test_no_other_module_renames_files_into_place():
  """One helper for every file that marks state: `os.replace` / `os.rename` appear nowhere else in
  the experiments and the data pipelines (the library writes no state files). The lock's takeover
  of a stale lock file is a rename away, not a write, and is the one exception."""
  allowed = {("experiments/run/workdir.py", "os.rename(")}
  found = []
  for folder in ("experiments", "data_pipelines", "mia_jax"):
    for path in sorted((ROOT / folder).rglob("*.py")):
      if path.name == "atomic.py" and path.parent.name == "experiments":
        continue
      text = path.read_text()
      rel = str(path.relative_to(ROOT))
      found += [
        f"{rel}: {w}"
        for w in ("os.replace(", "os.rename(")
        if w in text and (rel, w) not in allowed
      ]
  assert not found, found
