"""The recipes of docs/library.md run as written, and do what they say."""

import os
import re

import numpy as np
import pytest

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "library.md")


def _recipes():
  with open(DOC, encoding="utf-8") as f:
    return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_the_page_has_three_recipes():
  assert len(_recipes()) == 3


@pytest.mark.parametrize("index", range(3))
def test_recipe_runs(index, capsys):
  namespace = {"__name__": f"library_recipe_{index + 1}"}
  exec(compile(_recipes()[index], f"docs/library.md recipe {index + 1}", "exec"), namespace)
  printed = capsys.readouterr().out
  if index in (0, 2):  # the training recipes: the meta-loss falls
    losses = namespace["losses"]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
  if index == 0:
    assert "image generalization MSE" in printed and "wave generalization MSE" in printed
  if index == 1:
    assert np.isfinite(float(namespace["loss"]))
    sl = np.asarray(namespace["aux"]["support_loss"]["sine"])
    assert sl.shape == (2,)


def test_readme_library_example_runs():
  with open(os.path.join(os.path.dirname(DOC), "..", "README.md"), encoding="utf-8") as f:
    section = f.read().split("## As a library", 1)[1]
  code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
  namespace = {"__name__": "readme_example"}
  exec(compile(code, "README.md", "exec"), namespace)
  assert set(namespace["state"].params["rule"]) == {"scale", "learned_lr", "sft"}
