"""The methods by name: the experiments' `method=...,ablation=...` and flat `rule` config fields
turned into the library's typed update rules (`mia_jax.rules`).

* `METHODS`, `ABLATIONS` (MIA's), `LR_POSITIONS`: the names a config may use; the studies' arms
  come from them.
* `RuleConfig`: the flat `rule` fields and their defaults (the pieces' own).
* `build_rule(method, fields)`: the `UpdateRule` of a method, built from `mia_jax.rules`' pieces.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping, cast

from mia_jax.rules import (
  UpdateRule,
  alfa,
  cavia,
  chain,
  gap,
  gradient_scaler,
  learned_learning_rate,
  learning_rate,
  sft,
)

METHODS = ("mia", "cavia", "metasgd", "alfa", "gap")

# MIA's ablations: the `sft()` switches each one turns off; "no_sft" removes the SFT (and with it
# the gradient scaler, which without the SFT would only be a learned scalar learning rate).
# Replacements: "sft_mlp" / "sft_mlp_local" swap the SFTs' transformer blocks for per-token MLPs of
# about their parameter count (`sft(mixer=...)`); "rule_{method}" (a string value) replaces the
# SFT with that method's own update module in MIA's chain: the learned gradient scaler stays,
# starting at 1 (so the module starts as its method does), then the method's rate and module.
ABLATIONS: dict[str, dict[str, Any] | str | None] = {
  "none": {},
  "no_sft": None,
  "no_usft": {"use_usft": False},
  "no_msft": {"use_msft": False},
  "no_fuser": {"use_fuser": False},
  "grad_only": {"use_latent": False},
  "latent_only": {"use_grad": False},
  "sft_mlp": {"mixer": "mlp_pooled"},
  "sft_mlp_local": {"mixer": "mlp"},
  "rule_alfa": "alfa",
  "rule_gap": "gap",
  "rule_metasgd": "metasgd",
}
LR_POSITIONS = ("pre", "post")

_SFT = inspect.signature(sft).parameters
_ALFA = inspect.signature(alfa).parameters


@dataclasses.dataclass(frozen=True)
class RuleConfig:
  """The flat `rule` config fields of the experiments (defaults are the pieces' own).

  Attributes:
    inner_lr: the inner learning rate alpha (fixed, or the initial value of learned rates).
    lr_position: "pre" (the rate scales the gradient before the method's core) or "post".
    learn_lr: per-element learned rates (MetaSGD-style) instead of the fixed alpha.
    grad_scale: initial value of MIA's learned gradient scaler; 0 = none.
    scaler_lr_multiplier: multiplier of the scaler's outer learning rate (`gradient_scaler`'s
      `outer_lr`); 1 is the paper's, 2 the released code's effective rate (it steps the scaler
      with two Adam optimisers; docs/method.md section 9).
    ablation: MIA only, a key of `ABLATIONS`.
    sft_width ... exact_gelu: `sft()` arguments (`width`, `usft_depth`, ...).
    alfa_depth: `alfa()`'s MLP depth.
  """

  inner_lr: float = 1.0
  lr_position: str = "pre"
  learn_lr: bool = False
  grad_scale: float = 0.0
  scaler_lr_multiplier: float = 1.0
  ablation: str = "none"
  sft_width: int = _SFT["width"].default
  usft_depth: int = _SFT["usft_depth"].default
  msft_depth: int = _SFT["msft_depth"].default
  num_heads: int = _SFT["num_heads"].default
  head_dim: int = _SFT["head_dim"].default
  mlp_depth: int = _SFT["mlp_depth"].default
  residual: bool = _SFT["residual"].default
  out_init_scale: float = _SFT["out_init_scale"].default
  exact_gelu: bool = _SFT["exact_gelu"].default
  alfa_depth: int = _ALFA["depth"].default

  @classmethod
  def from_mapping(cls, fields: Mapping[str, Any] | None) -> "RuleConfig":
    """From a dict (e.g. `config.rule.to_dict()`); an unknown field is a clear error."""
    fields = dict(fields or {})
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
      raise ValueError(f"Unknown rule config fields {unknown}; allowed: {', '.join(allowed)}.")
    return cls(**fields)

  def sft_args(self) -> dict[str, Any]:
    return dict(
      width=self.sft_width,
      usft_depth=self.usft_depth,
      msft_depth=self.msft_depth,
      num_heads=self.num_heads,
      head_dim=self.head_dim,
      mlp_depth=self.mlp_depth,
      residual=self.residual,
      out_init_scale=self.out_init_scale,
      exact_gelu=self.exact_gelu,
    )


def build_rule(method: str, fields: Mapping[str, Any] | RuleConfig | None = None) -> UpdateRule:
  """The update rule of a method by name, from the flat `RuleConfig` fields.

  Raises:
    ValueError: an unknown method, ablation, lr_position or field, or settings the method does not
      allow (an ablation of a method other than MIA, learned rates for CAVIA or ALFA).
  """
  if method not in METHODS:
    raise ValueError(f"Unknown method {method!r}; allowed: {', '.join(sorted(METHODS))}.")
  c = fields if isinstance(fields, RuleConfig) else RuleConfig.from_mapping(fields)
  ablation = c.ablation or "none"
  if ablation not in ABLATIONS:
    raise ValueError(f"Unknown ablation {ablation!r}; allowed: {', '.join(ABLATIONS)}.")
  if ablation != "none" and method != "mia":
    raise ValueError(f"ablation={ablation!r} applies to method='mia' only (got {method!r}).")
  if c.lr_position not in LR_POSITIONS:
    raise ValueError(f"Unknown lr_position {c.lr_position!r}; allowed: {', '.join(LR_POSITIONS)}.")
  if c.grad_scale < 0:
    raise ValueError(f"grad_scale must be > 0 (or 0 for none), got {c.grad_scale}.")
  if method in ("cavia", "alfa") and c.learn_lr:
    raise ValueError(
      f"{method} uses a fixed learning rate (ALFA generates its own); learn_lr "
      "must be False (method=metasgd learns per-element rates)."
    )
  if method == "mia" and ablation == "no_sft":
    return cavia(c.inner_lr)
  replacement = ABLATIONS[ablation]
  if method == "mia" and isinstance(replacement, str):  # the SFT replaced by a module
    return build_rule(
      replacement, dataclasses.replace(c, ablation="none", grad_scale=1.0 if c.grad_scale else 0.0)
    )
  scale = [gradient_scaler(c.grad_scale, c.scaler_lr_multiplier)] if c.grad_scale else []
  if method == "alfa":
    return chain(*scale, alfa(inner_lr=c.inner_lr, depth=c.alfa_depth))
  learn = c.learn_lr or method == "metasgd"
  lr = learned_learning_rate(c.inner_lr) if learn else learning_rate(c.inner_lr)
  core = {
    "cavia": [],
    "metasgd": [],
    "gap": [gap()],
    "mia": [sft(**c.sft_args(), **cast(dict, ABLATIONS[ablation] or {}))],
  }[method]
  pieces = [*scale, lr, *core] if c.lr_position == "pre" else [*scale, *core, lr]
  return chain(*pieces)
