"""The release files agree with the package: CHANGELOG.md, CITATION.cff, LICENSE, py.typed."""

import os
import re

import mia_jax
from tests.paths import ROOT


def _read(name: str) -> str:
  with open(os.path.join(ROOT, name), encoding="utf-8") as f:
    return f.read()


def test_changelog_has_a_section_for_the_version():
  text = _read("CHANGELOG.md")
  version = re.escape(mia_jax.__version__)
  assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M), (
    f"CHANGELOG.md has no '## [{mia_jax.__version__}] - YYYY-MM-DD' section"
  )
  assert re.search(r"^## \[Unreleased\]$", text, re.M)


def test_citation_cff_names_the_version():
  text = _read("CITATION.cff")
  assert re.search(r"^cff-version:\s*[\"']?1\.2\.0[\"']?\s*$", text, re.M)
  # The top-level `version:` (not the indented ones of a reference).
  versions = re.findall(r"^version:\s*[\"']?([^\"'\s]+)[\"']?\s*$", text, re.M)
  assert versions == [mia_jax.__version__]
  assert re.search(r"^preferred-citation:\s*$", text, re.M)


def test_license_is_the_full_apache_2_text():
  text = _read("LICENSE")
  for phrase in (
    "Apache License",
    "Version 2.0",
    "TERMS AND CONDITIONS",
    "END OF TERMS AND CONDITIONS",
    "APPENDIX",
  ):
    assert phrase in text, phrase


def test_py_typed_marker_exists():
  assert os.path.isfile(os.path.join(ROOT, "mia_jax", "py.typed"))
