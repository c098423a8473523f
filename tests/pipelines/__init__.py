"""The data pipelines: generators, loaders, real-dataset builders on small files."""
