"""The user namespace's uid and gid maps on the kernel (用户命名空间): which mapping, and writing it.

:func:`detect` chooses the mapping an engine's containers get (the kinds of
:mod:`sim.containers.userns`): none as root; podman's subordinate mapping when the caller has ranges
in ``/etc/subuid`` and ``/etc/subgid`` and the setuid helpers ``newuidmap``/``newgidmap`` exist;
else the single mapping (0 inside is the caller), with a note saying what was missing.

An unprivileged process may write only the single mapping itself.  A subordinate mapping is
written by ``newuidmap``/``newgidmap`` (which check the ranges against the files) on the pid of a
process that has already unshared its user namespace and waits: :func:`write_maps` is the
parent's half of that hand-over, :func:`map_child` the pipe protocol the container's first
process uses (it writes ``u`` once unshared, then waits for ``m``).  Those helpers also write
``/proc/PID/setgroups`` themselves ("allow" with a subgid range): the child must not deny it first.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from realrt import _syscalls
from sim.containers.userns import HOST_MAPS, IdMaps, IdRange, parse_subid, single_maps, subordinate_maps
from sim.errors import BackendUnavailableError, InvalidSpecError

__all__ = ["detect", "map_text", "write_maps", "map_child", "remove_tree", "HELPERS"]

#: The setuid programs that write a subordinate mapping (Debian package ``uidmap``).
HELPERS = ("newuidmap", "newgidmap")
_TIMEOUT = 30.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def detect(*, rootless: bool, uid: int | None = None, gid: int | None = None, subordinate: bool = True,
           subuid: str = "/etc/subuid", subgid: str = "/etc/subgid") -> IdMaps:
    """The mapping for containers of a ``rootless`` (or root) engine run by ``uid``/``gid`` (default: ours).

    ``subordinate=False`` keeps the single mapping even when ranges exist.  Never raises: a missing
    or unusable range is a fallback to the single mapping whose ``note`` says why."""
    if not rootless:
        return HOST_MAPS
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    try:
        name: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    who = name or f"uid {uid}"
    if not subordinate:
        return single_maps(uid, gid, note="subordinate ids turned off for this engine")
    uid_ranges = parse_subid(_read(subuid), name=name, uid=uid)
    gid_ranges = parse_subid(_read(subgid), name=name, uid=uid)
    missing = [f"no range for {who} in {path}" for path, found in ((subuid, uid_ranges), (subgid, gid_ranges))
               if not found]
    missing += [f"{tool} is not installed (Debian package uidmap)" for tool in HELPERS if shutil.which(tool) is None]
    if missing:
        return single_maps(uid, gid, note="; ".join(missing))
    try:
        return subordinate_maps(uid, gid, uid_ranges, gid_ranges,
                                note=f"{who}'s ranges in {subuid} and {subgid}, written by newuidmap/newgidmap")
    except InvalidSpecError as exc:
        return single_maps(uid, gid, note=f"the ranges of {who} are unusable: {exc}")


def map_text(rows: tuple[IdRange, ...]) -> str:
    """Rows as the kernel takes them written to ``/proc/PID/uid_map`` (one ``inside outside count`` a line)."""
    return "".join(f"{inside} {outside} {count}\n" for inside, outside, count in rows)


def write_maps(pid: int, maps: IdMaps) -> None:
    """Map the user namespace of ``pid`` (unshared, not yet mapped) with ``maps``: the single mapping
    directly (``setgroups`` denied first, as the kernel demands of an unprivileged writer), a subordinate
    one with newuidmap and newgidmap.  Raises :class:`~sim.errors.BackendUnavailableError` with the
    helper's own words when it refuses."""
    if not maps.user_namespace:
        raise InvalidSpecError("the host mapping has no user namespace to write")
    if maps.kind == "single":
        for name, text in (("setgroups", "deny"), ("uid_map", map_text(maps.uids)), ("gid_map", map_text(maps.gids))):
            with open(f"/proc/{pid}/{name}", "w", encoding="ascii") as fh:
                fh.write(text)
        return
    for tool, rows in zip(HELPERS, (maps.uids, maps.gids)):
        argv = [tool, str(pid), *(str(v) for row in rows for v in row)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendUnavailableError(f"{tool} could not run ({exc}); install Debian's uidmap") from exc
        if done.returncode != 0:
            raise BackendUnavailableError(
                f"{' '.join(argv)} failed ({done.stderr.strip() or f'exit {done.returncode}'}): the ranges in "
                "/etc/subuid and /etc/subgid must belong to you and newuidmap/newgidmap must be setuid root")


def map_child(pid: int, maps: IdMaps, from_child: int, to_child: int) -> bool:
    """The parent's half of the hand-over: wait for the child's ``u`` (it has unshared its user namespace),
    write its maps, answer ``m``.  False when the child died first (its error comes on its err pipe)."""
    if os.read(from_child, 1) != b"u":
        return False
    write_maps(pid, maps)
    os.write(to_child, b"m")
    return True


def remove_tree(path: str | os.PathLike[str], maps: IdMaps) -> None:
    """Delete ``path`` whose files may belong to subordinate ids the caller cannot delete itself: as root
    of a user namespace with ``maps`` (a child process), then what is left as the caller.  Idempotent;
    a missing ``path`` is no error."""
    target = os.fspath(path)
    if maps.kind == "subordinate" and os.path.lexists(target):
        _remove_in_namespace(target, maps)
    shutil.rmtree(target, ignore_errors=True)


def _remove_in_namespace(target: str, maps: IdMaps) -> None:
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(ready_r)
            os.close(go_w)
            _syscalls.unshare(_syscalls.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            if os.read(go_r, 1) == b"m":
                shutil.rmtree(target, ignore_errors=True)  # as namespace root every mapped owner is ours
                code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        map_child(pid, maps, ready_r, go_w)
    except (BackendUnavailableError, OSError):
        pass  # refused or the child died: the caller's own rmtree still removes what it can
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)
