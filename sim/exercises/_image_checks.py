"""Checks for chapter 2 (镜像 images and builds): every answer is built with the checks' engine and
judged by what the build made (layers, CACHED steps, history, DiffIDs, sizes), never by its text.
Every check raises :class:`AssertionError` whose message names the concept a wrong answer misses."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import BuildError, BuildfileError
from sim.exercises._engine import scratch_engine

if TYPE_CHECKING:
    from sim.containers.core import EngineCore
    from sim.results import BuildResult

__all__ = ["layer_count", "check_layer_count", "cached_steps", "check_cached_steps", "check_history",
           "check_smaller_image", "stored_layers", "check_stored_layers"]

_LAYER_STEPS = ("COPY", "ADD", "RUN")


def _write(folder: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _build(engine: EngineCore, folder: Path, buildfile: str, files: Mapping[str, str], tag: str) -> BuildResult:
    if not isinstance(buildfile, str):
        raise AssertionError(f"the Buildfile must be a str, not {type(buildfile).__name__}")
    _write(folder, {**files, "Buildfile": buildfile})
    try:
        return engine.build(folder, tag=tag)
    except BuildfileError as exc:
        raise AssertionError(f"the Buildfile does not parse: {exc}") from None
    except BuildError as exc:
        raise AssertionError(f"the build failed: {exc}") from None


class _Context:
    """A scratch engine and a temporary build folder, both removed on exit."""

    def __enter__(self) -> tuple[EngineCore, Path]:
        self._engine_cm = scratch_engine()
        engine = self._engine_cm.__enter__()
        self._folder = Path(tempfile.mkdtemp(prefix="layerlab-context-"))
        return engine, self._folder

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
        self._engine_cm.__exit__(None, None, None)


def layer_count(buildfile: str, files: Mapping[str, str] | None = None) -> int:
    """How many layers (``rootfs.diff_ids``) the image built from ``buildfile`` has, base included."""
    with _Context() as (engine, folder):
        return len(_build(engine, folder, buildfile, files or {}, "exercise:1").image.diff_ids)


def check_layer_count(answer: int, buildfile: str, files: Mapping[str, str] | None = None) -> None:
    """``answer`` is :func:`layer_count` of the build.  Raises :class:`AssertionError` with the hint."""
    with _Context() as (engine, folder):
        result = _build(engine, folder, buildfile, files or {}, "exercise:1")
    truth = len(result.image.diff_ids)
    if answer == truth:
        return
    made = sum(1 for s in result.steps if s.layer is not None)
    config_only = sum(1 for s in result.steps if s.layer is None and not s.instruction.startswith("FROM"))
    if answer > truth and config_only:
        raise AssertionError(f"{truth} layers, not {answer}: only COPY, ADD and RUN make a layer; LABEL, ENV, "
                             "USER, EXPOSE, CMD ... only change the image's config (empty_layer in the history)")
    if answer < truth and answer <= made:
        raise AssertionError(f"{truth} layers, not {answer}: the base image's layers are the image's too "
                             f"(FROM brings {truth - made})")
    raise AssertionError(f"{truth} layers, not {answer}: count the base image's layers plus one per COPY, ADD, RUN")


def cached_steps(buildfile: str, files: Mapping[str, str], changed: Mapping[str, str]) -> list[int]:
    """Build, change the files in ``changed``, build again: the numbers of the layer steps (COPY, ADD,
    RUN) the second build reports CACHED."""
    with _Context() as (engine, folder):
        _build(engine, folder, buildfile, files, "exercise:1")
        again = _build(engine, folder, buildfile, {**files, **changed}, "exercise:1")
    return [s.number for s in again.steps if s.cached and s.instruction.startswith(_LAYER_STEPS)]


def check_cached_steps(answer: Iterable[int], buildfile: str, files: Mapping[str, str],
                       changed: Mapping[str, str]) -> None:
    """``answer`` holds exactly :func:`cached_steps`' numbers (order does not count).  Raises
    :class:`AssertionError` with the hint."""
    given = {int(n) for n in answer}
    truth = set(cached_steps(buildfile, files, changed))
    if given == truth:
        return
    first_miss = min((n for n in _layer_numbers(buildfile) if n not in truth), default=None)
    hints = []
    after = sorted(n for n in given - truth if first_miss is not None and n > first_miss)
    if after:
        hints.append(f"steps {after} are rebuilt: a layer cached across a changed COPY: the copied content is in "
                     f"the cache key of step {first_miss}, and every later step has a new parent layer")
    if first_miss in given:
        hints.append(f"step {first_miss} is rebuilt: the files it copies changed, so its cache key did")
    before = sorted(truth - given)
    if before:
        hints.append(f"steps {before} are CACHED: their parent and inputs are unchanged, so the cache reuses them")
    raise AssertionError("; ".join(hints) or f"CACHED steps are {sorted(truth)}, not {sorted(given)}")


def _layer_numbers(buildfile: str) -> list[int]:
    from sim.images.buildfile import parse

    return [n for n, ins in enumerate(parse(buildfile).instructions, start=1) if ins.kind in _LAYER_STEPS]


def check_history(buildfile: str, files: Mapping[str, str], target: Sequence[tuple[str, bool]],
                  reference: str | None = None) -> None:
    """Built from ``buildfile``, the image's history (oldest first, as ``(created_by, empty_layer)``
    after the base image's own entries) is ``target``; with ``reference`` (the instructor's Buildfile)
    its DiffIDs are the reference build's too.  Raises :class:`AssertionError` with the hint."""
    with _Context() as (engine, folder):
        result = _build(engine, folder, buildfile, files, "answer:1")
        base_entries = len(engine.history("busybox"))
        history = [(h.created_by, h.empty_layer) for h in reversed(engine.history("answer:1"))][base_entries:]
        wanted = None
        if reference is not None:
            wanted = _build(engine, folder, reference, files, "reference:1").image.diff_ids
    for i, (got, want) in enumerate(zip(history, target)):
        if got != tuple(want):
            raise AssertionError(f"history entry {i + 1} is {got[0]!r} (empty_layer={got[1]}), expected {want[0]!r} "
                                 f"(empty_layer={want[1]}): each instruction is one history entry, in order; "
                                 "RUN is recorded as '/bin/sh -c ...'")
    if len(history) != len(target):
        raise AssertionError(f"{len(history)} history entries after the base, expected {len(target)}: one per "
                             "instruction after FROM")
    if wanted is not None and tuple(result.image.diff_ids) != tuple(wanted):
        raise AssertionError("the history reads right but the DiffIDs differ: a DiffID is the sha256 of the layer's "
                             "tar, so the copied files and what RUN writes must be the same bytes (same names, same "
                             "contents)")


