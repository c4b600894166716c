"""notebooks/emergent_norms.ipynb executes top to bottom (real engine runs, scripted agents) and draws."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "emergent_norms.ipynb"


def test_notebook_executes_and_plots(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel runs in tmp_path so the notebook's runs land there. "python3" resolves to this
    # interpreter (jupyter_client swaps a bare `python` in the kernelspec for sys.executable).
    # timeout: a guard against a hung kernel only (the notebook takes well under a minute)
    client = NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}, timeout=1800)
    client.execute()  # raises CellExecutionError, with the cell's traceback, on any error
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    printed = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert f"kernel python: {sys.executable}" in printed
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    # donations, cooperation, 2 x strategy shares, gini, reputation; opinions, clusters, variance,
    # bimodality; network
    assert len(images) == 11
    assert (tmp_path / "notebook_runs" / "donor" / "q1.0" / "seed-1" / "manifest.json").is_file()
    assert (tmp_path / "notebook_runs" / "ring" / "manifest.json").is_file()
