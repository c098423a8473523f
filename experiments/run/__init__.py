"""One run: build a learner from a config, check its inputs, train and evaluate it, and use what
was trained (`train.train_and_evaluate`, `loading.load_run`, `predict`); docs/architecture.md."""