def check_smaller_image(buildfile: str, files: Mapping[str, str], original: str,
                        command: Sequence[str], stdout: str) -> None:
    """The image from ``buildfile`` is smaller than the one from ``original`` and running ``command``
    in it prints ``stdout``.  Raises :class:`AssertionError` with the hint."""
    with _Context() as (engine, folder):
        _build(engine, folder, original, files, "original:1")
        _build(engine, folder, buildfile, files, "answer:1")
        before = engine.inspect_image("original:1").size
        after = engine.inspect_image("answer:1").size
        ran = engine.run("answer:1", list(command), remove=True)
    out = ran.stdout.decode(errors="replace")
    if ran.exit_code != 0 or out != stdout:
        raise AssertionError(f"{' '.join(command)} printed {out!r} (exit {ran.exit_code}), expected {stdout!r}: "
                             "the image must still do the same work")
    if after >= before:
        raise AssertionError(f"the image is {after:,} B, the original {before:,} B: a file deleted in a later "
                             "layer still costs bytes; make and delete it in the same RUN so no layer keeps it")


def stored_layers(buildfiles: Mapping[str, str], files: Mapping[str, str]) -> int:
    """How many distinct layers (DiffIDs) the engine stores after building every Buildfile (name ->
    text) in one engine, the base image's layers included (``docker system df``'s count)."""
    with _Context() as (engine, folder):
        for i, text in enumerate(buildfiles.values()):
            _build(engine, folder, text, files, f"image{i}:1")
        return engine.df().layers


def check_stored_layers(answer: int, buildfiles: Mapping[str, str], files: Mapping[str, str]) -> None:
    """``answer`` is :func:`stored_layers`.  Raises :class:`AssertionError` with the hint."""
    truth = stored_layers(buildfiles, files)
    if answer == truth:
        return
    if answer > truth:
        raise AssertionError(f"{truth} layers are stored, not {answer}: layers are stored by DiffID (the sha256 of "
                             "their tar), so the same files make the same layer, stored once however many images "
                             "use it and whatever lies below it")
    raise AssertionError(f"{truth} layers are stored, not {answer}: a layer is shared only when its tar is the same "
                         "bytes; different files or a different RUN output make a new DiffID")
