"""Containers on the real kernel (容器, containers): a process in its own namespaces, limited by a cgroup.

:mod:`realrt.containers.runtime` runs a :class:`ContainerSpec` (:mod:`.spec`) over a prepared
root as a :class:`Process` (``start``/``run``, ``exec`` for ``docker exec``);
:mod:`realrt.containers.cgroups` gives it a :class:`Cgroup` with ``docker run``'s limits and
reads its :class:`Usage`.  The private modules hold the steps: ``_plan`` (what parent and child
share), ``_namespaces`` (the child up to ``execve``), ``_mounts`` (its root file system),
``_process`` (the parent's side), ``_exec`` and ``_caps``.
"""

from __future__ import annotations

from realrt.containers.cgroups import Cgroup, Usage
from realrt.containers.runtime import Process, exec, run, run_on, start, start_on
from realrt.containers.spec import BindMount, ContainerSpec

__all__ = ["ContainerSpec", "BindMount", "Process", "start", "run", "exec", "start_on", "run_on", "Cgroup", "Usage"]
