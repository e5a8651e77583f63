"""Image analysis (镜像分析): what each layer of 分层存储 adds, and what it wastes.

Everything here is a pure function over a list of :class:`~sim.layers.layer.Layer`
objects, bottom first, as ``EngineCore._layers(record)`` returns them, so it
works the same for the model and for the real backend::

    eng = sim.connect("sim")
    record = eng._image("w:1")
    report = analyze(eng._layers(record), history=eng.history("w:1"), name="w:1")
    report.efficiency, report.wasted_bytes, report.wasted[0].path

The layers are stacked with the overlay lookup rules of
:mod:`sim.layers._lowerview` (a whiteout removes a name and everything below it, an
opaque directory hides the lower contents of that directory, a non-directory
hides a lower directory and all its contents, plain directories merge).

**Wasted bytes** are the bytes of regular files stored in some layer that the
final merged view (the image a container starts from) cannot show: an earlier
copy of a file a later layer overwrote (N versions waste N-1 copies), a file
a later whiteout deleted, a file below an opaque directory.  A hard-linked
file is one inode: its bytes count once, and only when every one of its names
is hidden.  ``efficiency = (total - wasted) / total`` where ``total`` is the
sum of the layers' file bytes (``Layer.size``).  ``docs/analysis.md``
explains the numbers and how they differ from dive's.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal

from sim.errors import LayerFormatError
from sim.layers import _paths
from sim.layers.changes import Change, ChangeKind
from sim.layers.layer import Directory, Entry, Layer, RegularFile, Symlink, Whiteout

__all__ = [
    "LayerReport",
    "WastedPath",
    "HistoryStep",
    "ImageAnalysis",
    "TreeEntry",
    "SharedLayer",
    "ImageShare",
    "SharedReport",
    "analyze",
    "tree",
    "layer_changes",
    "file_contents",
    "export_layer",
    "shared_layers",
]

SortKey = Literal["size", "path"]

#: Later than any mtime an int64 of nanoseconds holds: writing with it clamps nothing.
_NO_CLAMP = 1 << 40
#: Symlinks followed in one lookup before ELOOP, as Linux's MAXSYMLINKS.
_MAX_SYMLINKS = 40


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerReport:
    """One layer of an image, compared with the merged view of the layers below it.

    ``added``, ``changed`` and ``deleted`` compare the merged tree before and
    after the layer: a path that appears is *added*; a path that stays but that
    the layer names is *changed* (even with equal content, as ``docker diff``
    reports a copy-up; parent directories a layer only implies are not);
    a path that disappears is *deleted* (a whiteout of a directory deletes the
    directory and everything in it).  ``wasted_bytes`` are this layer's file
    bytes that the final image no longer shows (where the waste is stored);
    ``hidden_bytes`` are lower layers' file bytes this layer hides (the layer
    that causes the waste).  Summed over the layers both give the image's
    wasted bytes.
    """

    index: int
    diff_id: str
    size: int  # bytes of file content, hard links once (Layer.size)
    entries: int  # entries the layer's tar holds (implied parents and opaque markers not counted)
    files: int  # regular-file names in this layer
    cumulative_files: int  # files of this layer and of every layer below it
    visible_files: int  # regular-file names in the merged view up to this layer
    added: int
    changed: int
    deleted: int
    wasted_bytes: int
    hidden_bytes: int
    created_by: str = ""


@dataclass(frozen=True)
class WastedPath:
    """A path whose earlier copies cost bytes that the image cannot show (dive's "inefficient file").

    ``copies`` counts the hidden versions (N-1 for a file written N times and
    kept; N when a whiteout or opaque directory finally removes it);
    ``layers`` are where those copies are stored, ``hidden_by`` the layers that
    hid them; ``removed`` says the path is gone from the final image.  A
    hard-linked file's bytes are charged once, to the name whose hiding left
    the file with no visible name; its other names show ``bytes`` 0.
    """

    path: str
    copies: int
    bytes: int
    layers: tuple[int, ...]
    hidden_by: tuple[int, ...]
    removed: bool


@dataclass(frozen=True)
class HistoryStep:
    """One build step, oldest first: ``layer`` is the index of the layer it made, None for metadata steps."""

    created_by: str
    layer: int | None
    comment: str = ""


@dataclass(frozen=True)
class ImageAnalysis:
    """The analysis of one image; see the module docstring for the definitions."""

    layers: tuple[LayerReport, ...]
    total_bytes: int
    wasted_bytes: int
    efficiency: float
    wasted: tuple[WastedPath, ...]  # largest first, then by path
    files: int  # regular-file names in the final image
    history: tuple[HistoryStep, ...] = ()
    name: str = ""

    @property
    def visible_bytes(self) -> int:
        """Bytes of file content the final image shows (each hard-linked file once)."""
        return self.total_bytes - self.wasted_bytes

    @property
    def wasted_copies(self) -> int:
        return sum(w.copies for w in self.wasted)

    def sorted_wasted(self, by: SortKey = "size") -> list[WastedPath]:
        """The wasted paths by bytes (largest first) or by path."""
        return _sort_wasted(self.wasted, by)

    def sorted_layers(self, by: Literal["size", "index", "wasted"] = "size") -> list[LayerReport]:
        """The layers largest first (``size``), by wasted bytes, or bottom first (``index``)."""
        if by == "index":
            return list(self.layers)
        key = (lambda r: (-r.size, r.index)) if by == "size" else (lambda r: (-r.wasted_bytes, r.index))
        if by not in ("size", "wasted"):
            raise ValueError(f"sort layers by 'size', 'wasted' or 'index', not {by!r}")
        return sorted(self.layers, key=key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageAnalysis:
        return cls(
            layers=tuple(LayerReport(**d) for d in data["layers"]),
            total_bytes=data["total_bytes"],
            wasted_bytes=data["wasted_bytes"],
            efficiency=data["efficiency"],
            wasted=tuple(
                WastedPath(**{**d, "layers": tuple(d["layers"]), "hidden_by": tuple(d["hidden_by"])}) for d in data["wasted"]
            ),
            files=data["files"],
            history=tuple(HistoryStep(**d) for d in data.get("history", ())),
            name=data.get("name", ""),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ImageAnalysis:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class TreeEntry:
    """One path of a merged view: ``layer`` is the layer that supplies it (its origin).

    ``size`` is the file's bytes; for a directory, the bytes of the files below
    it (a hard-linked file once).  ``path`` is absolute.
    """

    path: str
    kind: str  # "file", "dir" or "symlink"
    size: int
    layer: int
    mode: int
    uid: int
    gid: int
    target: str | None = None  # a symlink's target

    @property
    def depth(self) -> int:
        return self.path.count("/") - 1


@dataclass(frozen=True)
class SharedLayer:
    """A layer (by DiffID) and the images that use it."""

    diff_id: str
    size: int
    images: tuple[str, ...]

    @property
    def shared(self) -> bool:
        return len(self.images) > 1


@dataclass(frozen=True)
class ImageShare:
    """One image's layers split into shared (used by another image too) and unique ones."""

    name: str
    layers: int
    total_bytes: int
    shared_bytes: int
    unique_bytes: int
    shared_layers: int
    unique_layers: int


@dataclass(frozen=True)
class SharedReport:
    """Which layers several images share, and what sharing saves.

    ``stored_bytes`` is what the store keeps (each distinct layer once);
    ``naive_bytes`` what the images would take without sharing (the sum of
    their sizes); ``common_base`` the DiffIDs, bottom first, that every image
    has at the bottom of its stack in the same order (equal ChainIDs).
    """

    images: tuple[ImageShare, ...]
    layers: tuple[SharedLayer, ...]
    common_base: tuple[str, ...]
    stored_bytes: int
    naive_bytes: int

    @property
    def saved_bytes(self) -> int:
        return self.naive_bytes - self.stored_bytes

    def image(self, name: str) -> ImageShare:
        for share in self.images:
            if share.name == name:
                return share
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SharedReport:
        return cls(
            images=tuple(ImageShare(**d) for d in data["images"]),
            layers=tuple(SharedLayer(**{**d, "images": tuple(d["images"])}) for d in data["layers"]),
            common_base=tuple(data["common_base"]),
            stored_bytes=data["stored_bytes"],
            naive_bytes=data["naive_bytes"],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SharedReport:
        return cls.from_dict(json.loads(text))


# -- the stack: the merged view, applied layer by layer ----------------------------------------


@dataclass
class _Hidden:
    """A regular-file name that a later layer hid."""

    path: str
    layer: int  # where the hidden copy is stored
    inode: tuple[int, int]
    by: int  # the layer that hid it
    charged: int = 0  # bytes charged to this name (its inode's, when this name was its last)


@dataclass
class _Step:
    """What applying one layer did."""

    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)


class _Stack:
    """The merged view of the layers applied so far: path -> (entry, origin layer)."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[Entry, int]] = {}
        self.kids: dict[str, set[str]] = {}
        self.names: dict[tuple[int, int], int] = {}  # inode (layer, id) -> visible names
        self.sizes: dict[tuple[int, int], int] = {}
        self.files = 0  # regular-file names visible
        self.hidden: list[_Hidden] = []
        self.layer_wasted: dict[int, int] = {}
        self.layer_hides: dict[int, int] = {}

    # -- primitive changes

    def _put(self, path: str, entry: Entry, li: int) -> None:
        if path not in self.nodes:
            self.kids.setdefault(_paths.parent_of(path), set()).add(_paths.basename(path))
        self.nodes[path] = (entry, li)
        if isinstance(entry, RegularFile):
            key = (li, id(entry))
            self.names[key] = self.names.get(key, 0) + 1
            self.sizes[key] = entry.size
            self.files += 1

    def _drop(self, path: str, by: int, step: _Step) -> None:
        """Remove ``path`` and everything below it from the view."""
        order = [path]
        i = 0
        while i < len(order):
            p = order[i]
            order.extend(_paths.join(p, n) for n in self.kids.get(p, ()))
            i += 1
        for p in reversed(order):
            entry, li = self.nodes.pop(p)
            self.kids.pop(p, None)
            parent = _paths.parent_of(p)
            siblings = self.kids.get(parent)
            if siblings is not None:
                siblings.discard(_paths.basename(p))
                if not siblings:
                    del self.kids[parent]
            step.deleted.add(p)
            if isinstance(entry, RegularFile):
                self._hide(p, entry, li, by)

    def _clear_children(self, path: str, by: int, step: _Step) -> None:
        for name in sorted(self.kids.get(path, ())):
            self._drop(_paths.join(path, name), by, step)

    def _hide(self, path: str, entry: RegularFile, li: int, by: int) -> None:
        key = (li, id(entry))
        self.files -= 1
        self.names[key] -= 1
        hidden = _Hidden(path, li, key, by)
        self.hidden.append(hidden)
        if self.names[key] == 0:  # the last visible name: nothing can show these bytes again
            size = self.sizes[key]
            hidden.charged = size
            self.layer_wasted[li] = self.layer_wasted.get(li, 0) + size
            self.layer_hides[by] = self.layer_hides.get(by, 0) + size

    # -- one layer

    def apply(self, layer: Layer, li: int) -> _Step:
        if layer.has_redirects():
            raise LayerFormatError(f"layer {li} holds overlay redirects; an image layer (OCI tar) cannot")
        step = _Step()
        items = layer.items()
        below = {p for p, _ in items if p in self.nodes}  # looked up before the layer changes anything
        for path, entry in items:
            parent = _paths.parent_of(path)
            if parent and parent not in self.nodes:  # a layer always holds its parents; stay safe if not
                self._put(parent, Directory(implied=True), li)
            old = self.nodes.get(path)
            if isinstance(entry, Whiteout):
                if old is not None:
                    self._drop(path, li, step)
                continue
            if old is not None:
                old_entry = old[0]
                if isinstance(entry, Directory) and isinstance(old_entry, Directory):
                    if entry.opaque:
                        self._clear_children(path, li, step)
                    if not entry.implied or entry.opaque:  # a parent the layer only implies changes nothing
                        step.changed.add(path)
                elif isinstance(old_entry, Directory) or isinstance(entry, Directory):
                    self._drop(path, li, step)  # a directory and a non-directory never merge
                    step.changed.add(path)
                else:
                    self._unname(path, old_entry, old[1], li)
                    step.changed.add(path)
                    self.nodes.pop(path)
            elif path in below:
                step.changed.add(path)  # dropped earlier in this layer (below an opaque dir), provided again
            else:
                step.added.add(path)
            self._put(path, entry, li)
        step.deleted -= step.changed  # what this layer provides again is changed, not deleted
        return step

    def _unname(self, path: str, entry: Entry, li: int, by: int) -> None:
        """A non-directory replaced in place by another non-directory."""
        if isinstance(entry, RegularFile):
            self._hide(path, entry, li, by)


def _stack(layers: Sequence[Layer], upto: int | None = None) -> tuple[_Stack, list[_Step]]:
    count = len(layers) if upto is None else _index(upto, len(layers)) + 1
    stack = _Stack()
    steps = [stack.apply(layers[i], i) for i in range(count)]
    return stack, steps


def _index(n: int, count: int) -> int:
    """A layer index, negative counting from the top, checked."""
    if not -count <= n < count:
        raise IndexError(f"no layer {n}: the image has {count} layer{'s' if count != 1 else ''} (0..{count - 1})")
    return n % count


def _entries(layer: Layer) -> int:
    return sum(1 for _, e in layer.items() if not (isinstance(e, Directory) and e.implied))


# -- analyze ------------------------------------------------------------------------------------


def analyze(layers: Sequence[Layer], *, history: Sequence[Any] | None = None, name: str = "") -> ImageAnalysis:
    """Analyse an image's layers (bottom first); see the module docstring.

    ``history`` is what ``Engine.history(ref)`` returns (newest first, with
    metadata-only steps), or the OCI config's ``history`` (oldest first:
    :class:`sim.images.oci.History` objects or their JSON dicts); each step that made a
    layer gives that layer its ``created_by``.
    """
    stack = _Stack()
    steps: list[_Step] = []
    visible: list[int] = []
    for i, layer in enumerate(layers):
        steps.append(stack.apply(layer, i))
        visible.append(stack.files)
    history_steps = _history_steps(history, len(layers)) if history is not None else ()
    created_by = {h.layer: h.created_by for h in history_steps if h.layer is not None}
    reports = []
    cumulative = 0
    for i, (layer, step) in enumerate(zip(layers, steps)):
        files = sum(1 for _, e in layer.items() if isinstance(e, RegularFile))
        cumulative += files
        reports.append(LayerReport(
            index=i, diff_id=str(layer.diff_id), size=layer.size, entries=_entries(layer), files=files,
            cumulative_files=cumulative, visible_files=visible[i], added=len(step.added), changed=len(step.changed),
            deleted=len(step.deleted), wasted_bytes=stack.layer_wasted.get(i, 0), hidden_bytes=stack.layer_hides.get(i, 0),
            created_by=created_by.get(i, ""),
        ))
    total = sum(r.size for r in reports)
    wasted = sum(r.wasted_bytes for r in reports)
    return ImageAnalysis(
        layers=tuple(reports), total_bytes=total, wasted_bytes=wasted,
        efficiency=(total - wasted) / total if total else 1.0,
        wasted=tuple(_sort_wasted(_wasted_paths(stack), "size")), files=stack.files,
        history=tuple(history_steps), name=name,
    )


def _wasted_paths(stack: _Stack) -> list[WastedPath]:
    dead = {key for key, n in stack.names.items() if n == 0}
    by_path: dict[str, list[_Hidden]] = {}
    for h in stack.hidden:
        if h.inode in dead:  # a name hidden while another name kept its file visible wastes nothing
            by_path.setdefault(h.path, []).append(h)
    out = []
    for path, hs in by_path.items():
        out.append(WastedPath(
            path="/" + path, copies=len(hs), bytes=sum(h.charged for h in hs),
            layers=tuple(sorted({h.layer for h in hs})), hidden_by=tuple(sorted({h.by for h in hs})),
            removed=path not in stack.nodes,
        ))
    return out


def _sort_wasted(items: Iterable[WastedPath], by: SortKey) -> list[WastedPath]:
    if by == "size":
        return sorted(items, key=lambda w: (-w.bytes, -w.copies, _paths.sort_key(w.path[1:])))
    if by == "path":
        return sorted(items, key=lambda w: _paths.sort_key(w.path[1:]))
    raise ValueError(f"sort by 'size' or 'path', not {by!r}")


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _history_steps(history: Sequence[Any], layer_count: int) -> tuple[HistoryStep, ...]:
    items = list(history)
    # Engine.history gives HistoryEntry objects newest first (``docker history``); the OCI
    # config (History objects or JSON dicts) lists the steps oldest first.
    if items and not isinstance(items[0], Mapping) and hasattr(items[0], "layer"):
        items.reverse()
    out = []
    index = 0
    for item in items:
        layer = None
        if not _field(item, "empty_layer", False) and index < layer_count:
            layer, index = index, index + 1
        out.append(HistoryStep(created_by=_field(item, "created_by") or "", layer=layer, comment=_field(item, "comment") or ""))
    return tuple(out)


# -- the merged view: tree, changes and contents ---------------------------------------------------


def tree(layers: Sequence[Layer], upto: int | None = None, *, sort: SortKey = "path") -> list[TreeEntry]:
    """The merged view at layer ``upto`` (default: the top; negative counts from the top),
    parents first, each path with the layer it comes from (dive's file tree).

    ``sort="size"`` orders the entries of each directory largest first (a
    directory's size is the bytes of the files below it), ``"path"`` by name.
    """
    if sort not in ("size", "path"):
        raise ValueError(f"sort by 'size' or 'path', not {sort!r}")
    if not layers:
        return []
    stack, _ = _stack(layers, upto)
    sizes: dict[str, int] = {}
    seen: dict[str, set[tuple[int, int]]] = {}
    for path, (entry, li) in stack.nodes.items():
        if isinstance(entry, RegularFile):
            key = (li, id(entry))
            sizes[path] = entry.size
            for parent in _paths.ancestors(path):
                if key not in seen.setdefault(parent, set()):
                    seen[parent].add(key)
                    sizes[parent] = sizes.get(parent, 0) + entry.size

    out: list[TreeEntry] = []

    def visit(path: str) -> None:
        names = sorted(stack.kids.get(path, ()))
        if sort == "size":
            names.sort(key=lambda n: -sizes.get(_paths.join(path, n), 0))
        for name in names:
            child = _paths.join(path, name)
            entry, li = stack.nodes[child]
            assert not isinstance(entry, Whiteout)
            kind = "dir" if isinstance(entry, Directory) else "symlink" if isinstance(entry, Symlink) else "file"
            out.append(TreeEntry(
                path="/" + child, kind=kind, size=sizes.get(child, 0), layer=li, mode=entry.mode,  # type: ignore[attr-defined]
                uid=entry.uid, gid=entry.gid, target=entry.target if isinstance(entry, Symlink) else None,  # type: ignore[attr-defined]
            ))
            if kind == "dir":
                visit(child)

    visit("")
    return out


def layer_changes(layers: Sequence[Layer], index: int) -> list[Change]:
    """What layer ``index`` did to the merged view below it, as ``docker diff`` lines
    (A added, C changed, D deleted; every deleted path listed, see :class:`LayerReport`)."""
    index = _index(index, len(layers))
    _, steps = _stack(layers, index)
    step = steps[index]
    kinds = [(step.added, ChangeKind.ADDED), (step.changed, ChangeKind.CHANGED), (step.deleted, ChangeKind.DELETED)]
    return sorted((Change("/" + p, kind) for paths, kind in kinds for p in paths), key=lambda c: _paths.sort_key(c.path[1:]))


def file_contents(layers: Sequence[Layer], path: str, layer: int | None = None, *, upto: int | None = None) -> bytes:
    """The bytes a file holds: in the merged view at layer ``upto`` (default the top),
    following symlinks inside the image root; or, with ``layer``, in that one layer alone
    (no merging, no symlinks followed: what that layer's tar stores at ``path``).

    Raises ``FileNotFoundError`` (missing, or deleted by a whiteout),
    ``IsADirectoryError``, ``NotADirectoryError`` or ``OSError`` (ELOOP; or
    EINVAL for a symlink looked up in one layer).
    """
    if layer is not None:
        if upto is not None:
            raise ValueError("give layer (one layer alone) or upto (the merged view), not both")
        li = _index(layer, len(layers))
        key = _paths.clean_layer_path(path.lstrip("/"), what="path")
        entry = layers[li].get(key)
        where = f"layer {li}"
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, f"{where} holds no such path", "/" + key)
        if isinstance(entry, Whiteout):
            raise FileNotFoundError(errno.ENOENT, f"{where} deletes this path (whiteout)", "/" + key)
        return _read(entry, "/" + key, where)
    if not layers:
        raise FileNotFoundError(errno.ENOENT, "the image has no layers", path)
    stack, _ = _stack(layers, upto)
    resolved = _resolve(stack, path)
    if resolved == "":
        raise IsADirectoryError(errno.EISDIR, "the image root is a directory", path)
    return _read(stack.nodes[resolved][0], path, "the merged view")


def _read(entry: Entry, path: str, where: str) -> bytes:
    if isinstance(entry, RegularFile):
        return entry.data
    if isinstance(entry, Directory):
        raise IsADirectoryError(errno.EISDIR, f"a directory in {where}", path)
    if isinstance(entry, Symlink):
        raise OSError(errno.EINVAL, f"a symbolic link to {entry.target!r} in {where}; read the merged view to follow it", path)
    raise FileNotFoundError(errno.ENOENT, f"not a file in {where}", path)


def _resolve(stack: _Stack, path: str) -> str:
    """The layer path ``path`` names in the merged view, every symlink followed inside the root."""
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    current: list[str] = []
    hops = 0
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if current:
                current.pop()
            continue
        candidate = "/".join([*current, name])
        node = stack.nodes.get(candidate)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory in the merged view", path)
        entry = node[0]
        if isinstance(entry, Symlink):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            if entry.target.startswith("/"):
                current = []
            todo.extend(reversed(entry.target.split("/")))
            continue
        if todo and not isinstance(entry, Directory):
            raise NotADirectoryError(errno.ENOTDIR, f"/{candidate} is not a directory", path)
        current.append(name)
    return "/".join(current)


# -- export ---------------------------------------------------------------------------------------


def export_layer(
    layer: Layer, fileobj: IO[bytes], *, compression: Literal["gzip"] | None = None, source_date_epoch: int | None = None
) -> str:
    """Write ``layer`` as an OCI layer tar (gzip if asked); returns the sha256 of the uncompressed tar.

    Without ``source_date_epoch`` the mtimes are written as the layer holds
    them (no ``SOURCE_DATE_EPOCH`` clamp), so a layer read from an image store
    exports to the very bytes of its DiffID.
    """
    data = layer.tar_bytes(source_date_epoch=source_date_epoch if source_date_epoch is not None else _NO_CLAMP)
    if compression == "gzip":
        with gzip.GzipFile(fileobj=fileobj, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
    elif compression is None:
        fileobj.write(data)
    else:
        raise ValueError(f"unknown compression {compression!r} (use None or 'gzip')")
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- several images -------------------------------------------------------------------------------


def shared_layers(images: Mapping[str, Sequence[Layer]]) -> SharedReport:
    """Which layers (by DiffID) several images share, and the bytes shared versus unique per image.

    ``images`` maps a name (a tag) to that image's layers, bottom first.  A
    layer is *shared* when two or more of the named images use it; sizes are
    file bytes (``Layer.size``), as in :func:`analyze`.
    """
    diff_ids = {name: [str(layer.diff_id) for layer in layers] for name, layers in images.items()}
    sizes: dict[str, int] = {}
    users: dict[str, list[str]] = {}
    for name, layers in images.items():
        for diff_id, layer in zip(diff_ids[name], layers):
            sizes[diff_id] = layer.size
            if name not in users.setdefault(diff_id, []):
                users[diff_id].append(name)
    shares = []
    for name in images:
        ids = diff_ids[name]
        shared = [d for d in ids if len(users[d]) > 1]
        unique = [d for d in ids if len(users[d]) == 1]
        shares.append(ImageShare(
            name=name, layers=len(ids), total_bytes=sum(sizes[d] for d in ids),
            shared_bytes=sum(sizes[d] for d in shared), unique_bytes=sum(sizes[d] for d in unique),
            shared_layers=len(shared), unique_layers=len(unique),
        ))
    chains = list(diff_ids.values())
    base: list[str] = []
    if chains:
        for column in zip(*chains):
            if len(set(column)) != 1:
                break
            base.append(column[0])
    return SharedReport(
        images=tuple(shares),
        layers=tuple(SharedLayer(d, sizes[d], tuple(users[d])) for d in users),
        common_base=tuple(base) if len(chains) > 1 else (),
        stored_bytes=sum(sizes.values()),
        naive_bytes=sum(s.total_bytes for s in shares),
    )
