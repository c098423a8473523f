r"""Benchmark of one meta-training step: steps/s, compile time, memory, FLOPs, FLOP utilisation.

  python -m experiments.speed.meta_step --config=experiments/configs/synthetic.py:method=mia
  python -m experiments.speed.meta_step --config=experiments/configs/synthetic.py \
      --sweep=method
  python -m experiments.speed.meta_step --config=experiments/configs/synthetic.py:method=mia \
      --sweep=inner_steps --json=/tmp/k.json

Measures the jitted `train_step` exactly as training runs it (support sampling on the device,
state donated, batch of synthetic signals already on the device), after warm-up: the median over
`--windows` timed windows of `--steps` steps each. FLOPs per step come from XLA's cost analysis
of the compiled step with the inner loop unrolled (`gflops_per_step`: XLA counts a loop body once,
so the rolled program's figure, `gflops_rolled`, misses K - 1 of the K inner steps); the
machine's dense float32 matmul rate is measured in the same run. Each row names the machine:
`platform` (cpu, gpu, tpu), `device_kind`, the number of `devices` the step runs on and of JAX
`processes`.

Sweeps (`--sweep=`): `method` (cavia, metasgd, mia), `batch_size` (16..256), `inner_steps`
(1, 3, 5, 10), `devices` (1 and 2 forced CPU devices; each in a subprocess), `options`
(plain, remat, first_order), `precision` (compute_dtype float32, bfloat16). `--config.X=Y` flags
hold for every point. Peak memory is the process's peak RSS, so every sweep point runs in a
fresh subprocess to keep it honest.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config (with :args).")
flags.DEFINE_string("json", None, "Write the table rows to this JSON file.")
flags.DEFINE_enum(
  "sweep",
  None,
  ["method", "batch_size", "inner_steps", "devices", "options", "precision"],
  "Sweep one dimension (each point in a subprocess).",
)
flags.DEFINE_integer("steps", 10, "Steps per timed window.")
flags.DEFINE_integer("windows", 5, "Timed windows (the median is reported).")
flags.DEFINE_integer("devices", 0, "Force this many CPU devices (0 = whatever JAX finds).")
flags.DEFINE_boolean("single", False, "Internal: measure the config once and print one JSON row.")

SWEEPS = {
  "method": [("method", m) for m in ("cavia", "metasgd", "mia")],
  "batch_size": [("batch_size", b) for b in (16, 32, 64, 128, 256)],
  "inner_steps": [("inner_steps", k) for k in (1, 3, 5, 10)],
  "devices": [("devices", d) for d in (1, 2)],
  "options": [("options", o) for o in ("plain", "remat", "first_order", "remat+first_order")],
  "precision": [("compute_dtype", d) for d in ("float32", "bfloat16")],
}


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
  """Dense float32 matmul rate of this machine (GFLOP/s), via jit'ed jnp.dot."""
  import jax
  import jax.numpy as jnp

  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2 * n**3 / min(times) / 1e9


def random_batch(specs, batch_size: int) -> dict:
  """A batch of uniform [0, 1] signals shaped like `specs` (for timing other benchmarks)."""
  import numpy as np

  rng = np.random.default_rng(0)
  return {
    s.name: {
      "y": rng.uniform(size=(batch_size, s.num_points, s.d_out)).astype(np.float32),
      "amplitude": np.ones((batch_size,), np.float32),
    }
    for s in specs
  }


def measure(config, steps: int, windows: int) -> dict:
  """Times the compiled train step of `config`."""
  import jax

  from data_pipelines.synthetic import generate
  from experiments.run import build
  from mia_jax import meta_step

  learner = build.build_learner(config)  # also a run on the user's own arrays (arrays.py)
  mesh = meta_step.data_mesh()
  names = [s.name for s in learner.specs]
  if config.benchmark == "synthetic":
    batch = generate.generate_signals(config.batch_size, 0, names)
  else:  # the values do not change the timing; the shapes come from the modality specs
    batch = random_batch(learner.specs, config.batch_size)
  batch = meta_step.put_batch(batch, mesh)
  state = meta_step.put_replicated(learner.init(jax.random.PRNGKey(0)), mesh)
  step = meta_step.make_train_step(learner, mesh)

  t = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t
  rolled_flops = _flops(compiled)
  # XLA's cost analysis counts a loop body once, so the rolled program's figure misses K - 1 of
  # the K inner steps. The executed count comes from the same step with the inner loop unrolled.
  if config.inner_steps > 1 and config.get("scan_unroll", 1) < config.inner_steps:
    unrolled = config.copy_and_resolve_references()
    unrolled.scan_unroll = config.inner_steps
    u_learner = build.learner_from_config(unrolled)
    flops = _flops(meta_step.make_train_step(u_learner, mesh).lower(state, batch).compile())
  else:
    flops = rolled_flops

  state, metrics = compiled(state, batch)  # warm-up
  jax.block_until_ready(metrics)
  rates = []
  for _ in range(windows):
    t = time.perf_counter()
    for _ in range(steps):
      state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    rates.append(steps / (time.perf_counter() - t))
  sps = statistics.median(rates)
  return {
    "benchmark": config.benchmark,
    "modalities": config.modalities,
    "method": config.method,
    "ablation": config.rule.ablation,
    "batch_size": config.batch_size,
    "inner_steps": config.inner_steps,
    "remat": config.remat,
    "first_order": config.first_order,
    "devices": mesh.devices.size,
    "compute_dtype": config.get("compute_dtype", "float32"),
    "device_kind": mesh.devices.flat[0].device_kind,
    "platform": mesh.devices.flat[0].platform,
    "processes": jax.process_count(),
    "steps_per_s": sps,
    "ms_per_step": 1000.0 / sps,
    "compile_s": compile_s,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "gflops_per_step": flops / 1e9,
    "gflops_rolled": rolled_flops / 1e9,
    "achieved_gflops": flops / 1e9 * sps,
  }


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


