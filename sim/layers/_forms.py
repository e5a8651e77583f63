"""The on-disk forms of a layer, as one fixed table that :class:`~sim.layers.layer.Layer` reads.

Each form is a module with a ``read`` (fill an empty changeset from a source)
and a ``write`` (put a changeset into a target).  The forms know only the
entries and the :class:`~sim.layers._changeset.Changeset` protocol, so the
table is filled here, above them and below Layer, once: nothing registers
itself at import time and nothing imports back up.
"""

from __future__ import annotations

from typing import IO, Final, NamedTuple, Protocol

from sim.layers import _dirform, _tarform
from sim.layers._changeset import Changeset
from sim.layers._tarform import Compression

__all__ = ["FORMS", "Compression", "DirectoryForm", "Forms", "TarForm"]


class TarForm(Protocol):
    """The OCI tar form (:mod:`sim.layers._tarform`)."""

    def read(self, fileobj: IO[bytes], layer: Changeset) -> None: ...

    def write(
        self, layer: Changeset, fileobj: IO[bytes], *, compression: Compression, source_date_epoch: int | None
    ) -> None: ...


class DirectoryForm(Protocol):
    """The overlay directory form (:mod:`sim.layers._dirform`)."""

    def read(self, root: str, layer: Changeset) -> None: ...

    def write(self, layer: Changeset, target: str, *, userxattr: bool, rootless: bool) -> None: ...


class Forms(NamedTuple):
    """Every form a layer has besides the in-memory one."""

    tar: TarForm
    directory: DirectoryForm


FORMS: Final = Forms(tar=_tarform, directory=_dirform)
