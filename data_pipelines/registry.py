"""The datasets the training driver can load, by tfds dataset name (`config.data.name`).

Every loader has the signature of `synthetic.load_synthetic`::

  loader(data_dir, split, *, config, modalities, in_memory) -> Source

and returns a source of `{name: {"y": float32 [N_m, d_out_m], "amplitude": float32 []}}`
(see `data_pipelines.signals`), building the tfds dataset first where that needs no download.
Loaders are named here as "module:function" and imported on first use, so a dataset that is
not used costs nothing (no import of its builder, no optional dependency).

Adding a dataset is adding one line to `LOADERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
import importlib
import os
from typing import Protocol

from data_pipelines.signals import Source


class Loader(Protocol):
  """Loads one split of a dataset as a random-access source."""

  def __call__(
    self,
    data_dir: str | os.PathLike[str] | None,
    split: str,
    *,
    config: str,
    modalities: Sequence[str] | None,
    in_memory: bool,
  ) -> Source: ...


LOADERS: dict[str, str] = {
  # Generated locally; no download.
  "synthetic_functions": "data_pipelines.synthetic.synthetic:load_synthetic",
  "shapes_trimodal": "data_pipelines.shapes.shapes:load_shapes",
  "avdigits": "data_pipelines.avdigits.avdigits:load_avdigits",
  # Real datasets, built from files the user puts in place (see docs/datasets.md):
  "celeba_trimodal": "data_pipelines.celeba.loader:load_celeba",
  "avmnist": "data_pipelines.avmnist.loader:load_avmnist",
  "era5": "data_pipelines.era5.loader:load_era5",
}


def check_name(name: str) -> None:
  """Raises a ValueError listing the known datasets unless `name` is one (imports nothing)."""
  if name not in LOADERS:
    raise ValueError(f"Unknown dataset {name!r}; allowed: {', '.join(sorted(LOADERS))}.")


def get_loader(name: str) -> Loader:
  """Returns the loader of dataset `name`, importing its module.

  Raises:
    ValueError: `name` is not a known dataset (the message lists the known ones).
  """
  check_name(name)
  module_name, function_name = LOADERS[name].split(":")
  return getattr(importlib.import_module(module_name), function_name)


def load(
  name: str,
  data_dir: str | os.PathLike[str] | None,
  split: str,
  *,
  config: str = "default",
  modalities: Sequence[str] | None = None,
  in_memory: bool = False,
) -> Source:
  """Loads split `split` of dataset `name` (see the loader's docstring for its configs)."""
  return get_loader(name)(
    data_dir, split, config=config, modalities=modalities, in_memory=in_memory
  )
