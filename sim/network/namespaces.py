"""Namespaces (命名空间) as the model shows them: which ones a process is in, and how the user and
PID namespaces translate ids between the container and the host.

- :class:`NamespaceSet` -- the seven namespaces a process belongs to, each named the way
  ``readlink /proc/<pid>/ns/<kind>`` prints it (``"net:[4026532001]"``).  The host's are
  :data:`HOST_NAMESPACES`, with the fixed inode numbers Linux gives its initial namespaces;
  :class:`NamespaceAllocator` makes new ones from a counter of its own (no global state), so two
  containers never share a namespace unless they are told to.
- :class:`IdMap` -- one line of ``/proc/<pid>/uid_map`` (or ``gid_map``): ``count`` ids from
  ``inside`` in the namespace are ``outside`` ... in the parent.  :func:`parse_id_map` and
  :func:`format_id_map` read and write the kernel's format (``%10u %10u %10u`` a line);
  :func:`rootless_maps` is Podman's rootless layout; :func:`to_host` and :func:`to_container`
  translate one id, giving the overflow id 65534 (``nobody``) for an unmapped one, as the kernel does.
- :class:`ProcessView` -- one process seen from both sides: PID 1 inside is PID N outside.

Bad input raises :class:`~sim.errors.InvalidSpecError` (a ``ValueError``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Final, Literal

from sim.errors import InvalidSpecError

__all__ = [
    "NamespaceKind", "NAMESPACE_KINDS", "NamespaceSet", "HOST_NAMESPACES", "NamespaceAllocator",
    "IdMap", "parse_id_map", "format_id_map", "rootless_maps", "to_host", "to_container",
    "OVERFLOW_ID", "MAX_EXTENTS", "ProcessView",
]

NamespaceKind = Literal["mnt", "pid", "net", "uts", "ipc", "user", "cgroup"]
NAMESPACE_KINDS: Final[tuple[NamespaceKind, ...]] = ("mnt", "pid", "net", "uts", "ipc", "user", "cgroup")

#: The id an unmapped uid or gid reads as (``/proc/sys/kernel/overflowuid``): ``nobody``.
OVERFLOW_ID: Final = 65534
#: How many lines a uid_map or gid_map may have (Linux 4.15 and later).
MAX_EXTENTS: Final = 340
#: 2**32 - 1 is ``(uid_t) -1``, never a valid id: every mapped id is below it.
_ID_LIMIT = 2**32 - 1

_NS_ID = re.compile(r"([a-z]+):\[([0-9]+)\]", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class NamespaceSet:
    """The namespaces one process is in, one id per kind, as ``"<kind>:[<inode>]"``.  Two
    processes share a namespace exactly when their ids of that kind are equal."""

    mnt: str
    pid: str
    net: str
    uts: str
    ipc: str
    user: str
    cgroup: str

    def __post_init__(self) -> None:
        for kind in NAMESPACE_KINDS:
            value = getattr(self, kind)
            match = _NS_ID.fullmatch(value) if isinstance(value, str) else None
            if match is None or match.group(1) != kind:
                raise InvalidSpecError(f"{kind} namespace id must read '{kind}:[<inode>]', not {value!r}")

    def get(self, kind: NamespaceKind) -> str:
        if kind not in NAMESPACE_KINDS:
            raise InvalidSpecError(f"unknown namespace kind {kind!r}: one of {', '.join(NAMESPACE_KINDS)}")
        value: str = getattr(self, kind)
        return value

    def inode(self, kind: NamespaceKind) -> int:
        """The inode number of that namespace (what ``stat -L /proc/<pid>/ns/<kind>`` shows)."""
        return int(self.get(kind).split("[", 1)[1][:-1])

    def shared_with(self, other: NamespaceSet) -> tuple[NamespaceKind, ...]:
        """The kinds in which both are in the same namespace, in :data:`NAMESPACE_KINDS` order."""
        return tuple(kind for kind in NAMESPACE_KINDS if self.get(kind) == other.get(kind))


def _ids(**inodes: int) -> NamespaceSet:
    return NamespaceSet(**{kind: f"{kind}:[{inodes[kind]}]" for kind in NAMESPACE_KINDS})


#: The initial namespaces, numbered as Linux numbers them (``include/linux/proc_ns.h``; mnt and
#: net got fixed numbers in Linux 6.x, older kernels number those two at boot).
HOST_NAMESPACES: Final = _ids(ipc=0xEFFFFFFF, uts=0xEFFFFFFE, user=0xEFFFFFFD, pid=0xEFFFFFFC, cgroup=0xEFFFFFFB,
                              net=0xEFFFFFF9, mnt=0xEFFFFFF8)


class NamespaceAllocator:
    """Makes new namespaces with fake inode numbers ``next_inode``, ``next_inode + 1`` ...: one
    allocator per model (an engine keeps ``next_inode`` in its state to continue after a restart)."""

    #: Where new namespaces' numbers start (the kernel's come from 0xF0000000 = 4026531840 up).
    FIRST_INODE: Final = 4026532001

    def __init__(self, *, next_inode: int = FIRST_INODE) -> None:
        if isinstance(next_inode, bool) or not isinstance(next_inode, int) or not 0xF0000000 <= next_inode < 2**32:
            raise InvalidSpecError(f"next_inode must be an integer from 4026531840 to 4294967295, not {next_inode!r}")
        self._next = next_inode

    @property
    def next_inode(self) -> int:
        return self._next

    @property
    def host(self) -> NamespaceSet:
        return HOST_NAMESPACES

    def unshare(self, kinds: Iterable[NamespaceKind] = NAMESPACE_KINDS, *,
                parent: NamespaceSet = HOST_NAMESPACES) -> NamespaceSet:
        """``unshare(2)``: ``parent``'s namespaces with a new one for each of ``kinds`` (numbered in
        :data:`NAMESPACE_KINDS` order, whatever order ``kinds`` has)."""
        wanted = set(kinds)
        unknown = wanted - set(NAMESPACE_KINDS)
        if unknown:
            raise InvalidSpecError(f"unknown namespace kinds {sorted(unknown)}: one of {', '.join(NAMESPACE_KINDS)}")
        if not isinstance(parent, NamespaceSet):
            raise InvalidSpecError(f"parent must be a NamespaceSet, not {type(parent).__name__}")
        new = [kind for kind in NAMESPACE_KINDS if kind in wanted]
        if self._next + len(new) > 2**32:
            raise InvalidSpecError("the allocator has run out of inode numbers")
        ids = {kind: parent.get(kind) for kind in NAMESPACE_KINDS}
        for kind in new:
            ids[kind] = f"{kind}:[{self._next}]"
            self._next += 1
        return NamespaceSet(**ids)

    def for_container(self, *, host_network: bool = False, user_namespace: bool = False) -> NamespaceSet:
        """A container's namespaces as layerlab makes them: new mnt, pid, uts, ipc and cgroup; a new
        net unless ``host_network`` (``network="host"``); a new user namespace only when
        ``user_namespace`` (rootless), since a root engine runs containers in the host's."""
        kinds: list[NamespaceKind] = ["mnt", "pid", "uts", "ipc", "cgroup"]
        if not host_network:
            kinds.append("net")
        if user_namespace:
            kinds.append("user")
        return self.unshare(kinds)


