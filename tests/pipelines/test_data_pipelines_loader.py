"""Tests of data_pipelines' grain loaders (`make_loader`): shapes, order, epochs, resuming."""

import numpy as np
import pytest

from data_pipelines import sources
from data_pipelines.synthetic import generate

SMALL_TEST = 32  # test signals of the "small" synthetic config (conftest's synthetic_data_dir)


def _index_source(num_signals):
  """A source whose signal i has y = i everywhere (to track indices)."""
  return [
    {"m": {"y": np.full((3, 1), i, np.float32), "amplitude": np.float32(1.0)}}
    for i in range(num_signals)
  ]


def _indices(batch):
  return batch["m"]["y"][:, 0, 0].astype(int).tolist()


def _take(loader, count):
  iterator = iter(loader)
  return [next(iterator) for _ in range(count)]


def test_loader_batch_shapes(synthetic_data_dir):
  source = sources.load_synthetic(
    synthetic_data_dir, "train", config="small", modalities=["sine", "relu"]
  )
  batches = _take(sources.make_loader(source, 16, shuffle=True, seed=0), 5)
  for batch in batches:
    assert list(batch) == ["sine", "relu"]
    for arrays in batch.values():
      assert arrays["y"].shape == (16, 200, 1)
      assert arrays["y"].dtype == np.float32
      assert arrays["amplitude"].shape == (16,)
      assert arrays["amplitude"].dtype == np.float32


def test_loader_casts_raw_floats_to_float32(synthetic_data_dir):
  # A raw tfds source gives scalar features as Python floats.
  import tensorflow_datasets as tfds

  raw = tfds.data_source(
    "synthetic_functions/small", data_dir=synthetic_data_dir, split="train", download=False
  )
  batch = next(iter(sources.make_loader(raw, 4, shuffle=False)))
  assert batch["relu"]["amplitude"].dtype == np.float32
  expected = generate.generate_signals(4, 0)["relu"]["amplitude"]
  np.testing.assert_array_equal(batch["relu"]["amplitude"], expected)
  float64 = [{"m": {"y": np.zeros((3, 1)), "amplitude": 2.0}}] * 2
  batch = next(iter(sources.make_loader(float64, 2, shuffle=False)))
  assert batch["m"]["y"].dtype == np.float32


def test_eval_loader_visits_every_signal_once_in_order(synthetic_data_dir):
  loader = sources.make_loader(
    _index_source(10), 4, shuffle=False, num_epochs=1, drop_remainder=False
  )
  batches = list(loader)
  assert [_indices(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

  source = sources.load_synthetic(synthetic_data_dir, "test", config="small")
  batches = list(sources.make_loader(source, 10, shuffle=False, num_epochs=1, drop_remainder=False))
  assert [b["tanh"]["y"].shape[0] for b in batches] == [10, 10, 10, 2]
  expected = generate.generate_signals(SMALL_TEST, 1)
  for name in generate.MODALITIES:
    for key in ("y", "amplitude"):
      np.testing.assert_array_equal(
        np.concatenate([b[name][key] for b in batches]), expected[name][key]
      )


def test_train_loader_epochs_are_permutations():
  num_signals, batch_size = 10, 4  # 2 batches an epoch, 2 signals dropped.
  batches = _take(
    sources.make_loader(_index_source(num_signals), batch_size, shuffle=True, seed=1), 8
  )
  epochs = [sum((_indices(b) for b in batches[e : e + 2]), []) for e in range(0, 8, 2)]
  for epoch in epochs:
    assert len(set(epoch)) == 8  # No repeats within an epoch.
  assert len({tuple(epoch) for epoch in epochs}) == 4  # Reshuffled each epoch.
  assert epochs[0] != list(range(8))


def test_train_loader_is_deterministic():
  source = _index_source(20)
  first = _take(sources.make_loader(source, 6, shuffle=True, seed=7), 10)
  second = _take(sources.make_loader(source, 6, shuffle=True, seed=7, num_threads=1), 10)
  other = _take(sources.make_loader(source, 6, shuffle=True, seed=8), 10)
  assert [_indices(b) for b in first] == [_indices(b) for b in second]
  assert [_indices(b) for b in first] != [_indices(b) for b in other]


@pytest.mark.parametrize("skip", [1, 3, 7])
def test_train_loader_resumes_with_skip(skip):
  source = _index_source(20)
  full = _take(sources.make_loader(source, 6, shuffle=True, seed=3), 12)
  resumed = _take(
    sources.make_loader(source, 6, shuffle=True, seed=3, skip_batches=skip), 12 - skip
  )
  assert [_indices(b) for b in resumed] == [_indices(b) for b in full[skip:]]


def test_finite_epochs_stop():
  loader = sources.make_loader(_index_source(10), 3, shuffle=True, seed=0, num_epochs=2)
  batches = list(loader)
  assert len(batches) == 2 * 3
  assert all(len(_indices(b)) == 3 for b in batches)
  assert sources.num_batches(10, 3) == 3
  assert sources.num_batches(10, 3, drop_remainder=False) == 4


def test_loader_with_worker_processes_matches(tmp_path):
  path = tmp_path / "signals.npz"
  sources.save_npz(path, generate.generate_signals(24, seed=0))
  source = sources.NpzSource(path, modalities=["gaussian"])
  expected = _take(sources.make_loader(source, 8, shuffle=True, seed=2), 4)
  iterator = iter(sources.make_loader(source, 8, shuffle=True, seed=2, worker_count=2))
  try:
    for want in expected:
      got = next(iterator)
      np.testing.assert_array_equal(got["gaussian"]["y"], want["gaussian"]["y"])
      np.testing.assert_array_equal(got["gaussian"]["amplitude"], want["gaussian"]["amplitude"])
      del got  # Worker batches live in shared memory; release before close.
  finally:
    iterator.close()


def test_loader_argument_errors():
  source = _index_source(5)
  with pytest.raises(ValueError, match="seed"):
    sources.make_loader(source, 2, shuffle=True)
  with pytest.raises(ValueError, match="No batch of 8 .* 5 signals"):
    sources.make_loader(source, 8, shuffle=False)
  with pytest.raises(ValueError, match="batch_size"):
    sources.make_loader(source, 0, shuffle=False)
  with pytest.raises(ValueError, match="num_epochs"):
    sources.make_loader(source, 2, shuffle=False, num_epochs=0)
  # A partial batch is allowed without drop_remainder.
  batches = list(sources.make_loader(source, 8, shuffle=False, num_epochs=1, drop_remainder=False))
  assert [_indices(b) for b in batches] == [[0, 1, 2, 3, 4]]
