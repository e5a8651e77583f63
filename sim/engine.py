"""The model's engine: everything in memory, nothing needs privileges."""

from __future__ import annotations

from collections.abc import Sequence

from .interface import Engine
from .layer import Layer
from .unionfs import UnionFS

__all__ = ["SimEngine"]


class SimEngine(Engine):
    name = "sim"

    def union(
        self,
        layers: Sequence[Layer],
        upper: Layer | None = None,
        *,
        redirect_dir: bool = False,
        index: bool = False,
        umask: int = 0o022,
    ) -> UnionFS:
        return UnionFS(layers, upper, redirect_dir=redirect_dir, index=index, umask=umask)

    def __repr__(self) -> str:
        return "<SimEngine>"
