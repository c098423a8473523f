"""The synthetic 1-D function benchmark (generator and tfds builder)."""

from data_pipelines.synthetic.generate import FUNCTIONS, MODALITIES, T_GRID, generate_signals
