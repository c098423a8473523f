"""The library (`mia_jax`): the pieces against hand-computed references."""
