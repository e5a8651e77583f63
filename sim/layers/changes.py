"""``docker diff``: what a container changed, read from its upper layer.

Like Docker's overlay differ this reads the upper layer (容器存储层, the
container layer) rather than comparing trees, so an ``open(O_RDWR)`` that
wrote nothing still shows as ``C``: the copy-up happened.  Every ancestor of
a change that existed below is reported ``C`` as well, as Docker does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sim.layers import _paths
from sim.layers.layer import Layer, Whiteout

__all__ = ["ChangeKind", "Change", "upper_changes"]


class ChangeKind(str, Enum):
    ADDED = "A"
    CHANGED = "C"
    DELETED = "D"


@dataclass(frozen=True, order=True)
class Change:
    """One line of ``docker diff``: ``path`` is absolute (``/etc/passwd``)."""

    path: str
    kind: ChangeKind

    def __str__(self) -> str:
        return f"{self.kind.value} {self.path}"


def upper_changes(upper: Layer, existed_below: Callable[[str], bool]) -> list[Change]:
    """Changes recorded in ``upper``; ``existed_below(path)`` says whether the lower
    layers had ``path`` (a layer path, no leading slash).  Sorted by path.

    An opaque directory hides everything below it; its lower children are not
    listed one by one (the upper layer does not name them), only the directory.
    """
    out: dict[str, ChangeKind] = {}
    for path, entry in upper.items():
        if isinstance(entry, Whiteout):
            kind = ChangeKind.DELETED
        elif existed_below(path):
            kind = ChangeKind.CHANGED
        else:
            kind = ChangeKind.ADDED
        out[path] = kind
        for parent in _paths.ancestors(path):
            if parent not in out and existed_below(parent):
                out[parent] = ChangeKind.CHANGED
    return sorted(Change("/" + p, k) for p, k in out.items())
