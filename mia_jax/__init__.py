"""mia-jax: multimodal meta-learning of implicit neural representations in JAX/Flax.

The library is pure functions over pytrees; see `docs/library.md` for recipes and
`docs/architecture.md` for the layout. The public API:

* modalities: `ModalitySpec`, `specs_from_arrays` (the benchmarks' specs are
  `data_pipelines.benchmarks`);
* INR learners: `MultimodalINR` over any Flax backbone with a `latent_shape`, the built-in
  `ComposerINR` and `FunctaINR`, `ModelConfig` (the built-in backbones by name), `token_shape`;
* update rules (`mia_jax.rules`): pieces combined with `chain`, and the methods built from them;
* the inner loop `adapt` (on grid supports of known signals) and `adapt_to_observations`
  (on a few observed points anywhere, e.g. of a new signal), predictions anywhere with
  `MultimodalINR.predict(..., coords=)`;
* the meta-learner `MetaLearner` (loss, `train_step`, `eval_step`),
  `MetaConfig`, `TrainState`, and `meta_step`'s data-parallel jit helpers; its outer optimiser is
  any optax transformation (`optim`: the default Adam, schedules, the method's wrappers);
* `sampling` (support sets, fixed meta-test episodes) and `evaluation` (the results' reducers).
"""

from mia_jax import evaluation, meta_step, optim, rules, sampling
from mia_jax.adaptation import adapt, adapt_to_observations
from mia_jax.arrays import specs_from_arrays
from mia_jax.inr import ComposerINR, FunctaINR
from mia_jax.meta_step import MetaConfig, MetaLearner, TrainState
from mia_jax.modalities import ModalitySpec, group_modalities
from mia_jax.model import ModelConfig, MultimodalINR
from mia_jax.rules import UpdateRule, chain
from mia_jax.tokens import token_shape

__version__ = "0.5.0"

__all__ = [
  "ComposerINR",
  "FunctaINR",
  "MetaConfig",
  "MetaLearner",
  "ModalitySpec",
  "ModelConfig",
  "MultimodalINR",
  "TrainState",
  "UpdateRule",
  "adapt",
  "adapt_to_observations",
  "chain",
  "evaluation",
  "group_modalities",
  "meta_step",
  "optim",
  "rules",
  "sampling",
  "specs_from_arrays",
  "token_shape",
]
