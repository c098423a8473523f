r"""Meta-trains and evaluates one configuration.

  python -m experiments.main --config=experiments/configs/synthetic.py:method=mia,cpu \
      --workdir=/tmp/mia

Re-running with the same --workdir resumes from the latest checkpoint. Errors are one line
(`error: ...`; exit code 2 for bad flags, config, data or episodes, 1 while training); --debug
shows tracebacks.

Several processes (hosts) train one run when started with `--coordinator_address=HOST:PORT
--num_processes=N --process_id=I` (one command per process, the same --config and --workdir), or
with no flags on a cluster JAX detects (a TPU pod slice, SLURM); see docs/distributed.md.
"""

import os

from absl import flags, logging
from ml_collections import config_flags

from experiments import cli
from experiments.run import distributed, train, validate

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.json.")
config_flags.DEFINE_config_file("config", None, "Config file (with :args).", lock_config=True)
flags.DEFINE_string(
  "coordinator_address",
  None,
  "Multi-process runs: HOST:PORT of process 0, where the processes meet.",
)
flags.DEFINE_integer("num_processes", None, "Multi-process runs: the number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index, 0..N-1.")
flags.DEFINE_integer(
  "heartbeat_timeout_seconds",
  100,
  "Multi-process runs: the others stop this long after a process dies.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  with cli.exit_on_error(2):  # usage errors: nothing is written before these checks
    cli.check_argv(argv)
    distributed.initialize(
      FLAGS.coordinator_address,
      FLAGS.num_processes,
      FLAGS.process_id,
      FLAGS.heartbeat_timeout_seconds,
    )
    validate.validate_config(FLAGS.config)
    validate.check_writable_dir(FLAGS.workdir, "workdir")
    # One run per workdir: a second one exits here, naming the holder (process 0 holds it).
    lock = train.workdir_lock(FLAGS.workdir).acquire()
    try:
      run = train.prepare(FLAGS.config, FLAGS.workdir)  # the data, model and episodes too
    except BaseException:
      lock.release()
      raise
  if distributed.is_primary():
    c = FLAGS.config
    logging.info(
      "Config: method=%s on %s, preset %s, seed %d, %d meta-steps; every field in %s",
      c.method,
      c.benchmark,
      c.get("preset", "?"),
      c.seed,
      c.num_train_steps,
      os.path.join(FLAGS.workdir, "config.json"),
    )
    logging.vlog(1, "Config:\n%s", c)
  try:
    with cli.exit_on_error(1):
      train.train_prepared(run)
  finally:
    lock.release()


if __name__ == "__main__":
  cli.run_cli(main)