@dataclass(frozen=True)
class IdMap:
    """``count`` ids from ``inside`` (in the namespace) are ``outside`` ... (in its parent): one line
    of ``uid_map``.  Every mapped id on either side is below 4294967295."""

    inside: int
    outside: int
    count: int

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidSpecError(f"id map {f.name} must be a non-negative integer, not {value!r}")
        if self.count < 1:
            raise InvalidSpecError("an id map line maps at least one id (count >= 1)")
        if self.inside + self.count > _ID_LIMIT or self.outside + self.count > _ID_LIMIT:
            raise InvalidSpecError(f"id map {self.inside} {self.outside} {self.count} runs past 4294967294")

    def __str__(self) -> str:
        """The line as the kernel prints it, without the newline."""
        return f"{self.inside:10d} {self.outside:10d} {self.count:10d}"


def _check_maps(maps: Sequence[IdMap]) -> tuple[IdMap, ...]:
    maps = tuple(maps)
    if not all(isinstance(m, IdMap) for m in maps):
        raise InvalidSpecError("an id map is a sequence of IdMap")
    if len(maps) > MAX_EXTENTS:
        raise InvalidSpecError(f"an id map has at most {MAX_EXTENTS} lines, not {len(maps)}")
    # The kernel refuses a map whose ranges overlap on either side: each id maps one way.
    for side in ("inside", "outside"):
        spans = sorted((getattr(m, side), getattr(m, side) + m.count) for m in maps)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise InvalidSpecError(f"id map ranges overlap {side} the namespace (at {start})")
    return maps


