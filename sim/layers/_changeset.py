"""The face of a layer that its on-disk forms see.

The forms (:mod:`sim.layers._tarform`, :mod:`sim.layers._dirform`) read a
layer's entries to write it, and fill an empty one when they read it; they
need no more of :class:`~sim.layers.layer.Layer` than this protocol, so they
never import it and Layer can reach them through :mod:`sim.layers._forms`.
"""

from __future__ import annotations

from typing import Protocol

from sim.layers._entries import Entry

__all__ = ["Changeset"]


class Changeset(Protocol):
    """A layer as its forms use it; :class:`~sim.layers.layer.Layer` is the one implementation."""

    def items(self) -> list[tuple[str, Entry]]:
        """Every ``(path, entry)``, parents before children."""
        ...

    def get(self, path: str) -> Entry | None: ...

    def __contains__(self, path: object) -> bool: ...

    def has_redirects(self) -> bool: ...

    def _place(self, path: str, entry: Entry) -> None:
        """Insert with every check a builder method makes (a tar is untrusted input)."""
        ...

    def _set(self, path: str, entry: Entry) -> None:
        """Insert without format checks (a directory the kernel wrote is taken as it is)."""
        ...
