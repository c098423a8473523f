"""Data for mia-jax: tfds builders (array_record) and grain loaders.

No TensorFlow is needed to build or read any of the datasets.
"""

from data_pipelines.batching import dataset_size
from data_pipelines.batching import make_eval_loader
from data_pipelines.batching import make_loader
from data_pipelines.batching import num_batches
from data_pipelines.npz import GridSource
from data_pipelines.npz import NpzSource
from data_pipelines.npz import save_npz
from data_pipelines.signals import ArraySource
from data_pipelines.signals import ModalitySubset
from data_pipelines.signals import to_memory
from data_pipelines.synthetic.generate import generate_signals
from data_pipelines.synthetic.synthetic import load_synthetic
