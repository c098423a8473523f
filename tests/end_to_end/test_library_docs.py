"""The recipes of docs/library.md run as written, and do what they say."""

import os
import re
import shutil

import numpy as np
import pytest

from tests import paths

DOC = os.path.join(paths.ROOT, "docs", "library.md")


def _recipes():
  with open(DOC, encoding="utf-8") as f:
    return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_the_page_has_four_recipes():
  assert len(_recipes()) == 4


@pytest.mark.parametrize("index", range(4))
def test_recipe_runs(index, capsys):
  namespace = {"__name__": f"library_recipe_{index + 1}"}
  try:
    exec(compile(_recipes()[index], f"docs/library.md recipe {index + 1}", "exec"), namespace)
  finally:
    if index == 3 and "workdir" in namespace:  # the run the recipe trains
      shutil.rmtree(namespace["workdir"], ignore_errors=True)
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
  if index == 3:  # the loaded run, adapted to 12 points of one modality, predicted 4x finer
    ns = namespace
    pred, up = ns["prediction"], ns["upsampled"]
    assert {k: v.shape for k, v in pred.items()} == {"wave": (1, 100, 1), "image": (1, 64, 3)}
    assert {k: v.shape for k, v in up.items()} == {"wave": (1, 397, 1), "image": (1, 841, 3)}
    assert np.asarray(ns["aux"]["support_loss"]["wave"]).shape == (3, 1)  # K = 3 steps, B = 1
    assert all(np.all(np.isfinite(np.asarray(v))) for v in up.values())
    # The fine grid holds the training grid (every 4th point per axis): same predictions there.
    np.testing.assert_allclose(np.asarray(up["wave"])[:, ::4], pred["wave"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
      np.asarray(up["image"]).reshape(29, 29, 3)[::4, ::4],
      np.asarray(pred["image"]).reshape(8, 8, 3),
      rtol=1e-4,
      atol=1e-5,
    )
    # The unobserved image was completed: MIA's fusion moved its latent from the initialisation.
    learner, state = ns["learner"], ns["state"]
    init = learner.model.initial_latents(state.params["inr"], 1)["image"]
    assert float(np.abs(np.asarray(ns["latents"]["image"]) - np.asarray(init)).max()) > 1e-6
    assert "wave MSE on the fine grid" in printed


def test_readme_library_example_runs():
  with open(os.path.join(os.path.dirname(DOC), "..", "README.md"), encoding="utf-8") as f:
    section = f.read().split("## As a library", 1)[1]
  code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
  namespace = {"__name__": "readme_example"}
  exec(compile(code, "README.md", "exec"), namespace)
  assert set(namespace["state"].params["rule"]) == {"scale", "learned_lr", "sft"}
