"""Calls that could fail for two reasons at once: the shapes, the stack that holds every fault, and
the arguments that produce both.

A *fault* is one reason a call can fail, placed in one spot of one path argument:

* in the walk (an intermediate component): ``missing`` (ENOENT), ``notdir`` (a file, ENOTDIR),
  ``whiteout`` (a lower directory an upper layer deletes, ENOENT), ``loop`` (a symlink to itself,
  ELOOP), ``dangling`` (a symlink to nothing, ENOENT), ``long`` (a name over NAME_MAX,
  ENAMETOOLONG), ``pathmax`` (the whole path over PATH_MAX, ENAMETOOLONG);
* at the final name: ``exists`` (a file), ``dir`` (an empty directory), ``notempty``,
  ``lowerdir`` (a directory with lower content: EXDEV for rename), ``missing``, ``whiteout``,
  ``long``, ``loop``, ``dot`` and ``dotdot``, ``symlink``;
* the spelling: ``slash`` (a trailing ``/``).

A :class:`Shape` is one operation with two faults, in one argument (``missing`` parent and an
``exists`` final name: ``/nope/f``) or one in each (a missing ``link`` source and an existing
target), or a read-only mount and one fault.  :func:`double_fault_shapes` lists every shape of
:data:`FAULT_OPERATIONS` on a writable mount, :func:`read_only_shapes` those with the mount;
:func:`build_call` turns a shape into the :class:`~sim.testing.Operation` on the stack of
:func:`fault_layers` (or wherever a ``names`` mapping says the faults are: the
``double_fault`` rule of :class:`~sim.testing.DifferentialMachine` finds them in any mount).
Which of these is *really* a double fault (both faults fail alone) is the kernel's to say: the
errno-order test asks it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sim.layers.layer import Layer
from sim.testing._strategies import PAST_MTIMES_NS, Operation

__all__ = [
    "LONG_NAME", "WALK_FAULTS", "FINAL_FAULTS", "FAULT_OPERATIONS", "FIXTURE_NAMES", "Fault", "PathSpec", "Shape",
    "fault_layers", "double_fault_shapes", "single_fault_specs", "build_call", "call_for", "path_of", "iter_shapes",
    "needed_names", "read_only_shapes",
]

#: One component over NAME_MAX (255 bytes).
LONG_NAME = "n" * 256
#: ``"./"`` repeated past PATH_MAX (4096 bytes with the NUL).
_PATHMAX_PREFIX = "./" * 2049

#: Intermediate components of :func:`fault_layers`, each a reason the walk stops.
WALK_FAULTS: dict[str, str] = {
    "missing": "nope", "notdir": "f", "whiteout": "w", "loop": "loop", "dangling": "dl", "long": LONG_NAME,
    "pathmax": _PATHMAX_PREFIX,
}
#: Final names of :func:`fault_layers`, each a reason some call on it fails.
FINAL_FAULTS: dict[str, str] = {
    "exists": "f", "dir": "ed", "notempty": "ne", "lowerdir": "d", "missing": "nope", "whiteout": "wf",
    "long": LONG_NAME, "loop": "loop", "dot": ".", "dotdot": "..", "symlink": "sd",
}


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` is ``"walk"``, ``"final"`` or ``"slash"``; ``name`` a key of
    :data:`WALK_FAULTS` or :data:`FINAL_FAULTS` (``"slash"`` for the trailing slash)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.kind != "slash" else "slash"


@dataclass(frozen=True)
class PathSpec:
    """A path argument: up to two walk faults (outermost first), a final fault or the
    operation's ordinary name (``final=None``), and a trailing slash or not."""

    walk: tuple[str, ...] = ()
    final: str | None = None
    slash: bool = False

    @property
    def faults(self) -> tuple[Fault, ...]:
        return (tuple(Fault("walk", w) for w in self.walk) + ((Fault("final", self.final),) if self.final else ())
                + ((Fault("slash", "slash"),) if self.slash else ()))


#: Operation -> the role of each path argument: ``"use"`` (an existing object is acted on),
#: ``"create"`` (a new name) or ``"source"``.  Every role has an ordinary name in the stack.
FAULT_OPERATIONS: dict[str, tuple[str, ...]] = {
    "stat": ("use",), "lstat": ("use",), "listdir": ("dir",), "readlink": ("link",), "chmod": ("use",),
    "truncate": ("use",), "utime": ("use",), "open_read": ("use",), "open_write": ("use",),
    "open_trunc": ("use",), "open_create": ("create",), "open_excl": ("create",), "mkdir": ("create",),
    "rmdir": ("dir",), "unlink": ("use",), "symlink": ("create",),
    "link": ("use", "create"), "link_nofollow": ("use", "create"), "rename": ("use", "create"),
}
_ORDINARY = {"use": "f", "dir": "ed", "link": "sd"}  # "create" gets a fresh name per call


