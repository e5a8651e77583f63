"""The merged view of the read-only layers, computed once per union.

Lower layers never change, so the kernel's per-component lookup over N
layers (whiteout stops, non-directory stops, opaque stops after itself,
plain directories merge) is done here once for every path.  A union lookup
is then a dictionary hit whatever the depth of the stack.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from . import _paths
from .errors import LayerFormatError
from .layer import Directory, Entry, Layer, Whiteout


@dataclass(slots=True)
class LowerNode:
    """The object a lookup finds at one path of the lower stack.

    ``layer`` is the index (bottom first) of the layer that supplies
    ``entry`` (for a directory: its metadata); ``merged`` lists, top first,
    every layer whose directory joins the merge; ``children`` are the names
    that exist below it; ``listed`` what readdir shows, which differs for a
    directory only one layer supplies: the kernel reads that directory as is,
    so its whiteouts appear as names that cannot be looked up; ``nlink`` is
    what the kernel reports for it.
    """

    entry: Entry
    layer: int
    merged: tuple[int, ...] = ()
    children: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    nlink: int = 1


class LowerView:
    def __init__(self, layers: Sequence[Layer]) -> None:
        for i, layer in enumerate(layers):
            if not layer.frozen:
                raise LayerFormatError(f"lower layer {i} is not frozen; call freeze() first (lower layers are read-only)")
            if layer.has_redirects():
                raise LayerFormatError(f"lower layer {i} holds overlay redirects; the model follows redirects only in the upper layer")
        self.layers = tuple(layers)
        names: list[Counter[int]] = []
        for layer in self.layers:
            names.append(Counter(layer._names))
        top_first = tuple(range(len(self.layers) - 1, -1, -1))
        self.nodes: dict[str, LowerNode] = {}
        root = LowerNode(Directory(), layer=-1, merged=top_first)
        self.nodes[""] = root
        queue = [""]
        while queue:
            path = queue.pop()
            node = self.nodes[path]
            kids: set[str] = set()
            for li in node.merged:
                kids.update(self.layers[li]._kids.get(path, ()))
            visible = []
            for name in kids:
                child_path = _paths.join(path, name)
                found = self._merge_name(child_path, node.merged, names)
                if found is not None:
                    visible.append(name)
                    self.nodes[child_path] = found
                    if found.merged:
                        queue.append(child_path)
            node.children = tuple(sorted(visible))
            node.listed = tuple(sorted(kids)) if len(node.merged) == 1 and path else node.children

    def _merge_name(self, path: str, candidates: tuple[int, ...], names: list[Counter[int]]) -> LowerNode | None:
        top: LowerNode | None = None
        merged: list[int] = []
        for li in candidates:
            entry = self.layers[li].get(path)
            if entry is None:
                continue
            if isinstance(entry, Whiteout):
                break
            if isinstance(entry, Directory):
                if top is None:
                    top = LowerNode(entry, li)
                merged.append(li)
                if entry.opaque:
                    break
                continue
            if top is None:  # a non-directory is found and ends the lookup
                top = LowerNode(entry, li, nlink=names[li][id(entry)] or 1)
            break  # a non-directory below a directory is ignored and ends the merge
        if top is not None and merged:
            top.merged = tuple(merged)
            if len(merged) > 1:
                top.nlink = 1  # the kernel does not count subdirectories of merged directories
            else:
                layer = self.layers[merged[0]]
                top.nlink = layer.nlink(path)
        return top
