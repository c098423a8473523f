"""The sources of signals and the loader that batches them, under one name (`sources.X`).

A *source* is a random-access sequence of signals: `len(source)` and
`source[i] -> {name: {"y": float32 [N_m, d_out_m], "amplitude": float32 []}}`. Each piece lives in
its own module; this one gathers them for `from data_pipelines import sources`:

* `signals`: `Source`, `ArraySource` (signals in memory; `to_memory` reads any source into one),
  `ModalitySubset` (a source restricted to some modalities);
* `npz`: a user's own arrays, `NpzSource` (an `.npz` file, written by `save_npz`) and
  `GridSource` (the same arrays passed from Python);
* `batching`: `make_loader`, a deterministic, resumable iterator of numpy batches (a process's
  shard of each, on several hosts), and `make_eval_loader`, each signal once in full batches;
* `synthetic.synthetic`: `load_synthetic`, the tfds `synthetic_functions` dataset.
"""

from data_pipelines.batching import dataset_size, make_eval_loader, make_loader, num_batches
from data_pipelines.npz import GridSource, NpzSource, save_npz
from data_pipelines.signals import ArraySource, ModalitySubset, Signal, Source, to_memory
from data_pipelines.synthetic.synthetic import load_synthetic

__all__ = [
  "ArraySource",
  "GridSource",
  "ModalitySubset",
  "NpzSource",
  "Signal",
  "Source",
  "dataset_size",
  "load_synthetic",
  "make_eval_loader",
  "make_loader",
  "num_batches",
  "save_npz",
  "to_memory",
]