def parse_id_map(text: str) -> tuple[IdMap, ...]:
    """The lines of a ``/proc/<pid>/uid_map`` or ``gid_map`` (three unsigned numbers a line, any
    spacing; a final newline optional).  Empty text is a namespace nothing is mapped into yet."""
    if not isinstance(text, str):
        raise InvalidSpecError(f"an id map is text, not {type(text).__name__}")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    maps = []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if len(words) != 3 or not all(_DIGITS.fullmatch(w) for w in words):
            raise InvalidSpecError(f"id map line {number}: expected 'INSIDE OUTSIDE COUNT', got {line!r}")
        maps.append(IdMap(*(int(w) for w in words)))
    return _check_maps(maps)


def format_id_map(maps: Sequence[IdMap]) -> str:
    """``maps`` as the kernel prints them: ``%10u %10u %10u\\n`` a line (empty for no lines)."""
    return "".join(f"{m}\n" for m in _check_maps(maps))


def _check_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _ID_LIMIT:
        raise InvalidSpecError(f"{what} must be an integer from 0 to 4294967294, not {value!r}")
    return value


def rootless_maps(uid: int, subordinate: tuple[int, int] | None) -> tuple[IdMap, ...]:
    """Podman's rootless layout for a caller ``uid`` with an ``/etc/subuid`` range
    ``(start, count)`` or none: 0 inside is ``uid`` outside, then 1 ... ``count`` inside are
    ``start`` ... outside.  Without a range, only uid 0 exists inside (every other id reads as
    65534).  The range may not contain ``uid`` itself (the kernel refuses overlaps)."""
    _check_id(uid, "uid")
    maps = [IdMap(0, uid, 1)]
    if subordinate is not None:
        if not isinstance(subordinate, tuple) or len(subordinate) != 2:
            raise InvalidSpecError(f"a subordinate range is (start, count), not {subordinate!r}")
        start, count = _check_id(subordinate[0], "subordinate start"), subordinate[1]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidSpecError(f"a subordinate range has a count of at least 1, not {count!r}")
        if start <= uid < start + count:
            raise InvalidSpecError(f"the subordinate range {start}..{start + count - 1} contains the caller's uid {uid}")
        maps.append(IdMap(1, start, count))
    return _check_maps(maps)


def to_host(maps: Sequence[IdMap], uid: int) -> int:
    """The host's id for ``uid`` inside the namespace, or 65534 when ``maps`` do not map it."""
    _check_id(uid, "uid")
    for m in _check_maps(maps):
        if m.inside <= uid < m.inside + m.count:
            return m.outside + (uid - m.inside)
    return OVERFLOW_ID


def to_container(maps: Sequence[IdMap], uid: int) -> int:
    """The namespace's id for the host's ``uid``, or 65534 when ``maps`` do not map it (a file
    such a uid owns shows as owned by ``nobody`` inside)."""
    _check_id(uid, "uid")
    for m in _check_maps(maps):
        if m.outside <= uid < m.outside + m.count:
            return m.inside + (uid - m.outside)
    return OVERFLOW_ID


@dataclass(frozen=True)
class ProcessView:
    """One process seen from its own PID namespace (``pid_inside``) and from the host's
    (``pid_outside``): the container's command is PID 1 inside and an ordinary PID outside."""

    pid_inside: int
    pid_outside: int
    command: str

    def __post_init__(self) -> None:
        for what in ("pid_inside", "pid_outside"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4194304:
                raise InvalidSpecError(f"{what} must be a PID from 1 to 4194304 (PID_MAX_LIMIT), not {value!r}")
        if not isinstance(self.command, str) or not self.command:
            raise InvalidSpecError(f"command must be a non-empty string, not {self.command!r}")

    def __str__(self) -> str:
        return f"PID {self.pid_inside} inside is PID {self.pid_outside} outside ({self.command})"
