"""The model's virtual clock and its detached processes (虚拟时钟).

The model's shell runs synchronously (the run itself: :mod:`sim.containers._vclock_run`) and never waits: ``sleep N`` only moves a counter.  A detached
process is therefore run to its end at once, on a clock of its own: every write to stdout or stderr is
stamped with the virtual time it happened at, and the run ends at virtual time ``duration`` (or never,
when it blocks forever: ``sleep infinity``, or still running at the horizon).  The engine's
:class:`VirtualClock` then decides what is visible: a :class:`TimelineProcess` is running while the
clock is before its end, its logs are the writes stamped up to the clock, and ``wait``, ``stop``,
``kill`` and ``logs -f`` move the clock (``sleep 5; echo done`` then ``wait``: the clock moves 5 s
and ``done`` appears).  Nothing real ever waits, so the model is deterministic.

PID 1 of a model container has no signal handlers (the model's shell has no ``trap``), so, as for
PID 1 of a PID namespace on the kernel, every signal but SIGKILL is ignored: ``stop`` waits out the
grace period and kills (137) unless the run ends first.  What the simplification costs: the file
changes of a run are all made when it starts, also those a later kill would have prevented (see
docs/containers.md).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.containers._policy import SIGKILL
from sim.errors import ContainerStateError
from sim.images._durable import atomic_write

__all__ = ["VirtualClock", "TimelineProcess", "Timeline"]


class VirtualClock:
    """The model engine's time: starts at the wall clock, then moves only when told to.  With a
    ``path`` it is kept there, so the next engine over the same state folder goes on from it."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._now = time.time()
        self._seen: tuple[int, int] | None = None  # (inode, mtime) of the clock file when last read
        on_disk = self._on_disk()
        if on_disk is not None:
            self._now = on_disk
        elif path is not None and path.parent.is_dir():
            self._write()  # from now on the state folder's time moves only when told to

    def _on_disk(self) -> float | None:
        """The folder's time as another engine may have moved it; None without one (or damaged:
        the clock starts again from this engine's)."""
        if self.path is None:
            return None
        try:
            return float(json.loads(self.path.read_text())["now"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _changed_on_disk(self) -> bool:
        """The clock file was replaced since this engine last read or wrote it (a stat, not a read)."""
        try:
            st = os.stat(self.path) if self.path is not None else None
        except OSError:
            return False
        seen = (st.st_ino, st.st_mtime_ns) if st is not None else None
        changed, self._seen = seen != self._seen, seen
        return changed

    def now(self) -> float:
        """The virtual time: this engine's, or the folder's if another engine moved it further."""
        if self._changed_on_disk():
            on_disk = self._on_disk()
            if on_disk is not None and on_disk > self._now:
                self._now = on_disk
        return self._now

    def advance_to(self, when: float) -> None:
        """Move forward to ``when`` (never back: not behind where another engine moved the folder's time)."""
        if when > self.now() and math.isfinite(when):
            self._now = when
            self._write()

    def _write(self) -> None:
        if self.path is not None:
            # Under the folder's lock: two engines moving the clock at once keep the later time.
            with open(self.path.with_name(f".{self.path.name}.lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                on_disk = self._on_disk()
                self._now = max(self._now, on_disk) if on_disk is not None else self._now
                atomic_write(self.path, json.dumps({"now": self._now}).encode(), fault="clock")
                self._changed_on_disk()  # this engine's own write is no news to it


@dataclass(frozen=True)
class Timeline:
    """A detached run as the model computed it: ``chunks`` are (virtual seconds after the start,
    1 stdout / 2 stderr, bytes); ``duration`` is when it exits (``inf``: never), ``exit_code`` its
    status then."""

    chunks: tuple[tuple[float, int, bytes], ...]
    duration: float
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {"chunks": [[t, tag, data.decode("latin-1")] for t, tag, data in self.chunks],
                "duration": None if math.isinf(self.duration) else self.duration, "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        duration = data.get("duration")
        return cls(tuple((float(t), int(tag), str(b).encode("latin-1")) for t, tag, b in data["chunks"]),
                   math.inf if duration is None else float(duration), int(data["exit_code"]))


@dataclass
class TimelineProcess:
    """A detached model process: a :class:`Timeline` placed at ``start`` on ``clock``.  Has the
    handle protocol the engine drives (``running``, ``wait``, ``stop``, ``kill``, ``logs``); the
    clock moves in ``wait`` and ``stop`` as the real process would take time."""

    timeline: Timeline
    start: float
    clock: VirtualClock
    killed_at: float | None = None  # a SIGKILL cut the timeline here
    signals: list[int] = field(default_factory=list)  # what it was sent (and ignored, but SIGKILL)

    @property
    def end(self) -> float:
        """When it exits (virtual), ``inf`` when it never does."""
        return self.killed_at if self.killed_at is not None else self.start + self.timeline.duration

    @property
    def running(self) -> bool:
        return self.clock.now() < self.end

    @property
    def finished_at(self) -> float:
        return self.end

    @property
    def exit_code(self) -> int:
        return 128 + SIGKILL if self.killed_at is not None else self.timeline.exit_code

    def logs(self) -> bytes:
        """What it wrote up to the clock (stdout and stderr in the order they came)."""
        upto = min(self.clock.now(), self.end) - self.start
        return b"".join(data for t, _, data in self.timeline.chunks if t <= upto)

    def next_output(self) -> float:
        """The virtual time of its next write or its end, whichever comes first (``inf``: neither)."""
        now = self.clock.now()
        later = [self.start + t for t, _, _ in self.timeline.chunks if self.start + t > now]
        return min([*later[:1], self.end])

    def wait(self, timeout: float | None = None) -> int:
        """Move the clock to its end; :class:`TimeoutError` after ``timeout`` virtual seconds
        when it ends later, :class:`ContainerStateError` without one when it never ends."""
        if not self.running:
            return self.exit_code
        if timeout is not None and self.end > self.clock.now() + timeout:
            self.clock.advance_to(self.clock.now() + timeout)
            raise TimeoutError(f"still running after {timeout} s (virtual)")
        if math.isinf(self.end):
            raise ContainerStateError("the model's process is blocked forever (sleep infinity, or past the model's "
                                      "horizon): waiting would never end; stop or kill it")
        self.clock.advance_to(self.end)
        return self.exit_code

    def kill(self, sig: int = SIGKILL) -> None:
        if not self.running:
            raise ContainerStateError("the process has already exited")
        self.signals.append(sig)
        if sig == SIGKILL:  # PID 1 without handlers ignores the rest, as on the kernel
            self.killed_at = self.clock.now()

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM (ignored), then SIGKILL ``grace`` virtual seconds later unless it ended by then."""
        if not self.running:
            return self.exit_code
        self.signals.append(15)
        deadline = self.clock.now() + max(grace, 0.0) if grace >= 0 else math.inf
        if self.end <= deadline:
            self.clock.advance_to(self.end)
        else:
            self.clock.advance_to(deadline)
            self.killed_at = self.clock.now()
        return self.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {"timeline": self.timeline.to_dict(), "start": self.start, "killed_at": self.killed_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any], clock: VirtualClock) -> TimelineProcess:
        return cls(Timeline.from_dict(data["timeline"]), float(data["start"]), clock, data.get("killed_at"))
