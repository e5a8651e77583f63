"""用户命名空间 (user namespaces): which uids and gids a container has, and what they are on the host.

A process's uid is a number inside its user namespace; the kernel turns it into a uid of the
host through the namespace's ``uid_map``, rows of ``inside outside count`` (``/proc/self/uid_map``
prints them).  An engine runs its containers under one of three mappings (:attr:`IdMaps.kind`):

``"host"``
    No user namespace (an engine running as root, Docker's default): uid N inside is uid N
    on the host, and ``/proc/self/uid_map`` reads ``0 0 4294967295``.
``"single"``
    Rootless without a subordinate range: the namespace maps only 0 inside, to the caller's
    uid outside (count 1).  The container has one uid; every other uid is refused.
``"subordinate"``
    Rootless with ranges in ``/etc/subuid`` and ``/etc/subgid`` and the setuid helpers
    ``newuidmap``/``newgidmap`` (as podman maps it): 0 inside is the caller, 1..N inside are the
    caller's range, in the order the file lists them.  uid 1000 inside is ``start + 999`` outside.

The model and the real backend use the same :class:`IdMaps`, so both print the same
``/proc/self/uid_map`` and refuse the same users.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from sim.errors import BackendUnavailableError, InvalidSpecError

__all__ = ["IdRange", "IdMaps", "HOST_MAPS", "MAX_ID", "OVERFLOW_ID", "single_maps", "subordinate_maps",
           "parse_subid"]

#: The largest id a map can name (the kernel's ids are 32-bit; 4294967295 is "no id").
MAX_ID = 4294967294
#: What a uid or gid with no mapping reads as inside a user namespace (``/proc/sys/kernel/overflowuid``).
OVERFLOW_ID = 65534

Kind = Literal["host", "single", "subordinate"]


@dataclass(frozen=True)
class IdRange:
    """One row of a uid or gid map: ``count`` ids from ``inside`` are ``outside`` onwards on the host.
    It unpacks as ``inside, outside, count``, the order of ``/proc/self/uid_map``."""

    inside: int
    outside: int
    count: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.inside, self.outside, self.count))


def _rows(rows: Iterable[IdRange | tuple[int, int, int]], what: str) -> tuple[IdRange, ...]:
    out = tuple(row if isinstance(row, IdRange) else IdRange(*row) for row in rows)
    if not out:
        raise InvalidSpecError(f"a {what} map needs at least one row")
    for row in out:
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in row) or row.count < 1 \
                or row.inside + row.count > MAX_ID + 1 or row.outside + row.count > MAX_ID + 1:
            raise InvalidSpecError(f"bad {what} map row {tuple(row)}: ids from 0, a count of at least 1, "
                                   f"nothing above {MAX_ID}")
    spans = sorted(out, key=lambda r: r.inside)
    for low, high in zip(spans, spans[1:]):
        if low.inside + low.count > high.inside:
            raise InvalidSpecError(f"{what} map rows {tuple(low)} and {tuple(high)} overlap inside")
    return out


def _lookup(rows: tuple[IdRange, ...], value: int) -> int | None:
    for inside, outside, count in rows:
        if inside <= value < inside + count:
            return outside + value - inside
    return None


def _reverse(rows: tuple[IdRange, ...], value: int) -> int | None:
    for inside, outside, count in rows:
        if outside <= value < outside + count:
            return inside + value - outside
    return None


def _spans(rows: tuple[IdRange, ...]) -> str:
    """The ids mapped inside, adjacent rows merged: ``0-65536``."""
    merged: list[list[int]] = []
    for row in sorted(rows, key=lambda r: r.inside):
        if merged and merged[-1][1] + 1 == row.inside:
            merged[-1][1] = row.inside + row.count - 1
        else:
            merged.append([row.inside, row.inside + row.count - 1])
    return ", ".join(f"{low}-{high}" for low, high in merged)


def _proc_text(rows: tuple[IdRange, ...]) -> str:
    # The kernel's own format (kernel/user_namespace.c: "%10u %10u %10u\n").
    return "".join(f"{inside:>10} {outside:>10} {count:>10}\n" for inside, outside, count in rows)


@dataclass(frozen=True)
class IdMaps:
    """The uid and gid maps of an engine's containers (see the module docstring for ``kind``).

    ``uids`` and ``gids`` are rows of ``(inside, outside, count)``; ``note`` says in words which
    mapping this is and, for a fallback, why (what is missing for a subordinate range).
    Rows are checked when the value is made (:class:`~sim.errors.InvalidSpecError`).
    """

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]
    kind: Kind
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "uids", _rows(self.uids, "uid"))
        object.__setattr__(self, "gids", _rows(self.gids, "gid"))
        if self.kind not in ("host", "single", "subordinate"):
            raise InvalidSpecError(f"unknown id mapping kind {self.kind!r}: host, single or subordinate")

    @property
    def user_namespace(self) -> bool:
        """Whether containers get a user namespace of their own (every kind but ``"host"``)."""
        return self.kind != "host"

    @property
    def uid_count(self) -> int:
        """How many uids a container can use."""
        return sum(row.count for row in self.uids)

    def uid_to_host(self, uid: int) -> int | None:
        """The host's uid for ``uid`` inside (``None``: not mapped, a container cannot use it)."""
        return _lookup(self.uids, uid)

    def gid_to_host(self, gid: int) -> int | None:
        """The host's gid for ``gid`` inside (``None``: not mapped)."""
        return _lookup(self.gids, gid)

    def uid_from_host(self, uid: int) -> int:
        """What a host uid (a file's owner) reads as inside: :data:`OVERFLOW_ID` when unmapped."""
        inside = _reverse(self.uids, uid)
        return OVERFLOW_ID if inside is None else inside

    def gid_from_host(self, gid: int) -> int:
        """What a host gid reads as inside: :data:`OVERFLOW_ID` when unmapped."""
        inside = _reverse(self.gids, gid)
        return OVERFLOW_ID if inside is None else inside

    def covers(self, uid: int, gid: int) -> bool:
        """Whether a process may run as ``uid``:``gid`` (both mapped)."""
        return self.uid_to_host(uid) is not None and self.gid_to_host(gid) is not None

    def require(self, uid: int, gid: int) -> None:
        """Raise :class:`~sim.errors.BackendUnavailableError` unless ``uid`` and ``gid`` are both mapped.

        The message of the single mapping names what would give more uids (``/etc/subuid``,
        ``/etc/subgid``, ``newuidmap``/``newgidmap``) and why this engine has none (``note``)."""
        if self.covers(uid, gid):
            return
        if self.kind == "single":
            why = f" ({self.note})" if self.note else ""
            raise BackendUnavailableError(
                f"rootless containers without a subordinate id range map only root (uid 0) to your uid; "
                f"uid {uid}/gid {gid} needs a range of your user in /etc/subuid and /etc/subgid and the "
                f"newuidmap/newgidmap programs (Debian package uidmap), as podman uses them{why}; "
                "or run as root for other users")
        raise BackendUnavailableError(
            f"uid {uid}/gid {gid} is outside this engine's user namespace (uids {_spans(self.uids)}, "
            f"gids {_spans(self.gids)} are mapped); "
            "a larger range in /etc/subuid and /etc/subgid would map it")

    def proc_uid_map(self) -> str:
        """``/proc/self/uid_map`` as a container's process reads it (the kernel's column format)."""
        return _proc_text(self.uids)

    def proc_gid_map(self) -> str:
        """``/proc/self/gid_map`` as a container's process reads it."""
        return _proc_text(self.gids)

    def describe(self) -> str:
        """One line per row, for notebooks: ``uid 1-65536 -> host 200000-265535``."""
        lines = [f"{self.kind} mapping" + (f": {self.note}" if self.note else "")]
        for what, rows in (("uid", self.uids), ("gid", self.gids)):
            for inside, outside, count in rows:
                lines.append(f"  {what} {inside}-{inside + count - 1} -> host {outside}-{outside + count - 1}")
        return "\n".join(lines)


