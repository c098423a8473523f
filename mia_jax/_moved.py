"""Names that moved in 0.5.0 (issue 32: the library takes typed values only): an old import
raises an AttributeError naming the new place, instead of a bare "has no attribute"."""

from __future__ import annotations

from typing import Callable, Mapping

REASON = "see CHANGELOG.md, 0.5.0"


def module_getattr(module: str, moved: Mapping[str, str]) -> Callable[[str], object]:
  """A module `__getattr__` for `moved` (`{old name: "new.module.name"}`)."""

  def __getattr__(name: str):
    if name in moved:
      raise AttributeError(f"{module}.{name} moved to {moved[name]} in 0.5.0 ({REASON}).")
    raise AttributeError(f"module {module!r} has no attribute {name!r}")

  return __getattr__
