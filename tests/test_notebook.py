"""The quickstart notebook runs top to bottom on the smoke preset (so it never rots)."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")


def _text(outputs):
  out = []
  for o in outputs:
    if o.get("output_type") == "stream":
      out.append(o["text"])
    elif "data" in o:
      out.append(o["data"].get("text/markdown", "") + o["data"].get("text/plain", ""))
  return "".join(out)


def test_quickstart_notebook_executes(tmp_path, synthetic_data_dir, tmp_path_factory,
                                      monkeypatch):
  monkeypatch.setenv("MIA_JAX_PRESET", "smoke")
  monkeypatch.setenv("MIA_JAX_DATA_DIR", synthetic_data_dir)
  monkeypatch.setenv("MIA_JAX_WORKDIR", str(tmp_path))
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # shared with tests/test_ablate.py
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR",
                       str(tmp_path_factory.getbasetemp() / "jax_cache"))
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": ROOT}})
  client.execute()
  cells = [c for c in nb.cells if c.cell_type == "code"]
  text = "".join(_text(c.get("outputs", [])) for c in cells)
  images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
  assert "preset smoke" in text
  assert "mia (K=3, 6 meta-steps)" in text and "cavia (K=3, 6 meta-steps)" in text
  assert "# Study: mia_vs_cavia" in text
  assert "studies: sft_removal, modality_replacement, methods" in text
  assert "# Study: sft_removal" in text and "no_sft" in text
  assert images >= 4  # trajectories and reconstructions, of the pair and of the ablation
  for name in ("mia", "cavia"):
    assert (tmp_path / name / "results.json").exists()
  assert (tmp_path / "sft_removal" / "results.csv").exists()
