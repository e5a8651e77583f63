"""Write each chapter notebook from its source and execute it on the model, outputs kept.

    .venv/bin/python notebooks/_refresh.py                 # every chapter
    .venv/bin/python notebooks/_refresh.py 03_containers   # only the named ones

``NN_name.py`` (jupytext percent format: ``# %%`` code cells, ``# %% [markdown]`` text cells) is
the source a person edits; ``NN_name.ipynb`` is generated from it: the same cells, ids
``cell-00``, ``cell-01``, ... (stable, so a re-run is diff-free where the outputs are), executed
top to bottom in one fresh kernel with ``LAYERLAB_BACKEND=sim`` and ``MPLBACKEND=Agg``, and
stamped with ``metadata.layerlab.source_sha256`` = :func:`source_digest` of the cells it ran.
``tests/test_notebooks.py`` fails when a committed notebook's cells differ from its source or its
stamp differs from the source's digest, so outputs on GitHub are never older than the code.

JupyterLab (``./dev lab``) pairs the two files through jupytext: editing either there keeps the
other in step, but only this script (or ``Run All`` on the sim backend, then this script) writes
the stamp.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 120  # seconds per cell
FORMATS = "ipynb,py:percent"  # the jupytext pairing both files declare


def sources() -> list[Path]:
    """The chapter sources, in chapter order: ``notebooks/NN_*.py``."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def cells_of(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """What a notebook says: each cell's type and source, in order (ids, metadata and outputs left out)."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def source_digest(nb: nbformat.NotebookNode) -> str:
    """sha256 of :func:`cells_of`: changes when any cell's text or type does, not with jupytext's header."""
    return hashlib.sha256(json.dumps(cells_of(nb), ensure_ascii=False).encode()).hexdigest()


def read_source(path: Path) -> nbformat.NotebookNode:
    """The notebook a ``.py`` source describes, with stable cell ids and the pairing in its metadata."""
    nb = jupytext.read(path)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nb.metadata["jupytext"] = {"formats": FORMATS}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, backend: str) -> float:
    """Run every cell of ``nb`` in place in a fresh kernel on ``backend``; the seconds it took.

    Raises nbclient's ``CellExecutionError`` (with the cell's traceback) when a cell fails.
    """
    env = {**os.environ, "LAYERLAB_BACKEND": backend, "MPLBACKEND": "Agg"}
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        record_timing=False,  # timestamps in every cell would make each refresh a diff
        resources={"metadata": {"path": str(HERE)}},
    )
    started = time.monotonic()
    client.execute(env=env)
    return time.monotonic() - started


def refresh(path: Path) -> float:
    """Write ``path``'s notebook executed on the model; the seconds the run took."""
    nb = read_source(path)
    digest = source_digest(nb)
    elapsed = execute(nb, "sim")
    nb.metadata["layerlab"] = {"source_sha256": digest, "executed_on": "sim"}
    nbformat.validate(nb)
    nbformat.write(nb, path.with_suffix(".ipynb"))
    return elapsed


def main(names: list[str]) -> None:
    chosen = [p for p in sources() if not names or p.stem in names or p.name in names]
    unknown = set(names) - {p.stem for p in chosen} - {p.name for p in chosen}
    if unknown:
        sys.exit(f"no chapter source named {', '.join(sorted(unknown))} in {HERE}")
    total = 0.0
    for path in chosen:
        elapsed = refresh(path)
        total += elapsed
        print(f"wrote {path.with_suffix('.ipynb').name}, executed on sim in {elapsed:.1f} s")
    print(f"total {total:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
