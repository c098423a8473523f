"""The whole project: the CLI under bad input, several processes, the docs and the notebook
executed, the layering and the tooling."""
