"""Chapter 5 of the tour: 仓库 repositories and registries (the seed's third section, 仓库 —— Repository).

A registry (Docker Registry) holds repositories (仓库), a repository holds tags (标签), a tag names
one image (its manifest), and ``latest`` is the tag when none is given.  The chapter walks through
that with the model registries, on whichever backend the tour runs (the engine's ``pull``,
``push``, ``tag``, ``login`` and ``search`` are the same on both; only the image store underneath
differs): pull busybox from the model Docker Hub (公开 Docker Registry, the default), build a
small image on it, push it to a private registry (私有 Docker Registry) that wants a login (a
wrong password first, refused with its typed error), push it to a second repository (the layers
are mounted, not sent again, and stored once), move ``latest`` to a new image (the old one stays,
untagged, by digest), and pull through a mirror (加速器) on two machines, counting the bytes on
each link.

It is chapter 5 although the seed puts 仓库 third: chapters are appended to
:data:`sim.tour.CHAPTERS`, never inserted, so ``layerlab tour --chapter N``, the notebooks'
numbers and the tests that name chapters 1 to 4 keep meaning what they meant.

Everything here is in memory or in the scratch engine's folder (:func:`sim.tour._common.scratch_engine`);
the real registry server (:mod:`realrt.registries.server`) is notebook 05's second half.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import AuthenticationError
from sim.registries.config import RegistryConfig
from sim.registries.model import ModelMirror, ModelRegistry
from sim.tour._common import Tour, scratch_engine, short_id, write_context

if TYPE_CHECKING:
    from sim.containers.core import EngineCore
    from sim.registries.transfer import PullResult

__all__ = ["chapter_registries", "registry_lines", "PRIVATE", "MIRROR", "ACCOUNT", "APP_CONTEXT"]

#: The private registry's name (how references spell it) and its one account.
PRIVATE = "localhost:5000"
ACCOUNT = ("student", "s3cret")
#: The mirror of the model Docker Hub both "machines" of section 5.6 are configured with.
MIRROR = "localhost:5001"

#: A small image on busybox: one COPY layer over the base layer.
APP_CONTEXT = {
    "Buildfile": 'FROM busybox\nCOPY motd /etc/motd\nCMD ["cat", "/etc/motd"]\n',
    "motd": "hello from version 1\n",
}


def registry_lines(registry: ModelRegistry) -> list[str]:
    """One line per (repository, manifest): its tags (or ``(untagged)``), the manifest's digest and its layers.

    Layers are shown by the first 12 hex digits of their digest, bottom first, as in the manifest.
    """
    out = []
    for name, repo in registry.repositories().items():
        for digest in sorted(repo.manifests):
            tags = sorted(t for t, d in repo.tags.items() if d == digest)
            layers = [str(layer["digest"])[7:19] for layer in json.loads(registry.manifest(digest)).get("layers", [])]
            label = ", ".join(f":{t}" for t in tags) or "(untagged)"
            out.append(f"{name:<16}{label:<12} -> manifest {short_id(digest)}  layers {' '.join(layers)}")
    return out


@contextlib.contextmanager
def _machine(t: Tour, folder: Path, name: str, config: RegistryConfig) -> Iterator[EngineCore]:
    """Another engine of the tour's backend (a second "machine") with these registry settings, closed afterwards.

    It keeps its state under ``folder`` (the scratch engine's, removed with it), as the scratch engine does.
    """
    cls: Any = type(t.engine)
    options: dict[str, Any] = {"registries": config}
    if getattr(t.engine, "state_dir", None) is not None:
        options["state_dir"] = str(folder / name)
    if hasattr(t.engine, "rootless"):
        options["rootless"] = t.engine.rootless
    engine: EngineCore = cls(**options)
    try:
        yield engine
    finally:
        engine.close()


def _show_refusal(t: Tour, attempt: str, call: Callable[[], object]) -> None:
    """Print how ``call`` is refused: its typed error, code and HTTP status (it must be refused)."""
    try:
        call()
    except AuthenticationError as exc:
        t.say(f"{attempt} -> {type(exc).__name__} (code {exc.code}, HTTP {exc.status}): {exc}")
        return
    raise AssertionError(f"{attempt}: the registry let it through")


def _origins(result: PullResult) -> str:
    return ", ".join(f"{b.kind} {b.digest.hex[:12]} {b.bytes:,} B from {b.origin or result.registry}"
                     for b in result.blobs)


def chapter_registries(t: Tour) -> None:
    with scratch_engine(t) as (engine, folder):
        hub = engine.registries.hub
        private = engine.registries.add(ModelRegistry(PRIVATE, accounts=dict([ACCOUNT])))

        t.section("5.1", "仓库与标签", "a registry holds repositories; a repository holds tags; a tag names one image")
        t.say("A reference is <仓库名>:<标签> (repository:tag); with no registry host it means Docker Hub,\n"
              "with no tag it means latest. `busybox` is docker.io/library/busybox:latest:")
        pulled = engine.pull("busybox")
        t.lines([f"pull busybox -> {pulled.registry}/{pulled.repository}:{pulled.reference}", *pulled.lines()])
        t.say(f"{pulled.bytes_received:,} B crossed the link (manifest, config, one layer).")

        t.section("5.2", "公开 Docker Registry", "Docker Hub, the default registry (here a model: no network)")
        t.say(f"search (GET /v2/_catalog) on {hub.name}: {engine.search('', server=hub.name)}")
        t.lines(registry_lines(hub))

        t.section("5.3", "私有 Docker Registry", f"a private registry, {PRIVATE}, with an account")
        context = write_context(folder / "app", APP_CONTEXT)
        first = engine.build(context, tag=f"{PRIVATE}/lab/app").image
        t.say(f"build {PRIVATE}/lab/app (no tag: latest) -> ImageID {short_id(first.id)}, "
              f"manifest digest {short_id(first.digest)}")
        user, password = ACCOUNT
        refused: list[tuple[str, Callable[[], object]]] = [
            (f"push {PRIVATE}/lab/app before any login", lambda: engine.push(f"{PRIVATE}/lab/app")),
            (f"login {PRIVATE} -u {user} with a wrong password", lambda: engine.login(PRIVATE, user, "wrong")),
        ]
        for attempt, call in refused:
            _show_refusal(t, attempt, call)
        t.say(f"login {PRIVATE} -u {user} -> {engine.login(PRIVATE, user, password)}")
        pushed = engine.push(f"{PRIVATE}/lab/app")
        t.lines([f"push {PRIVATE}/lab/app", *pushed.lines()])
        t.say(f"{pushed.bytes_sent:,} B sent; the registry names the image by the same digest: "
              f"{str(pushed.digest) == first.digest}")

        t.section("5.4", "同一层只存一次", "a second repository: the layers are mounted, not sent, and stored once")
        engine.tag(f"{PRIVATE}/lab/app", f"{PRIVATE}/lab/web")
        again = engine.push(f"{PRIVATE}/lab/web")
        t.lines([f"push {PRIVATE}/lab/web", *again.lines()])
        stats = private.stats()
        t.say(f"{again.bytes_sent:,} B sent (the manifest only). {PRIVATE} stores {stats.stored_bytes:,} B; "
              f"the two repositories link {stats.linked_bytes:,} B.")

        t.section("5.5", "latest 标签", "retag latest: the old image stays, by digest, untagged")
        (context / "motd").write_text("hello from version 2\n")
        second = engine.build(context, tag=f"{PRIVATE}/lab/app:latest").image
        moved = engine.push(f"{PRIVATE}/lab/app:latest")
        t.lines([f"build and push {PRIVATE}/lab/app:latest (version 2)", *moved.lines()])
        t.say(f"tags of {PRIVATE}/lab/app: {engine.registry_tags(f'{PRIVATE}/lab/app')}; latest -> "
              f"{short_id(moved.digest)}, was {short_id(pushed.digest)}. The registry:")
        t.lines(registry_lines(private))
        t.say("A tag is mutable, a manifest is not: version 1 is (untagged) in lab/app, still stored and\n"
              "pullable by its digest (and still lab/web:latest).")
        by_digest = engine.pull(f"{PRIVATE}/lab/app@{pushed.digest}")
        t.say(f"pull {PRIVATE}/lab/app@{short_id(pushed.digest)}... -> ImageID {short_id(by_digest.image_id)}: "
              f"version 1 again ({str(by_digest.image_id) == first.id}).")
        local = {i.id: i for i in engine.images()}
        t.say(f"locally: version 2 {short_id(second.id)} is {', '.join(local[second.id].tags)}; version 1 "
              f"{short_id(first.id)} keeps {', '.join(local[first.id].tags) or '<none>:<none>'} and its digest "
              f"{short_id(local[first.id].digest)}.")

        t.section("5.6", "镜像加速器", f"a mirror ({MIRROR}) of Docker Hub: two machines pull through it")
        mirror = ModelMirror(MIRROR, hub.client())
        config = RegistryConfig(mirrors=(MIRROR,), models=(hub, mirror))
        t.say(f"registry-mirrors = [{MIRROR!r}] (used for docker.io pulls only): ask the mirror first, the hub if it fails.")
        for name in ("machine-a", "machine-b"):
            with _machine(t, folder, name, config) as machine:
                hub_before, mirror_before = hub.stats(), mirror.stats()
                result = machine.pull("busybox")
                hub_after, mirror_after = hub.stats(), mirror.stats()
                t.say(f"{name}: pull busybox via {result.registry}: {_origins(result)}")
                t.say(f"  bytes per link: {hub.name} -> {MIRROR} {hub_after.bytes_out - hub_before.bytes_out:,} B; "
                      f"{MIRROR} -> {name} {mirror_after.bytes_out - mirror_before.bytes_out:,} B", indent=2)
        t.say("The second machine's blobs came from the mirror's cache; only the tag's manifest was asked\n"
              "upstream again (a tag can move; a digest cannot).")
