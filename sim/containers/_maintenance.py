"""The engine's housekeeping: ``fsck``, the ``prune`` family and ``system df``, on both backends.

What is *in use* is decided here once, so no prune can remove it: an image a container of any
state was made from, an image some kept image was built on (its parent), a volume any container
mounts, a running container.  Every result is a frozen dataclass naming what went and the bytes
it freed; the bytes are measured before removal (blob files for images, the writable layer for
containers, the volume folder, cached layers and partial downloads for the build cache), so
``system_df().reclaimable`` is what the matching prune gives back.

``fsck`` re-hashes every blob and checks every reference the store and the containers make;
with ``repair`` it removes only what cannot be trusted (see :meth:`MaintenanceCommands.fsck`).

Other engines may use the same state folder at once: a prune decides and removes inside one
store transaction (the exclusive store lock), counting as used the images of the containers
other engines saved in the containers folder too; ``fsck`` scans under the shared lock, so a
build or a removal in another process is seen whole or not at all (docs/concurrency.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sim.containers._build import BuildCache
from sim.containers._container import Container
from sim.containers._images import LayerCache
from sim.digest import Digest
from sim.images._sha256 import as_sha256
from sim.images.blobs import BlobNotFoundError
from sim.images.reference import parse_reference
from sim.images.store import ImageRecord, ImageStore

__all__ = [
    "MaintenanceCommands", "FsckProblem", "FsckReport", "PruneResult", "SystemPruneResult", "DfRow",
    "SystemDiskUsage", "is_anonymous_volume",
]

#: The name the engine gives an image's VOLUME (64 hex digits, like Docker's): anonymous.
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
_DOWNLOAD_SUFFIX = ".download"
_PARTIAL_SUFFIX = ".partial"


def is_anonymous_volume(name: str) -> bool:
    """Whether ``name`` is one the engine made for an image's ``VOLUME`` (64 lowercase hex digits).

    The engine keeps no label beside a volume, so the name is the mark: a volume a user named
    with 64 hex digits counts as anonymous too."""
    return bool(_ANONYMOUS.match(name))


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FsckProblem:
    """One thing wrong: ``kind`` (a stable word), the ``subject`` (digest, tag, container, file),
    ``what`` is wrong and what ``todo``."""

    kind: str
    subject: str
    what: str
    todo: str

    def line(self) -> str:
        return f"{self.kind}: {self.what} -- {self.todo}"


@dataclass(frozen=True)
class FsckReport:
    """What ``fsck`` found (``problems``, before any repair), what the repair removed
    (``repaired``, one line each) and what is still wrong afterwards (``remaining``; without
    ``repair``, the same as ``problems``)."""

    blobs_checked: int
    images_checked: int
    problems: tuple[FsckProblem, ...]
    repaired: tuple[str, ...] = ()
    remaining: tuple[FsckProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """Nothing left wrong."""
        return not self.remaining


@dataclass(frozen=True)
class PruneResult:
    """One prune: ``deleted`` (image IDs, container IDs, volume names or build cache keys), the
    tags that went with images (``untagged``) and ``freed_bytes``."""

    kind: str  # "images", "containers", "volumes", "build cache"
    deleted: tuple[str, ...] = ()
    freed_bytes: int = 0
    untagged: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Docker's listing: ``Deleted Images:`` then ``untagged: ...``/``deleted: ...`` (empty when nothing went)."""
        if not self.deleted and not self.untagged:
            return []
        if self.kind == "images":
            return ["Deleted Images:", *(f"untagged: {t}" for t in self.untagged), *(f"deleted: {d}" for d in self.deleted)]
        title = {"containers": "Deleted Containers:", "volumes": "Deleted Volumes:",
                 "build cache": "Deleted build cache objects:"}[self.kind]
        return [title, *self.deleted]


@dataclass(frozen=True)
class SystemPruneResult:
    """``docker system prune``: each part in the order it ran (containers, volumes when asked,
    images, build cache) and the bytes freed altogether."""

    parts: tuple[PruneResult, ...]

    @property
    def freed_bytes(self) -> int:
        return sum(p.freed_bytes for p in self.parts)


@dataclass(frozen=True)
class DfRow:
    """One line of ``docker system df``: how many, how many in use, their bytes, the bytes a prune frees."""

    type: str
    total: int
    active: int
    size: int
    reclaimable: int


