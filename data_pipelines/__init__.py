"""Data for mia-jax: tfds builders (array_record) and grain loaders.

No TensorFlow is needed to build or read any of the datasets.
"""

from data_pipelines.batching import dataset_size, make_eval_loader, make_loader, num_batches
from data_pipelines.npz import GridSource, NpzSource, save_npz
from data_pipelines.signals import ArraySource, ModalitySubset, to_memory
from data_pipelines.synthetic.generate import generate_signals
from data_pipelines.synthetic.synthetic import load_synthetic
