"""Grain loaders: a source of signals as a deterministic iterator of numpy batches.

`make_loader` turns a source into batches
`{name: {"y": [B, N_m, d_out_m], "amplitude": [B]}}`, and can resume a
training run at any step (see its docstring).
"""

import math

from absl import flags
import grain
import numpy as np

from data_pipelines.signals import Source, stack_signals


def dataset_size(source: Source) -> int:
  """Returns the number of signals in `source`."""
  return len(source)


def num_batches(num_signals: int, batch_size: int, drop_remainder: bool = True) -> int:
  """Returns the number of batches in one epoch of `num_signals` signals."""
  if drop_remainder:
    return num_signals // batch_size
  return math.ceil(num_signals / batch_size)


class _ShardRows(grain.MapDataset):
  """Shard `index` of every global batch of `parent`: of each epoch's consecutive blocks of
  `batch_size` elements (the remainder dropped), the rows `[index * b, (index + 1) * b)`,
  `b = batch_size // count`. Batched by `b`, the k-th batch is the k-th global batch's shard."""

  def __init__(self, parent, batch_size: int, count: int, index: int):
    super().__init__(parent)
    self._global, self._local, self._index = batch_size, batch_size // count, index
    self._length = len(parent) // batch_size * self._local

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, k):
    if isinstance(k, slice):
      return self.slice(k)
    epoch, k = divmod(k, self._length)  # later epochs: the parent's reshuffled ones
    batch, row = divmod(k, self._local)
    return self._parent[
      epoch * len(self._parent) + batch * self._global + self._index * self._local + row
    ]


def make_loader(
  source: Source,
  batch_size: int,
  *,
  shuffle: bool,
  seed: int | None = None,
  num_epochs: int | None = None,
  drop_remainder: bool = True,
  skip_batches: int = 0,
  num_shards: int = 1,
  shard_index: int = 0,
  worker_count: int = 0,
  num_threads: int = 1,
  prefetch_buffer_size: int = 8,
) -> grain.IterDataset:
  """Returns a deterministic iterator of batches of `source`.

  The pipeline is `shuffle -> batch -> repeat`: each epoch is a fresh
  permutation (the seed folded with the epoch number), cut into batches that
  never span two epochs. The b-th batch depends only on `(source, batch_size,
  shuffle, seed, drop_remainder, b)`, so

  * the same arguments give the same batches, whatever the number of threads
    or workers, and
  * a training run resumed after `step` batches continues exactly where it
    stopped when it passes `skip_batches=step`: skipping is an index offset
    (grain `MapDataset` slicing), nothing is read to get there.

  For evaluation use `shuffle=False, num_epochs=1, drop_remainder=False`:
  every signal exactly once, in order; the last batch may be smaller.

  Args:
    source: random-access signals (`len`, `source[i]`).
    batch_size: signals per batch B.
    shuffle: whether to permute the signals (each epoch differently).
    seed: shuffle seed, in [0, 2**32); required when `shuffle`.
    num_epochs: passes over the data; None repeats forever.
    drop_remainder: drop each epoch's last batch if it has fewer than B
      signals (keeps shapes static under `jit`).
    skip_batches: number of batches to skip at the start (the training step
      to resume from).
    num_shards, shard_index: for one process of several (multi-host data
      parallelism): every global batch of `batch_size` is cut into
      `num_shards` equal blocks of rows, and this loader reads and yields only
      block `shard_index` (`batch_size // num_shards` signals). Concatenating
      the shards' k-th batches gives the one-process loader's k-th batch.
      Needs `drop_remainder` and `batch_size` divisible by `num_shards`.
    worker_count: worker processes for reading and batching; 0 reads in this
      process (with `num_threads` threads). Outside `absl.app.run`, a value
      > 0 marks the absl flags as parsed (grain reads one of them).
    num_threads: reader threads per process; 0 reads on demand in the
      calling thread. One background thread overlaps reading with the
      training step; more rarely help, since decoding holds the GIL.
    prefetch_buffer_size: batches read ahead per process.

  Returns:
    A grain `IterDataset` yielding `{name: {"y": float32 [B, N_m, d_out_m],
    "amplitude": float32 [B]}}` (the structure of `source`'s elements). Its
    iterators support grain's `get_state`/`set_state` checkpointing too.

  Raises:
    ValueError: a bad batch size, seed, epoch count or skip, or
      `drop_remainder` with fewer signals than one batch.
  """
  size = len(source)
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  if shuffle and seed is None:
    raise ValueError("A shuffled loader needs a seed; got seed=None.")
  if seed is not None and not 0 <= seed < 2**32:
    raise ValueError(f"seed must be in [0, 2**32), got {seed}.")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}.")
  if skip_batches < 0:
    raise ValueError(f"skip_batches must be >= 0, got {skip_batches}.")
  if worker_count < 0:
    raise ValueError(f"worker_count must be >= 0, got {worker_count}.")
  _check_shards(batch_size, num_shards, shard_index)
  if num_shards > 1 and not drop_remainder:
    raise ValueError(
      "A sharded loader needs drop_remainder=True (use make_eval_loader to "
      "evaluate on several processes)."
    )
  if num_batches(size, batch_size, drop_remainder) == 0:
    raise ValueError(
      f"No batch of {batch_size} can be made from {size} signals (drop_remainder={drop_remainder})."
    )

  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  if num_shards > 1:
    ds = _ShardRows(ds, batch_size, num_shards, shard_index)
    batch_size //= num_shards
  ds = ds.batch(batch_size, drop_remainder=drop_remainder, batch_fn=stack_signals)
  if num_epochs != 1:
    ds = ds.repeat(num_epochs)
  if skip_batches:
    ds = ds.slice(slice(skip_batches, None))
  loader = ds.to_iter_dataset(
    grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size)
  )
  if worker_count > 0:
    if not flags.FLAGS.is_parsed():
      # grain reads an absl flag when it starts worker processes and fails
      # with UnparsedFlagAccessError outside `absl.app.run` (tests,
      # notebooks); marking the flags parsed makes it see their defaults.
      flags.FLAGS.mark_as_parsed()
    loader = loader.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return loader


