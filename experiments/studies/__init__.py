"""Many runs: study definitions, the runner (`runner.run`), reports, figures, archives, and the
comparison across budgets; docs/architecture.md."""
