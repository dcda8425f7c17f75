"""The three notebooks execute top to bottom on small settings (RF8SIM_NOTEBOOK_SIZE=small)."""

import os
from pathlib import Path

import pytest

from toolcheck import package

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_format_explorer.ipynb", "02_accuracy_vs_area.ipynb",
                                            "03_gg_training_pipeline.ipynb"]


@package("nbformat", "nbformat==5.11.1 (rf8sim[test])")
@package("nbclient", "nbclient==0.11.0 (rf8sim[test])")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("RF8SIM_NOTEBOOK_SIZE", "small")
    monkeypatch.setenv("RF8SIM_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel inherits this environment; keep Numba's cache where the rest of the suite has it
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR",
                                                         str(Path(__file__).resolve().parents[1] / "build" / "cache" / "numba")))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    n_code = sum(1 for c in nb.cells if c.cell_type == "code")
    assert n_code >= 4
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # every plotting notebook wrote at least one PNG
    assert list((tmp_path / "out").rglob("*.png"))
