"""INR backbones: Flax modules `(coords [P, d_in], latent [*latent_shape]) -> [P, d_out]`."""

from mia_jax.inr.composer import ComposerINR
from mia_jax.inr.functa import FunctaINR

__all__ = ["ComposerINR", "FunctaINR"]
