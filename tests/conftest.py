"""Test set-up: two fake CPU devices, so every multi-device path runs in CI."""

import os
import shutil
import tempfile

# Must happen before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the whole run, inherited by the xdist workers and every
# subprocess a test starts: many tests compile the same smoke configs (it halves the CPU time of
# the workdir tests). Set JAX_COMPILATION_CACHE_DIR yourself to keep a cache between runs.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="mia-jax-tests-jit-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

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


def pytest_unconfigure(config):
  # The run's own cache goes with it (the controller removes it, after its workers are done).
  if _OWN_CACHE and not hasattr(config, "workerinput"):
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
