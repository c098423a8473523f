"""Test set-up: two fake CPU devices, so every multi-device path runs in CI."""

import os

# Must happen before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
  """A tfds data dir with the small synthetic_functions config built once per session."""
  from data_pipelines import sources
  d = tmp_path_factory.mktemp("tfds")
  sources.load_synthetic(str(d), "train", config="small")
  return str(d)


def pytest_report_header(config):
  return f"jax {jax.__version__}, devices: {jax.devices()}"
