"""Update rules: typed pieces (`UpdateRule`) combined with `chain`, and the methods built from them.

Pieces: `identity`, `gradient_scaler`, `learning_rate`, `learned_learning_rate`, `sft` (MIA's
State Fusion Transformers, with its ablation switches), `alfa`, `gap`. Methods are chains:

    cavia(inner_lr)                 = chain(learning_rate(inner_lr))
    metasgd(inner_lr)               = chain(learned_learning_rate(inner_lr))
    mia(grad_scale=10, **sft_args)  = chain(gradient_scaler(10), learning_rate(1), sft(...))

Building a method (and MIA's ablations) by its config name is the experiments' business
(`experiments.methods.build_rule`).
"""

from __future__ import annotations

from mia_jax import _moved
from mia_jax.rules.alfa import alfa
from mia_jax.rules.base import UpdateRule, chain, identity
from mia_jax.rules.gap import gap
from mia_jax.rules.scaling import gradient_scaler, learned_learning_rate, learning_rate
from mia_jax.rules.sft import sft


def cavia(inner_lr: float = 1.0) -> UpdateRule:
  """CAVIA: `u = alpha * g` with a fixed scalar rate."""
  return chain(learning_rate(inner_lr))


def metasgd(inner_lr: float = 1.0, clip: tuple[float, float] = (0.0, 5.0)) -> UpdateRule:
  """MetaSGD: `u = alpha * g` with meta-learned per-element rates (init `inner_lr`)."""
  return chain(learned_learning_rate(inner_lr, clip))


def mia(
  grad_scale: float = 10.0, inner_lr: float = 1.0, scaler_lr_multiplier: float = 1.0, **sft_args
) -> UpdateRule:
  """MIA: the learned gradient scaler, the rate, then the SFTs (`sft()`'s keyword arguments).
  `scaler_lr_multiplier`: the scaler's outer-rate multiplier (`gradient_scaler`'s `outer_lr`)."""
  return chain(
    gradient_scaler(grad_scale, scaler_lr_multiplier), learning_rate(inner_lr), sft(**sft_args)
  )


# Moved to the experiments in 0.5.0: building a method by its config name.
__getattr__ = _moved.module_getattr(
  "mia_jax.rules",
  {
    "from_config": "experiments.methods.build_rule",
    **{
      n: f"experiments.methods.{n}" for n in ("RuleConfig", "METHODS", "ABLATIONS", "LR_POSITIONS")
    },
  },
)


__all__ = [
  "UpdateRule",
  "alfa",
  "cavia",
  "chain",
  "gap",
  "gradient_scaler",
  "identity",
  "learned_learning_rate",
  "learning_rate",
  "metasgd",
  "mia",
  "sft",
]
