"""A container's life after ``create``, the same on both backends: start (detached or not), wait, stop,
kill, logs (followed or not), the restart policy and ``--rm``.

The engine drives a *handle* per running process, which the backend supplies (``_spawn``): the
model's :class:`~sim.containers._vclock.TimelineProcess` on the virtual clock, the kernel's
:class:`realrt.containers.Process`, or a handle on a container another process supervises (the real
backend's monitor, ``remote = True``: the engine then only mirrors what that process records).  A
handle has ``running``, ``wait(timeout)``, ``stop(grace)``, ``kill(sig)`` and ``logs()``.

States, as ``docker ps`` shows them: ``created`` (never started), ``running``, ``restarting`` (ended,
waiting out the restart delay), ``exited`` (with its exit code and finished time).  The rules of
the restart policy and the signals are in :mod:`sim.containers._policy`.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.containers._container import Container, ProcessSpec, env_dict
from sim.containers._policy import SIGKILL, parse_signal, restart_delay
from sim.containers._vclock import TimelineProcess, VirtualClock
from sim.errors import ContainerStateError, InvalidSpecError, LayerlabError
from sim.interface import FileSystem
from sim.results import ExecResult

__all__ = ["LifecycleCommands"]

#: How often a follower looks again at a process another thread or process runs (seconds).
_POLL = 0.05


class LifecycleCommands:
    """``start``/``wait``/``stop``/``kill``/``logs``/``follow_logs`` of :class:`~sim.containers.core.EngineCore`."""

    containers_dir: Path | None
    _containers: dict[str, Container]
    _vclock: VirtualClock | None = None
    id_maps: Any

    # -- supplied by the engine (EngineCore) ------------------------------------------------------

    @abc.abstractmethod
    def _container(self, ref: str) -> Container: ...

    @abc.abstractmethod
    def _save(self, container: Container) -> str | None: ...

    @abc.abstractmethod
    def _spec(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ProcessSpec: ...

    @abc.abstractmethod
    def _run_in(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ExecResult: ...

    @abc.abstractmethod
    def container_fs(self, container: Container) -> FileSystem: ...

    @abc.abstractmethod
    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> int: ...

    @staticmethod
    @abc.abstractmethod
    def _with_layer_warning(result: ExecResult, problem: str | None) -> ExecResult: ...

    # -- time: the model's virtual clock; the real backend overrides both with the wall clock ---

    def _clock(self) -> VirtualClock:
        if self._vclock is None:
            self._vclock = VirtualClock(self.containers_dir.parent / "clock.json" if self.containers_dir else None)
        return self._vclock

    def _now(self) -> float:
        """The engine's time: virtual in the model (moved by wait, stop, logs -f), the wall clock on the kernel."""
        return self._clock().now()

    def _sleep_until(self, when: float) -> None:
        """Let time pass up to ``when``: the model moves its clock, the kernel sleeps."""
        self._clock().advance_to(when)

    def _spawn(self, container: Container, spec: ProcessSpec, at: float | None = None) -> Any:
        """Start ``spec`` in the background and return its handle.  The model runs it at once on
        the virtual clock from ``at`` (default now): see :mod:`sim.containers._vclock`."""
        from sim.containers._vclock_run import run_timed  # the shell is large: only when a model run starts

        start = self._now() if at is None else at
        timeline = run_timed(spec.argv, self.container_fs(container), env=env_dict(spec.env), cwd=spec.cwd,
                             uid=spec.uid, gid=spec.gid, hostname=spec.hostname, stdin=spec.stdin or b"",
                             groups=spec.groups, id_maps=self.id_maps, origin=start)
        return TimelineProcess(timeline, start, self._clock())

    def _resume(self, container: Container) -> None:
        """A container an earlier engine saved while it ran or waited to restart: the model picks its
        timeline up again (:meth:`TimelineProcess.from_dict`); a run without one died with its engine.
        The real backend overrides this (a live monitor's run goes on)."""
        if container.state == "running" and container.timeline is not None:
            container.process = TimelineProcess.from_dict(container.timeline, self._clock())
        elif container.state == "running":
            self._died_with_engine(container)
        container.timeline = None  # a restarting container needs nothing more: its next run is due at restart_at

    def _died_with_engine(self, container: Container) -> None:
        """A run whose engine (or monitor) was killed: exited 137 from now, as Docker reports it."""
        container.state, container.exit_code = "exited", 137
        container.finished_at = self._now()
        container.run_state = None

    # -- start -------------------------------------------------------------------------------------

    def start(self, ref: str, *, stdin: bytes | None = None, detach: bool = False,
              monitor: bool = False) -> ExecResult | None:
        """Run the container's command: to the end (its result), or ``detach`` and return None at
        once (``docker start``); :meth:`wait`, :meth:`stop`, :meth:`kill`, :meth:`logs` and
        :meth:`follow_logs` then apply, and the restart policy and ``--rm`` act when it ends.
        ``monitor`` (with ``detach``) hands the container to a process that outlives this engine
        (the real backend's monitor, as containerd-shim); the model keeps a detached run in its
        state folder anyway and ignores it.  :class:`ContainerStateError` if it is running."""
        container = self._container(ref)
        self._refresh(container)
        if container.state in ("running", "restarting"):
            raise ContainerStateError(f"container {container.name} is already running")
        container.stopped_by_user = False  # a manual start resets the restart manager, as moby's
        container.restart_delay, container.restart_count = 0.0, 0
        if detach:
            self._launch(container, stdin, monitor=monitor)
            self._refresh(container)
            return None
        container.started_at, container.finished_at = self._now(), None
        result = self._run_in(container, container.command, stdin=stdin)
        container.state, container.exit_code, container.finished_at = "exited", result.exit_code, self._now()
        container.logs += result.stdout + result.stderr
        return self._with_layer_warning(result, self._save(container))

    def _launch(self, container: Container, stdin: bytes | None, *, at: float | None = None,
                monitor: bool = False) -> None:
        spec = self._spec(container, container.command, stdin=stdin)
        if monitor:
            self._hand_to_monitor(container, spec)
        else:
            self._run_here(container, spec, at)

    def _run_here(self, container: Container, spec: ProcessSpec, at: float | None) -> None:
        container.process = self._spawn(container, spec, at)
        container.state, container.exit_code, container.restart_at = "running", None, None
        container.started_at, container.finished_at = self._now() if at is None else at, None
        self._save(container)

    def _hand_to_monitor(self, container: Container, spec: ProcessSpec) -> None:
        """The model has no processes to hand over: a detached run is kept in the state folder."""
        self._run_here(container, spec, None)

    # -- what happens when a process ends ------------------------------------------------------------

    def _refresh(self, container: Container) -> None:
        """Collect what ended since the last look: the exit code, finished time and output of each
        run, a restart whose delay is over, ``--rm``.  In the model several runs may end at once
        (the clock moved past them)."""
        for _ in range(10_000):  # an `always` container restarted many times while nobody looked
            process = container.process
            if process is not None and getattr(process, "remote", False):
                if not process.sync(container):  # its monitor removed it (--rm)
                    self._removed_elsewhere(container)
                return
            if process is not None:
                if process.running:
                    return
                self._collect(container, process)
                if container.id not in self._containers:
                    return  # --rm
                continue
            if container.state == "restarting" and container.restart_at is not None \
                    and self._now() >= container.restart_at:
                container.restart_count += 1
                try:
                    self._launch(container, None, at=container.restart_at if self._is_virtual() else None)
                except (LayerlabError, OSError):  # the restart itself failed: it stays down with its last code
                    container.state, container.restart_at = "exited", None
                    self._save(container)
                    return
                continue
            return

    def _is_virtual(self) -> bool:
        return True

    def _collect(self, container: Container, process: Any) -> None:
        code = process.wait(0)
        live = getattr(process, "logs", None)
        container.logs += live() if live is not None else process.stdout + process.stderr
        container.last_usage = getattr(process, "usage", lambda: None)()  # read before its cgroup went
        finished = getattr(process, "finished_at", None)
        container.process = None
        container.exit_code = code
        container.finished_at = float(finished) if finished is not None and math.isfinite(finished) else self._now()
        self._process_ended(container)
        ran_for = container.finished_at - (container.started_at or container.finished_at)
        if container.restart_policy.should_restart(code, container.restart_count,
                                                   stopped_by_user=container.stopped_by_user):
            container.restart_delay = restart_delay(container.restart_delay, ran_for)
            container.restart_at = container.finished_at + container.restart_delay
            container.state = "restarting"
            self._save(container)
            self._end_saved(container)
            return
        container.state, container.restart_at = "exited", None
        if container.auto_remove:
            self._auto_remove(container)
            return
        self._save(container)
        self._end_saved(container)

    def _auto_remove(self, container: Container) -> None:
        """``--rm``: the container goes once it exited, its anonymous volumes too."""
        self.remove(container.id, volumes=True)

    def _removed_elsewhere(self, container: Container) -> None:
        """The process supervising ``container`` removed it (``--rm``): forget it here too."""
        self._containers.pop(container.id, None)

    def _process_ended(self, container: Container) -> None:
        """A backend's clean-up after each run (the kernel's network namespace goes)."""

    def _end_saved(self, container: Container) -> None:
        """A run's end is saved (state, exit code, output; restarting or exited): a backend may tell
        others (the kernel's monitor logs it for a ``wait`` in another process)."""

    def _end_process(self, container: Container) -> None:
        """Kill a running process for ``rm -f`` or ``close``, wait for it and record its end (no
        restart, no ``--rm``: the caller decides).  A supervised one's supervisor is waited for too."""
        process = container.process
        if process is None:
            return
        container.stopped_by_user = True
        try:
            process.kill(SIGKILL)
        except ContainerStateError:
            pass  # it ended by itself meanwhile
        if getattr(process, "remote", False):
            process.release()  # until the monitor has written its last state and gone
            process.sync(container)
            container.process = None
            return
        code = process.wait(10)
        container.logs += process.logs()
        container.last_usage = getattr(process, "usage", lambda: None)()
        finished = getattr(process, "finished_at", None)
        container.exit_code, container.state, container.restart_at = code, "exited", None
        container.finished_at = float(finished) if finished is not None and math.isfinite(finished) else self._now()
        container.process = None
        self._process_ended(container)

    @staticmethod
    def _outlives_engine(container: Container) -> bool:
        """A run that goes on when its engine closes: a model timeline (kept in the state folder) or one
        another process supervises."""
        process = container.process
        return process is not None and (hasattr(process, "to_dict") or getattr(process, "remote", False))

    # -- wait, stop, kill -----------------------------------------------------------------------------

    def wait(self, ref: str, timeout: float | None = None) -> int:
        """``docker wait``: block until the container's current run ends and return its exit code
        (at once for a container that is not running; a restarting one waits for its next run to end).
        :class:`ContainerStateError` for one never started, :class:`TimeoutError` after ``timeout``."""
        container = self._container(ref)
        self._refresh(container)
        if container.state == "created":
            raise ContainerStateError(f"container {container.name} has not been started")
        process = container.process
        if process is not None and getattr(process, "remote", False):
            # Its supervisor restarts it on its own clock: the code is the one of the first run to end
            # from now on (the container may be running again by the time this returns).
            code = int(process.wait(timeout))
            self._refresh(container)
            return code
        deadline = None if timeout is None else self._now() + timeout
        if container.state == "restarting" and container.restart_at is not None:
            if deadline is not None and deadline < container.restart_at:
                self._sleep_until(deadline)
                raise TimeoutError(f"container {container.name} is still restarting after {timeout} s")
            self._sleep_until(container.restart_at)
            self._refresh(container)
        if container.process is not None:
            container.process.wait(None if deadline is None else max(0.0, deadline - self._now()))
            self._refresh(container)
        if container.exit_code is None:
            raise ContainerStateError(f"container {container.name} has not exited")
        return container.exit_code

    def stop(self, ref: str, grace: float = 10.0) -> int | None:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace`` seconds (``-t``; negative: no
        SIGKILL); the exit code (143 for a process that dies of SIGTERM, 137 after SIGKILL).  A
        stopped container is never restarted by its policy.  Not running: nothing happens."""
        try:
            grace = float(grace)
        except (TypeError, ValueError):
            raise InvalidSpecError(f"invalid stop timeout {grace!r}: a number of seconds") from None
        if math.isnan(grace):
            raise InvalidSpecError("invalid stop timeout nan: a number of seconds")
        container = self._container(ref)
        self._refresh(container)
        remote = getattr(container.process, "remote", False)
        if container.state == "restarting" and not remote:  # between two runs: it just stays stopped
            container.stopped_by_user = True
            container.state, container.restart_at = "exited", None
            if container.auto_remove:
                self._auto_remove(container)
            else:
                self._save(container)
            return container.exit_code
        if container.process is None or container.state not in ("running", "restarting"):
            return container.exit_code
        container.stopped_by_user = True
        container.process.stop(grace if grace >= 0 else math.inf)
        self._refresh(container)
        return container.exit_code

    def kill(self, ref: str, signal: int | str = SIGKILL) -> None:
        """``docker kill [-s SIG]``: send a signal (a number or a name, default SIGKILL) to PID 1.
        :class:`~sim.errors.InvalidSpecError` for an unknown signal and :class:`ContainerStateError`
        ("is not running") before anything is sent.  PID 1 ignores the signals it has no handler for
        (every one but SIGKILL in the model); a killed container is not restarted by its policy, and
        killing one that waits to restart cancels the restart (as moby does)."""
        sig = parse_signal(signal)
        container = self._container(ref)
        self._refresh(container)
        if container.state == "restarting":
            # moby: a restarting container counts as running; the signal goes nowhere, the restart is off.
            self.stop(ref, grace=0)
            return
        if container.process is None or container.state != "running":
            raise ContainerStateError(f"Cannot kill container: {ref}: container {container.id[:12]} is not running")
        container.stopped_by_user = True
        container.process.kill(sig)
        if sig == SIGKILL:
            container.process.wait(10)
        self._refresh(container)

    # -- logs -----------------------------------------------------------------------------------------

    def logs(self, ref: str) -> bytes:
        """``docker logs``: what the container wrote, stdout and stderr in the order they came, every
        run of it (restarts included); while a run goes on, what it has written so far."""
        container = self._container(ref)
        self._refresh(container)
        return self._logs_of(container)

    @staticmethod
    def _logs_of(container: Container) -> bytes:
        process = container.process
        live = getattr(process, "logs", None) if process is not None and not getattr(process, "remote", False) else None
        return container.logs + (live() if live is not None else b"")

    def follow_logs(self, ref: str) -> Iterator[bytes]:
        """``docker logs -f``: the logs so far, then each new piece as it comes, until the current run
        ends.  The model moves its clock from one write to the next; a model process blocked forever
        has nothing more to say, so following it ends there (on the kernel it would go on)."""
        # Looked up now, not at the first next(): an unknown container is an error before anything is read.
        return self._follow(self._container(ref))

    def _follow(self, container: Container) -> Iterator[bytes]:
        sent = 0
        while True:
            self._refresh(container)
            data = self._logs_of(container)
            if len(data) > sent:
                yield data[sent:]
                sent = len(data)
            process = container.process
            if process is None:
                return
            if isinstance(process, TimelineProcess):
                upcoming = process.next_output()
                if math.isinf(upcoming):
                    return
                self._sleep_until(upcoming)
            else:
                time.sleep(_POLL)
