"""What every benchmark config shares: arguments, defaults and the standard studies (the presets'
values: `shared.py`).

Configs are chosen with `--config=experiments/configs/FILE.py:key=value,key=value,preset`, as in
big_vision: `get_config(arg)` receives the string after the colon. A benchmark file holds only
what is its own (flax's `examples/imagenet/configs` style): its modalities, its dataset, the fields
where it differs from `base_config()`, its presets' differences, and its studies' wording. It
exports

* `ARGS`: its argument spec, `{argument: default}` (the study runner reads it to tell config
  arguments from config fields);
* `get_config(arg)`: `benchmark_config(arg, ARGS, ...)` with its differences;
* `studies()`: `standard_studies(...)`, the sft_removal, modality_replacement and methods studies;

all three from one declaration, `BENCHMARK = common.Benchmark(...)`, whose fields are the
benchmark's differences (`ARGS, get_config, studies = BENCHMARK.exports()`).

The standard arguments (`standard_args`): `method` (one of `experiments.methods.METHODS`),
`ablation` (MIA only, a key of `experiments.methods.ABLATIONS`), `inner_steps` (K; left out: the
preset's, else 3), `modalities` (a `+`-joined subset of the benchmark's), `seed`,
`first_order`, `remat`, `batch_size` and `num_train_steps` (left out: the preset's), `variant`
(`released`, the default: the released implementation's training where it differs from the
paper, `RELEASED_VS_SPEC`, docs/method.md section 9; or `spec`), and a bare preset name: `smoke`
(seconds, for tests), `cpu` (minutes on a 2-core CPU) or `full` (the paper's settings, the
default).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import ml_collections

from experiments import methods, syntax
from experiments.configs import shared
from mia_jax.model import ModelConfig

# Arguments whose default is "unset" (None: keep the preset's value); given, they are typed so.
UNSET_TYPES = {"batch_size": int, "num_train_steps": int, "inner_steps": int}


def standard_args(modalities: str, **own: Any) -> dict[str, Any]:
  """The argument spec of a benchmark: the standard arguments (see above) plus its `own`.

  `batch_size`, `num_train_steps` and `inner_steps` are unset (None) unless given: the preset's
  value (or the default's) then stands. A given value, 0 included, is the value (and is
  validated as such).
  """
  return dict(
    method="mia",
    ablation="none",
    inner_steps=None,
    modalities=modalities,
    seed=0,
    first_order=False,
    remat=False,
    batch_size=None,
    num_train_steps=None,
    preset="full",
    variant="released",
    **own,
  )


def parse_arg(arg: str | None, allowed: Mapping[str, Any]) -> dict[str, Any]:
  """Parses `"method=mia,inner_steps=5,smoke"` into a dict, typed like the defaults in `allowed`.

  A bare word is a preset name (`smoke`, `cpu`, `full`) and sets `preset`. Unknown keys and
  presets raise a ValueError listing what is allowed.
  """
  out = dict(allowed)
  for key, value in syntax.split_args(arg):
    if value is None:
      if key not in shared.PRESETS:
        raise ValueError(
          f"Unknown config flag {key!r}; allowed presets: {', '.join(shared.PRESETS)} "
          f"(or key=value with key in {', '.join(sorted(allowed))})."
        )
      out["preset"] = key
      continue
    if key not in allowed:
      raise ValueError(f"Unknown config argument {key!r}; allowed: {', '.join(sorted(allowed))}.")
    like = allowed[key] if allowed[key] is not None else UNSET_TYPES.get(key, str)()
    out[key] = syntax.typed_value(key, value, like)
  return out


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by all benchmarks (the paper's settings where it gives them)."""
  c = ml_collections.ConfigDict()
  c.benchmark = ""
  c.method = "mia"
  c.modalities = ""
  c.seed = 0
  c.preset = "full"

  c.inner_steps = 3
  c.first_order = False
  c.remat = False
  c.scan_unroll = 1  # inner steps per compiled loop iteration (K = fully unrolled)
  c.learning_rate = 1e-4
  c.grad_clip = 0.0
  # The outer rate's schedule (mia_jax.optim.LR_SCHEDULES): "constant", or "warmup_cosine" (a
  # linear rise over warmup_steps, then a cosine decay to 0 at the run's last step).
  c.lr_schedule = "constant"
  c.warmup_steps = 0
  c.skip_nonfinite = False  # skip a step with a non-finite loss/gradient instead of stopping
  released = {k: v[0] for k, v in shared.RELEASED_VS_SPEC.items()}  # the released code's training
  c.support_counts = released["support_counts"]
  c.initial_loss = released["initial_loss"]
  c.compute_dtype = "float32"  # "bfloat16": INR and rule in bf16, float32 state (accelerators)
  c.batch_size = 64
  c.num_train_steps = 100_000

  # The model and rule fields and their defaults are the library's own (ModelConfig: the built-in
  # backbones; RuleConfig: the methods' flat fields, see experiments.methods.build_rule).
  # ff_sigmas: "name=sigma,..." on the command line (experiments.syntax.parse_sigmas).
  c.model = ml_collections.ConfigDict({**dataclasses.asdict(ModelConfig()), "ff_sigmas": ""})
  c.rule = ml_collections.ConfigDict(dataclasses.asdict(methods.RuleConfig()))
  c.rule.scaler_lr_multiplier = released["rule.scaler_lr_multiplier"]
  c.rule.exact_gelu = released["rule.exact_gelu"]

  c.data = ml_collections.ConfigDict(
    dict(
      source="tfds",  # "tfds" (a builder in data_pipelines/) or "npz" (your arrays)
      data_dir="",  # tfds data dir; "" = tfds default (~/tensorflow_datasets)
      builder_config="default",
      npz_train="",
      npz_test="",  # for source="npz"
      num_test_signals=0,  # 0 = the whole test split
      # source="npz" (or arrays passed from Python): the modalities come from the train arrays;
      # these say what arrays cannot. Each is one value for every modality or "name=value,..."
      # (a bare value then covers the unnamed ones); "" = the default, which for a modality of a
      # known benchmark (config.benchmark) is that benchmark's value. See README "Your own data".
      ratio_range="",  # support ratio "LO:HI"; default 0.001:1
      ratio_bins="",  # evaluation bin edges "E0:E1:...:Ek"; default quarters of [0, Rmax]
      output_bias="",  # added to the INR output; default the train array's mean (2 dp)
      error_normaliser="",  # none | amplitude; default amplitude where the data give
      # {name}_amplitude, else none
      grid_ndims="",  # "name=2": grid axes of an array without a channel axis ([n, H, W])
    )
  )
  c.eval = ml_collections.ConfigDict(
    dict(
      episode_seed=1234,  # the fixed meta-test episodes (identical for every method)
      episodes_path="",  # load episodes from this .npz instead (e.g. from another codebase)
      batch_size=64,
      every_steps=0,  # 0 = evaluate only at the end
      closed_bins=released["eval.closed_bins"],
      # Also evaluate every meta-test signal at each of these support ratios (clipped to each
      # modality's range; keys {measure}/{modality}/ratio{r}): the error-vs-support curves of
      # the study reports. "" = none. Each distinct ratio is one more pass over the test set.
      fixed_ratios=shared.FIXED_RATIOS,
    )
  )
  c.log_every_steps = 50
  c.tensorboard = True  # TensorBoard event files in the workdir (experiments/run/events.py)
  c.log_reconstructions = 3  # meta-test signals drawn in workdir/reconstructions.png (0: none)
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  return c


