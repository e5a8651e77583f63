"""layerlab's real Linux backend: the same interface as :mod:`sim`, done by the kernel."""

from __future__ import annotations

from realrt.engine import RealEngine, check_host
from realrt.journal import Journal
from realrt.layers.overlay import KernelUnionFS

__all__ = ["RealEngine", "KernelUnionFS", "Journal", "check_host"]
