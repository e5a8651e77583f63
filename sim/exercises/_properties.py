"""Write-a-property exercises: the student's hypothesis property is run against the correct engine,
where it must hold, and against deliberately broken ones (mutants), each of which it must catch.

A property is a function decorated with hypothesis's ``@given`` whose first parameter is not drawn:
it is the *subject* the check passes in (a ``union`` to mount layers with, a ``build`` to build
Buildfiles with, a ``registry`` to open a session on ...), so the same property runs on the model, on
the kernel and on each mutant.  A mutant breaks one rule that the chapter teaches, at the interface
the student sees (layers a runtime unpacks without their whiteouts, a copy-up that resets the mode),
so it is the bug a real implementation could have, not a change to the model's internals.

:func:`check_property` is the grading core; the ``check_*_property`` functions give it each
chapter's subject and mutants.  Every check raises :class:`AssertionError` whose message names what
the property misses: it fails on the correct engine (it claims something false), or a mutant passes
it (it says too little to see that bug).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from sim.errors import BuildError, BuildfileError
from sim.exercises._engine import scratch_engine
from sim.layers.layer import Layer

if TYPE_CHECKING:
    from sim.containers.core import EngineCore
    from sim.interface import UnionMount
    from sim.registries.api import BlobReader, RegistryClient

__all__ = ["Mutant", "check_property", "strip_tar_members", "check_union_property", "check_copy_up_property",
           "Built", "check_build_property", "check_registry_property"]

#: What a property's subject ``union`` is: ``union(layers)`` mounts them (bottom first) under a new
#: empty upper layer, as a context manager that unmounts on exit.
Union = Callable[[Sequence[Layer]], AbstractContextManager["UnionMount"]]


@dataclass(frozen=True)
class Mutant:
    """A broken engine: ``name`` says what it breaks, ``concept`` what a property must do to catch
    it (the hint when it does not)."""

    name: str
    concept: str


@dataclass(frozen=True)
class _Verdict:
    """One run of a property: ``failure`` is empty when it held for every example, else the
    error and hypothesis's falsifying example."""

    failure: str


def _is_property(prop: object) -> bool:
    return callable(prop) and bool(getattr(prop, "is_hypothesis_test", False))


def _configured(prop: Callable[..., object], max_examples: int) -> Callable[..., object]:
    """``prop`` with the grading settings: the same examples on every run (``derandomize``), so a
    grade never depends on luck; shrunk but not annotated (no *explain* phase, which re-runs a
    shrunk example many times and costs seconds per caught mutant).  A property with ``@settings``
    of its own keeps them (hypothesis allows one)."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.errors import InvalidArgument

    try:
        return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None, print_blob=False,
                        suppress_health_check=list(HealthCheck),
                        phases=[p for p in Phase if p is not Phase.explain])(prop)
    except InvalidArgument:
        return prop


def _run(prop: Callable[..., object], subject: object) -> _Verdict:
    try:
        prop(subject)
    except Exception as exc:  # the property is the student's code: any error is its verdict
        example = "\n".join(getattr(exc, "__notes__", []))
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return _Verdict(f"{text} ({example})" if example else text)
    return _Verdict("")


def check_property(prop: object, correct: object, mutants: Sequence[tuple[Mutant, object]], *,
                   max_examples: int = 60) -> None:
    """``prop`` holds for ``correct`` and fails for every mutant's subject.

    ``prop`` must be a hypothesis property (``@given``) taking the subject as its first,
    undrawn argument.  Examples are drawn deterministically (``derandomize``), at most
    ``max_examples`` a run.  Prints which mutants were caught and by which example; raises
    :class:`AssertionError` naming the first problem: not a property, fails on the correct engine,
    or lets mutants through (each with its :attr:`Mutant.concept`).
    """
    if not _is_property(prop):
        raise AssertionError("the answer must be a hypothesis property: a function decorated with @given(...) whose "
                             "first parameter is the subject the check passes in")
    assert callable(prop)
    prop = _configured(prop, max_examples)
    verdict = _run(prop, correct)
    if verdict.failure:
        raise AssertionError("the property fails on the correct engine, so it claims something the engine does not "
                             f"do: {verdict.failure}")
    missed: list[str] = []
    for mutant, subject in mutants:
        caught = _run(prop, subject)
        if caught.failure:
            print(f"caught the mutant '{mutant.name}': {caught.failure}")
        else:
            missed.append(f"it holds for a broken engine ({mutant.name}): {mutant.concept}")
    if missed:
        raise AssertionError("; ".join(missed))


# -- chapter 1: layers mounted by a runtime that drops whiteout markers ---------------------------

def strip_tar_members(layer: Layer, drop: Callable[[str], bool]) -> Layer:
    """``layer`` as a runtime would unpack it if it skipped every tar member whose base name
    ``drop`` accepts (``.wh.name`` whiteouts, the ``.wh..wh..opq`` opaque marker): the layer's own
    tar form, filtered, read back (frozen)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(layer.tar_bytes()), mode="r:") as source, \
            tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as kept:
        for member in source.getmembers():
            if drop(member.name.rstrip("/").rsplit("/", 1)[-1]):
                continue
            kept.addfile(member, source.extractfile(member) if member.isreg() else None)
    out.seek(0)
    return Layer.from_tar(out).freeze()


