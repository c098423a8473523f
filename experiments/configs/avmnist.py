r"""AV-MNIST benchmark (rgb: a 28x28 MNIST digit; wav: a spoken digit of the same class, 0.5 s).

Put MNIST's four idx files and the Free Spoken Digit Dataset's `recordings/` folder in
`<data_dir>/downloads/manual/avmnist/` (or have the tfds `mnist` / `spoken_digit` datasets
prepared as array_record in `<data_dir>`; docs/datasets.md has the tree). The first run builds
the tfds dataset `avmnist` into `<data_dir>` (tfds' default data dir `~/tensorflow_datasets`
unless `data_dir=` is given); later runs only read it.

  # Sized for a 2-core CPU; the digit image alone with CAVIA; the paper's settings (GPU/TPU):
  python -m experiments.main --config=experiments/configs/avmnist.py:cpu --workdir=/tmp/avmnist_cpu
  python -m experiments.main \
      --config=experiments/configs/avmnist.py:method=cavia,modalities=rgb,cpu,data_dir=/data/tfds \
      --workdir=/tmp/rgb
  python -m experiments.main --config=experiments/configs/avmnist.py --workdir=/tmp/avmnist
  # The modality-replacement study (rgb alone vs rgb+wav), 3 seeds:
  python -m experiments.ablate --config=experiments/configs/avmnist.py:cpu \
      --study=modality_replacement --seeds=3 --workdir=/tmp/modrep

Arguments: the standard ones (`experiments/configs/common.py`), and `data_dir` (the tfds data
dir; "" = the tfds default). The paper's image settings serve the digit and the waveform alike.
The `cpu` preset (first 500 test pairs) gives the image smooth Fourier features (sigma 1) and
keeps sigma 30 for the waveform; carried over from the offline sets, not measured on AV-MNIST.
"""

from data_pipelines import benchmarks
from experiments.configs import common, shared

# The image benchmarks' cpu preset, with smooth features for the image only.
CPU = {**shared.REAL_CPU, "model.ff_sigma": 30.0, "model.ff_sigmas": "rgb=1"}
BENCHMARK = common.Benchmark(
  "avmnist",
  "+".join(benchmarks.AVMNIST_MODALITIES),
  dataset="avmnist",
  label="AV-MNIST",
  fields=shared.IMAGE,
  presets={"cpu": CPU, "smoke": shared.IMAGE_SMOKE},
  own_args={"data_dir": ""},
  headline_alone="rgb",
  modality_text=(
    "Modality replacement: the visual modality (the digit image) adapted alone versus with "
    "the spoken digit, and the audio alone; identical meta-test supports in every arm "
    "(paired)."
  ),
)
ARGS, get_config, studies = BENCHMARK.exports()
