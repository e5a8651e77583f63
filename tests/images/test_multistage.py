"""Multi-stage builds (多阶段构建): stages by name or index, ``COPY --from``, ``--target``, skipped stages,
the cache per stage, and the typed errors; the last test holds both backends to the same DiffIDs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sim
from sim.cli import main
from sim.errors import BuildfileError, ImageNotFoundError
from sim.images.buildfile import parse, split_stages
from sim.interface import Engine
from sim.results import BuildStep
from tests.backends import require_real

# The "program": a source file compiled (here: concatenated) next to a big toolchain in a build stage.
PROGRAM = """\
ARG BASE=busybox
FROM ${BASE} AS build
WORKDIR /src
COPY main.txt ./
RUN mkdir -p /out /src/obj && cat main.txt main.txt > /out/app && chmod 755 /out/app && cp /bin/busybox /src/obj/toolchain
FROM busybox AS test
RUN false
FROM busybox
COPY --from=build /out/app /usr/local/bin/app
CMD ["cat", "/usr/local/bin/app"]
"""

SINGLE = """\
FROM busybox
WORKDIR /src
COPY main.txt ./
RUN mkdir -p /out /src/obj && cat main.txt main.txt > /out/app && chmod 755 /out/app && cp /bin/busybox /src/obj/toolchain
RUN mkdir -p /usr/local/bin && cp /out/app /usr/local/bin/app
CMD ["cat", "/usr/local/bin/app"]
"""


@pytest.fixture
def eng(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    engine = sim.connect("sim")
    yield engine
    engine.close()  # type: ignore[attr-defined]


def context(tmp_path: Path, buildfile: str, **files: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Buildfile").write_text(buildfile)
    for name, text in {"main.txt": "print hello\n", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def build(eng: Engine, ctx: Path, **kw: object) -> tuple[list[BuildStep], object]:
    seen: list[BuildStep] = []
    result = eng.build(ctx, progress=seen.append, **kw)  # type: ignore[attr-defined]
    return seen, result


def cat(eng: Engine, image: str, path: str) -> bytes:
    return eng.run(image, f"cat {path}", remove=True).stdout  # type: ignore[attr-defined,no-any-return]


# -- what is built, and what is in the image ---------------------------------------------------------


def test_only_the_last_stage_is_in_the_image_and_unneeded_stages_are_skipped(eng: Engine, tmp_path: Path) -> None:
    seen, result = build(eng, context(tmp_path, PROGRAM), tag="app:1")
    image = result.image  # type: ignore[attr-defined]
    assert len(image.diff_ids) == 2  # busybox + the COPY --from
    assert cat(eng, "app:1", "/usr/local/bin/app") == b"print hello\nprint hello\n"
    assert eng.run("app:1", "ls /src", remove=True).exit_code != 0  # type: ignore[attr-defined]  # the toolchain stayed behind
    # The "test" stage (RUN false) is not needed by the last stage: reported, never run.
    skipped = [(s.number, s.instruction) for s in seen if s.skipped]
    assert skipped == [(6, "FROM busybox AS test"), (7, "RUN false")]
    assert [s.number for s in seen] == list(range(2, 11))  # every instruction but the global ARG, in order
    assert [h.created_by for h in eng.history("app:1")][:2] == [  # type: ignore[attr-defined]
        "CMD cat /usr/local/bin/app", "COPY --from=build /out/app /usr/local/bin/app"]


def test_multi_stage_image_is_smaller_than_the_single_stage_build(eng: Engine, tmp_path: Path) -> None:
    multi = eng.build(context(tmp_path / "m", PROGRAM), tag="app:multi").image  # type: ignore[attr-defined]
    single = eng.build(context(tmp_path / "s", SINGLE), tag="app:single").image  # type: ignore[attr-defined]
    assert cat(eng, "app:multi", "/usr/local/bin/app") == cat(eng, "app:single", "/usr/local/bin/app")
    assert single.size - multi.size > 1_000_000  # the toolchain copy and the sources are left in the build stage


def test_target_builds_that_stage_and_what_it_needs(eng: Engine, tmp_path: Path) -> None:
    text = PROGRAM.replace("FROM busybox AS test\nRUN false\n", "FROM build AS test\nRUN cat /out/app > /tested\n")
    seen, result = build(eng, context(tmp_path, text), tag="app:test", target="TEST")
    assert [s.number for s in seen if s.skipped] == [8, 9, 10]  # the last stage, after the target
    assert not any(s.skipped for s in seen if s.number < 8)
    assert cat(eng, "app:test", "/tested") == b"print hello\nprint hello\n"
    assert cat(eng, "app:test", "/src/main.txt") == b"print hello\n"  # FROM build: the stage's layers
    assert eng.run("app:test", "pwd", remove=True).stdout == b"/src\n"  # type: ignore[attr-defined]  # and its config
    assert len(result.image.diff_ids) == 4  # type: ignore[attr-defined]  # busybox, COPY, RUN, RUN


def test_copy_from_an_index_a_local_image_a_directory_and_a_symbolic_link(eng: Engine, tmp_path: Path) -> None:
    text = (
        "FROM busybox\n"
        "RUN mkdir -p /out/sub && echo a > /out/a && echo b > /out/sub/b && chmod 600 /out/a && ln -s /out/a /out/link\n"
        "FROM scratch\n"
        "COPY --from=0 /out /copy\n"
        "COPY --from=0 /out/link /file\n"
        "COPY --from=busybox /etc/passwd /bin/busybox /root/\n"
        "FROM 0\n"  # FROM names earlier stages by name only: "0" is an image reference
    )
    with pytest.raises(BuildfileError, match=r"Buildfile:7: pull access denied for 0"):
        eng.build(context(tmp_path, text))  # type: ignore[attr-defined]
    eng.build(context(tmp_path, text.replace("FROM 0\n", "FROM busybox\nCOPY --from=1 / /\n")), tag="c:1")  # type: ignore[attr-defined]
    assert cat(eng, "c:1", "/copy/a") == b"a\n" and cat(eng, "c:1", "/copy/sub/b") == b"b\n"
    assert b"/copy/link -> /out/a" in eng.run("c:1", "ls -l /copy/link", remove=True).stdout  # type: ignore[attr-defined]
    assert eng.run("c:1", "ls -l /copy/a /file", remove=True).stdout.startswith(b"-rw-------")  # type: ignore[attr-defined]
    assert cat(eng, "c:1", "/file") == b"a\n"  # a symbolic-link source is followed, the name kept
    assert b"root:x:0:0" in cat(eng, "c:1", "/root/passwd")


def test_copy_from_keeps_owners_unless_chown(eng: Engine, tmp_path: Path) -> None:
    text = (
        "FROM busybox AS build\n"
        "COPY --chown=5:6 main.txt /out/owned\n"
        "FROM busybox\n"
        "COPY --from=build /out/owned /kept\n"
        "COPY --from=build --chown=7:8 /out/owned /changed\n"
    )
    eng.build(context(tmp_path, text), tag="o:1")  # type: ignore[attr-defined]
    out = eng.run("o:1", "ls -ln /kept /changed", remove=True).stdout.decode()  # type: ignore[attr-defined]
    assert [line.split()[2:4] for line in out.splitlines()] == [["7", "8"], ["5", "6"]]


def test_global_args_reach_from_and_stages_that_declare_them(eng: Engine, tmp_path: Path) -> None:
    text = (
        "ARG BASE=busybox\nARG V=1\n"
        "FROM $BASE AS build\nARG V\nRUN echo $V > /v\n"
        "FROM ${BASE}\nCOPY --from=build /v /v\nRUN echo \"[$V]\" > /w\n"  # V not declared here: empty
    )
    ctx = context(tmp_path, text)
    eng.build(ctx, tag="a:1")  # type: ignore[attr-defined]
    assert (cat(eng, "a:1", "/v"), cat(eng, "a:1", "/w")) == (b"1\n", b"[]\n")
    eng.build(ctx, tag="a:2", build_args={"V": "2"})  # type: ignore[attr-defined]
    assert cat(eng, "a:2", "/v") == b"2\n"


# -- the cache, per stage ----------------------------------------------------------------------------


def test_the_cache_follows_content_across_stages(eng: Engine, tmp_path: Path) -> None:
    text = PROGRAM.replace("COPY main.txt ./\n", "COPY main.txt notes.txt ./\n")
    ctx = context(tmp_path, text, **{"notes.txt": "v1\n"})
    eng.build(ctx, tag="app:1")  # type: ignore[attr-defined]

    def cached() -> dict[str, bool]:
        return {s.instruction.split()[0] + str(s.number): s.cached
                for s in eng.build(ctx, tag="app:1").steps if s.layer}  # type: ignore[attr-defined]

    assert cached() == {"COPY4": True, "RUN5": True, "COPY9": True}
    # The build stage changes, but not /out/app: the COPY --from still hits (its content is the same).
    (ctx / "notes.txt").write_text("v2\n")
    assert cached() == {"COPY4": False, "RUN5": False, "COPY9": True}
    # A changed COPY in stage 1 that changes /out/app misses the COPY --from in the last stage.
    (ctx / "main.txt").write_text("print bye\n")
    assert cached() == {"COPY4": False, "RUN5": False, "COPY9": False}
    assert cat(eng, "app:1", "/usr/local/bin/app") == b"print bye\nprint bye\n"


# -- errors, each with its Buildfile line, before any step runs -----------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a AS x\nFROM b AS X\n", 'Buildfile:2: duplicate stage name "x": line 1 already names a stage so'),
        ("FROM a AS x\nCOPY --from=y /a /b\nFROM b AS y\n",
         "Buildfile:2: COPY --from=y names stage y (line 3), which comes later: a stage can only copy from earlier stages"),
        ("FROM a\nCOPY --from=1 /a /b\nFROM b\n",
         "Buildfile:2: COPY --from=1 names stage 1 (line 3), which comes later: a stage can only copy from earlier stages"),
        ("FROM a AS x\nCOPY --from=x /a /b\n",
         "Buildfile:2: COPY --from=x names the stage it is in: a stage can only copy from earlier stages"),
        ("FROM a\nFROM b\nCOPY --from=2 /a /b\n",
         "Buildfile:3: COPY --from=2: unknown stage 2: the Buildfile has 2 stages (0 to 1)"),
    ],
)
def test_stage_errors_are_found_by_the_parser(text: str, message: str) -> None:
    with pytest.raises(BuildfileError) as info:
        parse(text)
    assert str(info.value) == message


def test_stage_errors_after_substitution_and_target_errors_come_before_any_step(eng: Engine, tmp_path: Path) -> None:
    seen: list[BuildStep] = []
    ctx = context(tmp_path, "ARG S=later\nFROM busybox AS first\nCOPY --from=$S /a /b\nFROM busybox AS later\n")
    with pytest.raises(BuildfileError, match=r"^Buildfile:3: COPY --from=later names stage later \(line 4\), which comes later"):
        eng.build(ctx, progress=seen.append)  # type: ignore[attr-defined]
    ctx = context(tmp_path, "FROM busybox AS first\nRUN true\nFROM busybox AS second\n")
    with pytest.raises(BuildfileError) as info:
        eng.build(ctx, target="third", progress=seen.append)  # type: ignore[attr-defined]
    assert str(info.value) == ('Buildfile: target stage "third" could not be found: '
                               "the stages are first (line 1), second (line 3)")
    ctx = context(tmp_path, "FROM busybox\nRUN true\nFROM busybox\nCOPY --from=nothere:1 /a /b\n")
    with pytest.raises(ImageNotFoundError, match=r"^Buildfile:4: COPY --from=nothere:1: no stage is named"):
        eng.build(ctx, progress=seen.append)  # type: ignore[attr-defined]
    ctx = context(tmp_path, "FROM busybox AS b\nFROM busybox\nCOPY --from=b /nope /x\n")
    with pytest.raises(BuildfileError, match=r'^Buildfile:3: failed to compute cache key: "/nope" not found in stage b'):
        eng.build(ctx)  # type: ignore[attr-defined]
    assert seen == []  # nothing ran for the first three


def test_split_stages_names_and_numbers() -> None:
    stages = split_stages(parse("ARG X\nFROM a AS One\nRUN x\nFROM b\nCOPY --from=one /a /b\n"))
    assert [(s.index, s.name, s.first, len(s.instructions), s.label) for s in stages] == [
        (0, "one", 1, 2, "one"), (1, None, 3, 2, "1")]


def test_cli_target_and_skipped_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ctx = context(tmp_path / "ctx", PROGRAM)
    assert main(["build", "--backend", "sim", "-t", "app:b", "--target", "build", str(ctx)]) == 0
    out = capsys.readouterr().out
    assert "#6 SKIPPED FROM busybox AS test" in out and "#9 SKIPPED COPY --from=build /out/app /usr/local/bin/app" in out
    assert main(["build", "--backend", "sim", "--target", "nope", str(ctx)]) != 0


# -- the kernel agrees -------------------------------------------------------------------------------


@pytest.mark.real
def test_both_backends_give_the_same_diff_ids(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    text = PROGRAM.replace("FROM busybox AS test\nRUN false\n",
                           "FROM busybox AS test\nRUN false\nFROM scratch AS tiny\nCOPY --from=build /src /src\n")
    text += "COPY --from=tiny /src/obj/ /opt/obj/\nCOPY --from=busybox --chown=3:4 /etc/group /etc/group2\n"
    ctx = context(tmp_path / "ctx", text)
    engines = [sim.connect("sim"), require_real(state_dir=str(tmp_path / "state"))]
    try:
        results = []
        for engine in engines:
            full = engine.build(ctx, tag="app:1")  # type: ignore[attr-defined]
            again = engine.build(ctx, tag="app:1")  # type: ignore[attr-defined]
            part = engine.build(ctx, tag="app:t", target="tiny")  # type: ignore[attr-defined]
            results.append((full.image.diff_ids, full.image.id, part.image.diff_ids,
                            [(s.cached, s.skipped) for s in full.steps], [s.cached for s in again.steps if s.layer]))
            assert engine.run("app:1", "ls -ln /etc/group2", remove=True).stdout.split()[2:4] == [b"3", b"4"]  # type: ignore[attr-defined]
    finally:
        for engine in engines:
            engine.close()  # type: ignore[attr-defined]
    assert results[0] == results[1]
    assert all(results[0][4])  # the second build is all cache hits on both


def test_a_new_engine_reuses_the_build_stage_and_the_copy_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ctx = context(tmp_path / "ctx", PROGRAM)
    for _ in range(2):  # each CLI command is a new engine: a stage's step layers are blobs the build cache names
        assert main(["build", "--backend", "sim", "-t", "app:1", str(ctx)]) == 0
    out = capsys.readouterr().out.split("Successfully tagged app:1")[1]
    assert "#4 CACHED COPY main.txt ./" in out and "#9 CACHED COPY --from=build" in out