def _is_whiteout(name: str) -> bool:
    return name.startswith(".wh.") and name != ".wh..wh..opq"


def _is_opaque_marker(name: str) -> bool:
    return name == ".wh..wh..opq"


def _union_of(engine: EngineCore, rewrite: Callable[[Layer], Layer] | None = None) -> Union:
    def union(layers: Sequence[Layer]) -> AbstractContextManager[UnionMount]:
        if not isinstance(layers, (list, tuple)) or not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("union() takes a list of Layer objects, bottom first")
        return engine.union([rewrite(layer) if rewrite else layer for layer in layers])
    return union


UNION_MUTANTS = (
    Mutant("whiteouts ignored", "delete a lower file with a whiteout in an upper layer and check that the merged "
           "view no longer shows it"),
    Mutant("opaque directories dropped", "make an upper directory opaque and check that the lower layers' "
           "entries in it no longer show"),
)


def check_union_property(prop: object, *, max_examples: int = 60) -> None:
    """Chapter 1: ``prop(union, ...)`` holds for the checks' backend and catches a runtime that
    ignores whiteouts and one that drops opaque markers (:data:`UNION_MUTANTS`)."""
    with scratch_engine() as engine:
        check_property(prop, _union_of(engine), [
            (UNION_MUTANTS[0], _union_of(engine, lambda layer: strip_tar_members(layer, _is_whiteout))),
            (UNION_MUTANTS[1], _union_of(engine, lambda layer: strip_tar_members(layer, _is_opaque_marker))),
        ], max_examples=max_examples)


# -- chapter 3: a container layer whose copy-up loses the file's mode ------------------------------

_WRITES = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND


class _ModeLosingMount:
    """A union mount whose copy-up writes the copied file with mode 0644 (the mode a naive
    ``open(..., "w")`` copy gives), whatever the lower file's mode was.  Everything else is the
    wrapped mount's."""

    def __init__(self, inner: UnionMount) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _ModeLosingMount:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(None, None, None)

    def _lower_only(self, path: str) -> bool:
        rel = "/".join(p for p in path.split("/") if p)
        try:
            return stat.S_ISREG(self._inner.lstat(path).st_mode) and self._inner.upper.get(rel) is None
        except OSError:
            return False

    def _lose_mode(self, path: str, would_copy: bool) -> None:
        if would_copy:
            self._inner.chmod(path, 0o644)

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        would_copy = bool(flags & _WRITES) and self._lower_only(path)
        fd = self._inner.open(path, flags, mode)
        self._lose_mode(path, would_copy)
        return fd

    def truncate(self, path: str, length: int) -> None:
        would_copy = self._lower_only(path)
        self._inner.truncate(path, length)
        self._lose_mode(path, would_copy)

    def write_bytes(self, path: str, data: bytes, mode: int = 0o666) -> None:
        would_copy = self._lower_only(path)
        self._inner.write_bytes(path, data, mode)
        self._lose_mode(path, would_copy)

    def utime(self, path: str, *args: Any, **kwargs: Any) -> None:
        would_copy = self._lower_only(path)
        self._inner.utime(path, *args, **kwargs)
        self._lose_mode(path, would_copy)

    def chown(self, path: str, uid: int, gid: int) -> None:
        would_copy = self._lower_only(path)
        self._inner.chown(path, uid, gid)
        self._lose_mode(path, would_copy)


COPY_UP_MUTANT = Mutant("copy-up loses the mode", "let the container write to (or append to) a lower file whose mode "
                        "is not 0644, e.g. an executable 0755 script, and check the mode after the write")


def check_copy_up_property(prop: object, *, max_examples: int = 60) -> None:
    """Chapter 3: ``prop(union, ...)`` holds for the checks' backend and catches a container layer
    whose copy-up resets the copied file's mode to 0644 (:data:`COPY_UP_MUTANT`)."""
    with scratch_engine() as engine:
        correct = _union_of(engine)

        def mode_losing(layers: Sequence[Layer]) -> AbstractContextManager[UnionMount]:
            mount = correct(layers).__enter__()
            # Duck-typed: every FileSystem call of the mount, the copy-up calls rewritten.
            return cast("AbstractContextManager[UnionMount]", _ModeLosingMount(mount))

        check_property(prop, correct, [(COPY_UP_MUTANT, mode_losing)], max_examples=max_examples)


# -- chapter 2: a build cache that ignores what COPY reads -----------------------------------------

