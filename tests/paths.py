"""Where things are, for tests in any room of tests/: the repository root and the test data."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
TESTS = os.path.join(ROOT, "tests")
DATA = os.path.join(TESTS, "data")  # stored references (fingerprint, pre-refactor arrays)