COLUMNS = [
  ("benchmark", "{}"),
  ("modalities", "{}"),
  ("method", "{}"),
  ("ablation", "{}"),
  ("batch_size", "{}"),
  ("inner_steps", "{}"),
  ("remat", "{}"),
  ("first_order", "{}"),
  ("compute_dtype", "{}"),
  ("platform", "{}"),
  ("device_kind", "{}"),
  ("devices", "{}"),
  ("processes", "{}"),
  ("steps_per_s", "{:.2f}"),
  ("ms_per_step", "{:.1f}"),
  ("compile_s", "{:.1f}"),
  ("peak_rss_mb", "{:.0f}"),
  ("gflops_per_step", "{:.2f}"),
  ("gflops_rolled", "{:.2f}"),
  ("achieved_gflops", "{:.1f}"),
  ("matmul_gflops", "{:.1f}"),
  ("utilisation", "{:.0%}"),
]


def format_table(rows: list[dict]) -> str:
  cells = [[c for c, _ in COLUMNS]] + [
    [fmt.format(r.get(c, "")) for c, fmt in COLUMNS] for r in rows
  ]
  widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
  lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
  lines.insert(1, "-" * len(lines[0]))
  return "\n".join(lines)


def _config_arg() -> str:
  for a in sys.argv:
    if a.startswith("--config="):
      return a.split("=", 1)[1]
  raise app.UsageError("--config is required.")


def _subprocess_row(config_arg: str, overrides: list[str], devices: int) -> dict:
  # The command line's own --config.X=Y flags hold for every point; the sweep's come after them.
  given = [a for a in sys.argv[1:] if a.startswith("--config.")]
  cmd = (
    [
      sys.executable,
      "-m",
      "experiments.speed.meta_step",
      f"--config={config_arg}",
      "--single",
      f"--steps={FLAGS.steps}",
      f"--windows={FLAGS.windows}",
      f"--devices={devices}",
    ]
    + given
    + overrides
  )
  env = dict(os.environ)
  if devices:
    env["XLA_FLAGS"] = (
      env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}"
    ).strip()
  out = subprocess.run(cmd, capture_output=True, text=True, env=env)
  if out.returncode:
    raise RuntimeError(f"Benchmark subprocess failed:\n{out.stderr[-3000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  config = FLAGS.config
  if FLAGS.single:
    print(json.dumps(measure(config, FLAGS.steps, FLAGS.windows)))
    return
  if FLAGS.sweep is None:
    points = [[]]
  else:
    points = []
    for key, value in SWEEPS[FLAGS.sweep]:
      if key == "devices":
        points.append(("devices", value))
      elif key == "options":
        points.append(
          [f"--config.remat={'remat' in value}", f"--config.first_order={'first_order' in value}"]
        )
      else:
        points.append([f"--config.{key}={value}"])
  rows = []
  for p in points:
    if isinstance(p, tuple):
      row = _subprocess_row(_config_arg(), [], p[1])
    else:
      row = _subprocess_row(_config_arg(), p, FLAGS.devices)
    rows.append(row)
    print(
      f"measured {row['method']} batch={row['batch_size']} K={row['inner_steps']} "
      f"devices={row['devices']}: {row['steps_per_s']:.2f} steps/s",
      file=sys.stderr,
    )
  mm = matmul_gflops()
  for r in rows:
    r["matmul_gflops"] = mm
    r["utilisation"] = r["achieved_gflops"] / mm
  print(format_table(rows))
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(rows if len(rows) > 1 else rows[0], f, indent=1)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