@dataclass(frozen=True)
class Shape:
    """One operation and its path arguments, two faults in all; with ``read_only`` the mount
    (``MS_RDONLY``: ``EROFS`` for a call that writes) is one of the two."""

    op: str
    paths: tuple[PathSpec, ...]
    read_only: bool = False

    @property
    def faults(self) -> tuple[tuple[int, Fault], ...]:
        """Every fault with the index of the argument it is in."""
        return tuple((i, f) for i, spec in enumerate(self.paths) for f in spec.faults)

    def __str__(self) -> str:
        words = (["read-only"] if self.read_only else []) + [
            f"arg{i}={f}" if len(self.paths) > 1 else str(f) for i, f in self.faults]
        return f"{self.op}({' + '.join(words)})"


def fault_layers() -> list[Layer]:
    """The lower stack (bottom first) that holds every fault: ``d/`` (``d/f``), ``f``, ``loop ->
    loop``, ``dl -> nope``, ``sd -> d``, ``w/`` (``w/x``) and ``wf`` (both whited out by the top
    layer), ``ne/`` (``ne/x``) and the empty ``ed/``, all owned by root with past mtimes."""
    t = PAST_MTIMES_NS[0]
    bottom = Layer()
    bottom.add_dir("d", mtime_ns=t)
    bottom.add_file("d/f", b"lower", mtime_ns=t)
    bottom.add_file("f", b"file", mtime_ns=t)
    bottom.add_symlink("loop", "loop", mtime_ns=t)
    bottom.add_symlink("dl", "nope", mtime_ns=t)
    bottom.add_symlink("sd", "d", mtime_ns=t)
    bottom.add_dir("w", mtime_ns=t)
    bottom.add_file("w/x", b"hidden", mtime_ns=t)
    bottom.add_file("wf", b"hidden", mtime_ns=t)
    bottom.add_dir("ne", mtime_ns=t)
    bottom.add_file("ne/x", b"", mtime_ns=t)
    bottom.add_dir("ed", mtime_ns=t)
    top = Layer()
    top.add_whiteout("w")
    top.add_whiteout("wf")
    return [bottom.freeze(), top.freeze()]


def single_fault_specs(role: str) -> list[PathSpec]:
    """Every path argument with exactly one fault, for an argument of ``role``."""
    specs = [PathSpec(walk=(w,)) for w in WALK_FAULTS]
    specs += [PathSpec(final=f) for f in FINAL_FAULTS]
    specs.append(PathSpec(slash=True))
    del role  # the same faults for every role: whether one is a fault for the call is the kernel's answer
    return specs


def _double_specs() -> list[PathSpec]:
    """Every path argument with exactly two faults."""
    specs = [PathSpec(walk=(a, b)) for a, b in itertools.permutations(WALK_FAULTS, 2) if a != "pathmax" or b != "pathmax"]
    specs = [s for s in specs if "pathmax" not in s.walk[1:]]  # PATH_MAX is the whole path: only outermost
    specs += [PathSpec(walk=(w,), final=f) for w in WALK_FAULTS for f in FINAL_FAULTS]
    specs += [PathSpec(walk=(w,), slash=True) for w in WALK_FAULTS]
    specs += [PathSpec(final=f, slash=True) for f in FINAL_FAULTS]
    return specs


def double_fault_shapes() -> list[Shape]:
    """Every operation of :data:`FAULT_OPERATIONS` with two faults: both in one argument (the
    others ordinary), or, for two-path operations, one in each."""
    doubles = _double_specs()
    shapes: list[Shape] = []
    for op, roles in FAULT_OPERATIONS.items():
        for i in range(len(roles)):
            shapes += [Shape(op, tuple(spec if j == i else PathSpec() for j in range(len(roles)))) for spec in doubles]
        if len(roles) == 2:
            shapes += [Shape(op, (a, b)) for a in single_fault_specs(roles[0]) for b in single_fault_specs(roles[1])]
    return shapes


