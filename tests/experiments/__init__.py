"""The experiments: one run, studies, workdirs, the command line's checks."""
