"""Several processes, one run: JAX's multi-controller runtime for the training driver.

One process per host (or per local group of devices) runs the same program. After
`initialize`, `jax.devices()` lists every process's devices, the driver's mesh spans them all,
each process reads its own rows of every batch, orbax saves and restores from every process, and
only process 0 writes the workdir's files (`is_primary`). See docs/distributed.md.

Started either by hand, with the three flags of `experiments.main`
(`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`, one command per process),
or, with no flags, on a cluster JAX detects (a Cloud TPU pod slice, SLURM with more than one
task; `jax.distributed.initialize()` reads the environment).

A process that dies ends the others: a collective with it fails at once, and otherwise the
coordination service stops the survivors when the dead one misses heartbeats for
`heartbeat_timeout_seconds`; no process waits forever.
"""

from __future__ import annotations

import os

import jax

# Environment variables of the clusters `jax.distributed.initialize()` detects by itself when
# they say there is more than one process.
_CLUSTER_COUNTS = ("SLURM_NTASKS",)
_TPU_HOSTS = "TPU_WORKER_HOSTNAMES"  # comma-separated, one per host of a Cloud TPU pod slice


def detected_cluster() -> str | None:
  """The multi-process cluster this process runs in, if JAX can configure it by itself."""
  for name in _CLUSTER_COUNTS:
    if os.environ.get(name, "1").isdigit() and int(os.environ.get(name, "1")) > 1:
      return f"{name}={os.environ[name]}"
  if len(os.environ.get(_TPU_HOSTS, "").split(",")) > 1:
    return f"{_TPU_HOSTS} ({len(os.environ[_TPU_HOSTS].split(','))} hosts)"
  return None


def check_flags(
  coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> bool:
  """Whether the flags ask for a multi-process run; raises ValueError on an incomplete or
  inconsistent set."""
  given = {
    "--coordinator_address": coordinator_address,
    "--num_processes": num_processes,
    "--process_id": process_id,
  }
  if all(v is None for v in given.values()):
    return False
  missing = [k for k, v in given.items() if v is None]
  if missing:
    raise ValueError(
      f"A multi-process run needs --coordinator_address, --num_processes and "
      f"--process_id together; missing {', '.join(missing)}."
    )
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id} must be in [0, --num_processes={num_processes}).")
  host, _, port = coordinator_address.rpartition(":")
  if not host or not port.isdigit():
    raise ValueError(
      f"--coordinator_address={coordinator_address!r} must be HOST:PORT, e.g. "
      "127.0.0.1:12355 (the address of process 0)."
    )
  return True


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  heartbeat_timeout_seconds: int = 100,
  initialization_timeout: int = 300,
) -> int:
  """Joins the processes of a run (`jax.distributed.initialize`) when it has several; returns the
  number of processes (1: nothing was done).

  Call it before anything else uses JAX. On CPU the processes' collectives go over gloo (TCP).
  `num_processes=1` alone keeps a run to one process even where a cluster is detected (e.g. one
  of several SLURM tasks that each train their own run).
  """
  if num_processes == 1 and coordinator_address is None and process_id in (None, 0):
    return 1  # one process, said so: no cluster detection either
  explicit = check_flags(coordinator_address, num_processes, process_id)
  if not explicit and detected_cluster() is None:
    return 1
  if explicit and num_processes == 1:
    return 1
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  kwargs = dict(
    heartbeat_timeout_seconds=heartbeat_timeout_seconds,
    initialization_timeout=initialization_timeout,
  )
  if explicit:
    kwargs.update(
      coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
  jax.distributed.initialize(**kwargs)
  return jax.process_count()


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0; the only one of a 1-process run)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process has reached `barrier(name)` (nothing on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
