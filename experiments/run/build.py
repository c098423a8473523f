"""Building a run from its experiment config: the learner and the data sources, by name.

The library takes objects (`MultimodalINR`, an `UpdateRule`, `MetaConfig`, modality specs); this
module reads an experiment's `ConfigDict` (`experiments/configs`) and builds them:

* `learner_from_config(config, specs=None)`: the `MetaLearner` of `config.model`, `config.rule`
  (`method=...`, `ablation=...`) and the modalities of `config.benchmark`;
* `build_sources(config, split)`: a split's data source (a registered dataset or the user's
  `.npz`/arrays), and for a run on the user's own arrays `own_data_sources` / `own_data_specs`;
* `build_learner(config, data=None)`: the learner `train.train_and_evaluate` builds.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from data_pipelines import benchmarks, registry, sources
from experiments import methods, syntax
from mia_jax import arrays as arrays_lib
from mia_jax import modalities as modalities_lib
from mia_jax.meta_step import MetaConfig, MetaLearner
from mia_jax.model import ModelConfig, MultimodalINR


def model_config_from(
  fields: Mapping, names: Sequence[str] | None = None, known: Sequence[str] | None = None
) -> ModelConfig:
  """The `ModelConfig` of the flat `config.model` fields.

  Args:
    fields: `config.model.to_dict()`; an unknown field is a clear error.
    names: the run's modalities: `ff_sigmas` ("rgb=1,wav=30", `syntax.parse_sigmas`) is kept to
      these, so one preset serves every modality subset (e.g. "rgb=1" in a wav-alone run). None:
      no entry is dropped.
    known: the modalities an entry may name (the benchmark's, and the run's); None: any.
  """
  fields = dict(fields)
  allowed = sorted(f.name for f in dataclasses.fields(ModelConfig))
  unknown = sorted(set(fields) - set(allowed))
  if unknown:
    raise ValueError(f"Unknown model config fields {unknown}; allowed: {allowed}.")
  text = fields.pop("ff_sigmas", "") or ""
  if not isinstance(text, str):
    raise ValueError(
      f"config.model.ff_sigmas={text!r} is not allowed; expected 'name=sigma,...' "
      "(e.g. 'rgb=1,wav=30')."
    )
  sigmas = syntax.parse_sigmas(text, known)
  if names is not None:
    sigmas = {n: s for n, s in sigmas.items() if n in names}
  return ModelConfig(**fields, ff_sigmas=sigmas)


def learner_from_config(
  config, specs: Sequence[modalities_lib.ModalitySpec] | None = None
) -> MetaLearner:
  """Builds a `MetaLearner` from an experiment config (see `experiments/configs`).

  `specs`: the modalities; None means the config's benchmark table (`config.benchmark`,
  `config.modalities`). A run on the user's own arrays passes the specs built from them.
  """
  if specs is None:
    specs = benchmarks.benchmark_specs(config.benchmark, config.modalities)
  names = [s.name for s in specs]
  # A preset's per-modality entries (e.g. ff_sigmas="rgb=1") may name the benchmark's other
  # modalities, also when a run reads only some of them from its own files.
  known = list(benchmarks.BENCHMARKS.get(config.benchmark, ((), None))[0])
  model_config = model_config_from(
    config.model.to_dict(), names, known + [n for n in names if n not in known]
  )
  return MetaLearner(
    MultimodalINR.from_config(specs, model_config),
    methods.build_rule(config.method, config.rule.to_dict()),
    MetaConfig(
      inner_steps=config.inner_steps,
      first_order=config.first_order,
      remat=config.remat,
      scan_unroll=config.get("scan_unroll", 1),
      learning_rate=config.learning_rate,
      grad_clip=config.get("grad_clip", 0.0),
      lr_schedule=config.get("lr_schedule", "constant"),
      warmup_steps=config.get("warmup_steps", 0),
      decay_steps=config.num_train_steps,
      skip_nonfinite=config.get("skip_nonfinite", False),
      support_counts=config.get("support_counts", "floor"),
      initial_loss=config.get("initial_loss", False),
      compute_dtype=config.get("compute_dtype", "float32"),
    ),
  )


def own_data(config, data) -> bool:
  """Whether the run's modalities come from the user's arrays (an .npz, or arrays passed in)."""
  return data is not None or config.data.source == "npz"


def build_sources(
  config,
  split: str,
  data: Mapping[str, Mapping] | None = None,
  modalities: Sequence[str] | None = None,
):
  """The data source of a split, from `config.data` (a tfds builder or a user's `.npz`), or from
  `data[split]`: arrays passed from Python, `{name: [num_signals, *grid, d_out]}` (or `{name:
  {"y": ..., "amplitude": [num_signals]}}`), read as an `.npz` would be.

  `modalities`: the names to read; None means `config.modalities`, where "" (own data only)
  means every modality in the data.
  """
  if modalities is None:
    modalities = [n for n in config.modalities.split("+") if n] or None
  if own_data(config, data):
    grid_ndims = _per_modality_field(config, "grid_ndims", int, bare=False)[1]
    if data is not None:
      if config.data.npz_train or config.data.npz_test:
        raise ValueError(
          "Arrays were passed and config.data.npz_train/npz_test name files; give one or the other."
        )
      if not isinstance(data, Mapping) or split not in data:
        raise ValueError(
          f"data needs a {split!r} entry ({{'train': {{name: array}}, 'test': "
          f"...}}); got {list(data) if isinstance(data, Mapping) else data!r}."
        )
      return sources.GridSource(data[split], modalities, grid_ndims, where=f"the {split} arrays")
    path = config.data.npz_train if split == "train" else config.data.npz_test
    if not path:
      raise ValueError(f"data.source='npz' needs data.npz_{split} (a path to an .npz file).")
    return sources.NpzSource(path, modalities=modalities, grid_ndims=grid_ndims)
  if config.data.source != "tfds":
    raise ValueError(f"Unknown data.source {config.data.source!r}; allowed: tfds, npz.")
  loader = registry.get_loader(config.data.name)  # a ValueError listing the known datasets
  # Small benchmarks are read into memory once: decoding records costs more than a train step.
  return loader(
    config.data.data_dir or None,
    split,
    config=config.data.builder_config,
    modalities=modalities,
    in_memory=True,
  )


def data_name(source) -> str:
  """How errors name a source: its file, or the arrays passed."""
  path = getattr(source, "path", None)
  return repr(path) if path else "the arrays passed"


def own_data_sources(config, data: Mapping[str, Mapping] | None = None):
  """The train and test sources of a run on the user's arrays, checked to match.

  The test split is read with the train split's modalities and must have the same grids and
  channels; an error names both files. Both splits' values must be finite numbers.
  """
  train_source = build_sources(config, "train", data)
  try:
    test_source = build_sources(config, "test", data, modalities=train_source.modalities)
  except ValueError as e:
    raise ValueError(
      f"The test data do not match the train data {data_name(train_source)} "
      f"(modalities {list(train_source.modalities)}): {e}"
    ) from None
  layouts = []
  for split, source in (("train", train_source), ("test", test_source)):
    try:  # values: numbers, finite, not empty
      layouts.append({n: arrays_lib.array_layout(n, a) for n, a in source.grid_arrays.items()})
    except ValueError as e:
      raise ValueError(f"In the {split} data {data_name(source)}: {e}") from None
  for name in train_source.modalities:
    if train_source.has_amplitude[name] != test_source.has_amplitude[name]:
      has, lacks = (
        (train_source, test_source)
        if train_source.has_amplitude[name]
        else (test_source, train_source)
      )
      raise ValueError(
        f"Modality {name!r} has amplitudes ({name}_amplitude) in {data_name(has)} but not in "
        f"{data_name(lacks)}; give them in both splits or in neither (they normalise the "
        "errors, so both splits must be measured alike)."
      )
    want, have = layouts[0][name], layouts[1][name]
    if have != want:
      raise ValueError(
        f"Modality {name!r} has grid {want[0]} with {want[1]} channels in the train data "
        f"{data_name(train_source)} but grid {have[0]} with {have[1]} channels in the test "
        f"data {data_name(test_source)}; both splits need the same grid and channels."
      )
  return train_source, test_source


def own_data_specs(config, train_source) -> tuple[modalities_lib.ModalitySpec, ...]:
  """The modality specs of a run on the user's arrays: grids and channels from the train split,
  the rest from `config.data` (`ratio_range`, `ratio_bins`, `output_bias`, `error_normaliser`;
  see `experiments/configs/common.py`) and the defaults of `mia_jax.arrays.specs_from_arrays`.

  A field left "" for a modality of the configured benchmark (e.g. the synthetic functions saved
  to an .npz) takes the benchmark's value; `error_normaliser` left "" is "amplitude" where the
  data give the modality's amplitude. Per-modality Fourier sigmas are `model.ff_sigmas`.
  """
  names = list(train_source.modalities)
  known = {}
  if config.benchmark in benchmarks.BENCHMARKS:
    bench_names, factory = benchmarks.BENCHMARKS[config.benchmark]
    known = {n: factory(n) for n in names if n in bench_names}
  parsers = dict(
    ratio_range=_ratio_range, ratio_bins=_ratio_bin_edges, output_bias=float, error_normaliser=str
  )
  kwargs = {}
  for field, parse in parsers.items():
    bare, named = _per_modality_field(config, field, parse)
    unknown = [n for n in named if n not in names]
    if unknown:
      raise ValueError(
        f"data.{field} names {unknown}, which the train data "
        f"{data_name(train_source)} do not have; they have {names}."
      )
    kwargs[field] = {n: named.get(n, bare) for n in names}
    for n in names:
      if kwargs[field][n] is None and n in known:
        kwargs[field][n] = getattr(known[n], field)
  for n in names:
    if kwargs["error_normaliser"][n] is None and train_source.has_amplitude[n]:
      kwargs["error_normaliser"][n] = "amplitude"
  kwargs["fourier_sigma"] = {n: known[n].fourier_sigma for n in known}
  return arrays_lib.specs_from_arrays(train_source.grid_arrays, **kwargs)


def build_learner(config, data: Mapping[str, Mapping] | None = None) -> MetaLearner:
  """The learner `train_and_evaluate` builds: `learner_from_config`, with the specs of
  the user's arrays when the run reads them (`config.data.source="npz"`, or `data`)."""
  if not own_data(config, data):
    return learner_from_config(config)
  train_source, _ = own_data_sources(config, data)
  return learner_from_config(config, specs=own_data_specs(config, train_source))


def _per_modality_field(config, field: str, parse, bare: bool = True):
  """Parses `config.data.<field>`, "VALUE" or "name=VALUE,...": (bare value or None, {name: v})."""
  text = str(config.data.get(field, "") or "")
  default, named = None, {}
  for item in filter(None, (t.strip() for t in text.split(","))):
    name, sep, value = (t.strip() for t in item.partition("="))
    if not sep:
      name, value = None, name
    try:
      if name is None and not bare:
        raise ValueError("give name=value")
      if not value or (sep and not name):
        raise ValueError("empty name or value")
      parsed = parse(value)
    except ValueError as e:
      example = "gray=2" if not bare else "0.5,sig=0"
      raise ValueError(
        f"data.{field} entry {item!r} is malformed ({e}); expected "
        f"{'VALUE or ' if bare else ''}NAME=VALUE entries, comma-separated, e.g. "
        f"{example!r}."
      ) from None
    if (name in named) if name else (default is not None):
      raise ValueError(f"data.{field} gives {name or 'the bare value'} twice: {text!r}.")
    if name:
      named[name] = parsed
    else:
      default = parsed
  return default, named


def _ratio_range(text: str) -> tuple[float, float]:
  parts = text.split(":")
  if len(parts) != 2:
    raise ValueError("a range is LO:HI, e.g. 0.001:1")
  return float(parts[0]), float(parts[1])


def _ratio_bin_edges(text: str) -> tuple[tuple[float, float], ...]:
  edges = [float(e) for e in text.split(":")]
  if len(edges) < 2 or any(a >= b for a, b in zip(edges[:-1], edges[1:])):
    raise ValueError("bins are increasing edges E0:E1:...:Ek, e.g. 0:0.25:0.5:1")
  return tuple(zip(edges[:-1], edges[1:]))
