"""Update rules: one file per method, all behind `UpdateRule` (see `base.py`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mia_jax.modalities import ModalityGroup
from mia_jax.rules.base import UpdateRule
from mia_jax.rules.cavia import Cavia
from mia_jax.rules.metasgd import MetaSGD

RULES: dict[str, type[UpdateRule]] = {
    "cavia": Cavia,
    "metasgd": MetaSGD,
}


def make_rule(method: str, groups: Sequence[ModalityGroup], latent_shape: tuple[int, int],
              cfg: Mapping[str, Any] | None = None) -> UpdateRule:
  """Builds the update rule of a method by name."""
  if method not in RULES:
    raise ValueError(f"Unknown method {method!r}; allowed: {', '.join(sorted(RULES))}.")
  return RULES[method](groups, latent_shape, cfg)


__all__ = ["RULES", "UpdateRule", "Cavia", "MetaSGD", "make_rule"]
