"""mia-jax: multimodal meta-learning of implicit neural representations in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="mia-jax",
    version="0.1.0",
    description="Multimodal Iterative Adaptation (MIA) and meta-learning baselines for INRs in JAX.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["mia_jax*", "experiments*", "data_pipelines*", "benchmarks*"]),
    install_requires=[
        "jax>=0.10,<0.11",
        "jaxlib>=0.10,<0.11",
        "flax>=0.12,<0.13",
        "optax>=0.2.4",
        "chex>=0.1.88",
        "orbax-checkpoint>=0.11",
        "tensorflow-datasets>=4.9.7",
        "array_record>=0.7",
        "importlib_resources",
        "etils[epath]",
        "grain>=0.2.10",
        "ml-collections>=1.0",
        "absl-py>=2.1",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "numpy>=1.26",
        "scikit-learn>=1.4",      # bundled digit images of the offline avdigits benchmark
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "nbclient>=0.10", "nbformat>=5.10",
                 "ipykernel>=6.29"],
        "gpu": ["jax[cuda12]>=0.10,<0.11"],
        "tf": ["tensorflow"],
    },
)
