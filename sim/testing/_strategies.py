"""Hypothesis strategies for names, paths, file trees, layers, layer stacks and file-system operations.

Every layer strategy works by drawing builder calls on a :class:`~sim.layers.layer.Layer` and
skipping the ones the builder refuses (a duplicate path, an entry below a file, a whiteout inside an
opaque directory ...), so every layer it yields is one the builder accepts, and shrinking a
counterexample removes calls until only the entries that matter are left.

The default alphabet :data:`NAMES` is tiny on purpose: paths of different layers (and of one
layer) collide often, which is where whiteouts, opaque directories and copy-up get interesting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from sim.errors import LayerFormatError
from sim.layers.layer import Layer, RegularFile

#: Few names, so paths of different layers (and of one layer) collide often.
NAMES: tuple[str, ...] = ("a", "b", "c", "d")
#: Names that stress the tar form: PAX long names, non-ASCII, a space, a dash.
ODD_NAMES: tuple[str, ...] = ("x" * 120, "é", "sp ace", "-")
#: Paths as a process may spell them: trailing slash, relative, ``..`` and ``.`` components.
ODD_PATHS: tuple[str, ...] = ("/a/", "a/b", "/a/../b", "/../a", "/a/./b", "/a/b/.", "/a/..")
#: Mtimes before any test starts, so :func:`sim.testing.tree` compares them exactly.
PAST_MTIMES_NS: tuple[int, ...] = (1_500_000_000_123_456_789, 1_600_000_000_000_000_000, 1_700_000_000_987_654_321)

# "dir" twice and "opaque" once keep the old mix: half of all drawn directories opaque.
_KINDS = ("file", "file", "dir", "opaque", "symlink", "hardlink", "whiteout")
_IDS = st.sampled_from([0, 0, 0, 1, 1000, 65534, 2**21 + 3, 2**31 + 7])  # 2**21+: needs a PAX header
_MODES = st.one_of(st.sampled_from([0o644, 0o755, 0o600, 0o4755, 0o1777, 0o000]), st.integers(0, 0o7777))
_CONTENTS = (b"", b"one", b"two\n", b"x" * 5000)
_SYMLINK_TARGETS = ("a", "/a", "../b", "a/b", "/c/a", "nowhere", "/", "..", "b/../a", "/a/b/c", "a/", "/b/.")


def names(pool: Sequence[str] = NAMES) -> st.SearchStrategy[str]:
    """One path component drawn from ``pool`` (default :data:`NAMES`); shrinks toward ``pool[0]``."""
    if not pool or any(not n or "/" in n or n in (".", "..") for n in pool):
        raise LayerFormatError(f"names: every name must be a non-empty component without '/', not {list(pool)!r}")
    return st.sampled_from(list(pool))


def layer_paths(names: Sequence[str] = NAMES, max_depth: int = 3) -> st.SearchStrategy[str]:
    """Relative layer paths (``"a/b"``) of 1..``max_depth`` components from ``names``; shallow ones
    more often."""
    depth = st.integers(1, max_depth).flatmap(lambda n: st.integers(1, n))  # biased toward 1 and 2
    return depth.flatmap(lambda n: st.lists(st.sampled_from(list(names)), min_size=n, max_size=n)).map("/".join)


def mount_paths(names: Sequence[str] = NAMES, max_depth: int = 3, *, odd: bool = True) -> st.SearchStrategy[str]:
    """Absolute paths as a process in the container passes them (``"/a/b"``); with ``odd`` also
    the spellings in :data:`ODD_PATHS` that resolve differently (``"/a/"``, ``"/a/../b"`` ...)."""
    plain = layer_paths(names, max_depth).map(lambda p: "/" + p)
    return plain | st.sampled_from(ODD_PATHS) if odd else plain


def symlink_targets(names: Sequence[str] = NAMES) -> st.SearchStrategy[str]:
    """Absolute, relative, dotted and escaping targets: all legal in a layer."""
    path = layer_paths(names)
    return st.one_of(
        path,
        path.map(lambda p: "/" + p),
        st.tuples(st.integers(1, 3), path).map(lambda t: "../" * t[0] + t[1]),
        st.sampled_from([".", "..", "/", "./a/../b", "a/"]),
    )


def xattr_dicts() -> st.SearchStrategy[dict[str, bytes]]:
    """``user.*`` attributes (the namespace any file system and any user can hold), binary values."""
    key = st.text("abcdefxyz0123456789._-", min_size=1, max_size=8).map(lambda s: "user." + s)
    return st.dictionaries(key, st.binary(max_size=24), max_size=3)


def mtimes_ns() -> st.SearchStrategy[int]:
    """Nanosecond mtimes: mostly ordinary, some pre-1970 and with a fraction (PAX ``mtime``)."""
    second = 10**9
    return st.one_of(
        st.just(0),
        st.sampled_from([1_700_000_000 * second, 1_700_000_000 * second + 1, -4 * second - second // 2]),
        st.integers(-(2**31 - 1) * second, 2**33 * second),  # ext4 keeps 1901 .. 2446
    )


@st.composite
def _file_meta(draw: st.DrawFn) -> dict[str, Any]:
    return {"mode": draw(_MODES), "uid": draw(_IDS), "gid": draw(_IDS), "mtime_ns": draw(mtimes_ns())}


@st.composite
def layers(
    draw: st.DrawFn,
    names: Sequence[str] = NAMES,
    *,
    max_depth: int = 3,
    max_entries: int = 10,
    whiteouts: bool = True,
    opaque: bool = True,
) -> Layer:
    """A frozen layer the builder accepts: up to ``max_entries`` drawn entries (refused calls are
    skipped, implied parent directories are added) among regular files with random bytes, mode,
    owner, nanosecond mtime and ``user.*`` xattrs; directories; symlinks; hard links; whiteouts
    (unless ``whiteouts=False``); opaque directories (unless ``opaque=False``)."""
    kinds = [k for k in _KINDS if (whiteouts or k != "whiteout") and (opaque or k != "opaque")]
    layer = Layer()
    paths = layer_paths(names, max_depth)
    for _ in range(draw(st.integers(0, max_entries))):
        kind = draw(st.sampled_from(kinds))
        path = draw(paths)
        try:
            _add(draw, layer, kind, path, names)
        except LayerFormatError:
            continue  # duplicate, below a file or symlink, whiteout in an opaque dir...: a refused call
    return layer.freeze()


def _add(draw: st.DrawFn, layer: Layer, kind: str, path: str, names: Sequence[str]) -> None:
    if kind == "file":
        layer.add_file(path, draw(st.binary(max_size=64)), xattrs=draw(xattr_dicts()), **draw(_file_meta()))
    elif kind in ("dir", "opaque"):
        layer.add_dir(path, xattrs=draw(xattr_dicts()), opaque=kind == "opaque", **draw(_file_meta()))
    elif kind == "symlink":
        layer.add_symlink(path, draw(symlink_targets(names)), uid=draw(_IDS), gid=draw(_IDS), mtime_ns=draw(mtimes_ns()))
    elif kind == "hardlink":
        files = [p for p, e in layer.items() if isinstance(e, RegularFile)]
        if files:
            layer.add_hardlink(path, draw(st.sampled_from(files)))
    else:
        layer.add_whiteout(path)


def file_trees(names: Sequence[str] = NAMES, *, max_depth: int = 3, max_entries: int = 10) -> st.SearchStrategy[Layer]:
    """A plain file tree (a base image, a build context) as a frozen layer: :func:`layers` without
    whiteouts and without opaque directories."""
    return layers(names, max_depth=max_depth, max_entries=max_entries, whiteouts=False, opaque=False)


def layer_stacks(
    min_layers: int = 1, max_layers: int = 4, *, names: Sequence[str] = NAMES, max_entries: int = 8
) -> st.SearchStrategy[list[Layer]]:
    """Lists of ``min_layers``..``max_layers`` frozen :func:`layers` (bottom first) over ``names``,
    so their paths overlap a lot: whiteouts over files, directories over files, opaque directories
    over merged ones."""
    return st.lists(layers(names, max_entries=max_entries), min_size=min_layers, max_size=max_layers)


@st.composite
def mountable_layers(
    draw: st.DrawFn, uids: Sequence[int] = (0, 1000), names: Sequence[str] = ("a", "b", "c"), *, max_entries: int = 7
) -> Layer:
    """A frozen layer both backends can mount and compare: owners from ``uids``, modes a rootless
    kernel keeps, mtimes (implied parents included) from :data:`PAST_MTIMES_NS`, a few fixed
    contents, symlink targets and ``user.*`` xattrs; files, directories, opaque directories,
    symlinks, whiteouts and hard links, at most 3 deep."""
    layer = Layer()
    paths = layer_paths(names, 3)
    for _ in range(draw(st.integers(0, max_entries))):
        path = draw(paths)
        kind = draw(st.sampled_from(["file", "file", "dir", "dir", "opaque", "symlink", "whiteout", "hardlink"]))
        meta: dict[str, Any] = dict(uid=draw(st.sampled_from(list(uids))), gid=draw(st.sampled_from(list(uids))),
                                    mtime_ns=draw(st.sampled_from(PAST_MTIMES_NS)))
        try:
            if kind == "file":
                xattrs = draw(st.sampled_from([{}, {}, {"user.note": b"kept"}]))
                layer.add_file(path, draw(st.sampled_from(_CONTENTS)), mode=draw(st.sampled_from([0o644, 0o600, 0o755])),
                               xattrs=xattrs, **meta)
            elif kind in ("dir", "opaque"):
                layer.add_dir(path, mode=draw(st.sampled_from([0o755, 0o700, 0o1777])), opaque=kind == "opaque", **meta)
            elif kind == "symlink":
                layer.add_symlink(path, draw(st.sampled_from(_SYMLINK_TARGETS)), **meta)
            elif kind == "whiteout":
                layer.add_whiteout(path)
            else:
                files = [p for p, e in layer.items() if e.kind == "file"]
                if files:
                    layer.add_hardlink(path, draw(st.sampled_from(files)))
        except LayerFormatError:
            pass  # not a valid layer with that entry; the next draw tries another
    for _, entry in layer.items():  # implied parents get a past mtime too, so it can be compared
        if entry.kind == "dir" and getattr(entry, "implied", False):
            entry.mtime_ns = PAST_MTIMES_NS[0]
    return layer.freeze()


@dataclass(frozen=True)
class Operation:
    """One ``os``-shaped call on a :class:`~sim.interface.FileSystem`: ``fs.<name>(*args, **kwargs)``.

    ``repr`` reads as the call, so a shrunk sequence of operations reads as a script."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self, fs: Any) -> Any:
        """Run the call on ``fs`` and return what it returns (``OSError`` propagates)."""
        return getattr(fs, self.name)(*self.args, **dict(self.kwargs))

    def __repr__(self) -> str:
        words = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(words)})"


