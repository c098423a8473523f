r"""ERA5 climate benchmark (temperature, pressure, humidity on a 46 x 90 lat x lon grid).

Put `.npz` files with the arrays `temperature`, `pressure`, `humidity` ([T, lat, lon]) in
`<data_dir>/downloads/manual/era5/{train,test}/` (docs/datasets.md has the details). The first
run builds the tfds dataset `era5` into `<data_dir>` (tfds' default data dir
`~/tensorflow_datasets` unless `data_dir=` is given), each variable normalised to [0, 1] with the
training split's min/max; later runs only read it.

  # The paper's image settings (for a GPU/TPU); sized for a 2-core CPU; temperature alone:
  python -m experiments.main --config=experiments/configs/era5.py --workdir=/tmp/era5
  python -m experiments.main --config=experiments/configs/era5.py:cpu --workdir=/tmp/era5_cpu
  python -m experiments.main --config=experiments/configs/era5.py:modalities=temperature,cpu \
      --workdir=/tmp/temperature
  # The modality-replacement study:
  python -m experiments.ablate --config=experiments/configs/era5.py:cpu \
      --study=modality_replacement --seeds=3 --workdir=/tmp/era5_modrep

Arguments: the standard ones (`experiments/configs/common.py`), and `data_dir` (the tfds data
dir; "" = the tfds default). The fields are 2-D grids like images and get the paper's image
settings; the `cpu` preset (first 500 test time steps) is the real datasets' one, carried over
from the offline sets, not measured on ERA5 itself.
"""

from data_pipelines import benchmarks
from experiments.configs import common, shared

BENCHMARK = common.Benchmark(
  "era5",
  "+".join(benchmarks.ERA5_MODALITIES),
  dataset="era5",
  label="ERA5",
  fields=shared.IMAGE,
  presets={"cpu": shared.REAL_CPU, "smoke": shared.IMAGE_SMOKE},
  own_args={"data_dir": ""},
  modality_text=(
    "Modality replacement: each climate variable adapted alone versus with the other two; "
    "identical meta-test supports in every arm (paired)."
  ),
)
ARGS, get_config, studies = BENCHMARK.exports()