def set_field(config, key: str, value: Any, known_args: str = "") -> None:
  """Sets a (dotted) config field, typed like its current value (`syntax.typed_value`); a field that
  does not exist is a ValueError naming it and the fields there (`known_args`: a hint)."""
  node = config
  parts = key.split(".")
  for i, part in enumerate(parts):
    if part not in node:
      hint = f" Config arguments: {known_args}" if known_args else ""
      raise ValueError(
        f"Unknown override {key!r}: no config field {'.'.join(parts[: i + 1])!r} "
        f"(fields here: {', '.join(sorted(node.keys()))}).{hint}"
      )
    if i < len(parts) - 1:
      node = node[part]
  node[parts[-1]] = syntax.typed_value(key, value, node[parts[-1]])


def set_fields(c: ml_collections.ConfigDict, fields: Mapping[str, Any]) -> None:
  """Sets dotted config fields (`{"model.rank": 16}`) with `set_field`."""
  for key, value in fields.items():
    set_field(c, key, value)


def benchmark_config(
  arg: str | None,
  args_spec: Mapping[str, Any],
  *,
  benchmark: str,
  dataset: str = "",
  fields: Mapping[str, Any] | None = None,
  mia_grad_scale: float = 0.0,
  presets: Mapping[str, Mapping[str, Any]] | None = None,
  own: Callable[[ml_collections.ConfigDict, dict], None] | None = None,
) -> ml_collections.ConfigDict:
  """A benchmark's config from its differences to `base_config()`.

  Args:
    arg: the argument string (`"method=cavia,cpu"`), parsed against `args_spec`.
    args_spec: the benchmark's `ARGS` (`standard_args(...)`).
    benchmark: `config.benchmark` (its modalities: `data_pipelines.benchmarks`).
    dataset: `config.data.name`, the registered dataset (`data_pipelines.registry`).
    fields: the benchmark's defaults, `{dotted field: value}`, over `base_config()`.
    mia_grad_scale: `rule.grad_scale` when the method is MIA (its gradient scaler's initial
      value); other methods get 0 (none).
    presets: `{"cpu" | "smoke": {dotted field: value}}`, set over the defaults.
    own: `own(config, args)` for the benchmark's own arguments, before the preset is applied.

  The arguments `batch_size`, `num_train_steps` and `inner_steps` (when given) win over the
  preset, and a `data_dir` argument sets `config.data.data_dir`.
  """
  args = parse_arg(arg, args_spec)
  if args.get("variant", "released") not in shared.VARIANTS:
    raise ValueError(f"Unknown variant {args['variant']!r}; allowed: {', '.join(shared.VARIANTS)}.")
  c = base_config()
  if args.get("variant") == "spec":
    set_fields(c, {k: spec for k, (_, spec) in shared.RELEASED_VS_SPEC.items()})
  c.benchmark = benchmark
  for key in ("method", "modalities", "seed", "first_order", "remat", "preset"):
    c[key] = args[key]
  c.rule.ablation = args["ablation"]
  if dataset:
    c.data.name = dataset
  if "data_dir" in args:
    c.data.data_dir = args["data_dir"]
  set_fields(c, fields or {})
  c.rule.grad_scale = mia_grad_scale if c.method == "mia" else 0.0
  if own:
    own(c, args)
  set_fields(c, (presets or {}).get(c.preset, {}))
  for key in UNSET_TYPES:
    if args.get(key) is not None:
      c[key] = args[key]
  return c


