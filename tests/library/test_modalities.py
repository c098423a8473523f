import numpy as np
import pytest

from data_pipelines import benchmarks
from mia_jax.modalities import ModalitySpec, group_modalities
from tests.helpers import image_spec, wave_spec


def test_coordinates_span_minus_one_to_one_row_major():
  spec = ModalitySpec("img", d_in=2, grid_shape=(3, 4), d_out=1)
  c = spec.coordinates()
  assert c.shape == (12, 2)
  np.testing.assert_allclose(c[0], [-1, -1])
  np.testing.assert_allclose(c[1], [-1, -1 / 3], atol=1e-6)  # last axis varies fastest
  np.testing.assert_allclose(c[-1], [1, 1])


def test_synthetic_max_support_is_floor_of_rmax_n():
  spec = benchmarks.synthetic_spec("sine")
  assert spec.num_points == 200 and spec.max_support == 20


def test_grouping_by_signature_keeps_order():
  specs = [
    benchmarks.synthetic_spec("sine"),
    image_spec("a"),
    benchmarks.synthetic_spec("relu"),
    image_spec("b"),
    wave_spec("w"),
  ]
  groups = group_modalities(specs)
  assert [g.names for g in groups] == [("sine", "relu"), ("a", "b"), ("w",)]
  assert [g.name for g in groups] == ["g0", "g1", "g2"]


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(name="x", d_in=2, grid_shape=(4,), d_out=1), "grid_shape"),
    (dict(name="x", d_in=1, grid_shape=(4,), d_out=1, error_normaliser="max"), "allowed: none"),
    (dict(name="x/y", d_in=1, grid_shape=(4,), d_out=1), "contain no"),
    (dict(name="x", d_in=1, grid_shape=(4,), d_out=1, ratio_range=(0.5, 0.2)), "ratio_range"),
  ],
)
def test_bad_spec_raises(kwargs, match):
  with pytest.raises(ValueError, match=match):
    ModalitySpec(**kwargs)


def test_unknown_modality_and_benchmark_errors_list_allowed():
  with pytest.raises(ValueError, match="'cosine'.*allowed: sine, tanh, gaussian, relu"):
    benchmarks.benchmark_specs("synthetic", "sine+cosine")
  with pytest.raises(ValueError, match="allowed: synthetic"):
    benchmarks.benchmark_specs("imagenet", "rgb")
  with pytest.raises(ValueError, match="twice"):
    benchmarks.benchmark_specs("synthetic", "sine+sine")
  assert [s.name for s in benchmarks.benchmark_specs("synthetic", "relu+sine")] == ["relu", "sine"]
