"""Every test of this room runs the project whole (a command line, a notebook, several processes,
a docs page, the linters): all of them are `slow`."""

import pytest


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    if "end_to_end" in item.path.parts:
      item.add_marker(pytest.mark.slow)
