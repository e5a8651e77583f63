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
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal

from sim.images._analysis_reports import (
    HistoryStep,
    ImageAnalysis,
    ImageShare,
    LayerReport,
    SharedLayer,
    SharedReport,
    SortKey,
    TreeEntry,
    WastedPath,
    sort_wasted,
)
from sim.images._merged_stack import Hidden, Stack, Step, layer_index, merged_stack
from sim.layers import _paths
from sim.layers.changes import Change, ChangeKind
from sim.layers.layer import _NO_CLAMP, Directory, Entry, Layer, RegularFile, Symlink, Whiteout
from sim.layers.unionfs import MAXSYMLINKS

__all__ = [
    "layer_index",
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




# -- analyze ------------------------------------------------------------------------------------


def _entries(layer: Layer) -> int:
    return sum(1 for _, e in layer.items() if not (isinstance(e, Directory) and e.implied))


def analyze(layers: Sequence[Layer], *, history: Sequence[Any] | None = None, name: str = "") -> ImageAnalysis:
    """Analyse an image's layers (bottom first); see the module docstring.

    ``history`` is what ``Engine.history(ref)`` returns (newest first, with
    metadata-only steps), or the OCI config's ``history`` (oldest first:
    :class:`sim.images.oci.History` objects or their JSON dicts); each step that made a
    layer gives that layer its ``created_by``.
    """
    stack = Stack()
    steps: list[Step] = []
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
        wasted=tuple(sort_wasted(_wasted_paths(stack), "size")), files=stack.files,
        history=tuple(history_steps), name=name,
    )


def _wasted_paths(stack: Stack) -> list[WastedPath]:
    dead = {key for key, n in stack.names.items() if n == 0}
    by_path: dict[str, list[Hidden]] = {}
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
    stack, _ = merged_stack(layers, upto)
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
    index = layer_index(index, len(layers))
    _, steps = merged_stack(layers, index)
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
        li = layer_index(layer, len(layers))
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
    stack, _ = merged_stack(layers, upto)
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


def _resolve(stack: Stack, path: str) -> str:
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
            if hops > MAXSYMLINKS:
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
