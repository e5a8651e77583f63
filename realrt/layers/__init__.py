"""Layers on the real kernel (分层, layers): an overlayfs mount of the model's layers.

:class:`KernelUnionFS` is the kernel twin of :class:`sim.layers.unionfs.UnionFS` (mounted as
root, or by a helper in its own user and mount namespaces when rootless);
:func:`overlay_settings` and :func:`legacy_options` are the mount options it gives overlayfs.
Confined path calls inside the mount live in the private ``_rooted``.
"""

from __future__ import annotations

from realrt.layers.overlay import KernelUnionFS, legacy_options, overlay_settings

__all__ = ["KernelUnionFS", "overlay_settings", "legacy_options"]