@dataclass(frozen=True)
class SystemDiskUsage:
    """``docker system df``: Images, Containers, Local Volumes, Build Cache."""

    images: DfRow
    containers: DfRow
    volumes: DfRow
    build_cache: DfRow

    @property
    def rows(self) -> tuple[DfRow, ...]:
        return (self.images, self.containers, self.volumes, self.build_cache)


# -- what the engine must have ----------------------------------------------------------------------


class _Host(Protocol):
    store: ImageStore
    containers_dir: Path | None
    _containers: dict[str, Container]
    _volumes: dict[str, Any]
    _build_cache: BuildCache
    _layer_cache: LayerCache

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> int: ...

    def remove_volume(self, name: str) -> None: ...

    def _volume_size(self, handle: Any) -> int: ...

    def _refresh(self, container: Container) -> None: ...

    def _layers_released(self) -> None: ...


# -- what is in use, what may go -----------------------------------------------------------------


def _record_blobs(record: ImageRecord) -> list[Digest]:
    return [record.manifest_digest, as_sha256(record.manifest.config.digest), *(as_sha256(d.digest) for d in record.layers)]


def _used_images(engine: _Host) -> set[Digest]:
    """Images a container of this engine, or one another engine saved in the containers folder, was made from."""
    used = {c.image.id for c in engine._containers.values() if c.image is not None}
    folder = engine.containers_dir
    if folder is not None and folder.is_dir():
        for saved in folder.iterdir():
            try:
                image = json.loads((saved / "config.json").read_bytes())["image"]
                used.add(as_sha256(image))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half-written (being saved or removed right now) or not a container
    return used


def _removable_images(engine: _Host, *, all: bool) -> list[ImageRecord]:
    """The images ``image prune`` removes: untagged ones (every one with ``all``) that no container
    uses and that no kept image was built on (repeated until nothing changes: a kept child keeps
    its whole parent chain)."""
    records = engine.store.list(all=True)
    used = _used_images(engine)
    removable = {r.id for r in records if (all or not r.repo_tags) and r.id not in used}
    changed = True
    while changed:
        changed = False
        for r in records:
            if r.id not in removable and r.parent in removable:
                removable.discard(r.parent)
                changed = True
    return [r for r in records if r.id in removable]


def _blob_size(store: ImageStore, digest: Digest) -> int:
    try:
        return store.content.size(digest)
    except BlobNotFoundError:
        return 0


def _image_bytes(engine: _Host) -> tuple[int, int]:
    """(bytes of every blob the images reference, each once; of those, the bytes only the
    images ``image prune -a`` would remove reference)."""
    records = engine.store.list(all=True)
    going = {r.id for r in _removable_images(engine, all=True)}
    kept_blobs = {d for r in records if r.id not in going for d in _record_blobs(r)}
    every = {d for r in records for d in _record_blobs(r)}
    sizes = {d: _blob_size(engine.store, d) for d in every}
    return sum(sizes.values()), sum(s for d, s in sizes.items() if d not in kept_blobs)


def _stopped(engine: _Host) -> list[Container]:
    for c in engine._containers.values():
        engine._refresh(c)
    # A restarting container is between two runs of its policy: moby keeps Running set on it, so no prune takes it.
    return [c for c in engine._containers.values() if c.state not in ("running", "restarting")]


def _unused_volumes(engine: _Host, *, all: bool) -> list[str]:
    mounted = {v for c in engine._containers.values() for v in c.volumes.values()}
    return [n for n in sorted(engine._volumes) if n not in mounted and (all or is_anonymous_volume(n))]


def _dangling_cache(engine: _Host, *, all: bool) -> list[str]:
    """Build cache keys whose layer no stored image keeps (every key with ``all``)."""
    kept = {str(d) for r in engine.store.list(all=True) for d in r.diff_ids}
    return sorted(k for k, d in engine._build_cache.entries.items() if all or d not in kept)


def _cache_bytes(engine: _Host, keys: Iterable[str]) -> int:
    """File bytes of the layers that only the build cache holds for ``keys`` (in this engine's memory)."""
    kept = {str(d) for r in engine.store.list(all=True) for d in r.diff_ids}
    total = 0
    for diff_id in {engine._build_cache.entries[k] for k in keys} - kept:
        layer = engine._layer_cache.by_diff_id(diff_id)
        total += layer.size if layer is not None else 0
    return total


