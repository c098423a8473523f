"""Property-based tests of the run's inputs (docs/reliability.md, "Property tests").

The enumerated sweep (tests/end_to_end/test_reliability.py) checks the inputs someone thought
of; these generate them. For every example:

* config values, drawn from each field's type and its edges (0, -1, 2^32, NaN, inf, 1e300, empty
  and odd strings): `train.prepare` either accepts the config or raises a ValueError (or
  FileNotFoundError) whose one line names the field or the value, and writes nothing;
* a user's arrays passed from Python, of random dtypes, shapes, names and values (NaN, inf, huge,
  amplitudes of any shape and sign): the run either trains to finite metrics for every modality
  it was given, or raises such a one-line error and leaves no workdir behind.

CI runs a few dozen examples per property, the same ones each time (derandomized). A longer
search, with new examples each run:

  MIA_JAX_PROPERTY_EXAMPLES=500 MIA_JAX_PROPERTY_RANDOM=1 \
    python -m pytest tests/end_to_end/test_properties.py
"""

import math
import os
import tempfile

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest

from experiments.configs import arrays as arrays_config
from experiments.configs import synthetic
from experiments.run import train, validate

EXAMPLES = int(os.environ.get("MIA_JAX_PROPERTY_EXAMPLES", "0"))
SETTINGS = dict(
  deadline=None,
  database=None,
  derandomize=not os.environ.get("MIA_JAX_PROPERTY_RANDOM"),
  suppress_health_check=[
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
  ],
)
ERRORS = (ValueError, FileNotFoundError)  # the driver's deliberate, one-line errors


def _leaves(config, prefix=""):
  out = {}
  for k, v in config.items():
    key = f"{prefix}{k}"
    if hasattr(v, "items"):
      out.update(_leaves(v, key + "."))
    else:
      out[key] = v
  return out


BASE = _leaves(synthetic.get_config("method=mia,smoke"))
FIELDS = sorted(k for k, v in BASE.items() if isinstance(v, (bool, int, float, str)))
INT_EDGES = [0, 1, -1, 2, 3, 7, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, -(2**63)]
FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 1e300, math.nan, math.inf, -math.inf]
STR_EDGES = [
  "",
  " ",
  "none",
  "avg",
  "mia",
  "x",
  "a,b",
  "a=1",
  "1:2:3",
  "sine+tanh",
  "+",
  "-1",
  "nan",
  "0",
  "0.5",
  "1e400",
  "\u00e9\u00e8",
  "a/b",
]


def _value(current):
  if isinstance(current, bool):
    return st.booleans()
  if isinstance(current, int):
    return st.one_of(st.sampled_from(INT_EDGES), st.integers(-10, 10**6))
  if isinstance(current, float):
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(), st.integers(-3, 3))
  return st.one_of(st.sampled_from(STR_EDGES), st.text(max_size=10))


@st.composite
def config_changes(draw):
  field = draw(st.sampled_from(FIELDS))
  return field, draw(_value(BASE[field]))


def _set(config, field, value):
  *parents, last = field.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[last] = value


def _assert_clear(error, *names):
  text = str(error)
  assert text.strip(), repr(error)
  first = text.strip().splitlines()[0]
  assert any(n and n in text for n in names), (names, first)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
  """Runs the test in a folder of its own: a drawn string may be a relative path (data_dir)."""
  monkeypatch.chdir(tmp_path)
  return tmp_path


@settings(max_examples=EXAMPLES or 40, **SETTINGS)
@given(change=config_changes())
def test_config_values_are_accepted_or_named(change, synthetic_data_dir, in_tmp):
  field, value = change
  config = synthetic.get_config("method=mia,smoke")
  config.data.data_dir = synthetic_data_dir
  config.data.num_test_signals = 8
  try:
    _set(config, field, value)
  except TypeError:
    event("the config system refuses the type")
    return  # the config system refuses the type itself (a flag of the wrong type: exit 2)
  workdir = os.path.join(tempfile.mkdtemp(dir=in_tmp), "run")  # one per example
  try:
    train.prepare(config, workdir)
    event("accepted")
  except ERRORS as e:
    event("refused")
    _assert_clear(e, field.split(".")[-1], repr(value), str(value))
  assert not os.path.exists(workdir)  # prepare writes nothing


FLOAT_DTYPES = [np.float32, np.float64, np.float16]
OTHER_DTYPES = [np.int32, np.uint8, np.bool_, np.complex64]
GOOD_NAMES = ["img", "sig", "x1", "temperature"]
ODD_NAMES = ["avg", "", " ", "a/b", "a+b", "\u00e9"]


@st.composite
def layouts(draw):
  """A modality's grid, channels and dtype: mostly usable, sometimes degenerate."""
  grid = draw(
    st.lists(
      st.integers(2, 6) if draw(st.integers(0, 5)) else st.integers(0, 6), min_size=1, max_size=2
    )
  )
  channels = draw(
    st.sampled_from([[1], [2], [3], [], [0]] if draw(st.integers(0, 4)) == 0 else [[1], [2]])
  )
  dtype = draw(st.sampled_from(FLOAT_DTYPES if draw(st.integers(0, 4)) else OTHER_DTYPES))
  return grid, channels, dtype


