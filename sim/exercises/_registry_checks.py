"""Checks for chapter 5 (仓库 repositories and registries): every answer is checked by parsing the
references, or by pushing and pulling with the checks' engine against model registries, and judged
by what crossed each link; never by its text.  Every check raises :class:`AssertionError` whose
message names the concept a wrong answer misses."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import InvalidReferenceError, LayerlabError
from sim.exercises._engine import scratch_engine

if TYPE_CHECKING:
    from sim.containers.core import EngineCore
    from sim.registries.model import ModelRegistry

__all__ = ["reference_parts", "check_reference_parts", "layer_uploads", "check_uploads", "tag_targets",
           "check_tag_targets", "mirror_traffic", "check_mirror_traffic", "TRAFFIC"]

REGISTRY = "localhost:5000"
#: The answers :func:`check_mirror_traffic` takes, smallest first.
TRAFFIC = ("nothing", "the manifest only", "the whole image")


def reference_parts(reference: str) -> tuple[str, str, str]:
    """``(registry, repository path, tag or digest)`` of ``reference`` as Docker normalises it:
    ``busybox`` is ``("docker.io", "library/busybox", "latest")``."""
    from sim.images.reference import parse_reference

    ref = parse_reference(reference)
    return ref.domain, ref.path, ref.digest or ref.tag or ""


def check_reference_parts(answer: Mapping[str, Sequence[str]], references: Sequence[str]) -> None:
    """``answer[ref]`` is :func:`reference_parts` of each of ``references``.  Raises
    :class:`AssertionError` with one hint per wrong part."""
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of reference -> (registry, repository, tag), not "
                             f"{type(answer).__name__}")
    hints = []
    for reference in references:
        given = answer.get(reference)
        if given is None or isinstance(given, str) or len(given) != 3:
            hints.append(f"{reference}: give a (registry, repository, tag or digest) triple")
            continue
        registry, path, tag = (str(part) for part in given)
        try:
            truth = reference_parts(reference)
        except InvalidReferenceError as exc:  # the exercise's own data: a teacher's typo
            raise AssertionError(f"{reference} is not a reference: {exc}") from None
        if registry != truth[0]:
            hints.append(f"{reference}: the registry is {truth[0]}, not {registry!r}: " + (
                "a first part with a '.' or ':', or 'localhost', names a registry host; any other name is on "
                "Docker Hub (docker.io), the default" if truth[0] == "docker.io" or registry == "docker.io"
                else "the registry is the host[:port] before the first '/'"))
        if path != truth[1]:
            hints.append(f"{reference}: the repository is {truth[1]}, not {path!r}: " + (
                "official images on Docker Hub live under library/" if truth[1].startswith("library/")
                else "the repository is the path after the registry, without the tag"))
        if tag != truth[2]:
            hints.append(f"{reference}: the tag is {truth[2]!r}, not {tag!r}: " + (
                "no tag means latest" if truth[2] == "latest"
                else "a digest (@sha256:...) names the manifest itself, and then there is no tag"
                if truth[2].startswith("sha256:") else "the tag is what follows the last ':' after the last '/'"))
    if hints:
        raise AssertionError("; ".join(hints))


@contextmanager
def _lab() -> Iterator[tuple[EngineCore, ModelRegistry, Path]]:
    """The checks' engine with one private model registry, ``localhost:5000``, and a folder for
    build contexts; all gone on exit."""
    from sim.registries import ModelRegistry
    from sim.registries.config import RegistryConfig

    registry = ModelRegistry(REGISTRY)
    folder = Path(tempfile.mkdtemp(prefix="layerlab-registry-exercise-"))
    try:
        with scratch_engine(registries=RegistryConfig(models=(registry,))) as engine:
            yield engine, registry, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _build(engine: EngineCore, folder: Path, buildfile: str, files: Mapping[str, str], tag: str) -> str:
    context = folder / tag.replace("/", "_").replace(":", "_")
    context.mkdir(parents=True)
    for rel, text in {**files, "Buildfile": buildfile}.items():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text(text, encoding="utf-8")
    return engine.build(context, tag=tag).image.id


def layer_uploads(buildfile: str, v1: Mapping[str, str], v2: Mapping[str, str]) -> list[int]:
    """Layer blobs uploaded by three pushes to ``localhost:5000``: ``lab/hello`` built from
    ``buildfile`` with the files ``v1``; the same image tagged ``lab/web``; ``lab/hello`` rebuilt
    with the files ``v2``."""
    with _lab() as (engine, _, folder):
        _build(engine, folder, buildfile, v1, f"{REGISTRY}/lab/hello")
        pushes = [engine.push(f"{REGISTRY}/lab/hello")]
        engine.tag(f"{REGISTRY}/lab/hello", f"{REGISTRY}/lab/web")
        pushes.append(engine.push(f"{REGISTRY}/lab/web"))
        _build(engine, folder, buildfile, v2, f"{REGISTRY}/lab/hello:v2")
        engine.tag(f"{REGISTRY}/lab/hello:v2", f"{REGISTRY}/lab/hello")
        pushes.append(engine.push(f"{REGISTRY}/lab/hello"))
        return [sum(1 for b in p.blobs if b.kind == "layer" and b.action == "uploaded") for p in pushes]


def check_uploads(answer: object, buildfile: str, v1: Mapping[str, str], v2: Mapping[str, str]) -> None:
    """``answer`` is :func:`layer_uploads`: a list of three counts, one per push.  Raises :class:`AssertionError`
    with one hint per wrong count."""
    if isinstance(answer, str) or not isinstance(answer, Sequence) or len(answer) != 3:
        raise AssertionError("the answer must be a list of three numbers, one per push")
    truth = layer_uploads(buildfile, v1, v2)
    hints = []
    if answer[0] != truth[0]:
        hints.append(f"push 1 uploads {truth[0]} layers, not {answer[0]}: the registry has none of them yet, so "
                     "every layer goes, the base image's too (it came from another registry)")
    if answer[1] != truth[1]:
        hints.append(f"push 2 uploads {truth[1]} layers, not {answer[1]}: a second repository of the same registry "
                     "gets the blobs by a cross-repository mount; no layer crosses the link again")
    if answer[2] != truth[2]:
        hints.append(f"push 3 uploads {truth[2]} layers, not {answer[2]}: a blob is named by its digest, so only "
                     "layers whose bytes changed are new; an unchanged layer (even one rebuilt, not CACHED) already "
                     "exists")
    if hints:
        raise AssertionError("; ".join(hints))


def tag_targets(buildfile: str, v1: Mapping[str, str], v2: Mapping[str, str],
                references: Sequence[str]) -> dict[str, str]:
    """What ``docker pull`` of each of ``references`` gives after ``lab/hello`` was pushed as
    ``:1.0`` and ``:latest`` built with ``v1``, then rebuilt with ``v2`` and pushed as ``:latest``
    only: ``"v1"``, ``"v2"`` or ``"missing"``.  ``@v1`` in a reference stands for version 1's
    manifest digest."""
    from sim.registries.config import RegistryConfig

    with _lab() as (engine, registry, folder):
        ids = {"v1": _build(engine, folder, buildfile, v1, f"{REGISTRY}/lab/hello:1.0")}
        engine.tag(f"{REGISTRY}/lab/hello:1.0", f"{REGISTRY}/lab/hello:latest")
        first = engine.push(f"{REGISTRY}/lab/hello:1.0")
        engine.push(f"{REGISTRY}/lab/hello:latest")
        ids["v2"] = _build(engine, folder, buildfile, v2, f"{REGISTRY}/lab/hello:latest")
        engine.push(f"{REGISTRY}/lab/hello:latest")
        out = {}
        for reference in references:
            # A fresh machine for each pull: nothing of its own to confuse with what the registry gave.
            with scratch_engine(registries=RegistryConfig(models=(registry,))) as other:
                try:
                    got = other.pull(reference.replace("@v1", f"@{first.digest}"))
                except LayerlabError:
                    out[reference] = "missing"
                    continue
            out[reference] = next((name for name, image_id in ids.items() if image_id == str(got.image_id)), "other")
        return out


def check_tag_targets(answer: Mapping[str, str], buildfile: str, v1: Mapping[str, str], v2: Mapping[str, str],
                      references: Sequence[str]) -> None:
    """``answer`` is :func:`tag_targets` for ``references``.  Raises :class:`AssertionError` with
    one hint per wrong reference."""
    if not isinstance(answer, Mapping):
        raise AssertionError("the answer must be a dict of reference -> 'v1', 'v2' or 'missing'")
    truth = tag_targets(buildfile, v1, v2, references)
    hints = []
    for reference in references:
        want, got = truth[reference], answer.get(reference)
        if want == got:
            continue
        if reference.endswith(":latest") or ":" not in reference.rsplit("/", 1)[-1] and "@" not in reference:
            hints.append(f"{reference} gives {want}, not {got!r}: latest is an ordinary tag that moves to whatever was "
                         "pushed under it last; no tag means latest")
        elif "@" in reference:
            hints.append(f"{reference} gives {want}, not {got!r}: a manifest stays in its repository after its tag "
                         "moves away; by digest it is still pulled, untagged")
        elif want == "missing":
            hints.append(f"{reference} is missing, not {got!r}: a registry only has the tags pushed to it")
        else:
            hints.append(f"{reference} gives {want}, not {got!r}: a tag nobody pushed again still names the image it "
                         "named; only latest moved")
    if hints:
        raise AssertionError("; ".join(hints))


def mirror_traffic() -> str:
    """What crosses the Docker Hub -> mirror link when a second machine pulls ``busybox`` through a
    pull-through mirror that a first machine's pull already filled: one of :data:`TRAFFIC`."""
    from sim.registries import ModelMirror, ModelRegistry
    from sim.registries.config import RegistryConfig

    with scratch_engine() as first_machine:
        hub = first_machine.registries.hub
        assert isinstance(hub, ModelRegistry)
        mirror = ModelMirror("localhost:5001", hub.client())
        config = RegistryConfig(mirrors=("localhost:5001",), models=(hub, mirror))
        sizes = []
        for _ in range(2):
            with scratch_engine(registries=config) as machine:
                before = hub.stats().bytes_out
                result = machine.pull("busybox")
                sizes.append((hub.stats().bytes_out - before, result.manifest_bytes))
    crossed, manifest = sizes[1]
    return TRAFFIC[0] if crossed == 0 else TRAFFIC[1] if crossed <= manifest else TRAFFIC[2]


def check_mirror_traffic(answer: str) -> None:
    """``answer`` is :func:`mirror_traffic`.  Raises :class:`AssertionError` with the hint."""
    if answer not in TRAFFIC:
        raise AssertionError(f"the answer is one of {', '.join(map(repr, TRAFFIC))}")
    truth = mirror_traffic()
    if answer == truth:
        return
    if answer == TRAFFIC[2]:
        raise AssertionError(f"{truth}, not the whole image: a pull-through mirror keeps every blob it fetched; a blob "
                             "is named by its digest and never changes, so the second pull gets them from the cache")
    if answer == TRAFFIC[0]:
        raise AssertionError(f"{truth}, not nothing: a tag can move, so the mirror asks the upstream which manifest "
                             "busybox:latest names now; only the blobs come from its cache")
    raise AssertionError(f"{truth}, not {answer!r}")
