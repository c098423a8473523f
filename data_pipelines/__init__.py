"""Data for mia-jax: tfds builders (array_record) and grain loaders.

No TensorFlow is needed to build or read any of the datasets.
"""

from data_pipelines.sources import ArraySource
from data_pipelines.sources import dataset_size
from data_pipelines.sources import load_synthetic
from data_pipelines.sources import make_loader
from data_pipelines.sources import ModalitySubset
from data_pipelines.sources import num_batches
from data_pipelines.sources import NpzSource
from data_pipelines.sources import save_npz
from data_pipelines.sources import to_memory
from data_pipelines.synthetic.generate import generate_signals
