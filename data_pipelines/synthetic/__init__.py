"""The synthetic 1-D function benchmark (generator and tfds builder)."""

from data_pipelines.synthetic.generate import FUNCTIONS
from data_pipelines.synthetic.generate import generate_signals
from data_pipelines.synthetic.generate import MODALITIES
from data_pipelines.synthetic.generate import T_GRID
