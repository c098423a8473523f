r"""Rendered 3-D shapes (rgb, normal, sketch at 32x32): the CelebA-like benchmark, offline.

The dataset (`shapes_trimodal`, see data_pipelines/shapes) is rendered on first use into the tfds
data dir (a few seconds); nothing is downloaded.

  # MIA sized for a 2-core CPU (about 18 minutes; one modality alone about 5):
  python -m experiments.main --config=experiments/configs/shapes.py:cpu --workdir=/tmp/shapes
  # rgb alone (the visual-only arm of the modality-replacement study), CAVIA; seconds, for tests:
  python -m experiments.main \
      --config=experiments/configs/shapes.py:method=cavia,modalities=rgb,cpu \
      --workdir=/tmp/shapes_rgb
  python -m experiments.main --config=experiments/configs/shapes.py:smoke --workdir=/tmp/s_smoke
  # The modality-replacement study as run for docs/results.md (about 90 minutes here):
  python -m experiments.ablate --config=experiments/configs/shapes.py:cpu \
      --study=modality_replacement --seeds=3 --other_seeds=1 --workdir=workdirs/shapes_modrep

Arguments: the standard ones (`experiments/configs/common.py`). Without a preset, the paper's
CelebA settings (for a GPU/TPU). The `cpu` preset is the image one (shared.IMAGE_CPU): with the
paper's sigma 30 and lr 1e-4, 800 steps learn only each image's mean colour (rgb generalization
MSE 0.0151, as the per-image mean); after 300 steps rgb alone reaches 0.0061 with sigma 1 and
lr 1e-3, 0.0094 with sigma 3, 0.0154 with sigma 30 (docs/results.md). All 500 test signals are
evaluated.
"""

from data_pipelines import benchmarks
from experiments.configs import common, shared

BENCHMARK = common.Benchmark(
  "shapes",
  "+".join(benchmarks.SHAPES_MODALITIES),
  dataset="shapes_trimodal",
  label="rendered shapes",
  fields=shared.OFFLINE,
  presets={"cpu": {**shared.IMAGE_CPU, "num_train_steps": 800}, "smoke": shared.OFFLINE_SMOKE},
  headline_alone="rgb",
  modality_text=(
    "Modality replacement on rendered shapes: each image modality adapted and evaluated "
    "alone versus with the other two (rgb+normal+sketch), on identical meta-test supports "
    "in every arm (paired). The headline pair is rgb alone versus multimodal."
  ),
)
ARGS, get_config, studies = BENCHMARK.exports()
