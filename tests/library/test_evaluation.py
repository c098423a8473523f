import numpy as np
import pytest

from data_pipelines.benchmarks import synthetic_spec
from mia_jax import evaluation


def test_summarize_by_hand():
  specs = [synthetic_spec("sine"), synthetic_spec("relu")]
  k = 1
  per = {
    "sine": {
      "generalization": np.array([[4.0, 2.0, 1.0], [0.4, 0.2, 0.1]]),
      "memorization": np.array([[1.0, 1.0, 1.0], [0.01, 0.1, 1.0]]),
      "full": np.array([[3.0, 2.0, 1.0], [0.3, 0.2, 0.1]]),
      "ratio": np.array([0.015, 0.03, 0.1]),
      "has_gen": np.array([True, True, True]),
    },
    "relu": {
      "generalization": np.array([[1.0, 1.0, 1.0], [0.2, 0.2, 9.0]]),
      "memorization": np.array([[1.0, 1.0, 1.0], [0.1, 0.1, 0.1]]),
      "full": np.array([[1.0, 1.0, 1.0], [0.2, 0.2, 0.2]]),
      "ratio": np.array([0.06, 0.07, 0.08]),
      "has_gen": np.array([True, True, False]),
    },
  }
  m = evaluation.summarize(per, specs, k)
  assert m["generalization_mse/sine/step0"] == pytest.approx(7 / 3)
  assert m["generalization_mse/sine/step1"] == pytest.approx(0.7 / 3)
  # relu's third signal has no non-support points: excluded from generalization.
  assert m["generalization_mse/relu/step1"] == pytest.approx(0.2)
  assert m["generalization_mse/avg/step1"] == pytest.approx((0.7 / 3 + 0.2) / 2)
  assert m["memorization_psnr/sine/step1"] == pytest.approx(np.mean([20.0, 10.0, 0.0]))
  # Bins after K steps; the last bin includes its upper edge (ratio 0.1).
  assert m["generalization_mse/sine/R0.01-0.02"] == pytest.approx(0.4)
  assert m["generalization_mse/sine/R0.02-0.05"] == pytest.approx(0.2)
  assert m["generalization_mse/sine/R0.05-0.1"] == pytest.approx(0.1)
  assert "generalization_mse/relu/R0.01-0.02" not in m  # empty bin: no key
  assert m["full_mse/avg/R0.05-0.1"] == pytest.approx((0.1 + 0.2) / 2)
  measures = {key.split("/")[0] for key in m}
  assert measures == set(evaluation.MEASURES)


def test_accumulator_drops_padding():
  specs = [synthetic_spec("sine")]
  acc = evaluation.Accumulator(specs, 0)
  errs = {
    "generalization": np.array([[1.0, 3.0]]),
    "memorization": np.array([[1.0, 3.0]]),
    "full": np.array([[1.0, 3.0]]),
  }
  ep = {"sine": {"mask": np.ones((2, 20))}}
  acc.add(
    {"errors": {"sine": errs}, "ratio": {"sine": np.array([0.05, 0.05])}},
    ep,
    valid=np.array([True, False]),
  )
  assert acc.num_signals == 1
  assert acc.summarize()["full_mse/sine/step0"] == 1.0
  table = evaluation.format_table(acc.summarize(), ["sine"], 0)
  assert "sine" in table and "1.00000" in table


def test_non_finite_errors_name_the_modality_and_signals():
  from mia_jax import evaluation as ev

  good = np.ones((2, 5))
  bad = good.copy()
  bad[1, 3] = np.nan
  per_signal = {
    "sine": {"generalization": good, "memorization": good, "full": good},
    "tanh": {"generalization": good, "memorization": bad, "full": good},
  }
  with pytest.raises(FloatingPointError, match=r"tanh: 1 signal\(s\), e.g. \[3\]"):
    ev.check_finite(per_signal)
  ev.check_finite({"sine": per_signal["sine"]})  # finite: no error
