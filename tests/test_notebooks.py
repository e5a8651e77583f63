"""Every notebook in notebooks/ runs end to end, once per backend, headless.

The kernel gets ``LAYERLAB_BACKEND`` (which each notebook's first code cell
honours) and ``MPLBACKEND=Agg``; a cell error fails the test with nbclient's
traceback.  The committed files must have their outputs cleared and match
their generator (``notebooks/_generate*.py``: each notebook has exactly one).
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .backends import require_real

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell

# Lines a chapter notebook prints on every backend (its own cells assert the facts behind them).
EXPECTED = {
    "02_images.ipynb": [
        "CACHED COPY site/ /var/www/",
        "all CACHED; same ImageID",
        "<- whiteout 白障: deletes /var/www/assets/old",
        "api:1 has 4 layers; 3 of them are webapp:1.2's layers",
        "ImageID == sha256(config)",
        "a new name, the same image",
    ],
    "03_containers.ipynb": [
        "I am PID 1 ",
        "--- alpha: docker diff",
        "D /app/hello.txt",
        "beta's data is lost",
        "docker diff writer: ['A /data']",
        "under /data the container layer holds only the mount point",
        "kept across containers",
        "docker diff binder: ['A /host']",
    ],
    "04_vms_and_containers.ipynb": [
        "VMs hit memory first; microVMs in between; containers reach",
        "containers with requests at the mean recover",
        "the host OOM killer killed a neighbour first",
        "model: the memory hog is OOM-killed at memory.max",
        "RAM cliff at 1.5x",
        "unmet-demand window",
    ],
    "05_registries.ipynb": [
        "busybox -> docker.io/library/busybox:latest",
        "push before docker login: AuthenticationError (code UNAUTHORIZED, HTTP 401)",
        "login with a wrong password: AuthenticationError (code UNAUTHORIZED, HTTP 401)",
        "docker login localhost:5000 -u student: Login Succeeded",
        "same manifest digest: True; same ImageID: True",
        "Mounted from lab/hello",
        "stored once: localhost:5000 keeps",
        "latest moved: lab/hello:latest ->",
        "the old image: untagged in lab/hello, still pullable by digest",
        "<none>:<none>",
        "second machine: every blob from the mirror's cache",
    ],
    "06_namespaces_and_networks.ipynb": [
        "solo printed: PID 1 inside, hostname ",
        "PID 1 inside is PID ",
        "cat /proc/self/uid_map inside solo:",
        "uid 1000 inside -> host 100999; host root reads inside as 65534",
        "a path web -> db exists in the graph (netns - veth - bridge - host - bridge - veth - netns), yet no packet takes it",
        "sharing a bridge: api-web, api-db",
        "web resolves db -> None",
        "the reachability matrix equals 'shares a bridge in the graph': True",
        "removed the containers and networks: none of this notebook's",
    ],
}
# ... and only on the kernel.
EXPECTED_REAL = {
    "02_images.ipynb": ["model and kernel: same 6 DiffIDs, same ImageID"],
    "03_containers.ipynb": ["whiteout (char 0/0)", "exists: False", "/data holds []"],
    "04_vms_and_containers.ipynb": ["VM booted to init in", "(accelerator: "],
    "05_registries.ipynb": [
        "real: login with a wrong password: AuthenticationError (code UNAUTHORIZED, HTTP 401)",
        "real registry: pushed and pulled back with the same digest",
        "model and kernel: the same manifest digest for the same image",
        "the mirror answered with its upstream stopped",
        "stopped 3 registry servers",
    ],
    "06_namespaces_and_networks.ipynb": [
        "ps inside solo:",
        "1 root     sleep 300",
        "/cmdline on the host reads 'sleep 300'",
        "solo's PID 1: uid 0 inside, uid ",
    ],
}
# ... and only as root (cgroup v1 gives an unprivileged user no cgroup to put a limit in).
EXPECTED_ROOT = {
    "04_vms_and_containers.ipynb": ["measured: the memory hog was OOM-killed at memory.max (exit 137",
                                    "measured: the fork bomb peaked at", "container ran its first command in"],
}


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
    for line in EXPECTED.get(path.name, []):
        assert line in printed, f"{path.name} [{backend}] did not print {line!r}"
    if backend == "real":
        for line in EXPECTED_REAL.get(path.name, []) + (EXPECTED_ROOT.get(path.name, []) if os.geteuid() == 0 else []):
            assert line in printed, f"{path.name} [real] did not print {line!r}"
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


GENERATORS = sorted(NOTEBOOK_DIR.glob("_generate*.py"))


def _load_generator(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator


@pytest.mark.parametrize("path", GENERATORS, ids=_ids)
def test_notebooks_match_generator(path: Path) -> None:
    generator = _load_generator(path)
    assert generator.NOTEBOOKS, f"{path.name} generates no notebook"
    for name, cells in generator.NOTEBOOKS.items():
        committed = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        fresh = generator.build(cells)
        assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], (
            f"{name} differs from notebooks/{path.name}; run .venv/bin/python notebooks/{path.name}"
        )


def test_every_notebook_has_one_generator() -> None:
    """Each committed notebook comes from exactly one generator, so the test above covers it."""
    owners: dict[str, list[str]] = {}
    for path in GENERATORS:
        for name in _load_generator(path).NOTEBOOKS:
            owners.setdefault(name, []).append(path.name)
    for notebook in NOTEBOOKS:
        assert len(owners.get(notebook.name, [])) == 1, (notebook.name, owners.get(notebook.name))
