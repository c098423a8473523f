"""TFDS builder `synthetic_functions`: the synthetic 1-D function benchmark.

The data are generated locally by `generate.generate_signals` (nothing is
downloaded) and written as array_record, so they build and read without
TensorFlow::

  builder = SyntheticFunctions(config="small", data_dir=data_dir,
                               file_format="array_record")
  builder.download_and_prepare()
  train = builder.as_data_source(split="train")  # train[i] -> nested dict

Each config is prepared in its own directory
(`data_dir/synthetic_functions/<config>/<version>`), so sizes never collide.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.synthetic import generate

_DESCRIPTION = """\
Synthetic multimodal 1-D functions (sine, tanh, gaussian, relu) sharing
jittered amplitude, frequency, phase and offset, each on 200 points of
t in [-5, 5]; the MIA benchmark that needs no download.
"""

# Seeds of `generate_signals` for each split.
SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass
class SyntheticFunctionsConfig(tfds.core.BuilderConfig):
  """A dataset size.

  Attributes:
    num_train: number of meta-train signals (seed 0).
    num_test: number of meta-test signals (seed 1).
  """

  num_train: int = 1000
  num_test: int = 200


class SyntheticFunctions(tfds.core.GeneratorBasedBuilder):
  """Synthetic multimodal 1-D function signals."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      SyntheticFunctionsConfig(
          name="default", description="1000 train / 200 test signals.",
          num_train=1000, num_test=200),
      SyntheticFunctionsConfig(
          name="small", description="64 train / 32 test signals, for tests.",
          num_train=64, num_test=32),
  ]
  DEFAULT_CONFIG_NAME = "default"

  def _info(self) -> tfds.core.DatasetInfo:
    modality = lambda: tfds.features.FeaturesDict({
        "y": tfds.features.Tensor(
            shape=(generate.NUM_POINTS, 1), dtype=np.float32),
        "amplitude": tfds.features.Tensor(shape=(), dtype=np.float32),
    })
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict(
            {name: modality() for name in generate.MODALITIES}),
        supervised_keys=None,
        # Keep the examples in key order, so that example i of a split is
        # signal i of `generate_signals(num_signals, seed)`.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    sizes = {"train": self.builder_config.num_train,
             "test": self.builder_config.num_test}
    return {split: self._generate_examples(sizes[split], SPLIT_SEEDS[split])
            for split in SPLIT_SEEDS}

  def _generate_examples(self, num_signals: int, seed: int):
    """Yields `(index, {name: {"y": [200, 1], "amplitude": []}})`."""
    signals = generate.generate_signals(num_signals, seed)
    for i in range(num_signals):
      yield i, {
          name: {"y": arrays["y"][i], "amplitude": arrays["amplitude"][i]}
          for name, arrays in signals.items()
      }
