"""The offline audio-visual digits benchmark: scikit-learn digit images paired by class with
synthesised spoken digits (generator and tfds builder)."""

from data_pipelines.avdigits.generate import MODALITIES, generate_signals
