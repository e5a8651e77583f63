"""Events the union file system records, for notebooks to draw."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["EventKind", "Event"]


class EventKind(str, Enum):
    COPY_UP = "copy-up"            # an object (or a parent directory) copied from a lower layer
    WHITEOUT = "whiteout"          # a whiteout created in the upper layer
    OPAQUE = "opaque"              # a directory marked opaque
    REDIRECT = "redirect"          # a renamed directory's redirect set
    CREATE = "create"              # a new object in the upper layer
    REMOVE = "remove"              # an upper-only object removed outright
    RENAME = "rename"              # a name moved inside the upper layer


@dataclass(frozen=True)
class Event:
    """``layer`` is the index (bottom first) of the lower layer a copy-up read from,
    ``None`` for events that touch only the upper layer."""

    kind: EventKind
    path: str
    layer: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f" from layer {self.layer}" if self.layer is not None else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind.value}: /{self.path}{where}{extra}"