@st.composite
def modality(draw, n, layout):
  grid, channels, dtype = layout
  if draw(st.integers(0, 9)) == 0:  # the other split's layout differs
    grid, channels, dtype = draw(layouts())
  shape = (n, *grid, *channels)
  if np.issubdtype(dtype, np.floating):
    elements = st.floats(-2, 2, width=16 if dtype == np.float16 else 32)
    y = draw(hnp.arrays(dtype, shape, elements=elements))
    special = draw(st.sampled_from(["none"] * 6 + ["nan", "inf", "huge"]))
    if special != "none" and y.size:
      y.flat[draw(st.integers(0, y.size - 1))] = {
        "nan": np.nan,
        "inf": np.inf,
        "huge": 6e4 if dtype == np.float16 else 1e30,
      }[special]
  else:
    y = draw(hnp.arrays(dtype, shape))
  if draw(st.integers(0, 4)):
    return y
  amp_shape = draw(st.sampled_from([(n,)] * 4 + [(n, 1), (), (n + 1,)]))
  amplitude = draw(hnp.arrays(np.float64, amp_shape, elements=st.floats(0.1, 3)))
  if amplitude.size and draw(st.integers(0, 3)) == 0:  # one bad amplitude
    amplitude.flat[draw(st.integers(0, amplitude.size - 1))] = draw(
      st.sampled_from([0.0, -1.0, math.nan, math.inf])
    )
  return {"y": y, "amplitude": amplitude}


@st.composite
def datasets(draw):
  names = draw(
    st.lists(
      st.one_of(
        st.sampled_from(GOOD_NAMES),
        st.sampled_from(GOOD_NAMES),
        st.sampled_from(GOOD_NAMES),
        st.sampled_from(ODD_NAMES),
        st.text(max_size=6),
      ),
      min_size=1,
      max_size=2,
      unique=True,
    )
  )
  n_train = draw(st.integers(4, 12) if draw(st.integers(0, 5)) else st.integers(0, 4))
  n_test = draw(st.integers(1, 6) if draw(st.integers(0, 5)) else st.integers(0, 1))
  split = {"train": {}, "test": {}}
  for name in names:
    layout = draw(layouts())
    split["train"][name] = draw(modality(n_train, layout))
    split["test"][name] = draw(modality(n_test, layout))
  if draw(st.integers(0, 9)) == 0:  # a modality in one split only
    split["test"].pop(names[0])
  return split


def _finite_results(results, names):
  metrics = results["metrics"]
  for name in names:
    keys = [k for k in metrics if k.startswith("generalization_mse/") and f"/{name}/" in k]
    assert keys, (name, sorted(metrics)[:10])
    assert all(math.isfinite(metrics[k]) for k in keys), {k: metrics[k] for k in keys}


_RNG = np.random.default_rng(0)
TRAINS = {  # examples that train, whatever the derandomized draws are: the property's other half
  "train": {
    "img": _RNG.random((8, 4, 3, 2), np.float32),
    "sig": {"y": _RNG.random((8, 5, 1)), "amplitude": np.full(8, 0.5)},
  },
  "test": {
    "img": _RNG.random((4, 4, 3, 2), np.float32),
    "sig": {"y": _RNG.random((4, 5, 1)), "amplitude": np.full(4, 0.5)},
  },
}


@settings(max_examples=EXAMPLES or 20, **SETTINGS)
@given(data=datasets())
@example(data=TRAINS)
def test_own_arrays_train_to_finite_metrics_or_are_named(data, in_tmp):
  config = arrays_config.get_config("smoke")
  config.num_train_steps = 2
  config.checkpoint_every_steps = 2
  config.model.ff_dim = 8
  config.model.hidden = 8
  workdir = os.path.join(tempfile.mkdtemp(dir=in_tmp), "run")  # one per example
  try:
    results = train.train_and_evaluate(config, workdir, data=data)
  except ERRORS as e:
    event("refused: " + str(e)[:50])
    # Each message names the modality (its repr, as a blank or odd name is only clear quoted),
    # or is about the number of signals.
    _assert_clear(e, *[repr(n) for n in data["train"]], "signals")
    assert not os.path.exists(workdir), os.listdir(workdir)
    return
  event("trained")
  _finite_results(results, list(data["train"]))


def test_the_properties_are_not_vacuous():
  # The properties above pass vacuously if no field is drawn or no error is recognised: the
  # fields include the checked ones, and a value the checks refuse is named.
  assert {"model.ff_dim", "learning_rate", "method", "data.data_dir"} <= set(FIELDS)
  config = synthetic.get_config("method=mia,smoke")
  _set(config, "model.ff_dim", 7)
  with pytest.raises(ValueError) as e:
    validate.validate_config(config)
  _assert_clear(e.value, "ff_dim")