#: The names :func:`operations` draws from, reads first (they shrink first).
OPERATION_NAMES: tuple[str, ...] = (
    "stat", "lstat", "listdir", "readlink", "read_bytes", "write_bytes", "mkdir", "rmdir", "unlink", "rename",
    "symlink", "link", "chmod", "truncate", "utime",
)


def operations(paths: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Operation]:
    """One path-level :class:`Operation` (no descriptors), each name of :data:`OPERATION_NAMES`
    with arguments any backend takes; paths from ``paths`` (default :func:`mount_paths` over
    ``a``, ``b``, ``c`` with the odd spellings)."""
    p = paths if paths is not None else mount_paths(("a", "b", "c"))

    def op(name: str, *args: st.SearchStrategy[Any], **kwargs: st.SearchStrategy[Any]) -> st.SearchStrategy[Operation]:
        keys = sorted(kwargs)
        return st.tuples(st.tuples(*args), st.tuples(*(kwargs[k] for k in keys))).map(
            lambda t: Operation(name, t[0], tuple(zip(keys, t[1]))))

    modes = st.sampled_from([0o600, 0o755, 0o4755, 0o1777])
    return st.one_of(
        *(op(n, p) for n in ("stat", "lstat", "listdir", "readlink", "read_bytes")),
        op("write_bytes", p, st.sampled_from([b"", b"new", b"longer content\n"])),
        op("mkdir", p, st.sampled_from([0o777, 0o700])),
        *(op(n, p) for n in ("rmdir", "unlink")),
        op("rename", p, p),
        op("symlink", st.sampled_from(_SYMLINK_TARGETS), p),
        op("link", p, p, follow_symlinks=st.booleans()),
        op("chmod", p, modes),
        op("truncate", p, st.sampled_from([0, 2, 6000])),
        op("utime", p, ns=st.sampled_from(PAST_MTIMES_NS).map(lambda t: (t, t)), follow_symlinks=st.booleans()),
    )


def operation_sequences(
    paths: st.SearchStrategy[str] | None = None, *, min_size: int = 0, max_size: int = 20
) -> st.SearchStrategy[list[Operation]]:
    """Lists of ``min_size``..``max_size`` :func:`operations`; shrinking drops and simplifies calls."""
    return st.lists(operations(paths), min_size=min_size, max_size=max_size)


def open_flags() -> st.SearchStrategy[int]:
    """``os.open`` flag sets that reach the interesting cases: create, exclusive, truncate, append,
    ``O_NOFOLLOW``, ``O_DIRECTORY``, and a truncate on a read-only open."""
    return st.sampled_from([
        os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.O_RDWR, os.O_RDWR | os.O_APPEND,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.O_RDONLY | os.O_NOFOLLOW, os.O_RDONLY | os.O_DIRECTORY,
        os.O_WRONLY | os.O_CREAT, os.O_RDONLY | os.O_TRUNC,
    ])
