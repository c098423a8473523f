r"""One run on 1 process x N devices against N processes x 1 device: timed, and results compared.

  python -m experiments.speed.processes \
      --config=experiments/configs/synthetic.py:cpu,num_train_steps=200 --workdir=/tmp/procs

Trains the same config twice with `experiments.main` (the same global batch and seed): once as
one process with N forced CPU devices, once as N local processes with one device each, joined by
`jax.distributed` over loopback (`--coordinator_address=127.0.0.1:PORT`). Prints a table: steps/s
(the median of the logged rates after the first log interval, which holds the compile), the wall
time, the headline metric, and the largest relative difference of any results.json metric
between the two layouts (0 when the processes reproduce the single-process run exactly). On this
CPU the N processes share the machine's cores with each other, as the N devices of one process do.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Experiment config with its :args (as experiments.main's).")
flags.DEFINE_string("workdir", None, "Parent folder of the two runs (emptied first).")
flags.DEFINE_integer("devices", 2, "N: devices of the one process, and processes of the other.")
flags.DEFINE_multi_string("override", [], "More --config.X=Y flags for both runs.")
flags.DEFINE_string("json", None, "Write the table rows to this JSON file.")
flags.DEFINE_integer("timeout", 3600, "Seconds each layout may take.")
flags.mark_flags_as_required(["config", "workdir"])

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(workdir: str, processes: int, devices: int) -> float:
  """Trains in `workdir` as `processes` x `devices`; returns the wall time in seconds."""
  env = dict(
    os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu"
  )
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    f"--workdir={workdir}",
    f"--config={FLAGS.config}",
    "--config.log_reconstructions=0",
    *[f"--config.{o}" for o in FLAGS.override],
  ]
  port, start, procs = _port(), time.time(), []
  for i in range(processes):
    extra = (
      [
        f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={processes}",
        f"--process_id={i}",
      ]
      if processes > 1
      else []
    )
    log = open(f"{workdir}.{i}.log", "w")
    procs.append((subprocess.Popen(cmd + extra, cwd=ROOT, env=env, stdout=log, stderr=log), log))
  for p, log in procs:
    code = p.wait(timeout=FLAGS.timeout)
    log.close()
    if code:
      raise RuntimeError(f"{processes} x {devices}: a process exited {code}; see {log.name}.")
  return time.time() - start


def _steps_per_s(workdir: str) -> float:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rates = [json.loads(l)["steps_per_s"] for l in f if "steps_per_s" in l]
  return statistics.median(rates[1:] or rates)


def main(argv):
  del argv
  n = FLAGS.devices
  shutil.rmtree(FLAGS.workdir, ignore_errors=True)
  os.makedirs(FLAGS.workdir)
  rows, reference = [], None
  for processes, devices in ((1, n), (n, 1)):
    workdir = os.path.join(FLAGS.workdir, f"{processes}x{devices}")
    wall = _launch(workdir, processes, devices)
    with open(os.path.join(workdir, "results.json")) as f:
      results = json.load(f)
    metrics = results["metrics"]
    reference = reference or metrics
    diff = max(abs(metrics[k] - v) / max(abs(v), 1e-12) for k, v in reference.items())
    k = results["config"]["inner_steps"]
    rows.append(
      {
        "layout": f"{processes} process x {devices} device",
        "processes": processes,
        "devices_per_process": devices,
        "steps_per_s": _steps_per_s(workdir),
        "wall_s": wall,
        "steps": results["step"],
        "generalization_mse_avg": metrics[f"generalization_mse/avg/step{k}"],
        "max_rel_diff_vs_first": diff,
      }
    )
  header = ("layout", "steps/s", "wall s", "steps", "gen MSE avg", "max rel. diff")
  print(f"\n{header[0]:<24}" + "".join(f"{h:>14}" for h in header[1:]))
  for r in rows:
    print(
      f"{r['layout']:<24}{r['steps_per_s']:>14.2f}{r['wall_s']:>14.0f}{r['steps']:>14d}"
      f"{r['generalization_mse_avg']:>14.5f}{r['max_rel_diff_vs_first']:>14.2g}"
    )
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  app.run(main)
