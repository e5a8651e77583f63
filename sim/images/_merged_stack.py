"""The merged view of an image's layers, applied bottom first with the overlay lookup rules,
keeping count of every regular-file name a later layer hides (what image analysis reports)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sim.errors import LayerFormatError
from sim.layers import _paths
from sim.layers.layer import Directory, Entry, Layer, RegularFile, Whiteout


@dataclass
class Hidden:
    """A regular-file name that a later layer hid."""

    path: str
    layer: int  # where the hidden copy is stored
    inode: tuple[int, int]
    by: int  # the layer that hid it
    charged: int = 0  # bytes charged to this name (its inode's, when this name was its last)


@dataclass
class Step:
    """What applying one layer did."""

    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)


class Stack:
    """The merged view of the layers applied so far: path -> (entry, origin layer)."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[Entry, int]] = {}
        self.kids: dict[str, set[str]] = {}
        self.names: dict[tuple[int, int], int] = {}  # inode (layer, id) -> visible names
        self.sizes: dict[tuple[int, int], int] = {}
        self.files = 0  # regular-file names visible
        self.hidden: list[Hidden] = []
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

    def _drop(self, path: str, by: int, step: Step) -> None:
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

    def _clear_children(self, path: str, by: int, step: Step) -> None:
        for name in sorted(self.kids.get(path, ())):
            self._drop(_paths.join(path, name), by, step)

    def _hide(self, path: str, entry: RegularFile, li: int, by: int) -> None:
        key = (li, id(entry))
        self.files -= 1
        self.names[key] -= 1
        hidden = Hidden(path, li, key, by)
        self.hidden.append(hidden)
        if self.names[key] == 0:  # the last visible name: nothing can show these bytes again
            size = self.sizes[key]
            hidden.charged = size
            self.layer_wasted[li] = self.layer_wasted.get(li, 0) + size
            self.layer_hides[by] = self.layer_hides.get(by, 0) + size

    # -- one layer

    def apply(self, layer: Layer, li: int) -> Step:
        if layer.has_redirects():
            raise LayerFormatError(f"layer {li} holds overlay redirects; an image layer (OCI tar) cannot")
        step = Step()
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


def merged_stack(layers: Sequence[Layer], upto: int | None = None) -> tuple[Stack, list[Step]]:
    count = len(layers) if upto is None else layer_index(upto, len(layers)) + 1
    stack = Stack()
    steps = [stack.apply(layers[i], i) for i in range(count)]
    return stack, steps


def layer_index(n: int, count: int) -> int:
    """A layer index, negative counting from the top, checked."""
    if not -count <= n < count:
        raise IndexError(f"no layer {n}: the image has {count} layer{'s' if count != 1 else ''} (0..{count - 1})")
    return n % count
