"""Modality names as the data pipelines and the command line write them: `"sine+tanh"`."""

from __future__ import annotations

from typing import Sequence


def parse_modalities(
  arg: str | Sequence[str], known: Sequence[str], what: str = ""
) -> tuple[str, ...]:
  """Parses "sine+tanh" (or a sequence) into names, checking each against `known`.

  The one check of modality names against a known list (benchmarks, datasets, configs). `what`
  names the list in errors ("celeba": "Unknown celeba modality 'x'; allowed: ...").
  """
  label = f"{what} modality" if what else "modality"
  names = tuple(n for n in (arg.split("+") if isinstance(arg, str) else arg) if n)
  if not names:
    raise ValueError(f"No {label} given; allowed: {'+'.join(known)} or a subset.")
  for n in names:
    if n not in known:
      raise ValueError(f"Unknown {label} {n!r}; allowed: {', '.join(known)}.")
  if len(set(names)) != len(names):
    raise ValueError(f"Modality listed twice in {'+'.join(names)!r}.")
  return names
