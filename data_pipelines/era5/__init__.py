"""ERA5 climate fields (temperature, pressure, humidity): tfds builder from local .npz files."""

from data_pipelines.era5.era5 import MODALITIES, Era5, regrid
from data_pipelines.era5.loader import load_era5, normalisation
