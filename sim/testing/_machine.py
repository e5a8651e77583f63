"""A hypothesis state machine that runs the same calls on two backends' union mounts and compares.

The contract every backend of layerlab promises is "same value or same errno, and the same trees
afterwards"; :class:`DifferentialMachine` checks exactly that, so a subclass only adds rules.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from typing import Any, ClassVar, Self

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sim.errors import InvalidSpecError
from sim.interface import Engine, UnionMount
from sim.layers.layer import Directory, Layer, Whiteout
from sim.testing._faults import LONG_NAME, WALK_FAULTS, Shape, build_call, double_fault_shapes, needed_names
from sim.testing._snapshots import Outcome, layer_view, outcome, stat_view, tree
from sim.testing._strategies import Operation, mountable_layers, operations

#: Every double-fault shape, drawn by the ``double_fault`` rule (computed once: it is immutable).
_SHAPES: tuple[Shape, ...] = tuple(double_fault_shapes())


class DifferentialMachine(RuleBasedStateMachine):
    """Mount the same drawn layers on two engines, run every rule on both, demand agreement.

    Use it by binding two engines and running the bound class's ``TestCase``::

        class MyMachine(DifferentialMachine):
            @rule(path=sim.testing.mount_paths())
            def remove(self, path: str) -> None:
                self.both("unlink", path)

        TestMyMachine = MyMachine.bind(sim.connect("sim"), sim.connect("real")).TestCase

    What it checks, exactly:

    * ``mount`` (the one ``@initialize`` rule) draws a stack with :meth:`draw_layers` and mount
      options with :meth:`draw_options`, and mounts it with ``engine.union`` on both engines.
    * :meth:`both` calls the same ``os``-shaped method on both mounts: both must succeed or both
      fail; when both succeed the (normalised, see :meth:`normalise`) values must be equal, when
      both fail the errno names must be.  ``open`` is compared by success only (descriptors are
      per file system).  The inherited rule ``operate`` does this for one drawn
      :func:`~sim.testing.operations` call.
    * the inherited rule ``double_fault`` draws one of the double-fault shapes of
      :mod:`sim.testing._faults` (an operation and two faults: a missing parent and an existing
      target, a non-directory in the path and a long name, a whiteout and a trailing slash ...),
      finds in the mount (or first makes, with compared calls) the objects the faults need, and
      compares the call: both backends must report the same one of the two errors.
    * after every step (invariant ``same_tree``) the merged trees (:func:`~sim.testing.tree`) are
      equal; at teardown the upper layers (:func:`~sim.testing.layer_view`) are equal (unless a
      step already failed: its report is the one that names the call), then both mounts are
      unmounted, also when a check failed.

    ``examples`` and ``steps`` count, on the bound class, the stacks mounted and calls compared.
    """

    engines: ClassVar[tuple[Engine, Engine] | None] = None
    labels: ClassVar[tuple[str, str]] = ("left", "right")
    examples: ClassVar[int] = 0
    steps: ClassVar[int] = 0
    double_faults: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.mounts: list[UnionMount] = []
        self.layers: list[Layer] = []
        self.t0 = 0
        self.made = 0
        self.disagreed = False  # a compared call or tree differed: teardown then only unmounts
        self._view: dict[str, int] | None = None  # the left tree's kinds while a double fault is set up

    @classmethod
    def bind(
        cls, left: Engine, right: Engine, *, labels: tuple[str, str] | None = None, **settings_kwargs: Any
    ) -> type[Self]:
        """A subclass of this machine bound to ``left`` and ``right`` (``labels`` name them in
        messages; default their ``engine.name``), with fresh counters and, when given, its
        ``TestCase`` run under ``settings(**settings_kwargs)`` on top of the current profile."""
        if not (isinstance(left, Engine) and isinstance(right, Engine)):
            raise InvalidSpecError(f"bind takes two sim.Engine objects, not {type(left).__name__}, {type(right).__name__}")
        names = labels or (getattr(left, "name", "left"), getattr(right, "name", "right"))
        if names[0] == names[1]:
            names = (f"{names[0]} (left)", f"{names[1]} (right)")
        bound: type[Self] = type(cls.__name__, (cls,), {
            "engines": (left, right), "labels": names, "examples": 0, "steps": 0, "double_faults": 0, "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        })
        if settings_kwargs:
            bound.TestCase.settings = settings(settings(), **settings_kwargs)
        return bound

    # -- hooks a subclass overrides ------------------------------------------------------

    def draw_layers(self, data: st.DataObject) -> list[Layer]:
        """The lower layers (bottom first) to mount; default 1..4 :func:`~sim.testing.mountable_layers`."""
        return data.draw(st.lists(mountable_layers(), min_size=1, max_size=4), label="layers")

    def draw_options(self, data: st.DataObject) -> dict[str, Any]:
        """Keyword arguments for ``engine.union`` (``redirect_dir``, ``index``); default none."""
        return {}

    def normalise(self, name: str, got: Outcome) -> Outcome:
        """What of ``got`` (the outcome of method ``name``) must be equal: stat results as
        :func:`~sim.testing.stat_view`, ``listdir`` sorted, ``open`` only its success."""
        if got[0] != "ok":
            return got
        if name in ("stat", "lstat"):
            return ("ok", stat_view(got[1], self.t0))
        if name == "listdir":
            return ("ok", sorted(got[1]))
        if name == "open":
            return ("ok", "a descriptor")
        return got

    # -- the machinery -------------------------------------------------------------------

    @initialize(data=st.data())
    def mount(self, data: st.DataObject) -> None:
        engines = type(self).engines
        if engines is None:
            raise InvalidSpecError(f"{type(self).__name__} has no engines: run {type(self).__name__}.bind(a, b).TestCase")
        layers = self.layers = self.draw_layers(data)
        for i, layer in enumerate(layers):
            note(f"layer {i}: {layer.items()}")
        options = self.draw_options(data)
        self.t0 = time.time_ns()
        type(self).examples += 1
        for engine in engines:
            self.mounts.append(engine.union(layers, **options))

    @property
    def left(self) -> UnionMount:
        """The mount on the first bound engine."""
        return self.mounts[0]

    @property
    def right(self) -> UnionMount:
        """The mount on the second bound engine."""
        return self.mounts[1]

    def both(self, name: str, *args: Any, **kwargs: Any) -> tuple[Outcome, Outcome]:
        """Call ``mount.<name>(*args, **kwargs)`` on both mounts and assert they agree (see the
        class docstring); returns both raw outcomes, left first."""
        type(self).steps += 1
        raw = [outcome(_call(m, name, args, kwargs)) for m in self.mounts]
        left, right = (self.normalise(name, g) for g in raw)
        words = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        self.disagreed = left != right
        assert left == right, f"{name}({', '.join(words)}): {self.labels[0]} {left}, {self.labels[1]} {right}"
        return raw[0], raw[1]

    def run(self, op: Operation) -> tuple[Outcome, Outcome]:
        """:meth:`both` for one :class:`~sim.testing.Operation`."""
        return self.both(op.name, *op.args, **dict(op.kwargs))

    @rule(op=operations())
    def operate(self, op: Operation) -> None:
        self.run(op)

    @rule(data=st.data())
    def double_fault(self, data: st.DataObject) -> None:
        shape = data.draw(st.sampled_from(_SHAPES), label="double fault")
        self._view = None
        names = {key: self._fault_name(key) for key in needed_names(shape)}
        note(f"double fault {shape}")
        type(self).double_faults += 1
        got = self.run(build_call(shape, self._fresh("zn"), names))
        if shape.op.startswith("open"):
            for mount, (status, fd) in zip(self.mounts, got):
                if status == "ok":
                    mount.close(fd)

    def _fresh(self, base: str) -> str:
        """A name no rule has used: the alphabets of the strategies never spell ``z...``."""
        self.made += 1
        return f"{base}{self.made}"

    def _fault_name(self, key: str) -> str:
        """Where, from the root, the left mount holds the fault or ordinary name ``key`` (see
        :data:`sim.testing._faults.FIXTURE_NAMES`); what is not there yet is made on both
        mounts first, each call compared."""
        kind = key.partition(":")[2] or key
        if kind in ("missing", "long", "pathmax", "dot", "dotdot"):
            return {"missing": self._fresh("zmissing"), "long": LONG_NAME, "pathmax": WALK_FAULTS["pathmax"],
                    "dot": ".", "dotdot": ".."}[kind]
        if self._view is None:
            self._view = {p[1:]: v[0] for p, v in tree(self.left, self.t0).items() if len(v) > 1}
        kinds = self._view
        dirs = [p for p, k in kinds.items() if k == stat.S_IFDIR]
        full = {p.rpartition("/")[0] for p in kinds if "/" in p}
        if kind in ("notdir", "exists", "use"):
            files = sorted(p for p, k in kinds.items() if k == stat.S_IFREG)
            return files[0] if files else self._make("write_bytes", "zf", b"x")
        if kind in ("dir", "notempty"):
            found = sorted(p for p in dirs if (p in full) == (kind == "notempty"))
            if found:
                return found[0]
            name = self._make("mkdir", "zd")
            if kind == "notempty":
                self.both("write_bytes", f"/{name}/x", b"")
            return name
        if kind == "lowerdir":
            lower = sorted(p for p in dirs if any(isinstance(layer.get(p), Directory) for layer in self.layers))
            return lower[0] if lower else self._fault_name("final:notempty")
        if kind == "whiteout":
            hidden = sorted(p for p, e in self.left.upper.items() if isinstance(e, Whiteout)
                            and p not in kinds and (p.rpartition("/")[0] in kinds or "/" not in p))
            if hidden:
                return hidden[0]
            lower = sorted(p for p, k in kinds.items() if k != stat.S_IFDIR and any(layer.get(p) for layer in self.layers))
            if lower:
                self._view = None
                self.both("unlink", "/" + lower[0])
                return lower[0]
            return self._fresh("zmissing")
        target = {"loop": None, "dangling": self._fresh("zmissing"), "symlink": "/", "link": "/"}[kind]
        name = self._fresh("zl")
        self._view = None
        self.both("symlink", target or name, "/" + name)
        return name

    def _make(self, call: str, base: str, *args: Any) -> str:
        self._view = None
        name = self._fresh(base)
        self.both(call, "/" + name, *args)
        return name

    @invariant()
    def same_tree(self) -> None:
        if len(self.mounts) == 2:
            left, right = (tree(m, self.t0) for m in self.mounts)
            self.disagreed = left != right
            assert left == right, f"merged trees differ: {self.labels[0]} {left}, {self.labels[1]} {right}"

    def teardown(self) -> None:
        try:
            if len(self.mounts) == 2 and not self.disagreed:  # else the failed step's report stands
                left, right = (layer_view(m.upper, self.t0) for m in self.mounts)
                assert left == right, f"upper layers differ: {self.labels[0]} {left}, {self.labels[1]} {right}"
        finally:
            for mount in self.mounts:
                mount.unmount()


def _call(mount: UnionMount, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], Any]:
    # A function per mount: a lambda in the comprehension would see only the last mount.
    return lambda: getattr(mount, name)(*args, **kwargs)
