"""The merged view of the read-only layers, computed once per union.

Lower layers never change, so the kernel's per-component lookup over N
layers (whiteout stops, non-directory stops, opaque stops after itself,
plain directories merge) is done here once for every path.  A union lookup
is then a dictionary hit whatever the depth of the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sim.errors import LayerFormatError
from sim.layers import _paths
from sim.layers.layer import Directory, Entry, Layer, Whiteout


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
        self.nodes: dict[str, LowerNode] = {"": LowerNode(Directory(), layer=-1, merged=tuple(range(len(layers) - 1, -1, -1)))}
        queue = [""]
        while queue:
            path = queue.pop()
            node = self.nodes[path]
            kids, found = self._merge_children(path, node.merged)
            for name, (top, merged) in found.items():
                child_path = _paths.join(path, name)
                self.nodes[child_path] = top
                if merged:
                    top.merged = tuple(merged)
                    # The kernel does not count the subdirectories of merged directories.
                    top.nlink = 1 if len(merged) > 1 else self.layers[merged[0]].nlink(child_path)
                    queue.append(child_path)
            node.children = tuple(sorted(found))
            node.listed = tuple(sorted(kids)) if len(node.merged) == 1 and path else node.children

    def _merge_children(
        self, path: str, candidates: tuple[int, ...]
    ) -> tuple[set[str], dict[str, tuple[LowerNode, list[int]]]]:
        """Look up every name of a merged directory in one pass over its layers, top first.

        A name is settled by its first whiteout, non-directory or opaque
        directory, so the cost is the number of entries, not names x layers.
        """
        kids: set[str] = set()
        found: dict[str, tuple[LowerNode, list[int]]] = {}
        settled: set[str] = set()
        for li in candidates:
            layer = self.layers[li]
            for name in layer._kids.get(path, ()):
                kids.add(name)
                if name in settled:
                    continue
                entry = layer._entries[_paths.join(path, name)]
                seen = found.get(name)
                if isinstance(entry, Whiteout):
                    settled.add(name)  # hides the name, or ends the merge of a directory above
                elif isinstance(entry, Directory):
                    if seen is None:
                        seen = found[name] = (LowerNode(entry, li), [])
                    seen[1].append(li)
                    if entry.opaque:
                        settled.add(name)
                else:
                    if seen is None:
                        found[name] = (LowerNode(entry, li, nlink=layer._names.get(id(entry), 1)), [])
                    settled.add(name)  # a non-directory ends the lookup, or the merge below a directory
        return kids, found
