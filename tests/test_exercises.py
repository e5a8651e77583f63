"""Both sides of every exercise, on the model: the instructor's notebook passes every graded check
and the student notebook generated from it fails every one (no check passes vacuously); wrong
answers get the hint that names the missed concept; the command line lists, starts and checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import sim.exercises as ex
from sim.cli import main
from sim.errors import InvalidSpecError, NotFoundError, UnknownBackendError
from sim.layers import Layer

SETS = [pytest.param(s, id=s.slug) for s in ex.EXERCISE_SETS]


@pytest.fixture(autouse=True)
def _model_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    yield


def _write(nb: object, folder: Path, name: str) -> Path:
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def test_every_chapter_has_four_to_eight_checks_and_one_property() -> None:
    slugs = [s.slug for s in ex.EXERCISE_SETS]
    assert slugs == ["layers", "images", "containers", "vms_and_containers", "registries", "networks"]
    for s in ex.EXERCISE_SETS:
        nb = ex.instructor_notebook(s)
        assert 4 <= len(ex.graded_cells(nb)) <= 8, s.slug
        # One exercise asks for a hypothesis property, graded against the engine and its mutants.
        assert sum("_property(" in c.source for c in nb.cells if c.cell_type == "code") == 1, s.slug


@pytest.mark.parametrize("exercise_set", SETS)
def test_instructor_passes_and_student_fails_every_check(exercise_set: ex.ExerciseSet, tmp_path: Path) -> None:
    teacher = ex.check_notebook(_write(ex.instructor_notebook(exercise_set), tmp_path, "teacher.ipynb"))
    assert teacher.setup_error == ""
    assert [r.grade_id for r in teacher.results if not r.passed] == [], teacher.results
    assert teacher.score == teacher.total > 0
    student = ex.check_notebook(_write(ex.student_notebook(exercise_set), tmp_path, "student.ipynb"))
    assert student.setup_error == ""
    assert [r.grade_id for r in student.results if r.passed] == []
    assert student.score == 0 and student.total == teacher.total
    assert all(r.hint == ex.NOT_ANSWERED for r in student.results)


@pytest.mark.parametrize("exercise_set", SETS)
def test_student_version_is_generated_not_written(exercise_set: ex.ExerciseSet) -> None:
    teacher, student = ex.instructor_notebook(exercise_set), ex.student_notebook(exercise_set)
    assert [c["id"] for c in teacher.cells] == [c["id"] for c in student.cells]
    nbformat.validate(student)
    for t, s in zip(teacher.cells, student.cells):
        assert "### BEGIN SOLUTION" not in s.source and "### BEGIN HIDDEN TESTS" not in s.source
        meta = t.metadata.get("nbgrader", {})
        if meta.get("solution"):
            assert "raise NotImplementedError()" in s.source
        if meta.get("grade"):
            assert meta["locked"] is True and meta["points"] > 0 and t["id"] == meta["grade_id"]
        if not meta.get("solution") and "### BEGIN HIDDEN TESTS" not in t.source:
            assert t.source == s.source


def test_a_wrong_answer_is_graded_with_its_hint(tmp_path: Path) -> None:
    nb = ex.instructor_notebook(ex.exercise_set("layers"))
    for cell in nb.cells:
        if cell["id"] == "etc_names_answer":
            cell.source = 'etc_names = ["hostname", "issue", "motd", "passwd"]'
    report = ex.check_notebook(_write(nb, tmp_path, "wrong.ipynb"))
    by_id = {r.grade_id: r for r in report.results}
    assert not by_id["etc_names"].passed and "a whiteout shown as a file" in by_id["etc_names"].hint
    assert all(r.passed for g, r in by_id.items() if g != "etc_names")
    assert report.score == report.total - 2


def _layers() -> list[Layer]:
    nb = ex.instructor_notebook(ex.exercise_set("layers"))
    scope: dict[str, object] = {}
    exec(next(c.source for c in nb.cells if c["id"] == "setup"), scope)
    layers = scope["LAYERS"]
    assert isinstance(layers, list)
    return layers


def test_layer_hints_name_the_concept() -> None:
    layers = _layers()
    with pytest.raises(AssertionError, match="an opaque directory ignored"):
        ex.check_listing(["new.css", "old.css", "old.js"], layers, "/app/static")
    with pytest.raises(AssertionError, match="whiteout marker"):
        ex.check_listing(["hostname", "issue", "passwd", ".wh.motd"], layers, "/etc")
    with pytest.raises(AssertionError, match="lower layers show through"):
        ex.check_listing(["issue"], layers, "/etc")
    stored = sum(layer.size for layer in layers)
    visible = ex.visible_bytes(layers)
    with pytest.raises(AssertionError, match="a deleted file still costs bytes"):
        ex.check_sizes(visible, visible, layers)
    copied = Layer()
    copied.add_dir("etc", opaque=True)
    copied.add_file("etc/hostname", b"box\n")
    copied.add_file("etc/issue", b"Layerlab Linux\n")
    with pytest.raises(AssertionError, match="a whiteout deletes with 0 B"):
        ex.check_layer_effect(copied, layers, {"/etc": ["hostname", "issue"]})
    ex.check_sizes(stored, visible, layers)

    def touch(mount: object) -> None:
        fd = mount.open("/etc/hostname", os.O_RDWR)  # type: ignore[attr-defined]
        mount.close(fd)  # type: ignore[attr-defined]

    with pytest.raises(AssertionError, match="copy-up"):
        ex.check_container_layer({"/etc": "dir"}, layers, touch)


def test_build_hints_name_the_concept() -> None:
    files = {"a.txt": "a\n", "b.txt": "b\n"}
    buildfile = "FROM busybox\nCOPY a.txt /a.txt\nRUN echo x > /x\nCOPY b.txt /b.txt\n"
    assert ex.cached_steps(buildfile, files, {"a.txt": "changed\n"}) == []
    with pytest.raises(AssertionError, match="a layer cached across a changed COPY"):
        ex.check_cached_steps([3, 4], buildfile, files, {"a.txt": "changed\n"})
    with pytest.raises(AssertionError, match="only COPY, ADD and RUN make a layer"):
        ex.check_layer_count(5, "FROM busybox\nENV A=1\nLABEL b=2\nRUN echo > /c\n", files)
    with pytest.raises(AssertionError, match="still costs bytes"):
        big = "FROM busybox\nRUN printf '%4096s' x > /big\nRUN rm /big && echo ok > /s\n"
        ex.check_smaller_image(big, files, big, ["cat", "/s"], "ok\n")
    with pytest.raises(AssertionError, match="does not parse"):
        ex.layer_count("FROM busybox\nNOPE x\n", files)


def test_bad_input_gets_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="known: 01_layers"):
        ex.exercise_set("nope")
    with pytest.raises(NotFoundError):
        ex.check_notebook(tmp_path / "missing.ipynb")
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(InvalidSpecError):
        ex.check_notebook(tmp_path / "bad.ipynb")
    with pytest.raises(UnknownBackendError):
        ex.check_notebook(tmp_path / "bad.ipynb", "vmware")


def test_cli_list_start_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exercises", "list"]) == 0
    assert "etc_names" in capsys.readouterr().out
    assert main(["exercises", "start", "nope", str(tmp_path)]) == 2
    assert main(["exercises", "start", "layers", str(tmp_path / "student")]) == 0
    assert main(["exercises", "start", "layers", str(tmp_path / "student")]) == 1  # never overwrites silently
    assert main(["exercises", "start", "1", str(tmp_path / "teacher"), "--instructor"]) == 0
    capsys.readouterr()
    assert main(["exercises", "check", str(tmp_path / "student")]) == 1
    out = capsys.readouterr().out
    assert "FAILED etc_names" in out and "hint: not answered yet" in out and "score 0/15" in out
    assert main(["exercises", "check", str(tmp_path / "teacher" / "01_layers.ipynb")]) == 0
    out = capsys.readouterr().out
    assert "score 15/15" in out and "FAILED" not in out
