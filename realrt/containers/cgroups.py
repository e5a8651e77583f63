"""控制组 (cgroups): a container's 资源限制 (resource limits) applied by the kernel.

One cgroup per container, ``layerlab/<name>``: under the mount point of each
controller on cgroup v1 (``/sys/fs/cgroup/memory/layerlab/<name>``,
``/sys/fs/cgroup/cpu/layerlab/<name>`` ...), or under the unified hierarchy
on cgroup v2 (its root as root; the delegated subtree this process lives in
when rootless).  The files written are :func:`sim.containers.limits.cgroup_v1_files` or
:func:`sim.containers.limits.cgroup_v2_files`, in runc's order.

The order of events, so a killed run leaves nothing a sweep cannot remove:

1. :func:`plan` (before any fork): which hierarchy, and a typed error for
   what cannot be done here (rootless on v1, a missing controller);
2. :func:`create`: a journal record of each directory *before* its
   ``mkdir``, then the limit files;
3. :meth:`Cgroup.add` writes the container's first process into
   ``cgroup.procs`` while it still waits for the parent's "go", so
   everything it runs (and forks) is charged from the start;
4. :meth:`Cgroup.remove` once the process is reaped: ``rmdir`` (retried
   while the kernel still reports EBUSY), and the ``layerlab`` parent too
   when it is left empty.  :func:`realrt._cgroupfs.remove_dir` does that, and is what
   ``Journal.sweep`` runs for a "cgroup" record.

:meth:`Cgroup.usage` reads the counters (memory, CPU time, throttling, pids,
OOM kills) as a frozen :class:`Usage`.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from realrt._cgroupfs import PARENT, remove_dir
from realrt._cgroupfs import cgroup_mounts as _mounts
from realrt._cgroupfs import read_file as _read
from realrt._cgroupfs import write_file as _write
from realrt.journal import Journal, Record
from sim.containers.limits import Limits, cgroup_v1_files, cgroup_v2_files
from sim.errors import BackendUnavailableError, ConflictError, InvalidLimitError

__all__ = ["Hierarchy", "Cgroup", "Usage", "detect", "plan", "create", "PARENT"]

#: v1 controllers a container's cgroup is made in: the limits' and those :class:`Usage` reads.
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
V2_CONTROLLERS = ("memory", "cpu", "pids")
_NEEDS = {"--memory": "memory", "--cpus": "cpu", "--cpu-shares": "cpu", "--pids-limit": "pids"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")


@dataclass(frozen=True)
class Hierarchy:
    """Where containers' cgroups go on this host.

    ``version`` 1: ``roots`` maps each usable controller to its mount point.
    ``version`` 2: ``roots`` is ``{"": base}``, the directory ``layerlab/`` is
    made in, and ``controllers`` what ``base`` offers to its children.
    ``swap``: the kernel accounts swap (``memory.memsw.*`` / ``memory.swap.max``)."""

    version: int
    roots: Mapping[str, str]
    controllers: frozenset[str]
    swap: bool = False


@dataclass(frozen=True)
class Usage:
    """One reading of a container's cgroup counters; ``None`` where this host has no such file.

    ``time`` is ``time.monotonic()`` at the reading; ``cpu_seconds`` is CPU time used (user +
    system); ``nr_periods``/``nr_throttled``/``throttled_seconds`` are the CFS bandwidth
    counters (periods with a quota, periods that ran out of it, time spent waiting)."""

    time: float
    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    cpu_seconds: float | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_seconds: float | None = None
    pids: int | None = None
    oom_kills: int | None = None


# -- what the host has -------------------------------------------------------------------------


def _own_v2_path(proc_cgroup: str = "/proc/self/cgroup") -> str:
    for line in (_read(proc_cgroup) or "").splitlines():
        if line.startswith("0::"):
            return line[3:]
    return "/"


def _delegated_base(mount: str, own: str) -> str | None:
    """The highest ancestor of this process's cgroup (itself excluded: it holds processes) that
    this user may manage: it owns the folder and may write ``cgroup.procs`` and
    ``cgroup.subtree_control`` there (systemd ``Delegate=yes`` gives the user such a subtree)."""
    parts = [p for p in own.split("/") if p]
    best = None
    for depth in range(len(parts) - 1, -1, -1):
        path = os.path.join(mount, *parts[:depth]) if depth else mount
        try:
            owned = os.stat(path).st_uid == os.geteuid()
        except OSError:
            break
        if not (owned and os.access(os.path.join(path, "cgroup.procs"), os.W_OK)
                and os.access(os.path.join(path, "cgroup.subtree_control"), os.W_OK)):
            break
        best = path
    return best


def detect(*, rootless: bool = False, mountinfo: str = "/proc/self/mountinfo",
           proc_cgroup: str = "/proc/self/cgroup") -> Hierarchy | None:
    """The hierarchy containers' cgroups would use, ``None`` when no usable one is mounted.

    v1 (legacy or hybrid: controllers mounted one by one) wins when it holds memory, cpu or
    pids; otherwise the unified v2 hierarchy, if its ``cgroup.controllers`` offers them
    (hybrid hosts mount a v2 tree with no controllers at ``/sys/fs/cgroup/unified``).
    Rootless on v2, the base is the delegated subtree above this process (None if there is none).
    """
    mounts = _mounts(mountinfo)
    v1: dict[str, str] = {}
    for point, fstype, options in mounts:
        if fstype == "cgroup":
            for controller in V1_CONTROLLERS:
                if controller in options:
                    v1.setdefault(controller, point)
    if {"memory", "cpu", "pids"} & set(v1):
        memory = v1.get("memory")
        swap = memory is not None and os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes"))
        return Hierarchy(1, v1, frozenset(v1), swap)
    for point, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        offered = set((_read(os.path.join(point, "cgroup.controllers")) or "").split())
        if not offered & set(V2_CONTROLLERS):
            continue
        base = point
        if rootless:
            delegated = _delegated_base(point, _own_v2_path(proc_cgroup))
            if delegated is None:
                return Hierarchy(2, {}, frozenset(), False)  # v2, but nothing of it is ours
            base = delegated
            offered = set((_read(os.path.join(base, "cgroup.controllers")) or "").split())
        swap = _swap_accounted_v2(point)
        return Hierarchy(2, {"": base}, frozenset(offered & set(V2_CONTROLLERS)), swap)
    return None


def _swap_accounted_v2(mount: str) -> bool:
    """memory.swap.max exists in non-root groups only: look for one (e.g. a systemd slice).  A
    guess (False with no child group that has the memory controller); :meth:`Cgroup._make`
    settles it from the container's own folder."""
    try:
        return any(entry.is_dir(follow_symlinks=False) and os.path.exists(os.path.join(entry.path, "memory.swap.max"))
                   for entry in os.scandir(mount))
    except OSError:
        return False


