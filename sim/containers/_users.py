"""``USER`` and ``--user`` as numbers: the image's /etc/passwd and /etc/group read as runc reads them.

:func:`resolve_user` follows runc's ``user.GetExecUser`` (which Docker calls) rule by rule, and adds
the groups as moby's ``getUser`` does (the primary gid first, then every group listing the user).
:func:`check_user_spec` refuses a malformed value before anything is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import ConflictError, InvalidSpecError
from sim.interface import FileSystem

__all__ = ["ExecUser", "MAX_USER_ID", "check_user_spec", "resolve_user", "resolve_group"]

#: runc's upper bound for a uid or gid given by number (``user.maxID``).
MAX_USER_ID = 2**31 - 1


@dataclass(frozen=True)
class ExecUser:
    """Who a container's process runs as: ids, the groups it gets (primary first) and ``HOME``."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def check_user_spec(user: str) -> None:
    """Refuse what no lookup can make sense of: ``a:b:c``, blanks, an empty half, numbers out of range.

    Raises :class:`~sim.errors.InvalidSpecError`; an empty string means the image's default (root)."""
    if not user:
        return
    name, sep, group = user.partition(":")
    parts = [name, group] if sep else [name]
    if ":" in group or any(not p or any(c.isspace() for c in p) for p in parts):
        raise InvalidSpecError(f"invalid user {user!r}: use NAME, UID, NAME:GROUP or UID:GID")
    for part in parts:
        if part.isdigit() and int(part) > MAX_USER_ID:
            raise InvalidSpecError(f"invalid user {user!r}: uids and gids must be in range 0-{MAX_USER_ID}")


def _rows(fs: FileSystem, path: str) -> list[list[str]] | None:
    """The file's ``:``-separated rows, or ``None`` when it does not exist (runc then skips the lookup)."""
    try:
        data = fs.read_bytes(path)
    except OSError:
        return None
    rows = []
    for line in data.decode(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_group(group: str, fs: FileSystem) -> int:
    """A group name or number as a gid: names through the image's /etc/group (a number needs no entry)."""
    for row in _rows(fs, "/etc/group") or []:
        if len(row) >= 3 and _number(row[2]) is not None and (row[0] == group or row[2] == group):
            return int(row[2])
    if group.isdigit():
        return int(group)
    raise ConflictError(f"unable to find group {group}: no matching entries in group file")


def resolve_user(user: str, fs: FileSystem) -> ExecUser:
    """``USER``/``--user`` (``NAME``, ``UID``, ``NAME:GROUP``, ``UID:GID``; empty: root) in the tree ``fs``.

    A number is always a uid (a passwd entry with it gives the gid and home); a name must have a
    passwd entry, else ``unable to find user NAME: no matching entries in passwd file``
    (:class:`~sim.errors.ConflictError`, raised before anything runs, Docker's words).  An explicit
    group is a name or number from /etc/group (a number needs no entry) and is then the only group;
    without one the process gets the passwd gid and every group listing the user by name.
    """
    check_user_spec(user)
    name, _, group = user.partition(":")
    uid = _number(name)
    passwd = _rows(fs, "/etc/passwd") or []
    matched: list[str] | None = None
    for row in passwd:
        if len(row) < 4 or _number(row[2]) is None:
            continue
        if (row[2] == str(uid)) if uid is not None else (row[0] == name if name else row[2] == "0"):
            matched = row
            break
    if matched is not None:
        uid, gid = int(matched[2]), _number(matched[3]) or 0
        home = matched[5] if len(matched) > 5 and matched[5] else "/"
    elif uid is not None:
        gid, home = 0, "/"  # a number with no entry: runc's defaults
    elif not name:
        uid, gid, home = 0, 0, "/"
    else:
        raise ConflictError(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        gid = resolve_group(group, fs)
        return ExecUser(uid=uid, gid=gid, groups=(gid,), home=home)
    groups = [gid]
    if matched is not None:
        for row in _rows(fs, "/etc/group") or []:
            if len(row) >= 4 and matched[0] in row[3].split(",") and row[2].isdigit() and int(row[2]) not in groups:
                groups.append(int(row[2]))  # moby lists the primary gid first; repeats are dropped
    return ExecUser(uid=uid, gid=gid, groups=tuple(groups), home=home)
