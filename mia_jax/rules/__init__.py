"""Update rules: one file per method, all behind `UpdateRule` (see `base.py`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mia_jax.modalities import ModalityGroup
from mia_jax.rules.base import UpdateRule
from mia_jax.rules.cavia import Cavia
from mia_jax.rules.metasgd import MetaSGD
from mia_jax.rules.alfa import Alfa
from mia_jax.rules.gap import Gap
from mia_jax.rules.sft import ABLATIONS, SFT

RULES: dict[str, type[UpdateRule]] = {
    "cavia": Cavia,
    "metasgd": MetaSGD,
    "alfa": Alfa,
    "gap": Gap,
    "mia": SFT,
}


def make_rule(method: str, groups: Sequence[ModalityGroup], latent_shape: tuple[int, int],
              cfg: Mapping[str, Any] | None = None) -> UpdateRule:
  """Builds the update rule of a method by name."""
  if method not in RULES:
    raise ValueError(f"Unknown method {method!r}; allowed: {', '.join(sorted(RULES))}.")
  cfg = dict(cfg or {})
  ablation = cfg.get("ablation", "none") or "none"
  if ablation not in ABLATIONS:
    raise ValueError(f"Unknown ablation {ablation!r}; allowed: {', '.join(ABLATIONS)}.")
  if ablation != "none" and method != "mia":
    raise ValueError(f"ablation={ablation!r} applies to method='mia' only (got {method!r}).")
  if method == "mia" and ablation == "no_sft":
    # MIA's backbone and training with the update rule removed: CAVIA. The gradient scaler goes
    # too: without the SFTs it would only be a learned scalar learning rate.
    cfg = {k: v for k, v in cfg.items() if k in ("inner_lr", "lr_position")}
    return Cavia(groups, latent_shape, cfg)
  return RULES[method](groups, latent_shape, cfg)


__all__ = ["ABLATIONS", "RULES", "UpdateRule", "Alfa", "Cavia", "Gap", "MetaSGD", "SFT", "make_rule"]