# -- before anything is created ------------------------------------------------------------------


def plan(limits: Limits | None, *, rootless: bool, hierarchy: Hierarchy | None = None) -> Hierarchy | None:
    """Where ``limits`` will be applied, or ``None`` when there is nothing to apply.

    Raises :class:`BackendUnavailableError` (nothing is created) when they cannot be: rootless on
    cgroup v1, or on v2 without a delegated subtree (rootless runc and podman refuse alike), or a
    controller the host does not have."""
    if not limits:
        return None
    host = hierarchy if hierarchy is not None else detect(rootless=rootless)
    flags = ", ".join(limits.flags())
    if host is None:
        raise BackendUnavailableError(f"cannot apply {flags}: no cgroup hierarchy with the memory, cpu or pids "
                                      "controller is mounted")
    if rootless and host.version == 1:
        raise BackendUnavailableError(f"rootless containers cannot apply {flags} on cgroup v1 without delegation "
                                      "(as rootless runc and podman); run as root, or use a cgroup v2 host with "
                                      "systemd delegation")
    if rootless and host.version == 2 and not host.roots:
        raise BackendUnavailableError(f"rootless containers cannot apply {flags} on cgroup v2 without a delegated "
                                      "writable subtree (as rootless runc and podman): start layerlab inside a "
                                      "systemd unit or scope with Delegate=yes")
    for flag in limits.flags():
        controller = _NEEDS[flag]
        if controller not in host.controllers:
            where = "delegated to this user" if rootless else "mounted"
            raise BackendUnavailableError(f"cannot apply {flag}: the {controller} cgroup controller is not {where} "
                                          f"(cgroup v{host.version})")
    return host


