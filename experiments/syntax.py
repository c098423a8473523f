"""The command line's small languages, parsed in one place (for the library, typed values).

* `split_args("method=mia,cpu")`: a config file's argument string -> `[("method", "mia"),
  ("cpu", None)]`; `merge_arg(arg, updates)` rewrites one;
* `typed_value(key, "5", like=1)`: a command-line value typed like a config field's value;
* `parse_grid("method=cavia|mia;inner_steps=1|3")`: `--grid` -> `[(key, [values])]`;
* `parse_shard("0/4")`: `--shard` -> `(0, 4)`;
* `parse_fixed_ratios("0.01,0.1")`: `eval.fixed_ratios` -> sorted distinct ratios in (0, 1];
* `parse_sigmas("rgb=1,wav=30", known)`: `model.ff_sigmas` -> `{name: sigma}` for
  `ModelConfig(ff_sigmas=...)`;
* `parse_modalities("sine+tanh", known)`: a `+`-joined modality list (it lives in
  `data_pipelines.names`, which the data pipelines use too, and is re-exported here).

Each raises a ValueError of one line naming the bad value and what is allowed; what a value
means (a known preset, a config field) is checked where it is used.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

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
      raise ValueError(
        f"eval.fixed_ratios: {item!r} is not a number; expected comma-separated "
        "support ratios in (0, 1], e.g. '0.01,0.1,1'."
      ) from None
    if not 0.0 < r <= 1.0:
      raise ValueError(
        f"eval.fixed_ratios: {item!r} is outside (0, 1]; a ratio is the fraction "
        "of the grid in the support."
      )
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
      raise ValueError(
        f"model.ff_sigmas entry {item!r} is not name=sigma with sigma >= 0 (e.g. 'rgb=1,wav=30')."
      )
    if known is not None and name not in known:
      raise ValueError(
        f"model.ff_sigmas names modality {name!r}, which is not configured; "
        f"configured: {', '.join(known)}."
      )
    out[name] = sigma
  return out


def split_args(arg: str | None) -> list[tuple[str, str | None]]:
  """`"method=mia,inner_steps=5,smoke"` -> `[("method", "mia"), ("inner_steps", "5"),
  ("smoke", None)]`: a config file's arguments (what follows the colon of `--config`), stripped,
  empty items skipped; a bare word (a preset) has the value None."""
  out = []
  for item in filter(None, (i.strip() for i in (arg or "").split(","))):
    key, sep, value = item.partition("=")
    out.append((key.strip(), value.strip()) if sep else (item, None))
  return out


def _arg_string(value: Any) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  return str(value)


def merge_arg(arg: str, updates: Mapping[str, Any]) -> str:
  """`merge_arg("method=mia,cpu", {"method": "cavia"}) == "method=cavia,cpu"`."""
  items: dict[str, str | None] = dict(split_args(arg))
  for k, v in updates.items():
    items[k] = _arg_string(v)
  return ",".join(k if v is None else f"{k}={v}" for k, v in items.items())


def typed_value(key: str, value, like):
  """`value` (a command-line string) typed like `like`: bool (true/false/1/0), int, float or str.

  The one parser of typed command-line values (config arguments and study overrides). A value
  that is not a string, or a `like` that is a string or None, is returned as it is.
  """
  if not isinstance(value, str) or isinstance(like, str) or like is None:
    return value
  try:
    if isinstance(like, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError
      return value.lower() in ("true", "1")
    if isinstance(like, int):
      return int(value)
    if isinstance(like, float):
      return float(value)
  except ValueError:
    raise ValueError(
      f"Config value {key}={value!r} is not a valid {type(like).__name__}."
    ) from None
  return value


def parse_grid(spec: str) -> list[tuple[str, list[str]]]:
  """`--grid`, `"key=v1|v2;key2=w1|w2"` -> `[("key", ["v1", "v2"]), ("key2", ["w1", "w2"])]`.

  Values stay strings (the config types them, `typed_value`).

  Raises:
    ValueError: a malformed axis, an empty grid, or a key named twice.
  """
  axes = []
  for part in (p.strip() for p in spec.split(";")):
    if not part:
      continue
    key, sep, values = part.partition("=")
    vals = [v.strip() for v in values.split("|") if v.strip()]
    if not sep or not key.strip() or not vals:
      raise ValueError(
        f"Bad grid axis {part!r} in {spec!r}; expected key=value1|value2, axes "
        "separated by ';' (e.g. 'method=cavia|mia;inner_steps=1|3')."
      )
    axes.append((key.strip(), vals))
  if not axes:
    raise ValueError(f"Empty grid {spec!r}; expected e.g. 'method=cavia|mia;inner_steps=1|3'.")
  keys = [k for k, _ in axes]
  if len(set(keys)) != len(keys):
    raise ValueError(f"Grid {spec!r} names a key twice: {keys}.")
  return axes


def parse_shard(text: str | None) -> tuple[int, int] | None:
  """`--shard=I/N` -> `(I, N)`; None for no flag. Raises ValueError naming the value."""
  if text is None or text == "":
    return None
  m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
  if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
    raise ValueError(
      f"--shard={text!r} is not allowed; expected I/N with 0 <= I < N, e.g. "
      "--shard=0/4 (SLURM: --shard=$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)."
    )
  return int(m.group(1)), int(m.group(2))
