"""docs/method.md is the repository's own account of the method (issue 33).

The code and the docs cite it, not the design document outside the repository that they used to
cite; and every section they cite by number ("docs/method.md section 4", "sections 3-6",
"docs/method.md §5", and "section N" inside docs/method.md itself) exists there.
"""

import os
import re
import subprocess

import pytest

from tests.paths import ROOT

METHOD_DOC = "docs/method.md"
# The name of the design document that lives outside the repository (written in two parts so
# that this file does not contain it).
EXTERNAL_DOC = "MIA_" + "SPEC"
# Where no file may cite the external document: a path equal to one of these, or under one
# ending in "/".
CHECKED = (
  "mia_jax/",
  "experiments/",
  "data_pipelines/",
  "notebooks/",
  "docs/",
  "tests/",
  "README.md",
  "CHANGELOG.md",
)
# Where references to docs/method.md's sections are checked.
REFERENCING = CHECKED

_NUM = r"\d+(?:\.\d+)?"
_LIST = rf"{_NUM}(?:\s*(?:-|–|,|and|to)\s*(?:§\s*)?{_NUM})*"
# "docs/method.md section 4", "docs/method.md, sections 3, 5 and 6", "docs/method.md §5.7".
QUALIFIED = re.compile(rf"docs/method\.md,?\s*(?:§\s*|\bsections?\s+)({_LIST})")
# Inside docs/method.md, "section 9" and "§9" are its own sections.
INTERNAL = re.compile(rf"(?:§\s*|\bsections?\s+)({_LIST})")
HEADING = re.compile(r"^(##|###) (\d+(?:\.\d+)?)(\.?) \S", re.MULTILINE)


def _under(path, prefixes):
  return any(path == p or (p.endswith("/") and path.startswith(p)) for p in prefixes)


def _repository_files():
  """The files git tracks or would track (not ignored), relative to ROOT; every file under the
  checked folders when git cannot say (e.g. an unpacked source archive)."""
  try:
    out = subprocess.run(
      ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
      cwd=ROOT,
      capture_output=True,
      check=True,
      timeout=120,
    ).stdout
    paths = [p for p in out.decode("utf-8").split("\0") if p]
  except (OSError, subprocess.SubprocessError):
    paths = []
    for top in REFERENCING:
      if not top.endswith("/"):
        paths.append(top)
        continue
      for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.endswith(".egg-info")]
        paths += [
          os.path.relpath(os.path.join(folder, f), ROOT).replace(os.sep, "/") for f in files
        ]
  return sorted(p for p in set(paths) if os.path.isfile(os.path.join(ROOT, p)))


def _text(path):
  """A file's text, or None for a binary file (one with a NUL byte: images, .npz archives)."""
  with open(os.path.join(ROOT, path), "rb") as f:
    data = f.read()
  return None if b"\0" in data else data.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def texts():
  out = {}
  for path in _repository_files():
    if _under(path, REFERENCING):
      text = _text(path)
      if text is not None:
        out[path] = text
  return out


def _sections():
  """The section numbers of docs/method.md's headings, in order: "4" for "## 4. Title", "5.7" for
  "### 5.7 Title"."""
  with open(os.path.join(ROOT, METHOD_DOC), encoding="utf-8") as f:
    return [m.group(2) for m in HEADING.finditer(f.read())]


def _cited(refs):
  """The section numbers a reference list names: "3, 5 and 6" -> 3, 5, 6; "3-6" -> 3, 4, 5, 6."""
  out = []
  for m in re.finditer(rf"({_NUM})(?:\s*(?:-|–|to)\s*(?:§\s*)?({_NUM}))?", refs):
    lo, hi = m.group(1), m.group(2)
    if hi and "." not in lo and "." not in hi:
      out += [str(n) for n in range(int(lo), int(hi) + 1)]
    else:
      out += [lo] + ([hi] if hi else [])
  return out


def _line(text, pos):
  return text.count("\n", 0, pos) + 1


def test_no_file_cites_the_design_document_outside_the_repository(texts):
  found = [
    f"{path}:{_line(text, m.start())}"
    for path, text in texts.items()
    if _under(path, CHECKED)
    for m in re.finditer(re.escape(EXTERNAL_DOC), text)
  ]
  assert not found, (
    f"{EXTERNAL_DOC} is not in the repository; cite the matching section of "
    f"{METHOD_DOC} instead (e.g. 'docs/method.md section 4'): {found}"
  )


def test_method_doc_sections_are_numbered_in_order():
  """Top-level headings "## N. Title" for N = 1, 2, ...; subsections "### N.M Title" with
  M = 1, 2, ... under their section (the numbers are cited across the repository)."""
  with open(os.path.join(ROOT, METHOD_DOC), encoding="utf-8") as f:
    headings = [(m.group(1), m.group(2), m.group(3)) for m in HEADING.finditer(f.read())]
  top = [num for level, num, _ in headings if level == "##"]
  assert top == [str(i) for i in range(1, len(top) + 1)], top
  assert len(top) >= 10
  assert all(dot == "." for level, _, dot in headings if level == "##"), headings
  current, sub = None, 0
  for level, num, _ in headings:
    if level == "##":
      current, sub = num, 0
    else:
      sub += 1
      assert num == f"{current}.{sub}", (num, current, sub)


def test_every_cited_section_of_the_method_doc_exists(texts):
  sections = set(_sections())
  refs = []
  for path, text in texts.items():
    refs += [
      (path, _line(text, m.start()), m.group(0), _cited(m.group(1)))
      for m in QUALIFIED.finditer(text)
    ]
  doc = texts.get(METHOD_DOC)
  if doc is None:  # not yet tracked: read it from the working tree
    doc = _text(METHOD_DOC)
  refs += [
    (METHOD_DOC, _line(doc, m.start()), m.group(0), _cited(m.group(1)))
    for m in INTERNAL.finditer(doc)
  ]
  missing = [
    (path, line, ref) for path, line, ref, nums in refs if any(n not in sections for n in nums)
  ]
  assert not missing, f"references to sections that {METHOD_DOC} does not have: {missing}"
  # The patterns do find the references (a pattern that matched nothing would pass vacuously).
  assert sum(1 for path, *_ in refs if path.startswith("mia_jax/")) >= 10
  assert sum(1 for path, *_ in refs if path == METHOD_DOC) >= 10


@pytest.mark.parametrize(
  "refs,cited",
  [
    ("4", ["4"]),
    ("5.7", ["5.7"]),
    ("3-6", ["3", "4", "5", "6"]),
    ("1-2", ["1", "2"]),
    ("3, 5 and 6", ["3", "5", "6"]),
    ("3.2, 5.7 and 9", ["3.2", "5.7", "9"]),
  ],
)
def test_reference_lists_are_read_as_written(refs, cited):
  assert _cited(refs) == cited
  match = QUALIFIED.search(f"(see docs/method.md sections {refs}).")
  assert match and _cited(match.group(1)) == cited
