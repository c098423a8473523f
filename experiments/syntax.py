"""The command line's small languages, parsed in one place (for the library, typed values).

* `parse_fixed_ratios("0.01,0.1")`: `eval.fixed_ratios` -> sorted distinct ratios in (0, 1];
* `parse_sigmas("rgb=1,wav=30", known)`: `model.ff_sigmas` -> `{name: sigma}` for
  `ModelConfig(ff_sigmas=...)`;
* `parse_modalities("sine+tanh", known)`: a `+`-joined modality list (it lives in
  `data_pipelines.names`, which the data pipelines use too, and is re-exported here).
"""

from __future__ import annotations

from typing import Sequence

from data_pipelines.names import parse_modalities  # noqa: F401  (re-exported)


def parse_fixed_ratios(value: str | Sequence[float] | None) -> tuple[float, ...]:
  """`"0.01,0.1"` (or a sequence of numbers) -> the sorted distinct ratios; "" or None -> ().

  Raises:
    ValueError: a ratio that is not a number in (0, 1], named with what is allowed.
  """
  if value is None or (isinstance(value, str) and not value.strip()):
    return ()
  items = value.split(",") if isinstance(value, str) else list(value)
  out = set()
  for item in items:
    try:
      r = float(item)
    except (TypeError, ValueError):
      raise ValueError(f"eval.fixed_ratios: {item!r} is not a number; expected comma-separated "
                       "support ratios in (0, 1], e.g. '0.01,0.1,1'.") from None
    if not 0.0 < r <= 1.0:
      raise ValueError(f"eval.fixed_ratios: {item!r} is outside (0, 1]; a ratio is the fraction "
                       "of the grid in the support.")
    out.add(r)
  return tuple(sorted(out))


def parse_sigmas(value: str, known: Sequence[str] | None = None) -> dict[str, float]:
  """`model.ff_sigmas`, "name=sigma,..." -> `{name: sigma}`; "" -> {}.

  Raises:
    ValueError: a malformed entry, a sigma < 0, or a name outside `known` (None: any name).
  """
  out = {}
  for item in filter(None, (t.strip() for t in value.split(","))):
    name, sep, text = (t.strip() for t in item.partition("="))
    try:
      sigma = float(text) if sep else None
    except ValueError:
      sigma = None
    if sigma is None or not 0 <= sigma < float("inf"):
      raise ValueError(f"model.ff_sigmas entry {item!r} is not name=sigma with sigma >= 0 "
                       f"(e.g. 'rgb=1,wav=30').")
    if known is not None and name not in known:
      raise ValueError(f"model.ff_sigmas names modality {name!r}, which is not configured; "
                       f"configured: {', '.join(known)}.")
    out[name] = sigma
  return out
