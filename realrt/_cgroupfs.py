"""Removing a container's cgroup folder, whoever made it (控制组目录, the cgroup file system).

:func:`remove_dir` is shared by a container's own teardown
(:meth:`realrt.containers.cgroups.Cgroup.remove`) and :meth:`realrt.journal.Journal.sweep`
(a "cgroup" record a killed run left), so it lives below both, with the few readers of
``/proc/self/mountinfo`` and cgroup files it needs.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

__all__ = ["PARENT", "cgroup_mounts", "read_file", "write_file", "remove_dir"]

#: The folder every container's cgroup lives in (per controller on v1).
PARENT = "layerlab"


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[str, str, set[str]]]:
    """``(mount point, fstype, super options)`` of every cgroup and cgroup2 mount."""
    out = []
    with open(mountinfo, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.split()
            try:
                dash = fields.index("-")
            except ValueError:
                continue
            fstype = fields[dash + 1]
            if fstype in ("cgroup", "cgroup2"):
                point = fields[4].replace("\\040", " ")
                out.append((point, fstype, set(fields[dash + 3].split(",")) if len(fields) > dash + 3 else set()))
    return out


def read_file(path: str | Path) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except OSError:
        return None


def write_file(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _cgroup_mount_of(path: str) -> str | None:
    best = None
    for point, _, _ in cgroup_mounts():
        if (path == point or path.startswith(point.rstrip("/") + "/")) and (best is None or len(point) > len(best)):
            best = point
    return best


def _kill_members(path: str) -> None:
    """SIGKILL what is still in the folder (a killed run's leftovers); pidfds make sure the
    signal reaches the process that was read from cgroup.procs, not a recycled pid."""
    if os.path.exists(os.path.join(path, "cgroup.kill")):
        try:
            write_file(os.path.join(path, "cgroup.kill"), "1")  # v2, Linux 5.14+: the whole group at once
            return
        except OSError:
            pass
    relative = "/" + os.path.relpath(path, _cgroup_mount_of(path) or "/")
    for line in (read_file(os.path.join(path, "cgroup.procs")) or "").split():
        try:
            pidfd = os.pidfd_open(int(line))
        except OSError:
            continue
        try:
            membership = read_file(f"/proc/{line}/cgroup") or ""
            if any(entry.split(":", 2)[-1] == relative for entry in membership.splitlines()):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(pidfd)


def remove_dir(path: str, timeout: float = 2.0) -> bool:
    """Remove the container cgroup ``path`` (``.../layerlab/<name>``) and its ``layerlab`` parent
    when that is left empty.  Processes still inside are killed, again before every retry of
    ``rmdir`` while the kernel answers EBUSY (exiting or newly forked tasks), up to ``timeout``
    seconds.  Idempotent: a missing
    folder is success.  Returns False when the folder is still there."""
    path = os.path.normpath(path)
    parent = os.path.dirname(path)
    if os.path.basename(parent) != PARENT or _cgroup_mount_of(path) is None:
        return True  # not a container cgroup on a cgroup file system: nothing of ours to remove
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            os.rmdir(path)
            break
        except FileNotFoundError:
            break
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return False
            # Again at every retry: a process that forked between reading cgroup.procs and the
            # kill (a fork bomb does little else) would otherwise keep the folder busy.
            _kill_members(path)
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    try:
        os.rmdir(parent)  # the last container out removes ``layerlab`` itself
    except OSError:
        pass  # still used by another container (EBUSY/ENOTEMPTY), or already gone
    return True
