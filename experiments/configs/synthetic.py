r"""Synthetic 1-D functions benchmark (sine, tanh, gaussian, relu): runs with nothing downloaded.

Examples:

  # The default experiment (MIA), sized for a 2-core CPU:
  python -m experiments.main --config=experiments/configs/synthetic.py:cpu --workdir=/tmp/mia_cpu
  # An ablation; a baseline with fewer modalities and more inner steps:
  python -m experiments.main --config=experiments/configs/synthetic.py:ablation=no_msft,cpu \
      --workdir=/tmp/no_msft
  python -m experiments.main \
      --config=experiments/configs/synthetic.py:method=cavia,modalities=sine+tanh,inner_steps=5,cpu \
      --workdir=/tmp/cavia
  # The functa-style modulated SIREN instead of the composer:
  python -m experiments.main --config=experiments/configs/synthetic.py:backbone=functa,cpu \
      --workdir=/tmp/mia_functa
  # Seconds, for tests:
  python -m experiments.main --config=experiments/configs/synthetic.py:smoke --workdir=/tmp/smoke
  # The paper's full settings (for a GPU/TPU): no preset
  python -m experiments.main --config=experiments/configs/synthetic.py:method=metasgd \
      --workdir=/tmp/full

Arguments (`key=value`, comma-separated): method (mia | cavia | metasgd | alfa | gap), backbone
(composer | functa), ablation
(MIA only: none | no_sft | no_usft | no_msft | no_fuser | grad_only | latent_only), inner_steps, modalities (a `+`-joined subset of
sine+tanh+gaussian+relu), seed, first_order, remat, batch_size, num_train_steps, and a preset:
`smoke` | `cpu` | `full` (default).
"""

from experiments.configs import common
from mia_jax import rules

MODALITIES = "sine+tanh+gaussian+relu"


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, dict(
      method="mia", ablation="none", inner_steps=3, modalities=MODALITIES, seed=0, first_order=False,
      remat=False, batch_size=0, num_train_steps=0, preset="full", backbone="composer"))
  c = common.base_config()
  c.benchmark = "synthetic"
  c.method = args["method"]
  c.modalities = args["modalities"]
  c.seed = args["seed"]
  c.inner_steps = args["inner_steps"]
  c.first_order = args["first_order"]
  c.remat = args["remat"]
  c.preset = args["preset"]

  c.data.name = "synthetic_functions"
  c.batch_size = 64
  c.num_train_steps = 20_000
  c.rule.ablation = args["ablation"]
  c.rule.grad_scale = 10.0 if c.method == "mia" else 0.0  # MIA's gradient scaler, init 10
  if args["backbone"] == "functa":
    # The functa-style shift-modulated SIREN (mia_jax/inr/functa.py): its 128-entry latent vector
    # is read by the rules as 8 tokens of 16 (as the composer's rank-8 latent is 8 tokens), and
    # starts near zero (functa's 0.01: the shifts are multiplied by w0 = 30). Inner learning rate
    # 0.03: of 3, 1, 0.3, 0.1, 0.03 and 0.01, the one that lowers the support loss most over 3
    # CAVIA steps at initialisation (1 and above do not lower it; docs/results.md).
    # The rate scales the update after the method's core ("post"): the SFT normalises its input,
    # so a rate before it does not set the size of MIA's updates (with "pre", MIA had not learned
    # to adapt at all after 500 meta-steps, docs/results.md; for CAVIA the position of a scalar
    # rate makes no difference).
    c.model.update(dict(backbone="functa", latent_dim=128, token_width=16, latent_init_std=0.01))
    c.rule.update(dict(inner_lr=0.03, lr_position="post"))
  elif args["backbone"] != "composer":
    raise ValueError(f"Unknown backbone {args['backbone']!r}; allowed: composer, functa.")

  if c.preset == "cpu":
    # 2,000 meta-steps at batch 64: about 20 minutes on 2 CPU cores.
    c.num_train_steps = 2_000
    c.checkpoint_every_steps = 250
  elif c.preset == "smoke":
    # Seconds: tiny model, a few steps, a small dataset.
    c.num_train_steps = 6
    c.batch_size = 8
    c.model.hidden = 16
    c.model.rank = 4
    c.rule.sft_width = 24
    c.rule.head_dim = 8
    c.data.builder_config = "small"
    c.data.num_test_signals = 16
    c.eval.batch_size = 8
    c.log_every_steps = 2
    c.checkpoint_every_steps = 3
  if args["batch_size"]:
    c.batch_size = args["batch_size"]
  if args["num_train_steps"]:
    c.num_train_steps = args["num_train_steps"]
  return c


def studies():
  """The ablation studies of this benchmark: `python -m experiments.ablate --study=NAME`.

  Each study: `arms` (name -> config overrides: config arguments such as `ablation=...`, or dotted
  config fields such as `rule.sft_width`), in run order with the headline arms first (so
  `--arms` can cut a study to a small budget), the `reference` arm the others are compared
  against, the `measures` reported, and optionally the `headline` arms (the others may run fewer
  seeds, `--other_seeds`). Adding a study is adding an entry here.
  """
  names = MODALITIES.split("+")
  sft_arms = tuple(rules.ABLATIONS)
  return {
      "sft_removal": dict(
          description=(
              "SFT removal: how generalization, memorization and the inner-loop trajectory "
              "change when MIA's state fusion transformers (or their parts) are removed. "
              "`no_sft` is CAVIA with MIA's backbone and training."),
          arms={("mia" if a == "none" else a): dict(method="mia", ablation=a) for a in sft_arms},
          reference="mia",
          headline=("mia", "no_sft"),
          measures=("generalization_mse", "memorization_mse")),
      "modality_replacement": dict(
          description=(
              "Modality replacement: each function adapted alone versus with the other "
              "functions, evaluated on identical meta-test supports in every arm (paired)."),
          arms={"all": dict(modalities=MODALITIES),
                **{f"{m}_alone": dict(modalities=m) for m in names}},
          reference="all",
          measures=("generalization_mse", "memorization_mse")),
      "methods": dict(
          description="MIA against the baselines, on the same backbone and meta-test episodes.",
          arms={m: dict(method=m, ablation="none")
                for m in rules.METHODS},
          reference="mia",
          measures=("generalization_mse", "memorization_mse")),
  }
