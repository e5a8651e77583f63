"""Every notebook in notebooks/ runs end to end, once per backend, headless.

The kernel gets ``LAYERLAB_BACKEND`` (which each notebook's first code cell
honours) and ``MPLBACKEND=Agg``; a cell error fails the test with nbclient's
traceback.  The committed files must have their outputs cleared and match
``notebooks/_generate.py``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .backends import require_real

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell


def _ids(path: Path) -> str:
    return path.stem


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("backend", ["sim", pytest.param("real", marks=pytest.mark.real)])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs(path: Path, backend: str) -> None:
    if backend == "real":
        require_real(rootless=os.geteuid() != 0)  # what sim.connect("real") picks inside the kernel
    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, "LAYERLAB_BACKEND": backend, "MPLBACKEND": "Agg"}
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    started = time.monotonic()
    client.execute(env=env)  # raises CellExecutionError, with the cell's traceback, on any error
    elapsed = time.monotonic() - started

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    errors = [out for out in outputs if out.get("output_type") == "error"]
    assert not errors, errors
    printed = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert f"backend: {backend}" in printed, "the kernel did not see LAYERLAB_BACKEND"
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, "the notebook drew no figure"
    print(f"{path.name} [{backend}] ran in {elapsed:.1f} s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks with outputs cleared"
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert 'BACKEND = "sim"' in first_code.source and "LAYERLAB_BACKEND" in first_code.source


def test_notebooks_match_generator() -> None:
    spec = importlib.util.spec_from_file_location("_generate", NOTEBOOK_DIR / "_generate.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for name, cells in generator.NOTEBOOKS.items():
        committed = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        fresh = generator.build(cells)
        assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], (
            f"{name} differs from notebooks/_generate.py; run .venv/bin/python notebooks/_generate.py"
        )
