r"""Synthetic 1-D functions benchmark (sine, tanh, gaussian, relu): runs with nothing downloaded.

  # The default experiment (MIA), sized for a 2-core CPU; an ablation; a baseline:
  python -m experiments.main --config=experiments/configs/synthetic.py:cpu --workdir=/tmp/mia_cpu
  python -m experiments.main --config=experiments/configs/synthetic.py:ablation=no_msft,cpu \
      --workdir=/tmp/no_msft
  python -m experiments.main --workdir=/tmp/cavia \
      --config=experiments/configs/synthetic.py:method=cavia,modalities=sine+tanh,inner_steps=5,cpu
  # The functa-style modulated SIREN instead of the composer; seconds, for tests:
  python -m experiments.main --config=experiments/configs/synthetic.py:backbone=functa,cpu \
      --workdir=/tmp/mia_functa
  python -m experiments.main --config=experiments/configs/synthetic.py:smoke --workdir=/tmp/smoke

Arguments: the standard ones (`experiments/configs/common.py`: method, ablation, inner_steps,
modalities, seed, ..., and a preset `smoke` | `cpu` | `full`), and `backbone` (composer | functa).
"""

from experiments.configs import common, shared

MODALITIES = "sine+tanh+gaussian+relu"
BACKBONES = ("composer", "functa")


def _backbone(c, args):
  if args["backbone"] == "functa":
    # The shift-modulated SIREN (mia_jax/inr/functa.py): its 128-entry latent is read by the
    # rules as 8 tokens of 16 (as the composer's rank-8 latent is 8 tokens) and starts near zero
    # (functa's 0.01: the shifts are multiplied by w0 = 30). Inner rate 0.03: of 3 ... 0.01, the
    # one that lowers the support loss most over 3 CAVIA steps at initialisation. It scales the
    # update after the method's core ("post"): the SFT normalises its input, so a rate before it
    # does not set the size of MIA's updates (docs/results.md).
    c.model.update(dict(backbone="functa", latent_dim=128, token_width=16, latent_init_std=0.01))
    c.rule.update(dict(inner_lr=0.03, lr_position="post"))
  elif args["backbone"] != "composer":
    raise ValueError(f"Unknown backbone {args['backbone']!r}; allowed: {', '.join(BACKBONES)}.")


BENCHMARK = common.Benchmark(
  "synthetic",
  MODALITIES,
  dataset="synthetic_functions",
  label="the synthetic functions",
  fields={"num_train_steps": 20_000},
  mia_grad_scale=10.0,
  own=_backbone,
  own_args={"backbone": "composer"},
  presets={
    # 2,000 meta-steps at batch 64: about 20 minutes on 2 CPU cores.
    "cpu": {"num_train_steps": 2_000, "checkpoint_every_steps": 250},
    "smoke": {
      **shared.SMOKE,
      "num_train_steps": 6,
      "batch_size": 8,
      "data.builder_config": "small",
      "data.num_test_signals": 16,
      "eval.batch_size": 8,
      "checkpoint_every_steps": 3,
    },
  },
  multimodal_arm="all",
  modality_text=(
    "Modality replacement: each function adapted alone versus with the other functions, "
    "evaluated on identical meta-test supports in every arm (paired)."
  ),
)
ARGS, get_config, studies = BENCHMARK.exports()
