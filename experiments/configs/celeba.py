r"""CelebA trimodal benchmark (rgb, normal, sketch at 32x32): needs the image folders in place.

Put the MIA authors' CelebA images in `<data_dir>/downloads/manual/celeba_trimodal/`
(`{train,test}/<size>/{rgb,normal,sketch}/<name>.png`; docs/datasets.md has the tree). The first
run builds the tfds dataset `celeba_trimodal` from them into `<data_dir>` (tfds' default data
dir `~/tensorflow_datasets` unless `data_dir=` is given); later runs only read it.

  # The paper's settings (for a GPU/TPU): MIA, batch 32, composer rank 64, Fourier sigma 30
  python -m experiments.main --config=experiments/configs/celeba.py:method=mia --workdir=/tmp/celeba
  # Sized for a 2-core CPU; the visual modality alone; a baseline
  python -m experiments.main --config=experiments/configs/celeba.py:cpu --workdir=/tmp/celeba_cpu
  python -m experiments.main --config=experiments/configs/celeba.py:modalities=rgb,cpu \
      --workdir=/tmp/rgb
  python -m experiments.main \
      --config=experiments/configs/celeba.py:method=cavia,data_dir=/data/tfds \
      --workdir=/tmp/cavia
  # The modality-replacement study (rgb alone vs rgb+normal+sketch):
  python -m experiments.ablate --config=experiments/configs/celeba.py:cpu \
      --study=modality_replacement --seeds=3 --workdir=/tmp/modrep

Arguments: the standard ones (`experiments/configs/common.py`), and `data_dir` (the tfds data
dir; "" = the tfds default). The `cpu` preset evaluates on the first 500 test faces; its smooth
Fourier features and faster outer loop are carried over from the offline sets, not measured on
CelebA itself.
"""

from data_pipelines import benchmarks
from experiments.configs import common, shared

BENCHMARK = common.Benchmark(
  "celeba",
  "+".join(benchmarks.CELEBA_MODALITIES),
  dataset="celeba_trimodal",
  label="CelebA",
  fields=shared.IMAGE,
  presets={"cpu": shared.REAL_CPU, "smoke": shared.IMAGE_SMOKE},
  own_args={"data_dir": ""},
  headline_alone="rgb",
  modality_text=(
    "Modality replacement: the visual modality (rgb) adapted alone versus with the normal "
    "and sketch modalities, then each other modality alone; identical meta-test supports "
    "in every arm (paired)."
  ),
)
ARGS, get_config, studies = BENCHMARK.exports()