#: No user namespace: the initial namespace's identity map, what a root engine's containers read.
HOST_MAPS = IdMaps(uids=(IdRange(0, 0, MAX_ID + 1),), gids=(IdRange(0, 0, MAX_ID + 1),), kind="host",
                   note="no user namespace: ids inside are the host's")


def single_maps(uid: int, gid: int, note: str = "") -> IdMaps:
    """Rootless without a range: 0 inside is ``uid``/``gid`` outside, nothing else is mapped."""
    return IdMaps(uids=(IdRange(0, uid, 1),), gids=(IdRange(0, gid, 1),), kind="single", note=note)


def _stacked(own: int, ranges: Iterable[tuple[int, int]]) -> tuple[IdRange, ...]:
    rows = [IdRange(0, own, 1)]
    inside = 1
    for start, count in ranges:
        if start <= own < start + count:
            raise InvalidSpecError(f"the subordinate range {start}-{start + count - 1} holds the caller's own id {own}")
        rows.append(IdRange(inside, start, count))
        inside += count
    return tuple(rows)


def subordinate_maps(uid: int, gid: int, uid_ranges: Iterable[tuple[int, int]],
                     gid_ranges: Iterable[tuple[int, int]], note: str = "") -> IdMaps:
    """podman's rootless mapping: 0 inside is the caller, then each ``(start, count)`` range in order
    from 1 inside (``uid 1000 -> start + 999`` with one range)."""
    uid_ranges, gid_ranges = tuple(uid_ranges), tuple(gid_ranges)
    if not uid_ranges or not gid_ranges:
        raise InvalidSpecError("a subordinate mapping needs at least one uid range and one gid range")
    return IdMaps(uids=_stacked(uid, uid_ranges), gids=_stacked(gid, gid_ranges), kind="subordinate", note=note)


def parse_subid(text: str, *, name: str | None, uid: int) -> tuple[tuple[int, int], ...]:
    """The ``(start, count)`` ranges of one user in ``/etc/subuid`` or ``/etc/subgid`` text.

    Lines are ``owner:start:count``; the owner is a user name or a numeric uid (``subuid(5)``).
    Blank lines, ``#`` comments and malformed lines are skipped, as shadow's tools skip them."""
    found: list[tuple[int, int]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit():
            continue
        owner, start, count = fields[0], int(fields[1]), int(fields[2])
        if (owner == name or owner == str(uid)) and count > 0 and start + count <= MAX_ID + 1:
            found.append((start, count))
    return tuple(found)
