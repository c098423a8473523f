"""mia-jax: multimodal meta-learning of implicit neural representations in JAX/Flax.

`pip install mia-jax` (or `pip install .`) gives the library, `mia_jax`, on jax, flax, optax,
chex and numpy alone. The extras add the rest:

* `data`: the dataset pipelines (`data_pipelines`: tfds builders, grain loading);
* `experiments`: the training driver, configs, ablation studies and benchmarks (`experiments`:
  absl, ml-collections, orbax, tqdm, matplotlib, tensorboard), with `data`;
* `test`: everything, and the test tools (the README's `pip install -e ".[test]"`);
* `gpu`: the CUDA build of jax; `tf`: TensorFlow, which nothing needs.
"""

import re

from setuptools import find_packages, setup

with open("mia_jax/__init__.py", encoding="utf-8") as f:
  VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

LIBRARY = [
  "jax>=0.10,<0.11",
  "jaxlib>=0.10,<0.11",
  "flax>=0.12,<0.13",
  "optax>=0.2.4",
  "chex>=0.1.88",
  "numpy>=1.26",
]
DATA = [
  "tensorflow-datasets>=4.9.7",
  "array_record>=0.7",
  "importlib_resources",
  "etils[epath]",
  "grain>=0.2.10",
  "scikit-learn>=1.4",  # bundled digit images of the offline avdigits benchmark
]
EXPERIMENTS = DATA + [
  "absl-py>=2.1",
  "ml-collections>=1.0",
  "orbax-checkpoint>=0.11",
  "tqdm>=4.66",
  "matplotlib>=3.8",
  "tensorboard>=2.16",  # its own event-file writer: no TensorFlow (experiments/run/events.py)
]
TEST_TOOLS = [
  "pytest>=8",
  "pytest-xdist>=3.5",
  "nbclient>=0.10",
  "nbformat>=5.10",
  "ipykernel>=6.29",
  "ruff>=0.6",
  "hypothesis>=6.100",
  "mypy>=1.10",
]

setup(
  name="mia-jax",
  version=VERSION,
  description="Multimodal Iterative Adaptation (MIA) and meta-learning baselines for INRs in JAX.",
  long_description=open("README.md", encoding="utf-8").read(),
  long_description_content_type="text/markdown",
  license="Apache-2.0",
  # Tested on 3.11 (CI); jax 0.10 also supports 3.12 and 3.13.
  python_requires=">=3.11",
  classifiers=[
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3.11",
    "License :: OSI Approved :: Apache Software License",
  ],
  # Installed top-level packages: mia_jax (the library), data_pipelines, experiments.
  packages=find_packages(include=["mia_jax*", "experiments*", "data_pipelines*"]),
  # PEP 561: the library ships its inline type annotations (mia_jax/py.typed).
  package_data={"mia_jax": ["py.typed"]},
  install_requires=LIBRARY,
  extras_require={
    "data": DATA,
    "experiments": EXPERIMENTS,
    "test": EXPERIMENTS + TEST_TOOLS,
    "gpu": ["jax[cuda12]>=0.10,<0.11"],
    "tf": ["tensorflow"],
  },
)