def _check_shards(batch_size: int, num_shards: int, shard_index: int) -> None:
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise ValueError(
      f"shard_index must be in [0, num_shards) and num_shards >= 1, got "
      f"shard_index={shard_index}, num_shards={num_shards}."
    )
  if batch_size % num_shards:
    raise ValueError(
      f"batch_size={batch_size} must be divisible by num_shards={num_shards} "
      "(each process reads an equal part of every batch)."
    )


def make_eval_loader(
  source: Source,
  batch_size: int,
  num_signals: int | None = None,
  *,
  num_shards: int = 1,
  shard_index: int = 0,
  num_threads: int = 1,
) -> grain.IterDataset:
  """Every one of the first `num_signals` signals once, in order, in full batches.

  Batch k holds signals `k * batch_size ...`; the last batch is padded with copies of the last
  signal, so every batch has one shape (one compiled program). With `num_shards > 1`, this
  loader reads and yields only rows `[shard_index * b, (shard_index + 1) * b)` of each batch,
  `b = batch_size // num_shards` (one process's part of a multi-host evaluation).

  Returns:
    A grain `IterDataset` of `(batch, rows)`: the batch as `make_loader`'s, and `rows`, int64
    [b], the signal index of each row (`>= num_signals` for a padding row).
  """
  n = len(source) if num_signals is None else min(num_signals, len(source))
  if batch_size < 1 or n < 1:
    raise ValueError(
      f"Need batch_size >= 1 and at least one signal, got batch_size={batch_size} and {n} signals."
    )
  _check_shards(batch_size, num_shards, shard_index)
  local = batch_size // num_shards

  def read(k: int):
    rows = k * batch_size + shard_index * local + np.arange(local)
    return stack_signals([source[int(i)] for i in np.minimum(rows, n - 1)]), rows

  ds = grain.MapDataset.range(math.ceil(n / batch_size)).map(read)
  return ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2))
