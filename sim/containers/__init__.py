"""容器 (containers): the engine core over two runtimes, resource limits, mounts and the model's shell.

:class:`EngineCore` is the one engine both backends subclass (images, builds, containers and their
writable layers, volumes); a backend supplies a union, a way to run a process and a volume.
:mod:`sim.containers.limits` parses ``docker run``'s resource flags, :mod:`sim.containers.mounts`
puts volumes and binds over the union, :mod:`sim.containers.shell` runs ``RUN`` in the model.
"""

from __future__ import annotations

from sim.containers.core import Container, EngineCore, ProcessSpec
from sim.containers.limits import Limits, parse_limits
from sim.containers.mounts import HostDirFS, MountedFS

__all__ = ["EngineCore", "Container", "ProcessSpec", "Limits", "parse_limits", "MountedFS", "HostDirFS"]
