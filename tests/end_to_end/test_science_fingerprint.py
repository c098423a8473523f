"""The science fingerprint (`tests/science_fingerprint.py`): a small fixed training run of every
method computes what it computed when the fingerprint was stored.

A failure means the numbers a run computes have changed. For a refactor that is a bug. For an
intended change (a new initialisation, a fixed formula), store the new fingerprint in the same
commit and say why in the commit message and CHANGELOG:

    python -m tests.science_fingerprint --update
"""

import json

import numpy as np
import pytest

from tests import science_fingerprint as fp

with open(fp.PATH, encoding="utf-8") as f:
  STORED = json.load(f)


def test_stored_fingerprint_covers_every_case():
  assert STORED["steps"] == fp.STEPS
  assert sorted(STORED["cases"]) == sorted(fp.CASES)


@pytest.mark.parametrize("case", sorted(fp.CASES))
def test_training_computes_the_stored_fingerprint(case):
  want = STORED["cases"][case]
  got = fp.fingerprint(case)
  bad = []
  for step, (w, g) in enumerate(zip(want["loss"], got["loss"])):
    if not np.isclose(g, w, rtol=fp.RTOL, atol=fp.ATOL):
      bad.append(f"loss at step {step}: {g!r}, stored {w!r}")
  assert sorted(got["metrics"]) == sorted(want["metrics"])
  for key, w in want["metrics"].items():
    if not np.isclose(got["metrics"][key], w, rtol=fp.RTOL, atol=fp.ATOL):
      bad.append(f"{key}: {got['metrics'][key]!r}, stored {w!r}")
  assert not bad, (
    f"The {case!r} run computes other numbers than the stored science fingerprint "
    f"({len(bad)} differ; first: {bad[:3]}). If the change is intended, run "
    "`python -m tests.science_fingerprint --update` and say why in the commit."
  )
