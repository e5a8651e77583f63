"""docs/property-testing.md works as printed: its examples run, and its shrunk output is real.

Each example in ``examples/property_testing/`` runs in a pytest of its own (a subprocess, in a
temporary folder so hypothesis's database lands there), as a student would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "property-testing.md"
EXAMPLES = ROOT / "examples" / "property_testing"


def _pytest(example: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / example), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )


def _code(line: str) -> str:
    return line.split("  # ")[0].strip()


def test_doc_code_is_the_example_code() -> None:
    """Every line of every Python block in the doc stands in one example file (comments aside)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    files = {p.name: {_code(line) for line in p.read_text(encoding="utf-8").splitlines()} for p in EXAMPLES.glob("*.py")}
    assert len(blocks) == 3 and len(files) == 3
    for block in blocks:
        lines = {_code(line) for line in block.splitlines()} - {""}
        homes = [name for name, code in files.items() if lines <= code]
        assert homes, f"no example holds this block: {sorted(lines - max(files.values(), key=lambda c: len(lines & c)))}"


def test_first_property_passes_on_the_model(tmp_path: Path) -> None:
    run = _pytest("first_property.py", tmp_path, "-m", "not real")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 deselected" in run.stdout


def test_first_state_machine_passes_on_the_model(tmp_path: Path) -> None:
    run = _pytest("first_state_machine.py", tmp_path, LAYERLAB_BACKEND="sim")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


@pytest.mark.real
def test_examples_pass_on_the_kernel(tmp_path: Path) -> None:
    """The same two files with the kernel on the right: ``[real]`` of the fixture, and the machine
    bound to ``sim.connect()`` with ``LAYERLAB_BACKEND=real`` (state in a folder of its own)."""
    env = {"LAYERLAB_BACKEND": "real", "LAYERLAB_STATE_DIR": str(tmp_path / "state"),
           "LAYERLAB_REQUIRE_REAL": os.environ.get("LAYERLAB_REQUIRE_REAL", "1")}
    for example, passed in (("first_property.py", "2 passed"), ("first_state_machine.py", "1 passed")):
        run = _pytest(example, tmp_path, **env)
        assert run.returncode == 0 and passed in run.stdout, run.stdout + run.stderr


def shrunk_output(stdout: str) -> str:
    """The assertion line, the failing case and its notes from pytest's report (the ``E`` lines up to
    hypothesis's "Explanation:", without pytest's own diff of the assertion)."""
    raw = [line[1:] for line in stdout.splitlines() if line.startswith("E")]
    first = next(line for line in raw if line.lstrip().startswith("AssertionError:"))
    indent = len(first) - len(first.lstrip())  # pytest indents its report to the source's column
    lines = [line[indent:] for line in raw]
    first = first.lstrip()
    start = next(i for i, line in enumerate(lines) if line.startswith(("Failing test case:", "Falsifying example:")))
    end = next((i for i, line in enumerate(lines) if line.startswith("Explanation:")), len(lines))
    return "\n".join([first, *lines[start:end]]).strip()


def test_wrong_property_shrinks_to_the_documented_counterexample(tmp_path: Path) -> None:
    run = _pytest("wrong_property.py", tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr  # the property is wrong: it must fail
    documented = re.search(r"<!-- shrunk: examples/property_testing/wrong_property.py -->\n```text\n(.*?)```",
                           DOC.read_text(encoding="utf-8"), re.S)
    assert documented is not None
    got = shrunk_output(run.stdout)
    print(got)  # the captured counterexample, for -s
    assert got == documented.group(1).strip()
    assert "Whiteout()" in got and "1 entries" in got  # shrunk to a single file, answered by a whiteout