#: Fault (``"walk:x"``, ``"final:x"``) or ordinary name (``"use"``, ``"dir"``, ``"link"``) -> the
#: path (from the root, no leading slash) that holds it in :func:`fault_layers`.
FIXTURE_NAMES: dict[str, str] = {
    **{f"walk:{k}": v for k, v in WALK_FAULTS.items()}, **{f"final:{k}": v for k, v in FINAL_FAULTS.items()},
    **_ORDINARY,
}


def read_only_shapes() -> list[Shape]:
    """Every operation of :data:`FAULT_OPERATIONS` on a read-only mount with one more fault in
    one argument (the others ordinary)."""
    return [Shape(op, tuple(spec if j == i else PathSpec() for j in range(len(roles))), read_only=True)
            for op, roles in FAULT_OPERATIONS.items() for i in range(len(roles)) for spec in single_fault_specs(roles[i])]


def path_of(spec: PathSpec, role: str, fresh: str, names: Mapping[str, str] = FIXTURE_NAMES) -> str:
    """The path ``spec`` spells for an argument of ``role``: its walk faults' names, then its
    final fault's name, or the role's ordinary name (``fresh``, a new name, for ``"create"``),
    and a trailing slash; ``names`` says where each fault lives (default :func:`fault_layers`)."""
    final = names[f"final:{spec.final}"] if spec.final else (fresh if role == "create" else names[role])
    head = "/"
    for w in spec.walk:
        head += names[f"walk:{w}"] if w == "pathmax" else names[f"walk:{w}"] + "/"
    return head + final + ("/" if spec.slash else "")


def build_call(shape: Shape, fresh: str = "new", names: Mapping[str, str] = FIXTURE_NAMES) -> Operation:
    """The call ``shape`` names (``fresh``: the base of new names, each argument gets its own;
    ``names``: where the faults live, default the stack of :func:`fault_layers`)."""
    roles = FAULT_OPERATIONS[shape.op]
    args = [path_of(spec, role, f"{fresh}{i}", names) for i, (spec, role) in enumerate(zip(shape.paths, roles))]
    return call_for(shape.op, args)


def call_for(op: str, args: list[str]) -> Operation:
    """The :class:`~sim.testing.Operation` for fault operation ``op`` on ``args``."""
    p = args[0]
    simple: dict[str, tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]] = {
        "stat": ("stat", (p,), ()), "lstat": ("lstat", (p,), ()), "listdir": ("listdir", (p,), ()),
        "readlink": ("readlink", (p,), ()), "chmod": ("chmod", (p, 0o640), ()), "truncate": ("truncate", (p, 1), ()),
        "utime": ("utime", (p,), (("ns", (PAST_MTIMES_NS[1], PAST_MTIMES_NS[1])),)),
        "open_read": ("open", (p, os.O_RDONLY), ()), "open_write": ("open", (p, os.O_WRONLY), ()),
        "open_trunc": ("open", (p, os.O_WRONLY | os.O_TRUNC), ()),
        "open_create": ("open", (p, os.O_WRONLY | os.O_CREAT, 0o644), ()),
        "open_excl": ("open", (p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), ()),
        "mkdir": ("mkdir", (p, 0o755), ()), "rmdir": ("rmdir", (p,), ()), "unlink": ("unlink", (p,), ()),
        "symlink": ("symlink", ("target", p), ()),
    }
    if op in simple:
        name, a, kw = simple[op]
        return Operation(name, a, kw)
    if op == "link":
        return Operation("link", (args[0], args[1]), (("follow_symlinks", True),))
    if op == "link_nofollow":
        return Operation("link", (args[0], args[1]), (("follow_symlinks", False),))
    return Operation("rename", (args[0], args[1]))


def needed_names(shape: Shape) -> list[str]:
    """The keys of a ``names`` mapping (see :data:`FIXTURE_NAMES`) that :func:`build_call` reads
    for ``shape``."""
    keys: list[str] = []
    for spec, role in zip(shape.paths, FAULT_OPERATIONS[shape.op]):
        keys += [f"walk:{w}" for w in spec.walk]
        if spec.final:
            keys.append(f"final:{spec.final}")
        elif role != "create":
            keys.append(role)
    return list(dict.fromkeys(keys))


def iter_shapes(ops: tuple[str, ...] | None = None) -> Iterator[Shape]:
    """:func:`double_fault_shapes`, restricted to ``ops`` when given."""
    for shape in double_fault_shapes():
        if ops is None or shape.op in ops:
            yield shape
