"""ERA5 climate fields (temperature, pressure, humidity): tfds builder from local .npz files."""

from data_pipelines.era5.era5 import Era5
from data_pipelines.era5.era5 import MODALITIES
from data_pipelines.era5.era5 import regrid
from data_pipelines.era5.loader import load_era5
from data_pipelines.era5.loader import normalisation