@dataclass(frozen=True)
class Built:
    """What ``build(buildfile, files)`` gives a property: the image's ``id`` and ``diff_ids``,
    which steps were ``cached`` (by step number, ``FROM`` is 1) and :meth:`read` for a file's bytes."""

    id: str
    diff_ids: tuple[str, ...]
    cached: tuple[int, ...]
    _read: Callable[[str], bytes]

    def read(self, path: str) -> bytes:
        """The bytes of the image's file ``path``, read by a container of it (``cat``)."""
        return self._read(path)


Build = Callable[[str, Mapping[str, str]], Built]


def _builder(engine: EngineCore, folder: Path, stale: bool) -> Build:
    """``build`` on ``engine`` with ``folder`` as context; ``stale``: the mutant that keys its cache
    on the Buildfile's text only, so a changed file under an unchanged ``COPY`` is served from cache."""
    seen: dict[str, Built] = {}
    count = [0]

    def read_from(tag: str) -> Callable[[str], bytes]:
        def read(path: str) -> bytes:
            result = engine.run(tag, ["cat", path], remove=True)
            if result.exit_code != 0:
                raise FileNotFoundError(f"{path} is not in the image ({result.stderr.decode(errors='replace').strip()})")
            return result.stdout
        return read

    def build(buildfile: str, files: Mapping[str, str]) -> Built:
        if not isinstance(buildfile, str) or not isinstance(files, Mapping):
            raise TypeError("build(buildfile: str, files: dict[str, str])")
        if stale and buildfile in seen:
            return seen[buildfile]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for rel, text in {**files, "Buildfile": buildfile}.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        count[0] += 1
        tag = f"property:{count[0]}"
        try:
            result = engine.build(folder, tag=tag)
        except (BuildfileError, BuildError) as exc:
            raise AssertionError(f"the build failed: {exc}") from None
        built = Built(result.image.id, result.image.diff_ids,
                      tuple(s.number for s in result.steps if s.cached), read_from(tag))
        seen[buildfile] = built
        return built

    return build


CACHE_MUTANT = Mutant("cache keyed by the instruction text", "build the same Buildfile twice with different contents "
                      "of a file it COPYs, and check that the image holds the new contents (or that the COPY step is "
                      "not CACHED)")


def check_build_property(prop: object, *, max_examples: int = 12) -> None:
    """Chapter 2: ``prop(build, ...)`` holds for the checks' backend and catches a build cache that
    ignores the contents a ``COPY`` reads (:data:`CACHE_MUTANT`).  Builds are slow on the kernel,
    hence the small default ``max_examples``."""
    folder = Path(tempfile.mkdtemp(prefix="layerlab-property-"))
    try:
        with scratch_engine() as correct_engine, scratch_engine() as mutant_engine:
            check_property(prop, _builder(correct_engine, folder / "a", stale=False),
                           [(CACHE_MUTANT, _builder(mutant_engine, folder / "b", stale=True))],
                           max_examples=max_examples)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- chapter 5: a registry that trusts the digest a client claims ----------------------------------

class _TrustingSession:
    """A registry session that stores a pushed blob under the digest the client names without
    hashing it: the bytes are kept under their true digest and the claimed one points at them."""

    def __init__(self, inner: RegistryClient) -> None:
        self._inner = inner
        self._alias: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _TrustingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def put_blob(self, repository: str, digest: str, size: int, source: IO[bytes], *,
                 chunk_size: int | None = None) -> None:
        data = source.read()
        true = "sha256:" + hashlib.sha256(data).hexdigest()
        self._inner.put_blob(repository, true, len(data), io.BytesIO(data))
        self._alias[str(digest)] = true

    def stat_blob(self, repository: str, digest: str) -> int | None:
        return self._inner.stat_blob(repository, self._alias.get(str(digest), str(digest)))

    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> BlobReader:
        return self._inner.open_blob(repository, self._alias.get(str(digest), str(digest)), offset=offset)


TRUST_MUTANT = Mutant("blobs stored under the digest the client claims", "push bytes under a digest that is not "
                      "theirs and check that the push is refused (or that what the registry then serves under that "
                      "digest hashes to it)")


@contextmanager
def _registries(trusting: bool) -> Iterator[Callable[[], RegistryClient]]:
    from sim.registries.model import ModelRegistry

    sessions: list[RegistryClient] = []

    def registry() -> RegistryClient:
        session = ModelRegistry("localhost:5000").client()
        sessions.append(session)
        return cast("RegistryClient", _TrustingSession(session)) if trusting else session  # duck-typed
    try:
        yield registry
    finally:
        for session in sessions:
            session.close()


def check_registry_property(prop: object, *, max_examples: int = 60) -> None:
    """Chapter 5: ``prop(registry, ...)``, where ``registry()`` opens a session on a new, empty
    model registry, holds and catches a registry that trusts claimed digests (:data:`TRUST_MUTANT`).
    Always on the model: a real registry server is the chapter's ``BACKEND = "real"`` part."""
    with _registries(False) as correct, _registries(True) as mutant:
        check_property(prop, correct, [(TRUST_MUTANT, mutant)], max_examples=max_examples)
