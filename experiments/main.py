r"""Meta-trains and evaluates one configuration.

  python -m experiments.main --config=experiments/configs/synthetic.py:method=mia,cpu \
      --workdir=/tmp/mia

Re-running with the same --workdir resumes from the latest checkpoint.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.json.")
config_flags.DEFINE_config_file("config", None, "Config file (with :args).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
  logging.info("Config:\n%s", FLAGS.config)
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
