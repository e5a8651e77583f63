"""Hypothesis strategies for layers, shared by the layer, union and differential suites.

``layers()`` draws a random *valid* frozen :class:`~sim.layers.layer.Layer`: files
with random bytes, mode, owner, nanosecond mtime and ``user.*`` xattrs;
directories (some opaque); symlinks with absolute and relative targets;
hard links; whiteouts.  It works by drawing builder calls and skipping the
ones the builder refuses (a duplicate, an entry below a file ...), so every
layer it yields is one the builder accepts, and shrinking removes calls.

``layer_stacks()`` draws a list of such layers over the small alphabet
:data:`NAMES`, so layers collide a lot: whiteouts over files, directories
over files, files over directories, opaque directories over merged ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from sim.errors import LayerFormatError
from sim.layers.layer import Layer, RegularFile

__all__ = [
    "NAMES",
    "ODD_NAMES",
    "layer_paths",
    "symlink_targets",
    "xattr_dicts",
    "mtimes_ns",
    "layers",
    "layer_stacks",
]

#: Few names, so paths of different layers (and of one layer) collide often.
NAMES: tuple[str, ...] = ("a", "b", "c", "d")
#: Names that stress the tar form: PAX long names, non-ASCII, a space, a dash.
ODD_NAMES: tuple[str, ...] = ("x" * 120, "é", "sp ace", "-")

_KINDS = ("file", "file", "dir", "dir", "symlink", "hardlink", "whiteout")
_IDS = st.sampled_from([0, 0, 0, 1, 1000, 65534, 2**21 + 3, 2**31 + 7])  # 2**21+: needs a PAX header
_MODES = st.one_of(st.sampled_from([0o644, 0o755, 0o600, 0o4755, 0o1777, 0o000]), st.integers(0, 0o7777))


def mtimes_ns() -> st.SearchStrategy[int]:
    """Nanosecond mtimes: mostly ordinary, some pre-1970 and with a fraction (PAX ``mtime``)."""
    second = 10**9
    return st.one_of(
        st.just(0),
        st.sampled_from([1_700_000_000 * second, 1_700_000_000 * second + 1, -4 * second - second // 2]),
        st.integers(-(2**31 - 1) * second, 2**33 * second),  # ext4 keeps 1901 .. 2446
    )


def layer_paths(names: Sequence[str] = NAMES, max_depth: int = 3) -> st.SearchStrategy[str]:
    """Relative layer paths of 1..max_depth components drawn from ``names`` (shallow ones more often)."""
    depth = st.integers(1, max_depth).flatmap(lambda n: st.integers(1, n))  # biased toward 1 and 2
    return depth.flatmap(lambda n: st.lists(st.sampled_from(list(names)), min_size=n, max_size=n)).map("/".join)


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


@st.composite
def _file_meta(draw: st.DrawFn) -> dict[str, object]:
    return {"mode": draw(_MODES), "uid": draw(_IDS), "gid": draw(_IDS), "mtime_ns": draw(mtimes_ns())}


@st.composite
def layers(
    draw: st.DrawFn,
    names: Sequence[str] = NAMES,
    *,
    max_depth: int = 3,
    max_entries: int = 10,
) -> Layer:
    """A random frozen layer the builder accepts (some drawn calls are refused and skipped)."""
    layer = Layer()
    paths = layer_paths(names, max_depth)
    for _ in range(draw(st.integers(0, max_entries))):
        kind = draw(st.sampled_from(_KINDS))
        path = draw(paths)
        try:
            _add(draw, layer, kind, path, names)
        except LayerFormatError:
            continue  # duplicate, below a file or symlink, whiteout in an opaque dir...: a refused call
    return layer.freeze()


def _add(draw: st.DrawFn, layer: Layer, kind: str, path: str, names: Sequence[str]) -> None:
    if kind == "file":
        layer.add_file(path, draw(st.binary(max_size=64)), xattrs=draw(xattr_dicts()), **draw(_file_meta()))  # type: ignore[arg-type]
    elif kind == "dir":
        layer.add_dir(path, xattrs=draw(xattr_dicts()), opaque=draw(st.booleans()), **draw(_file_meta()))  # type: ignore[arg-type]
    elif kind == "symlink":
        layer.add_symlink(path, draw(symlink_targets(names)), uid=draw(_IDS), gid=draw(_IDS), mtime_ns=draw(mtimes_ns()))
    elif kind == "hardlink":
        files = [p for p, e in layer.items() if isinstance(e, RegularFile)]
        if files:
            layer.add_hardlink(path, draw(st.sampled_from(files)))
    else:
        layer.add_whiteout(path)


def layer_stacks(min_layers: int = 1, max_layers: int = 4, *, max_entries: int = 8) -> st.SearchStrategy[list[Layer]]:
    """Lists of frozen layers (bottom first) over :data:`NAMES`, so their paths overlap a lot."""
    return st.lists(layers(NAMES, max_entries=max_entries), min_size=min_layers, max_size=max_layers)
