"""The write-a-property checks: a property that holds and catches every mutant passes; one that
misses a mutant gets that mutant's concept; one that is false on the engine, or is no property,
is told so.  The mutants break exactly the rule they name."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.exercises as ex
from sim.exercises._properties import COPY_UP_MUTANT, UNION_MUTANTS, strip_tar_members
from sim.layers import Layer
from sim.layers.layer import Directory, Whiteout


@pytest.fixture(autouse=True)
def _model_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    yield


def _lower_and_upper(name: str, data: bytes) -> tuple[Layer, Layer]:
    lower, upper = Layer(), Layer()
    lower.add_file(name, data)
    upper.add_whiteout(name)
    return lower.freeze(), upper.freeze()


def test_strip_tar_members_drops_only_what_it_names() -> None:
    layer = Layer()
    layer.add_whiteout("gone")
    layer.add_dir("d", opaque=True)
    layer.add_file("d/kept", b"x", mode=0o750)
    no_whiteouts = strip_tar_members(layer.freeze(), lambda n: n.startswith(".wh.") and n != ".wh..wh..opq")
    assert no_whiteouts.get("gone") is None
    kept_dir = no_whiteouts.get("d")
    assert isinstance(kept_dir, Directory) and kept_dir.opaque
    no_opaque = strip_tar_members(layer, lambda n: n == ".wh..wh..opq")
    assert isinstance(no_opaque.get("gone"), Whiteout)
    plain_dir = no_opaque.get("d")
    assert isinstance(plain_dir, Directory) and not plain_dir.opaque
    assert no_opaque.get("d/kept") == layer.get("d/kept")


def test_a_property_missing_one_mutant_gets_its_concept(capsys: pytest.CaptureFixture[str]) -> None:
    @given(name=st.sampled_from(["a", "b"]), data=st.binary(max_size=4))
    def whiteouts_only(union, name, data):  # type: ignore[no-untyped-def]
        with union(list(_lower_and_upper(name, data))) as mount:
            assert name not in mount.listdir("/")

    with pytest.raises(AssertionError) as caught:
        ex.check_union_property(whiteouts_only, max_examples=10)
    assert UNION_MUTANTS[1].name in str(caught.value) and UNION_MUTANTS[1].concept in str(caught.value)
    assert UNION_MUTANTS[0].name not in str(caught.value)
    assert "caught the mutant 'whiteouts ignored'" in capsys.readouterr().out


def test_a_false_property_fails_on_the_engine() -> None:
    @given(name=st.sampled_from(["a", "b"]))
    def deletes_do_nothing(union, name):  # type: ignore[no-untyped-def]
        with union(list(_lower_and_upper(name, b"x"))) as mount:
            assert name in mount.listdir("/")

    with pytest.raises(AssertionError, match="(?s)fails on the correct engine.*deletes_do_nothing"):
        ex.check_union_property(deletes_do_nothing, max_examples=10)


@pytest.mark.parametrize("answer", [None, 3, lambda union: None])
def test_an_answer_that_is_no_property_is_refused(answer: object) -> None:
    with pytest.raises(AssertionError, match=r"must be a hypothesis property"):
        ex.check_union_property(answer)


def test_copy_up_mutant_loses_the_mode_and_only_on_copy_up() -> None:
    @given(mode=st.sampled_from([0o755, 0o600]))
    def appends_keep_mode(union, mode):  # type: ignore[no-untyped-def]
        lower = Layer()
        lower.add_file("tool", b"#!", mode=mode)
        with union([lower.freeze()]) as mount:
            fd = mount.open("/tool", os.O_WRONLY | os.O_APPEND)
            mount.write(fd, b"more")
            mount.close(fd)
            assert stat.S_IMODE(mount.stat("/tool").st_mode) == mode

    ex.check_copy_up_property(appends_keep_mode, max_examples=10)

    @given(mode=st.sampled_from([0o755, 0o600]))
    def new_files_keep_mode(union, mode):  # type: ignore[no-untyped-def]
        with union([Layer().freeze()]) as mount:  # nothing below: no copy-up, the mutant is not reached
            fd = mount.open("/new", os.O_WRONLY | os.O_CREAT, mode)
            mount.close(fd)
            assert stat.S_IMODE(mount.stat("/new").st_mode) == mode & ~0o022

    with pytest.raises(AssertionError, match=COPY_UP_MUTANT.name):
        ex.check_copy_up_property(new_files_keep_mode, max_examples=10)


def test_build_property_that_never_changes_the_file_misses_the_stale_cache() -> None:
    @given(text=st.just("same\n"))
    def same_text(build, text):  # type: ignore[no-untyped-def]
        assert build("FROM busybox\nCOPY f /f\n", {"f": text}).read("/f") == text.encode()

    with pytest.raises(AssertionError, match="cache keyed by the instruction text"):
        ex.check_build_property(same_text, max_examples=3)


def test_registry_property_that_pushes_only_true_digests_misses_the_trusting_registry() -> None:
    @given(data=st.binary(min_size=1, max_size=8))
    def honest_pushes(registry, data):  # type: ignore[no-untyped-def]
        session = registry()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        session.put_blob("lab/x", digest, len(data), io.BytesIO(data))
        with session.open_blob("lab/x", digest) as blob:
            assert b"".join(blob) == data

    with pytest.raises(AssertionError, match="digest the client claims"):
        ex.check_registry_property(honest_pushes, max_examples=10)