def _downloads(store: ImageStore) -> dict[str, int]:
    """Resumable downloads in the folder store's ingest area: name -> bytes so far."""
    root = store.content.root
    if root is None:
        return {}
    out = {}
    for name in store.content.ingests():
        if name.endswith(_DOWNLOAD_SUFFIX):
            try:
                out[name] = os.lstat(root / "ingest" / name).st_size
            except FileNotFoundError:
                continue
    return out


def _unheld(path: Path) -> bool:
    """Whether no live writer holds the ingest file ``path`` (its writer keeps an exclusive flock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return True  # gone, or a symlink: nobody writes through it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True


# -- fsck -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scan:
    blobs: int
    images: int
    problems: tuple[FsckProblem, ...]
    corrupt: frozenset[Digest]
    broken: frozenset[Digest]  # image IDs that need a blob that is missing or corrupt
    orphans: tuple[Path, ...]  # saved container folders whose image is gone
    leftovers: tuple[str, ...]  # ingest files no writer holds
    damaged: bool = False  # index entries whose manifest or config cannot be read


def _name(record: ImageRecord) -> str:
    return ", ".join(record.tags) or record.short_id


def _scan(engine: _Host) -> _Scan:
    with engine.store.content.lock.shared():  # a change in another process is seen whole or not at all
        return _scan_locked(engine)


def _scan_locked(engine: _Host) -> _Scan:
    store = engine.store
    damaged = store.damaged()
    present = set(store.content.digests())
    corrupt = set(store.content.verify())
    records = store.list(all=True)
    problems: list[FsckProblem] = []
    users: dict[Digest, list[str]] = {}
    for r in records:
        for d in _record_blobs(r):
            users.setdefault(d, []).append(_name(r))
    for d in sorted(corrupt):
        where = f" (used by {'; '.join(sorted(set(users[d])))})" if d in users else " (no image uses it)"
        problems.append(FsckProblem("corrupt-blob", str(d), f"blob {d} does not hash to its digest{where}",
                                    "`fsck --repair` deletes it; pull, load or build its images again"))
    for entry in damaged:
        label = parse_reference(entry.name).familiar if entry.name else str(as_sha256(entry.descriptor.digest))
        problems.append(FsckProblem("damaged-image", str(entry.descriptor.digest),
                                    f"the index entry {label} cannot be read: {entry.reason}",
                                    "`fsck --repair` removes the entry; pull, load or build the image again"))
        if entry.name:
            problems.append(FsckProblem("broken-tag", label, f"tag {label} names a damaged image",
                                        "`fsck --repair` removes the tag; tag a good image under it again"))
    in_use = _used_images(engine)
    broken: set[Digest] = set()
    for r in records:
        roles = [("manifest", r.manifest_digest), ("config", as_sha256(r.manifest.config.digest))]
        roles += [(f"layer {i}", as_sha256(d.digest)) for i, d in enumerate(r.layers)]
        for role, d in roles:
            if d not in present:
                problems.append(FsckProblem("missing-blob", str(d), f"the {role} {d} of image {_name(r)} is missing",
                                            "`fsck --repair` removes the image; pull, load or build it again"))
        if any(d not in present or d in corrupt for _, d in roles):
            broken.add(r.id)
            todo = ("remove its containers first, then `fsck --repair`" if r.id in in_use
                    else "`fsck --repair` removes it; pull, load or build it again")
            problems.append(FsckProblem("broken-image", str(r.id), f"image {r.short_id} ({_name(r)}) cannot be read whole", todo))
            for tag in r.tags:
                problems.append(FsckProblem("broken-tag", tag, f"tag {tag} names the broken image {r.short_id}",
                                            "`fsck --repair` removes the tag; tag a good image under it again"))
    ids = {r.id for r in records}
    for c in engine._containers.values():
        if c.image is not None and c.image.id not in ids:
            problems.append(FsckProblem("container-image-missing", c.name,
                                        f"container {c.name} was made from image {c.image.short_id}, which is gone",
                                        f"`rm {c.name}` once you have what you need from it (`diff`, `commit`)"))
    orphans: list[Path] = []
    if engine.containers_dir is not None and engine.containers_dir.is_dir():
        for folder in sorted(engine.containers_dir.iterdir()):
            if not folder.is_dir() or folder.name in engine._containers:
                continue
            try:
                image = json.loads((folder / "config.json").read_text())["image"]
            except (OSError, ValueError, KeyError, TypeError):
                problems.append(FsckProblem("unreadable-container", str(folder), f"{folder} holds no readable container",
                                            "remove the folder by hand once no engine is running"))
                continue
            if image not in store:
                orphans.append(folder)
                problems.append(FsckProblem("orphan-container", folder.name,
                                            f"saved container {folder.name[:12]} needs image {image[:19]}, which is gone",
                                            "`fsck --repair` deletes it (copy its upper.tar out first if you need its files)"))
    leftovers: list[str] = []
    root = store.content.root
    if root is not None:
        for name in store.content.ingests():
            if name.endswith(_DOWNLOAD_SUFFIX):
                continue  # a resumable download: the next pull goes on from it and verifies it
            if _unheld(root / "ingest" / name):
                leftovers.append(name)
                problems.append(FsckProblem("leftover-ingest", name, f"ingest/{name} was left by an interrupted write",
                                            "`fsck --repair` deletes it"))
    return _Scan(len(present), len(records) + len(damaged), tuple(problems), frozenset(corrupt), frozenset(broken),
                 tuple(orphans), tuple(leftovers), bool(damaged))


def _repair(engine: _Host) -> list[str]:
    """Remove what a scan finds untrustworthy; one line per thing removed.

    The scan is made again inside the transaction: another process may have repaired or pulled
    since the report's scan, and a blob that is whole now must not go.  Broken images no container
    uses go with their tags (their intact blobs only when no kept image references them); every
    corrupt blob goes; leftover ingest files and orphan container folders go.  A tagged intact
    image keeps every blob: only corrupt ones are ever deleted while referenced."""
    done: list[str] = []
    with engine.store.transaction():
        scan = _scan_locked(engine)
        if scan.damaged:
            result = engine.store.drop_damaged()
            done += [f"Untagged: {t}" for t in result.untagged] + ["Deleted damaged index entries"]
            done += [f"Deleted blob: {d}" for d in result.deleted_blobs]
        used = _used_images(engine)
        going = sorted(i for i in scan.broken if i not in used and i in {r.id for r in engine.store.list(all=True)})
        if going:
            result = engine.store.delete_images([str(i) for i in going])
            done += [f"Untagged: {t}" for t in result.untagged] + [f"Deleted image: {d}" for d in result.deleted]
            done += [f"Deleted blob: {d}" for d in result.deleted_blobs]
        for d in sorted(scan.corrupt):
            if engine.store.content.delete(d):
                done.append(f"Deleted corrupt blob: {d}")
    if scan.leftovers:  # also any left since the scan: clean_ingest keeps what a live writer holds
        done += [f"Deleted ingest file: {n}" for n in engine.store.content.clean_ingest()]
    for folder in scan.orphans:
        shutil.rmtree(folder, ignore_errors=True)
        done.append(f"Deleted saved container: {folder.name}")
    return done


# -- the mixin ------------------------------------------------------------------------------------


class MaintenanceCommands:
    """Mixed into :class:`~sim.containers.core.EngineCore` (it needs what ``_Host`` lists)."""

    def fsck(self: _Host, repair: bool = False) -> FsckReport:
        """Check the store and the containers; ``repair`` removes what cannot be trusted.

        Checks: every blob re-hashed against its digest; every image's manifest, config and layers
        present and intact (else the image and each of its tags are reported broken); every
        container's image present; every saved container folder's image present; ingest files no
        writer holds.  ``repair``: broken images no container uses are deleted with their tags, then
        every corrupt blob, leftover ingest files and saved containers whose image is gone.  Intact
        blobs are deleted only when no remaining image references them, so a tagged intact image
        keeps all of its blobs; a live container is never removed (it is reported).  Resumable
        downloads are not problems (a pull verifies them on commit).  The report's ``remaining`` is
        a second scan after the repair.
        """
        scan = _scan(self)
        if not repair:
            return FsckReport(scan.blobs, scan.images, scan.problems, (), scan.problems)
        done = _repair(self)
        self._layers_released()
        return FsckReport(scan.blobs, scan.images, scan.problems, tuple(done), _scan(self).problems)

    def image_prune(self: _Host, all: bool = False) -> PruneResult:
        """``docker image prune [-a]``: untagged images (``all``: every image) that no container of any
        state uses and no kept image was built on, with their tags; the blobs only they referenced go."""
        with self.store.transaction():  # what may go is decided over the store as it is, alone
            going = _removable_images(self, all=all)
            if not going:
                return PruneResult("images")
            result = self.store.delete_images([str(r.id) for r in going])
        self._layers_released()
        return PruneResult("images", tuple(str(d) for d in result.deleted), result.freed_bytes, result.untagged)

    def container_prune(self: _Host) -> PruneResult:
        """``docker container prune``: every container that is not running (created or exited); the
        bytes are their writable layers.  Volumes stay (``volume_prune`` removes them)."""
        deleted, freed = [], 0
        for c in _stopped(self):
            freed += self.remove(c.id)
            deleted.append(c.id)
        return PruneResult("containers", tuple(deleted), freed)

    def volume_prune(self: _Host, all: bool = False) -> PruneResult:
        """``docker volume prune [-a]``: volumes no container (of any state) mounts; anonymous ones only
        (see :func:`is_anonymous_volume`), as Docker 23+, unless ``all``."""
        deleted, freed = [], 0
        for name in _unused_volumes(self, all=all):
            size = self._volume_size(self._volumes[name])
            self.remove_volume(name)
            deleted.append(name)
            freed += size
        return PruneResult("volumes", tuple(deleted), freed)

    def builder_prune(self: _Host, all: bool = False) -> PruneResult:
        """``docker builder prune [-a]``: build cache entries whose layer no stored image keeps (``all``:
        every entry, so the next build runs every step again) with the layers only the cache held,
        and every resumable download no puller holds.  Images are never touched."""
        return _builder_prune(self, all=all)

    def system_prune(self: _Host, all: bool = False, volumes: bool = False) -> SystemPruneResult:
        """``docker system prune [-a] [--volumes]``: stopped containers, then (with ``volumes``) unused
        anonymous volumes, then dangling images (``all``: every unused image), then the build cache
        (``all``: all of it).  Networks are left alone."""
        parts = [MaintenanceCommands.container_prune(self)]
        if volumes:
            parts.append(MaintenanceCommands.volume_prune(self))
        parts.append(MaintenanceCommands.image_prune(self, all=all))
        parts.append(_builder_prune(self, all=all))
        return SystemPruneResult(tuple(parts))

    def system_df(self: _Host) -> SystemDiskUsage:
        """``docker system df``.  Images: SIZE is every blob they reference, once; RECLAIMABLE what
        ``image_prune(all=True)`` frees.  Containers: writable layers; the stopped ones' are
        reclaimable.  Local Volumes: unused ones are reclaimable (named ones too, as Docker counts).
        Build Cache: the layers only the cache holds plus resumable downloads, all reclaimable."""
        records = self.store.list(all=True)
        used = _used_images(self)
        size, reclaimable = _image_bytes(self)
        images = DfRow("Images", len(records), sum(r.id in used for r in records), size, reclaimable)
        stopped = {c.id for c in _stopped(self)}
        cs = list(self._containers.values())
        containers = DfRow("Containers", len(cs), len(cs) - len(stopped), sum(c.upper_size for c in cs),
                           sum(c.upper_size for c in cs if c.id in stopped))
        sizes = {n: self._volume_size(h) for n, h in self._volumes.items()}
        unused = set(_unused_volumes(self, all=True))
        volumes = DfRow("Local Volumes", len(sizes), len(sizes) - len(unused), sum(sizes.values()),
                        sum(s for n, s in sizes.items() if n in unused))
        downloads = _downloads(self.store)
        cache = _cache_bytes(self, self._build_cache.entries) + sum(downloads.values())
        build = DfRow("Build Cache", len(self._build_cache.entries) + len(downloads), 0, cache, cache)
        return SystemDiskUsage(images, containers, volumes, build)


def _builder_prune(engine: _Host, *, all: bool) -> PruneResult:
    keys = _dangling_cache(engine, all=all)
    freed = _cache_bytes(engine, keys)
    cache = engine._build_cache
    if keys:
        cache.remove(keys)
        engine._layer_cache = LayerCache(engine.store)  # drop the layers only the cache held (images' are re-read)
        engine._layers_released()
    sizes = _downloads(engine.store)
    gone = engine.store.content.discard_downloads()
    freed += sum(sizes.get(n, 0) for n in gone)
    return PruneResult("build cache", tuple(keys) + tuple(gone), freed)
