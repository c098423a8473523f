"""AV-MNIST (MNIST images + spoken digits): tfds builder from local files, and loader."""

from data_pipelines.avmnist.avmnist import Avmnist
from data_pipelines.avmnist.avmnist import MODALITIES
from data_pipelines.avmnist.avmnist import pair_by_label
from data_pipelines.avmnist.avmnist import prepare_waveform
from data_pipelines.avmnist.loader import load_avmnist