def standard_studies(
  modalities: str,
  label: str,
  *,
  modality_text: str,
  multimodal_arm: str = "multimodal",
  headline_alone: str | None = None,
) -> dict[str, dict]:
  """A benchmark's ablation studies (`python -m experiments.ablate --study=NAME`).

  The arms come from the registries, so a new MIA ablation (`experiments.methods.ABLATIONS`) or
  method (`METHODS`) appears in every benchmark's studies:

  * `modality_replacement`: every modality together (`multimodal_arm`, the reference) against each
    modality alone (`{m}_alone`); headline arms `multimodal_arm` and `{headline_alone}_alone`
    when given. Meta-test supports are drawn per modality from the episode seed, so a modality
    sees the same supports in every arm (paired).
  * `sft_removal`: MIA against MIA with each ablation (`no_sft` is CAVIA with MIA's backbone and
    training); headline arms mia and no_sft.
  * `methods`: MIA against every baseline, on the same backbone and meta-test episodes.
  * `fidelity`: MIA with the released code's training (`released`, the reference), with each of
    its training differences from the paper (docs/method.md section 9) switched back
    (`spec_{field}`), and with all of them (`spec`). `eval.closed_bins` changes only the
    evaluation, not what is trained, so it gets no arm (a run's bins are re-evaluated both ways
    from its checkpoint instead).

  Each study is `{"arms": {arm: overrides}, "reference", "measures", "description",
  "headline"?}`; see `experiments/studies/definitions.py`. `label` names the benchmark in the
  descriptions; `modality_text` is the modality-replacement description.
  """
  names = modalities.split("+")
  replacement = dict(
    description=modality_text,
    reference=multimodal_arm,
    measures=shared.MEASURES,
    arms={
      multimodal_arm: dict(modalities=modalities),
      **{f"{m}_alone": dict(modalities=m) for m in names},
    },
  )
  if headline_alone:
    replacement["headline"] = (multimodal_arm, f"{headline_alone}_alone")
  return {
    "sft_removal": dict(
      description=(
        f"SFT removal on {label}: MIA against the same model without its state fusion "
        "transformers or parts of them (`no_sft` is CAVIA with MIA's backbone and "
        "training); the generalization and memorization errors and the inner-loop "
        "trajectory."
      ),
      arms={
        ("mia" if a == "none" else a): dict(method="mia", ablation=a) for a in methods.ABLATIONS
      },
      reference="mia",
      headline=("mia", "no_sft"),
      measures=shared.MEASURES,
    ),
    "modality_replacement": replacement,
    "methods": dict(
      description=f"MIA against the baselines on {label}, same backbone and episodes.",
      arms={m: dict(method=m, ablation="none") for m in methods.METHODS},
      reference="mia",
      measures=shared.MEASURES,
    ),
    "fidelity": dict(
      description=(
        f"MIA on {label} with the released implementation's training (`released`) "
        "against each of its differences from the paper (docs/method.md section 9) "
        "switched back (`spec_...`) and all of them (`spec`): what each difference does."
      ),
      arms={
        "released": dict(method="mia", ablation="none"),
        **{
          f"spec_{k.rpartition('.')[2]}": {"method": "mia", "ablation": "none", k: spec}
          for k, (_, spec) in shared.RELEASED_VS_SPEC.items()
          if not k.startswith("eval.")
        },
        "spec": dict(method="mia", ablation="none", variant="spec"),
      },
      reference="released",
      headline=("released", "spec"),
      measures=shared.MEASURES,
    ),
  }


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A benchmark config file's differences; `exports()` gives its `ARGS, get_config, studies`.

  Attributes:
    name: `config.benchmark`; modalities: its default `+`-joined modalities ("" = the data's).
    label: the benchmark in study descriptions; modality_text: the modality-replacement study's
      description; multimodal_arm, headline_alone: see `standard_studies` (no studies when
      modality_text is empty).
    dataset, fields, mia_grad_scale, presets, own: see `benchmark_config`.
    own_args: the benchmark's own arguments and their defaults, besides `standard_args`.
  """

  name: str
  modalities: str
  dataset: str = ""
  fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  mia_grad_scale: float = shared.IMAGE_GRAD_SCALE
  presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
  own_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  own: Callable[[ml_collections.ConfigDict, dict], None] | None = None
  label: str = ""
  modality_text: str = ""
  multimodal_arm: str = "multimodal"
  headline_alone: str | None = None

  @property
  def args(self) -> dict[str, Any]:
    return standard_args(self.modalities, **self.own_args)

  def get_config(self, arg: str | None = None) -> ml_collections.ConfigDict:
    return benchmark_config(
      arg,
      self.args,
      benchmark=self.name,
      dataset=self.dataset,
      fields=self.fields,
      mia_grad_scale=self.mia_grad_scale,
      presets=self.presets,
      own=self.own,
    )

  def studies(self) -> dict[str, dict]:
    return standard_studies(
      self.modalities,
      self.label or self.name,
      modality_text=self.modality_text,
      multimodal_arm=self.multimodal_arm,
      headline_alone=self.headline_alone,
    )

  def exports(self):
    """`ARGS, get_config, studies` for the config module (no `studies` without a text)."""
    return self.args, self.get_config, (self.studies if self.modality_text else None)
