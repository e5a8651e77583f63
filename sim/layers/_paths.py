"""Path rules shared by layers and the union file system.

A *layer path* is relative, normalised and never escapes: ``"etc/passwd"``;
the layer root itself is ``""``.  Union paths given by users may be absolute
(``"/etc/passwd"``); both forms name the same object, the root of the union.
"""

from __future__ import annotations

import errno
import os

from sim.errors import UnsafeLayerError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def sort_key(path: str) -> tuple[str, ...]:
    """Order parents before children and siblings by name (``a/b`` before ``a-b``)."""
    return tuple(path.split("/")) if path else ()


def parent_of(path: str) -> str:
    head, _, _ = path.rpartition("/")
    return head


def basename(path: str) -> str:
    return path.rpartition("/")[2]


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def ancestors(path: str) -> list[str]:
    """Every proper ancestor of ``path`` from the top, the root ``""`` excluded."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def clean_layer_path(name: str, *, what: str = "entry") -> str:
    """Normalise an archive or builder name into a layer path, refusing escapes.

    ``./a//b/`` becomes ``a/b``.  Absolute names, ``..`` components and names
    that are empty after cleaning raise :class:`UnsafeLayerError`: an archive
    that needs them is either broken or hostile, and extracting it "cleaned"
    would hide that from the user.
    """
    if "\x00" in name:
        raise UnsafeLayerError(f"{what} name {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeLayerError(f"{what} name {name!r} is absolute; layer paths are relative to the layer root")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeLayerError(f"{what} name {name!r} contains '..' and could escape the layer root")
    return "/".join(parts)


def split_union_path(path: str | bytes) -> list[str]:
    """Components of a union path, as the kernel walks them ('.' and '..' kept).

    Raises ``OSError(ENOENT)`` for the empty path, as ``os.stat("")`` does.
    """
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if path == "":
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    return [p for p in path.split("/") if p]


# What Linux answers when the final name of a call that does not follow it is
# "." or ".." (or the path is "/"): the name is not an ordinary entry to act on.
_DOT_ERRNO = {
    "mkdir": errno.EEXIST,
    "symlink": errno.EEXIST,
    "link": errno.EEXIST,
    "unlink": errno.EISDIR,
    "rename": errno.EBUSY,
    "readlink": errno.EINVAL,
    "utime": errno.EINVAL,
}


def dot_errno(op: str, last: str) -> int:
    """errno for ``op`` on a path whose final component is ``last`` ("." , ".." or "/")."""
    if op == "rmdir":
        return {".": errno.EINVAL, "..": errno.ENOTEMPTY}.get(last, errno.EBUSY)
    return _DOT_ERRNO[op]


def final_dot(path: str) -> str | None:
    """``"."``, ``".."`` or ``"/"`` when the final component of ``path`` is one of those."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else None
    last = stripped.rpartition("/")[2]
    return last if last in (".", "..") else None
