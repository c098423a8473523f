"""mia-jax: multimodal meta-learning of implicit neural representations in JAX/Flax.

The library is pure functions over pytrees; see `docs/architecture.md` for the layout.
"""

from mia_jax.adaptation import adapt
from mia_jax.meta_step import MetaConfig, MetaLearner, TrainState
from mia_jax.modalities import ModalitySpec, benchmark_specs, group_modalities
from mia_jax.model import ModelConfig, MultimodalINR
from mia_jax.rules import RULES, UpdateRule, make_rule

__version__ = "0.1.0"