# -- one container's cgroup ---------------------------------------------------------------------------


def _int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def _keyed(path: str) -> dict[str, int]:
    out = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out


def _mkdir_leaf(parent: str, leaf: str, enable: str | None) -> None:
    """``mkdir -p parent/leaf``; another container's teardown may remove an empty parent at any
    moment, so a vanished parent is made again.  ``enable`` (v2): what the parent's children get."""
    for _ in range(5):
        try:
            os.mkdir(parent, 0o755)
        except FileExistsError:
            pass
        try:
            if enable:
                _write(os.path.join(parent, "cgroup.subtree_control"), enable)
            os.mkdir(leaf, 0o755)
            return
        except FileNotFoundError:
            continue
        except FileExistsError:
            if not remove_dir(leaf, timeout=0.5):  # left by a killed run that was not swept yet
                raise ConflictError(f"cgroup {leaf} exists and still holds processes") from None
    raise OSError(errno.ENOENT, "the cgroup parent kept disappearing", parent)


class Cgroup:
    """A container's cgroup: one folder per v1 controller (``dirs``), or one folder on v2."""

    def __init__(self, hierarchy: Hierarchy, name: str, journal: Journal) -> None:
        self.hierarchy = hierarchy
        self.name = name
        self.dirs: dict[str, str] = {}  # controller (v2: "") -> folder
        self._journal = journal
        self._records: list[Record] = []

    @property
    def version(self) -> int:
        return self.hierarchy.version

    @property
    def paths(self) -> tuple[str, ...]:
        """Each folder once (co-mounted v1 controllers such as ``cpu,cpuacct`` share one)."""
        return tuple(dict.fromkeys(self.dirs.values()))

    def _make(self, limits: Limits) -> None:
        h = self.hierarchy
        if h.version == 1:
            for controller, root in h.roots.items():
                parent = os.path.join(root, PARENT)
                leaf = os.path.join(parent, self.name)
                if leaf not in self.dirs.values():
                    self._records.append(self._journal.record("cgroup", leaf))  # before the mkdir
                    _mkdir_leaf(parent, leaf, None)
                self.dirs[controller] = leaf
            for (controller, name), value in cgroup_v1_files(limits, swap=h.swap).items():
                self._set(os.path.join(self.dirs[controller], name), value)
        else:
            base = h.roots[""]
            parent = os.path.join(base, PARENT)
            leaf = os.path.join(parent, self.name)
            enable = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in h.controllers)
            self._records.append(self._journal.record("cgroup", leaf))
            try:
                _write(os.path.join(base, "cgroup.subtree_control"), enable)
            except OSError as exc:
                raise BackendUnavailableError(
                    f"cannot enable the {enable} controllers in {base} ({exc.strerror}); a cgroup v2 group that "
                    "holds processes cannot give controllers to its children") from None
            _mkdir_leaf(parent, leaf, enable)
            self.dirs[""] = leaf
            # The leaf itself shows whether swap is accounted (runc looks there too): detect() can
            # only guess from a sibling, and a fresh v2 host (a guest, a new machine) has none.
            swap = h.swap or ("memory" in h.controllers and os.path.exists(os.path.join(leaf, "memory.swap.max")))
            if swap != h.swap:
                self.hierarchy = replace(h, swap=swap)
            for name, value in cgroup_v2_files(limits, swap=swap).items():
                self._set(os.path.join(leaf, name), value)

    @staticmethod
    def _set(path: str, value: str) -> None:
        try:
            _write(path, value)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ERANGE, errno.EBUSY):
                raise InvalidLimitError(f"the kernel refused {value!r} for {path}: {exc.strerror}") from None
            raise BackendUnavailableError(f"cannot write {value!r} to {path}: {exc.strerror}") from None

    def add(self, pid: int) -> None:
        """Move ``pid`` (and only it: its later children follow it) into the cgroup."""
        for path in self.paths:
            _write(os.path.join(path, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        """The processes in the cgroup, as this PID namespace numbers them."""
        found: dict[int, None] = {}
        for path in self.paths:
            for line in (_read(os.path.join(path, "cgroup.procs")) or "").split():
                found[int(line)] = None
        return list(found)

    def usage(self) -> Usage:
        """The counters now (see :class:`Usage`)."""
        now = time.monotonic()
        if self.version == 1:
            mem, cpu, acct, pids = (self.dirs.get(c) for c in ("memory", "cpu", "cpuacct", "pids"))
            stat = _keyed(os.path.join(cpu, "cpu.stat")) if cpu else {}
            usage_ns = _int(os.path.join(acct, "cpuacct.usage")) if acct else None
            throttled = stat.get("throttled_time")
            return Usage(
                time=now,
                memory_bytes=_int(os.path.join(mem, "memory.usage_in_bytes")) if mem else None,
                memory_peak_bytes=_int(os.path.join(mem, "memory.max_usage_in_bytes")) if mem else None,
                cpu_seconds=None if usage_ns is None else usage_ns / 1e9,
                nr_periods=stat.get("nr_periods"), nr_throttled=stat.get("nr_throttled"),
                throttled_seconds=None if throttled is None else throttled / 1e9,
                pids=_int(os.path.join(pids, "pids.current")) if pids else None,
                oom_kills=_keyed(os.path.join(mem, "memory.oom_control")).get("oom_kill") if mem else None,
            )
        leaf = self.dirs[""]
        stat = _keyed(os.path.join(leaf, "cpu.stat"))
        usage_us, throttled_us = stat.get("usage_usec"), stat.get("throttled_usec")
        return Usage(
            time=now, memory_bytes=_int(os.path.join(leaf, "memory.current")),
            memory_peak_bytes=_int(os.path.join(leaf, "memory.peak")),
            cpu_seconds=None if usage_us is None else usage_us / 1e6,
            nr_periods=stat.get("nr_periods"), nr_throttled=stat.get("nr_throttled"),
            throttled_seconds=None if throttled_us is None else throttled_us / 1e6,
            pids=_int(os.path.join(leaf, "pids.current")),
            oom_kills=_keyed(os.path.join(leaf, "memory.events")).get("oom_kill"),
        )

    def remove(self, timeout: float = 2.0) -> bool:
        """Remove the folders (after the processes are gone); records of what could not be removed
        stay in the journal for the next sweep.  True when everything is gone."""
        done = True
        for rec in reversed(self._records):
            if remove_dir(rec.path, timeout=timeout):
                self._journal.forget(rec)
                self._records.remove(rec)
            else:
                done = False
        return done

    def __repr__(self) -> str:
        return f"<Cgroup v{self.version} {self.name} {list(self.paths)}>"


def create(limits: Limits, name: str, *, journal: Journal, rootless: bool,
           hierarchy: Hierarchy | None = None) -> Cgroup | None:
    """Make the cgroup for ``limits`` (None when there are none): journal records first, then
    the folders, then the limit files.  On any failure what was made is removed and the error
    raised."""
    host = plan(limits, rootless=rootless, hierarchy=hierarchy)
    if host is None:
        return None
    if not _NAME.match(name):
        raise ValueError(f"invalid cgroup name {name!r}")
    group = Cgroup(host, name, journal)
    try:
        group._make(limits)
    except BaseException:
        group.remove(timeout=0.5)
        raise
    return group
