"""Every resource the real backend creates is written down *before* it is created.

A record is one small JSON file in the state folder.  :func:`sweep` undoes
whatever records remain (a run killed between "record" and "release"), and
is safe to run any number of times: undoing a resource that is already gone
is a no-op.  :class:`~realrt.engine.RealEngine` sweeps on start.

A "process" record also keeps the process's start time (``/proc/<pid>/stat``), so a sweep
never kills an unrelated process that was given the same pid after the recorded one died.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from realrt import _syscalls
from realrt._cgroupfs import remove_dir

__all__ = ["Journal", "Record", "default_state_dir", "start_time"]


def default_state_dir() -> Path:
    """``$LAYERLAB_STATE_DIR``, else ``/run/layerlab`` as root, else ``/tmp/layerlab-<uid>``."""
    env = os.environ.get("LAYERLAB_STATE_DIR")
    if env:
        return Path(env)
    return Path("/run/layerlab") if os.geteuid() == 0 else Path(f"/tmp/layerlab-{os.getuid()}")


@dataclass(frozen=True)
class Record:
    """``kind`` is "mount" (an overlay mount point), "tree" (a folder to delete),
    "process" (a helper to kill, ``pid``), "cgroup" (a container's cgroup folder, see
    :mod:`realrt.containers.cgroups`; :func:`realrt._cgroupfs.remove_dir` removes it), or one of
    :mod:`realrt.network`'s: "link" (a bridge or host-side veth, ``path`` its name), "netns" (a
    named network namespace, ``path`` under ``/run/netns``) and "nft" (the isolation table); ``owner``
    is the process that made it.  ``start_time`` is ``pid``'s start time in clock ticks after
    boot, 0 when it could not be read (the kill is then not guarded against pid reuse, as
    records written before this field existed); ``owner_start`` is the owner's, so that a
    process that was given a dead owner's pid does not keep its records from the sweep."""

    id: str
    kind: str
    path: str
    owner: int
    pid: int = 0
    start_time: int = 0
    owner_start: int = 0

    def owner_alive(self) -> bool:
        """The process that made this record still runs (the same process, not a pid reuser)."""
        return _alive(self.owner) and (not self.owner_start or start_time(self.owner) == self.owner_start)


#: Record kinds :mod:`realrt.network._undo` releases.
_NETWORK_KINDS = ("link", "netns", "nft")


def _mounted(path: str) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        return any(line.split()[4] == target for line in fh)


def start_time(pid: int) -> int:
    """Field 22 of ``/proc/<pid>/stat`` (clock ticks after boot), 0 if there is no such process.

    A pid and its start time name one process for the whole uptime: the kernel never hands
    the same pid out twice within one clock tick."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return 0
    # The command name (field 2) may hold spaces and ")": split after its *last* ")".
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    """The process exists and runs: a zombie (killed, not yet reaped by its parent) holds
    nothing any more, so what it recorded is for the sweep."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False  # gone between the two looks
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


class Journal:
    def __init__(self, state_dir: Path | None = None) -> None:
        self.root = (state_dir or default_state_dir()) / "journal"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def record(self, kind: str, path: str = "", pid: int = 0) -> Record:
        """Write a record down; for a live ``pid`` its start time too (see :class:`Record`)."""
        me = os.getpid()
        rec = Record(uuid.uuid4().hex, kind, path, me, pid, start_time(pid) if pid > 0 else 0, start_time(me))
        tmp = self.root / f".{rec.id}.tmp"
        tmp.write_text(json.dumps(rec.__dict__))
        os.replace(tmp, self.root / f"{rec.id}.json")
        return rec

    def forget(self, rec: Record) -> None:
        (self.root / f"{rec.id}.json").unlink(missing_ok=True)

    def records(self) -> Iterator[Record]:
        for file in sorted(self.root.glob("*.json")):
            try:
                yield Record(**json.loads(file.read_text()))
            except (OSError, ValueError, TypeError):
                file.unlink(missing_ok=True)

    def release(self, rec: Record) -> bool:
        """Undo one resource, then forget it, and return True; False when it is still in use and its
        record stays (a busy cgroup, a bridge that is still a saved network or has ports).  Idempotent."""
        if rec.kind == "mount":
            while os.path.exists(rec.path) and _mounted(rec.path):
                try:
                    _syscalls.umount2(rec.path, 0)
                except OSError:
                    _syscalls.umount2(rec.path, _syscalls.MNT_DETACH)
        elif rec.kind == "tree":
            shutil.rmtree(rec.path, ignore_errors=True)
        elif rec.kind == "process" and rec.pid and rec.pid != os.getpid() and _alive(rec.pid):
            if rec.start_time and start_time(rec.pid) != rec.start_time:
                self.forget(rec)  # the pid now names another process: ours is gone already
                return True
            try:
                os.kill(rec.pid, 9)
            except ProcessLookupError:
                pass
        elif rec.kind == "cgroup" and not remove_dir(rec.path):
            return False  # still busy: the record stays for the next sweep
        elif rec.kind in _NETWORK_KINDS:
            from realrt.network import _undo  # pyroute2 is imported only when a network record is left
            from sim.errors import InvalidNetworkError

            try:
                if not _undo.release(rec.kind, rec.path, self.root.parent):
                    return False  # a network's bridge lives with the network in the store, not its maker
            except InvalidNetworkError:
                pass  # a damaged record naming something layerlab never makes: nothing of ours to undo
        self.forget(rec)
        return True

    def sweep(self) -> list[Record]:
        """Release what processes that are gone left behind (a killed run); returns what it released
        (not what is still in use and stays, see :meth:`release`)."""
        records = [r for r in self.records() if not r.owner_alive()]
        # Processes first, folders last; links before namespaces (a veth's host side goes at once,
        # not when the kernel frees the namespace), veths before bridges (a bridge with ports is
        # kept), and the table after both (it stays while a bridge does).
        order = {"process": 0, "link": 1, "netns": 2, "nft": 3, "cgroup": 4, "mount": 5, "tree": 6}

        def rank(r: Record) -> tuple[int, bool]:
            return order.get(r.kind, 6), r.kind == "link" and r.path.startswith("llbr-")

        return [rec for rec in sorted(records, key=rank) if self.release(rec)]
