"""The strongest parity test: the same Buildfile gives the same DiffIDs in the model and on the kernel.

With ``SOURCE_DATE_EPOCH`` set, layer tars are reproducible, so equal DiffIDs
mean the model's shell and busybox in real namespaces changed the file tree in
exactly the same way, copy-ups and whiteouts included.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.interface import Engine
from tests.backends import require_real

EXAMPLES = sorted(p.parent for p in (Path(__file__).parents[2] / "examples").glob("*/Buildfile"))


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Engine]:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    pair = [sim.connect("sim"), require_real(state_dir=str(tmp_path / "state"))]
    yield pair
    for engine in pair:
        engine.close()  # type: ignore[attr-defined]


@pytest.mark.real
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_buildfiles_give_the_same_layers_in_both_backends(example: Path, engines: list[Engine]) -> None:
    results = [engine.build(example, tag=f"{example.name}:1") for engine in engines]  # type: ignore[attr-defined]
    model, kernel = (r.image for r in results)
    assert model.diff_ids == kernel.diff_ids
    assert model.id == kernel.id  # same config bytes too
    assert [s.cached for s in results[0].steps] == [s.cached for s in results[1].steps]


@pytest.mark.real
def test_containers_agree_on_output_and_diff(engines: list[Engine]) -> None:
    hello = next(p for p in EXAMPLES if p.name == "hello")
    outs, diffs = [], []
    for engine in engines:
        engine.build(hello, tag="hello:1")  # type: ignore[attr-defined]
        engine.create("hello:1", "cat /app/out.txt; echo more >> /app/out.txt; rm /app/hello.txt; mkdir -p /srv/x; "  # type: ignore[attr-defined]
                      "echo $HOSTNAME $HOME $PATH $GREETING", name="c", hostname="twin")
        outs.append(engine.start("c"))  # type: ignore[attr-defined]
        diffs.append([str(c) for c in engine.diff("c")])  # type: ignore[attr-defined]
    assert outs[0] == outs[1]
    assert diffs[0] == diffs[1]


COMMANDS = st.sampled_from([
    "mkdir -p /w/{a}/{b}", "echo {a} > /w/{a}.txt", "echo {b} >> /w/{a}.txt", "rm -rf /w/{a}", "rm -f /w/{a}.txt",
    "ln -s /w/{a}.txt /w/{b}-link", "chmod 600 /w/{a}.txt", "touch /w/{b}.txt", "cp /w/{a}.txt /w/{b}.txt",
    "mv /w/{a}.txt /w/{b}.txt", "rm -rf /etc/{a}", "echo {a} > /etc/{a}", "rmdir /w/{a}/{b}", "rm -f /bin/{a}",
])
NAMES = st.sampled_from(["one", "two", "group", "passwd"])


@st.composite
def buildfiles(draw: st.DrawFn) -> str:
    lines = ["FROM busybox", "RUN mkdir -p /w"]
    for _ in range(draw(st.integers(1, 4))):
        cmds = [draw(COMMANDS).format(a=draw(NAMES), b=draw(NAMES)) for _ in range(draw(st.integers(1, 3)))]
        lines.append("RUN " + " ; ".join(cmds) + " ; true")
    return "\n".join(lines) + "\n"


@pytest.mark.real
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=buildfiles())
def test_random_buildfiles_give_identical_layers(text: str, engines: list[Engine]) -> None:
    with tempfile.TemporaryDirectory() as ctx:
        (Path(ctx) / "Buildfile").write_text(text)
        images = [engine.build(ctx, no_cache=True).image for engine in engines]  # type: ignore[attr-defined]
    assert images[0].diff_ids == images[1].diff_ids, text
