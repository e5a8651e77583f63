"""What "two backends agree" means, as comparable snapshots (no hypothesis, no pytest needed).

Every call is turned into ``("ok", value)`` or ``("err", "ENOENT")``; trees and upper layers into
plain dictionaries.  Times are compared exactly when they were inherited (older than ``t0``, the
moment the test began) and only as "changed by the test" otherwise, since two backends cannot
share a clock.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import Any

from sim.interface import FileSystem
from sim.layers.layer import Directory, Layer, RegularFile, Symlink, Whiteout

#: ``("ok", value)`` or ``("err", errno name)``: what a call did, comparable across backends.
Outcome = tuple[str, Any]


def outcome(call: Callable[[], Any]) -> Outcome:
    """Run ``call``: ``("ok", its value)``, or ``("err", "ENOENT")`` (the errno's name; the number
    when it has none) when it raises ``OSError``.  Any other exception propagates."""
    try:
        return ("ok", call())
    except OSError as exc:
        return ("err", errno.errorcode.get(exc.errno or 0, exc.errno))


def when(mtime_ns: int, t0: int) -> int | str:
    """``mtime_ns`` itself when older than ``t0``, else the word ``"changed"``."""
    return mtime_ns if mtime_ns < t0 else "changed"


def stat_view(st: os.stat_result, t0: int, *, nlink: bool = True) -> tuple[Any, ...]:
    """``(type, permission bits, size, nlink, uid, gid, mtime)`` of ``st``: directories show
    ``"dir"`` for size and mtime (they differ between file systems), mtimes go through :func:`when`,
    nlink is ``"-"`` when ``nlink`` is false."""
    kind = stat.S_IFMT(st.st_mode)
    size = st.st_size if not stat.S_ISDIR(st.st_mode) else "dir"
    mtime = when(st.st_mtime_ns, t0) if not stat.S_ISDIR(st.st_mode) else "dir"
    return (kind, stat.S_IMODE(st.st_mode), size, st.st_nlink if nlink else "-", st.st_uid, st.st_gid, mtime)


def tree(fs: FileSystem, t0: int) -> dict[str, tuple[Any, ...]]:
    """Every path below ``/`` of ``fs`` mapped to :func:`stat_view` plus the content (bytes of a
    file, target of a symlink, ``None`` for a directory); a name listed whose ``lstat`` fails maps
    to ``("listed but absent",)``."""
    out: dict[str, tuple[Any, ...]] = {}
    stack = ["/"]
    while stack:
        path = stack.pop()
        for name in fs.listdir(path):
            child = path.rstrip("/") + "/" + name
            try:
                st = fs.lstat(child)
            except FileNotFoundError:
                out[child] = ("listed but absent",)  # a lower whiteout in a directory read as is
                continue
            if stat.S_ISDIR(st.st_mode):
                extra: Any = None
                stack.append(child)
            elif stat.S_ISLNK(st.st_mode):
                extra = fs.readlink(child)
            else:
                extra = fs.read_bytes(child)
            out[child] = (*stat_view(st, t0), extra)
    return out


def layer_view(layer: Layer, t0: int) -> dict[str, Any]:
    """Each entry of ``layer`` as a tuple (kind, then the fields both backends keep: ``user.*``
    xattrs only, without ``user.overlay.*``; file mtimes through :func:`when`), and under the key
    ``"<links>"`` its hard-link groups."""
    out: dict[str, Any] = {}
    for path, entry in layer.items():
        if isinstance(entry, Whiteout):
            out[path] = ("whiteout",)
        elif isinstance(entry, Directory):
            out[path] = ("dir", entry.mode, entry.uid, entry.gid, entry.opaque, entry.redirect, _user_xattrs(entry.xattrs))
        elif isinstance(entry, Symlink):
            out[path] = ("symlink", entry.target, entry.uid, entry.gid)
        elif isinstance(entry, RegularFile):
            out[path] = ("file", entry.data, entry.mode, entry.uid, entry.gid, when(entry.mtime_ns, t0),
                         _user_xattrs(entry.xattrs))
    out["<links>"] = layer.link_groups()
    return out


def _user_xattrs(xattrs: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in xattrs.items() if k.startswith("user.") and not k.startswith("user.overlay.")}
