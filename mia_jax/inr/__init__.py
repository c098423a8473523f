"""INR backbones: Flax modules evaluated as pure functions of (params, latent, coords)."""

from mia_jax.inr.composer import ComposerINR

BACKBONES = {"composer": ComposerINR}

__all__ = ["BACKBONES", "ComposerINR"]
