"""/etc/passwd and /etc/group as the applets read them (no NSS: a container's files are the database)."""

from __future__ import annotations

from sim.containers.shell._proc import Proc, decode


def _db(p: Proc, path: str) -> list[list[str]]:
    try:
        data = p.fs.read_bytes(path)
    except OSError:
        return []
    rows = []
    for line in decode(data).splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def lookup_user(p: Proc, uid: int) -> str | None:
    for row in _db(p, "/etc/passwd"):
        if len(row) >= 3 and row[2] == str(uid):
            return row[0]
    return None


def lookup_group(p: Proc, gid: int) -> str | None:
    for row in _db(p, "/etc/group"):
        if len(row) >= 3 and row[2] == str(gid):
            return row[0]
    return None


def passwd_entry(p: Proc, name: str) -> list[str] | None:
    for row in _db(p, "/etc/passwd"):
        if len(row) >= 7 and row[0] == name:
            return row
    return None


def member_groups(p: Proc, user: str | None, gid: int) -> list[int]:
    """The primary group, then every /etc/group entry listing ``user`` (what a container's process gets)."""
    groups = [gid]
    if user is None:
        return groups
    for row in _db(p, "/etc/group"):
        if len(row) >= 4 and user in row[3].split(",") and row[2].isdigit():
            g = int(row[2])
            if g not in groups:
                groups.append(g)
    return groups
