r"""Audio-visual digits (a 28x28 digit image "rgb" and a spoken digit "wav"): AV-MNIST, offline.

The dataset (`avdigits`, see data_pipelines/avdigits) is built on first use into the tfds data
dir (seconds): scikit-learn's bundled digit images paired by class with waveforms from a small
formant synthesiser; nothing is downloaded. The image and the waveform have different learner
signatures, so they are two modality groups, each vmapped on its own, whose tokens meet in
MIA's multimodal SFT within one compiled step.

Examples:

  # MIA sized for a 2-core CPU (about 19 minutes; one modality alone about 6.5):
  python -m experiments.main --config=experiments/configs/avdigits.py:cpu --workdir=/tmp/avd
  # The image alone (the visual-only arm of the modality-replacement study):
  python -m experiments.main --config=experiments/configs/avdigits.py:modalities=rgb,cpu \
      --workdir=/tmp/avd_rgb
  # Seconds, for tests:
  python -m experiments.main --config=experiments/configs/avdigits.py:method=mia,smoke \
      --workdir=/tmp/avd_smoke
  # One heterogeneous (image + audio) meta-step, timed:
  python -m experiments.benchmarks.meta_step --config=experiments/configs/avdigits.py:method=mia \
      --steps=2 --windows=3
  # The modality-replacement study as run for docs/results.md (about 95 minutes here):
  python -m experiments.ablate --config=experiments/configs/avdigits.py:cpu \
      --study=modality_replacement --seeds=3 --other_seeds=1 --workdir=workdirs/avd_modrep

Arguments (`key=value`, comma-separated): method (mia | cavia | metasgd | alfa | gap), ablation
(MIA only: none | no_sft | no_usft | no_msft | no_fuser | grad_only | latent_only), inner_steps,
modalities (a `+`-joined subset of rgb+wav), seed, first_order, remat, batch_size,
num_train_steps, and a preset: `smoke` | `cpu` | `full` (default).

Model (MIA_SPEC sections 3-5; the spec gives image settings, used here for both modalities):
composer INR with random Fourier features (sigma 30, 128 features), hidden 128, 5 layers,
rank 64; K = 3; batch 32; MIA's gradient scaler initialised at 1000. Support ratios: rgb in
[0.001, 1], wav in [0.25, 1].
"""

from experiments.configs import common
from mia_jax import rules
from data_pipelines import benchmarks

MODALITIES = "+".join(benchmarks.AVDIGITS_MODALITIES)


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, dict(
      method="mia", ablation="none", inner_steps=3, modalities=MODALITIES, seed=0,
      first_order=False, remat=False, batch_size=0, num_train_steps=0, preset="full"))
  c = common.base_config()
  c.benchmark = "avdigits"
  c.method = args["method"]
  c.modalities = args["modalities"]
  c.seed = args["seed"]
  c.inner_steps = args["inner_steps"]
  c.first_order = args["first_order"]
  c.remat = args["remat"]
  c.preset = args["preset"]

  c.data.name = "avdigits"
  c.batch_size = 32
  c.num_train_steps = 50_000
  c.model.rank = 64
  c.model.ff_sigma = benchmarks.IMAGE_FOURIER_SIGMA
  c.model.ff_dim = benchmarks.IMAGE_FF_DIM
  c.rule.ablation = args["ablation"]
  c.rule.grad_scale = 1000.0 if c.method == "mia" else 0.0  # MIA's gradient scaler (CelebA)
  c.eval.batch_size = 50

  if c.preset == "cpu":
    # A small backbone and batch: a run takes about 19 minutes on 2 CPU cores, one modality
    # alone about 6.5 (measured in docs/results.md's study); the 500 test signals are all
    # evaluated. As in shapes.py, the image gets smooth Fourier features (sigma 1; 30 is far
    # above the 28x28 grid's Nyquist frequency) and the outer loop a faster rate (1e-3): the
    # paper's settings learn little at this budget. The waveform keeps sigma 30 (its grid has
    # 2,000 points). After 300 steps, alone: rgb generalization MSE 0.0044 (per-image mean:
    # 0.105); wav 0.057 at lr 1e-3 (silence: 0.067).
    c.num_train_steps = 1_200
    c.batch_size = 16
    c.model.hidden = 64
    c.model.rank = 16
    c.model.ff_sigmas = "rgb=1"
    c.learning_rate = 1e-3
    c.checkpoint_every_steps = 250
  elif c.preset == "smoke":
    # Seconds: tiny model, a few steps, a small dataset.
    c.num_train_steps = 4
    c.batch_size = 4
    c.model.hidden = 16
    c.model.rank = 4
    c.model.ff_dim = 16
    c.rule.sft_width = 24
    c.rule.head_dim = 8
    c.data.builder_config = "small"
    c.data.num_test_signals = 8
    c.eval.batch_size = 4
    c.log_every_steps = 2
    c.checkpoint_every_steps = 2
  if args["batch_size"]:
    c.batch_size = args["batch_size"]
  if args["num_train_steps"]:
    c.num_train_steps = args["num_train_steps"]
  return c


def studies():
  """The ablation studies of this benchmark: `python -m experiments.ablate --study=NAME`.

  See `experiments/configs/synthetic.py` for the format. Meta-test supports are drawn per
  modality from the episode seed, so rgb (and wav) see the same supports in every arm (paired).
  """
  sft_arms = tuple(rules.ABLATIONS)
  return {
      "modality_replacement": dict(
          description=(
              "Modality replacement on audio-visual digits: the digit image adapted and "
              "evaluated alone versus with its spoken digit (rgb+wav), on identical meta-test "
              "supports in every arm (paired); and the waveform alone."),
          arms={"multimodal": dict(modalities=MODALITIES), "rgb_alone": dict(modalities="rgb"),
                "wav_alone": dict(modalities="wav")},
          reference="multimodal",
          headline=("multimodal", "rgb_alone"),
          measures=("generalization_mse", "memorization_mse")),
      "sft_removal": dict(
          description=(
              "SFT removal on audio-visual digits: MIA against MIA without its state fusion "
              "transformers (`no_sft` is CAVIA with MIA's backbone and training) or their parts."),
          arms={("mia" if a == "none" else a): dict(method="mia", ablation=a) for a in sft_arms},
          reference="mia",
          headline=("mia", "no_sft"),
          measures=("generalization_mse", "memorization_mse")),
      "methods": dict(
          description=("MIA against the baselines on audio-visual digits, same backbone and "
                       "episodes."),
          arms={m: dict(method=m, ablation="none")
                for m in rules.METHODS},
          reference="mia",
          measures=("generalization_mse", "memorization_mse")),
  }
