"""AV-MNIST (MNIST images + spoken digits): tfds builder from local files, and loader."""

from data_pipelines.avmnist.avmnist import MODALITIES, Avmnist, pair_by_label
from data_pipelines.avmnist.fsdd import prepare_waveform
from data_pipelines.avmnist.loader import load_avmnist
