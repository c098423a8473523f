r"""Compares one study archived at several training budgets: the gain of one arm over another
at each fixed support ratio, against the budget (issue 35).

  # The modality-replacement study of the shapes at 800 and 3,200 meta-steps (two archives of
  # `python -m experiments.ablate ... --steps=S --archive=DIR`):
  python -m experiments.budget \
      --archives=docs/results/shapes_budget/800,docs/results/shapes_budget/3200 \
      --reference=multimodal --arm=rgb_alone --modality=rgb --out=docs/results/shapes_budget

Writes `gain.md` (printed), `gain.csv`, `gain.png` and `gain.json` into --out
(`experiments/studies/budget.py`). Trains nothing.
"""

from absl import flags

from experiments import cli
from experiments.run import validate
from experiments.studies import budget

FLAGS = flags.FLAGS
flags.DEFINE_list(
  "archives", None, "Study archives (--archive of experiments.ablate), one per budget."
)
flags.DEFINE_string("reference", "multimodal", "The arm whose gain is measured.")
flags.DEFINE_string("arm", "rgb_alone", "The arm it is compared with.")
flags.DEFINE_string("modality", "rgb", "The modality whose errors are compared.")
flags.DEFINE_string("measure", "generalization_mse", "The measure (an error: lower is better).")
flags.DEFINE_integer("ratios", 3, "The sparsest fixed ratios drawn in gain.png.")
flags.DEFINE_string("out", None, "Directory for gain.md, gain.csv, gain.png and gain.json.")
flags.mark_flags_as_required(["archives", "out"])


def main(argv):
  with cli.exit_on_error(2):
    cli.check_argv(argv)
    if FLAGS.ratios < 1:
      raise ValueError(f"--ratios={FLAGS.ratios} is not allowed; expected an integer >= 1.")
    if not FLAGS.measure.endswith("_mse"):
      raise ValueError(
        f"--measure={FLAGS.measure!r} is not allowed; expected an error (lower is better): "
        "generalization_mse, memorization_mse or full_mse."
      )
    validate.check_writable_dir(FLAGS.out, "out")
    gains = budget.gains(FLAGS.archives, FLAGS.reference, FLAGS.arm, FLAGS.modality, FLAGS.measure)
  with cli.exit_on_error(1):
    files = budget.write(gains, FLAGS.out, FLAGS.ratios)
  print(budget.format_markdown(gains))
  print("Wrote " + ", ".join(files[k] for k in sorted(files)))


if __name__ == "__main__":
  cli.run_cli(main)
