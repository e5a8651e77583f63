"""``COPY --from``: files out of an earlier stage's (or a local image's) merged layers into a build step.

The source is read from the layers themselves (:class:`~sim.layers._lowerview.LowerView`, the model's
merged view), never from a mount, so both backends copy the same bytes and metadata; the writes go
through the step's union mount like every other COPY, so copy-ups and the new layer are the engine's.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from sim.containers._container import mkdir_p
from sim.errors import BuildError
from sim.interface import FileSystem
from sim.layers import _paths
from sim.layers._lowerview import LowerView
from sim.layers.layer import Directory, Entry, Layer, RegularFile, Symlink

_MAX_LINKS = 40  # the kernel's limit on symbolic links followed in one lookup (ELOOP)


@dataclass(frozen=True)
class Found:
    """A source path of ``COPY --from`` after its symbolic links were followed.

    ``path`` is the layer path (no leading slash, ``""`` for ``/``) of ``entry``; ``name`` is the
    last component as written in the Buildfile, which names the copy (Docker keeps it, not the
    link target's name).
    """

    path: str
    name: str
    entry: Entry


class SourceTree:
    """The read-only file tree ``COPY --from`` copies out of: a finished stage or a local image.

    ``label`` says which in messages (``stage build``, ``image busybox``).
    """

    def __init__(self, layers: Sequence[Layer] | LowerView, label: str) -> None:
        self.view = layers if isinstance(layers, LowerView) else LowerView(layers)
        self.label = label

    def lookup(self, source: str) -> Found | None:
        """``source`` (absolute or relative to ``/``) with every symbolic link followed, the last one
        too (buildkit copies with FollowSymlinks), kept inside the tree as a chroot would; None when
        nothing is there or the links loop more than 40 times."""
        todo = [p for p in source.split("/") if p]
        name = todo[-1] if todo else "/"
        parts: list[str] = []
        links = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            node = self.view.nodes.get("/".join([*parts, part]))
            if node is None:
                return None
            if isinstance(node.entry, Symlink):
                links += 1
                if links > _MAX_LINKS:
                    return None
                target = node.entry.target
                if target.startswith("/"):
                    parts = []
                todo = [p for p in target.split("/") if p] + todo
                continue
            if todo and not isinstance(node.entry, Directory):
                return None  # a file where a directory is needed (ENOTDIR)
            parts.append(part)
        path = "/".join(parts)
        return Found(path, name, self.view.nodes[path].entry)

    def below(self, path: str) -> list[tuple[str, Entry]]:
        """Everything below the directory ``path``, parents before children, names sorted:
        ``(path relative to it, entry)``."""
        out: list[tuple[str, Entry]] = []
        for name in self.view.nodes[path].children:
            child = _paths.join(path, name)
            entry = self.view.nodes[child].entry
            out.append((name, entry))
            if isinstance(entry, Directory):
                out.extend((f"{name}/{rel}", e) for rel, e in self.below(child))
        return out


def content_key(tree: SourceTree, sources: Sequence[str]) -> str:
    """What a ``COPY --from`` step's cache key holds of its sources: every name, type, mode, owner and
    the bytes or link target below each source (not mtimes, as for COPY from the context).  A source
    that does not exist is part of the key too; :func:`copy_into` refuses it."""
    digest = hashlib.sha256(tree.label.encode() + b"\0")
    for source in sources:
        found = tree.lookup(source)
        digest.update(b"S" + source.encode() + b"\0")
        if found is None:
            digest.update(b"missing\0")
            continue
        items = [("", found.entry)]
        if isinstance(found.entry, Directory):
            items += tree.below(found.path)
        for rel, entry in items:
            digest.update(rel.encode() + b"\0" + _describe(entry))
    return digest.hexdigest()


def _describe(entry: Entry) -> bytes:
    if isinstance(entry, RegularFile):
        return f"f{entry.mode:o}:{entry.uid}:{entry.gid}:".encode() + hashlib.sha256(entry.data).digest()
    if isinstance(entry, Directory):
        return f"d{entry.mode:o}:{entry.uid}:{entry.gid}".encode()
    if isinstance(entry, Symlink):
        return f"l{entry.uid}:{entry.gid}:".encode() + entry.target.encode()
    return f"?{entry.kind}".encode()


def copy_into(fs: FileSystem, tree: SourceTree, sources: Sequence[str], dest: str, *,
              owner: tuple[int, int] | None, chmod: int | None, where: str) -> None:
    """Copy ``sources`` out of ``tree`` to the absolute ``dest`` in ``fs``, as Docker's COPY does.

    A directory source copies what is inside it into ``dest``; a file or symbolic-link source
    lands at ``dest/<name>`` when ``dest`` ends in ``/``, names an existing directory or there
    are several sources, else at ``dest`` itself.  ``owner`` (from ``--chown``) replaces every
    owner; without it each file keeps its owner in the source (buildkit does the same for
    ``--from``, while context files become root's).  ``chmod`` replaces every file and directory
    mode.  Files keep their mtimes; symbolic links are made anew (owned by root) and hard links
    are copied as separate files.  Every source is looked up before anything is written: a
    missing one is a BuildError naming ``where`` (``Buildfile:N``).  The caller checks first that
    its id map covers the owners (:func:`owners`).
    """
    found: list[Found] = []
    for source in sources:
        hit = tree.lookup(source)
        if hit is None:
            raise BuildError(f'{where}: COPY --from: "{source}" not found in {tree.label}')
        found.append(hit)
    many = len(found) > 1 or dest.endswith("/")
    for hit in found:
        if isinstance(hit.entry, Directory):
            mkdir_p(fs, dest)
            for rel, entry in tree.below(hit.path):
                _put(fs, entry, _join(dest, rel), owner, chmod)
            continue
        target = _join(dest, hit.name) if many or _is_dir(fs, dest) else dest
        mkdir_p(fs, "/" + _paths.parent_of(target.lstrip("/")))
        _put(fs, hit.entry, target, owner, chmod)


def owners(tree: SourceTree, sources: Sequence[str]) -> set[tuple[int, int]]:
    """Every (uid, gid) ``copy_into`` would keep from the source without ``--chown``."""
    out: set[tuple[int, int]] = set()
    for source in sources:
        hit = tree.lookup(source)
        if hit is None:
            continue
        items = tree.below(hit.path) if isinstance(hit.entry, Directory) else [("", hit.entry)]
        for _, entry in items:
            if isinstance(entry, (RegularFile, Directory)):
                out.add((entry.uid, entry.gid))
    return out


def _put(fs: FileSystem, entry: Entry, target: str, owner: tuple[int, int] | None,
         chmod: int | None) -> None:
    if isinstance(entry, Symlink):
        try:
            fs.unlink(target)
        except FileNotFoundError:
            pass
        fs.symlink(entry.target, target)
        return
    if isinstance(entry, Directory):
        mkdir_p(fs, target)
    elif isinstance(entry, RegularFile):
        fs.write_bytes(target, entry.data)
    else:
        raise BuildError(f"COPY --from: {target} is a {entry.kind} entry; the builder copies files, "
                         "directories and symbolic links")
    fs.chmod(target, chmod if chmod is not None else entry.mode)
    if isinstance(entry, RegularFile):
        fs.utime(target, ns=(entry.mtime_ns, entry.mtime_ns))
    uid, gid = owner if owner is not None else (entry.uid, entry.gid)
    if (uid, gid) != (0, 0):
        fs.chown(target, uid, gid)


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel if rel else base


def _is_dir(fs: FileSystem, path: str) -> bool:
    try:
        return stat.S_ISDIR(fs.stat(path).st_mode)
    except OSError:
        return False
