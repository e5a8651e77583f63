"""The chapter notebooks: sources, committed outputs, and runs on both backends.

Each chapter is a jupytext percent-format source ``notebooks/NN_name.py`` paired with
``notebooks/NN_name.ipynb``, which is committed executed on the model (written by
``notebooks/_refresh.py``). These tests fail when

* a source has no notebook or a notebook no source,
* a notebook's cells (type and text) differ from its source's (the pair is out of sync),
* a notebook's outputs are stale: its ``metadata.layerlab.source_sha256`` is not the digest of its
  source's cells, or it was not executed top to bottom on the model without an error;

and they execute every source headless, once per backend: the kernel gets ``LAYERLAB_BACKEND``
(which each notebook's first code cell honours) and ``MPLBACKEND=Agg``; a cell error fails the test
with nbclient's traceback. The whole set on the model must finish within ``MODEL_BUDGET_S``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from .backends import require_real

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def _load_refresh() -> ModuleType:  # notebooks/ is not a package: load the script by path
    spec = importlib.util.spec_from_file_location("_refresh", NOTEBOOK_DIR / "_refresh.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


refresh = _load_refresh()
SOURCES = refresh.sources()
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MODEL_BUDGET_S = 60.0  # every notebook on the model, one after the other, in fresh kernels

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


class ModelRuns:
    """Each source executed on the model at most once per test module: (notebook, seconds)."""

    def __init__(self) -> None:
        self._runs: dict[Path, tuple[nbformat.NotebookNode, float]] = {}

    def run(self, path: Path) -> tuple[nbformat.NotebookNode, float]:
        if path not in self._runs:
            nb = refresh.read_source(path)
            self._runs[path] = (nb, refresh.execute(nb, "sim"))
        return self._runs[path]


@pytest.fixture(scope="module")
def model_runs() -> Iterator[ModelRuns]:
    yield ModelRuns()


def _printed(nb: nbformat.NotebookNode) -> str:
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    errors = [out for out in outputs if out.get("output_type") == "error"]
    assert not errors, errors
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, "the notebook drew no figure"
    return "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")


def test_there_are_notebooks() -> None:
    assert SOURCES, f"no chapter sources (NN_name.py) in {NOTEBOOK_DIR}"


def test_every_source_has_its_notebook() -> None:
    assert [p.stem for p in SOURCES] == [p.stem for p in NOTEBOOKS], (
        "each notebooks/NN_name.py needs its NN_name.ipynb and the other way round; "
        "run .venv/bin/python notebooks/_refresh.py"
    )
    assert not list(NOTEBOOK_DIR.glob("_generate*.py")), "the notebooks come from their .py sources now"


@pytest.mark.parametrize("path", SOURCES, ids=_ids)
def test_committed_notebook_is_in_sync_and_fresh(path: Path) -> None:
    source = refresh.read_source(path)
    notebook_path = path.with_suffix(".ipynb")
    fix = f"run .venv/bin/python notebooks/_refresh.py {path.stem}"
    committed = nbformat.read(notebook_path, as_version=4)
    nbformat.validate(committed)
    assert refresh.cells_of(committed) == refresh.cells_of(source), f"{notebook_path.name} differs from {path.name}; {fix}"
    assert committed.metadata.get("jupytext", {}).get("formats") == refresh.FORMATS, f"{notebook_path.name} is not paired"
    stamp = committed.metadata.get("layerlab", {})
    assert stamp.get("executed_on") == "sim", f"{notebook_path.name} was not executed on the model; {fix}"
    assert stamp.get("source_sha256") == refresh.source_digest(source), f"{notebook_path.name}'s outputs are stale; {fix}"
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), (
        f"{notebook_path.name} was not executed top to bottom in one kernel; {fix}"
    )
    printed = _printed(committed)
    assert "backend: sim" in printed
    for line in EXPECTED.get(notebook_path.name, []):
        assert line in printed, f"the committed {notebook_path.name} does not show {line!r}; {fix}"
    assert 'BACKEND = "sim"' in code[0].source and "LAYERLAB_BACKEND" in code[0].source


@pytest.mark.parametrize("backend", ["sim", pytest.param("real", marks=pytest.mark.real)])
@pytest.mark.parametrize("path", SOURCES, ids=_ids)
def test_notebook_runs(path: Path, backend: str, model_runs: ModelRuns) -> None:
    if backend == "sim":
        nb, elapsed = model_runs.run(path)
    else:
        require_real(rootless=os.geteuid() != 0)  # what sim.connect("real") picks inside the kernel
        nb = refresh.read_source(path)
        elapsed = refresh.execute(nb, backend)  # raises CellExecutionError, with the cell's traceback
    printed = _printed(nb)
    name = path.with_suffix(".ipynb").name
    assert f"backend: {backend}" in printed, "the kernel did not see LAYERLAB_BACKEND"
    # sim.figures.show warns about every figure that lacks a title, an axis label with its unit or a legend.
    figure_warnings = [line for line in _stderr(nb).splitlines() if "FigureWarning" in line]
    assert figure_warnings == [], f"{name} [{backend}] draws figures that break the rules: {figure_warnings}"
    for line in EXPECTED.get(name, []):
        assert line in printed, f"{name} [{backend}] did not print {line!r}"
    if backend == "real":
        for line in EXPECTED_REAL.get(name, []) + (EXPECTED_ROOT.get(name, []) if os.geteuid() == 0 else []):
            assert line in printed, f"{name} [real] did not print {line!r}"
    print(f"{name} [{backend}] ran in {elapsed:.1f} s")


def _stderr(nb: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("name") == "stderr")


def test_the_model_runs_every_notebook_within_budget(model_runs: ModelRuns) -> None:
    """Reuses the runs above; runs the ones a -k or -m left out."""
    times = {path.stem: model_runs.run(path)[1] for path in SOURCES}
    total = sum(times.values())
    print("model run times: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f"; total {total:.1f} s")
    assert total < MODEL_BUDGET_S, f"the notebooks took {total:.1f} s on the model (budget {MODEL_BUDGET_S:.0f} s)"
