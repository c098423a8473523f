"""The offline trimodal image benchmark: rendered 3-D shapes (generator and tfds builder)."""

from data_pipelines.shapes.generate import MODALITIES, generate_signals
