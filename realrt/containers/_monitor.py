"""The monitor of a detached container (layerlab's containerd-shim / conmon): a process that outlives
the ``layerlab run -d`` that started it.

:func:`spawn` starts ``python -m realrt.containers monitor ...`` (``__main__`` there hands
:func:`main` the :class:`~realrt.engine.RealEngine` class, so this module never imports the engine), which forks once more and lets its
first process exit, so the monitor is nobody's child and in a session of its own: the command line
returns, the monitor stays.  The monitor opens a :class:`~realrt.engine.RealEngine` over the same state
folder, starts the container there (it is the parent of the container's first process and reaps it),
and reports "started" or the error of the start back through a pipe, so ``run -d`` fails as a foreground
run would.  Then it supervises: it appends the output to the container's ``logs`` file as it comes,
writes each change of state (running, exited with its code and finished time, restarting, the restart
count) atomically to ``config.json``, applies the restart policy and ``--rm``, and serves the ``stop``
and ``kill`` requests other processes leave in ``requests/`` (:mod:`realrt.containers._remote`).  When
the container has ended for good it writes the last state, closes its engine and exits.

Everything it creates (the container's process, mounts, cgroup, network namespace) is journalled
with the monitor as owner: a monitor killed with SIGKILL leaves records that the next engine's sweep
undoes, and that engine reads the container as exited 137.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realrt._syscalls import readable
from realrt.journal import start_time
from sim.errors import BackendUnavailableError, ContainerStateError
from sim.images._faults import FAULT_ACTION_VARIABLE, FAULT_VARIABLE

__all__ = ["spawn", "main"]

_TICK = 0.05  # how often the monitor looks at its container when nothing wakes it
_GRACE = 10.0  # how long a monitor that did not start in time has for SIGTERM, then SIGKILL


def spawn(state_dir: Path, container_id: str, *, rootless: bool, timeout: float = 120.0) -> tuple[int, int]:
    """Start the monitor of ``container_id`` and return ``(pid, start time)`` once the container runs;
    raise what the start raised (the same errors as a foreground start).  A monitor that has not
    reported within ``timeout`` seconds is sent SIGTERM (through a pidfd checked against its start
    time), then SIGKILL if it is still there after :data:`_GRACE` seconds, and waited for; the call then
    raises :class:`~sim.errors.BackendUnavailableError` (what it held is the next engine's sweep's)."""
    deadline = time.monotonic() + timeout
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    argv = [sys.executable, "-m", "realrt.containers", "monitor", str(state_dir), container_id,
            "rootless" if rootless else "root", str(write_end)]
    errors = Path(state_dir) / "containers" / container_id / "monitor.err"
    # The monitor runs the code this process runs (a source checkout too, not only an installed one).
    source = str(Path(__file__).resolve().parents[2])
    env = {name: value for name, value in os.environ.items() if name not in (FAULT_VARIABLE, FAULT_ACTION_VARIABLE)}
    # A crash test's fault point is meant for the engine it stops, never for a monitor nobody waits for.
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        with open(errors, "ab") as err:
            first = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                     pass_fds=(write_end,), start_new_session=True, env=env, cwd="/")
        os.close(write_end)
        write_end = -1
        try:
            first.wait(max(0.0, deadline - time.monotonic()))  # it exits as soon as the monitor is forked off
            late = False
        except subprocess.TimeoutExpired:
            first.kill()  # not forked yet, or just now: a monitor it made has written its pid below
            first.wait()
            late = True
        data, complete = _read_until(read_end, deadline)
        complete = complete and not late
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    header, _, report = data.partition(b"\n")
    if not complete:
        fields = header.split()
        if len(fields) == 2:
            _terminate(int(fields[0]), int(fields[1]))
        raise BackendUnavailableError(f"the monitor of container {container_id[:12]} did not start it within "
                                      f"{timeout:g} s: it was stopped (see {errors})")
    if not report:
        detail = errors.read_text(errors="replace").strip().splitlines()[-1:] if errors.exists() else []
        raise BackendUnavailableError(f"the container's monitor died before starting it: {' '.join(detail)}")
    outcome = pickle.loads(report)
    if isinstance(outcome, BaseException):
        raise outcome
    pid, started = outcome
    return int(pid), int(started)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """What the pipe ``fd`` gives until EOF (True) or ``deadline`` (False)."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if not readable(fd, max(0.0, left)):
            return b"".join(chunks), False
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _terminate(pid: int, started: int) -> None:
    """SIGTERM, then SIGKILL after :data:`_GRACE` s, to the monitor ``pid`` (never to a process that
    was given its pid since: the pidfd is checked against ``started``), and wait until it is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if start_time(pid) != started:
            return
        for sig, wait in ((signal.SIGTERM, _GRACE), (signal.SIGKILL, _GRACE)):
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return
            if readable(pidfd, wait):  # a pidfd is readable once its process has ended
                return
    finally:
        os.close(pidfd)


class _AskedToGo(BaseException):
    """SIGTERM or SIGINT reached the monitor before the container ran (see :func:`main`)."""


def _reportable(exc: BaseException) -> BaseException:
    if isinstance(exc, _AskedToGo):
        return BackendUnavailableError(f"the monitor was stopped (signal {exc.args[0]}) before the container started")
    return exc


def _report(fd: int, value: Any) -> None:
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                fh.write(pickle.dumps(value))
            except (pickle.PicklingError, TypeError, AttributeError):
                fh.write(pickle.dumps(BackendUnavailableError(f"{type(value).__name__}: {value}")))
    except OSError:
        pass  # the caller gave up waiting (spawn's timeout) and stops this monitor: nothing to tell


def main(argv: list[str], engine_class: Callable[..., Any]) -> int:
    """The monitor: ``argv`` is ``STATE_DIR CONTAINER_ID root|rootless FD``; ``engine_class`` opens the
    engine (:class:`~realrt.engine.RealEngine`)."""
    state_dir, container_id, mode, fd = Path(argv[0]), argv[1], argv[2], int(argv[3])
    child = os.fork()
    if child != 0:
        # Who the monitor is, before the first process goes (so spawn can stop a monitor that hangs);
        # then the monitor is re-parented and outlives the caller.
        os.write(fd, f"{child} {start_time(child)}\n".encode())
        os._exit(0)
    # The handlers come first: engine.start() below publishes this pid (config.json's run_state), and a
    # stop or kill from another process must never meet SIGUSR1's default action (death).  Requests wake
    # the monitor through SIGUSR1 (a handler that only writes to the wake-up pipe; handlers, unlike a
    # blocked mask, are not inherited across the container's execve).
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)
    asked_to_go: list[int] = []
    starting = [True]

    def go(signum: int, frame: object) -> None:
        # While it starts, SIGTERM/SIGINT (spawn gave up waiting, or the user) abandon the start at
        # once, as Ctrl-C does a foreground run, even in a blocking call; once it runs, a stop.
        if starting:
            starting.clear()  # only the first: the cleanup that follows is not interrupted again
            raise _AskedToGo(signum)
        asked_to_go.append(signum)

    signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, go)
    try:
        engine = engine_class(rootless=mode == "rootless", state_dir=state_dir)
    except BaseException as exc:
        _report(fd, _reportable(exc))
        return 1
    try:
        container = engine._container(container_id)
        container.run_state = {"monitor": os.getpid(), "monitor_start": start_time(os.getpid())}
        engine.start(container_id, detach=True)
        starting.clear()  # inside the try: a signal up to here abandons the start (the except below)
    except BaseException as exc:
        starting.clear()
        container_gone = container_id not in engine._containers
        if not container_gone:
            engine._containers[container_id].run_state = None
        engine.close()
        _report(fd, _reportable(exc))
        return 1
    _report(fd, (os.getpid(), start_time(os.getpid())))
    try:
        _supervise(engine, container_id, wake_r, asked_to_go)
    finally:
        engine.close()
    return 0


def _supervise(engine: Any, container_id: str, wake: int, asked_to_go: list[int]) -> None:
    folder = engine.containers_dir / container_id
    container = engine._containers[container_id]
    # Stops under way: (the requester's .done file or None, when SIGKILL is due).  A stop's grace
    # never blocks the loop: a kill, another stop, the logs, go on meanwhile, as they do in Docker.
    stopping: list[tuple[Path | None, float]] = []
    while True:
        for done, request in _take_requests(folder):
            if request.get("op") == "stop":
                failure, kill_at = _begin_stop(engine, container_id, request.get("grace", 10))
                if kill_at is not None:
                    stopping.append((done, kill_at))
                    continue
            else:
                failure = _serve(engine, container_id, request)
            _answer(done, failure)
        engine._refresh(container)
        if container_id not in engine._containers:  # --rm: removed with its volumes (RealEngine._auto_remove)
            for waiter, _ in stopping:
                _answer(waiter, "")  # the folder has gone: the requester sees that
            return
        _flush_logs(engine, container, folder)
        if stopping and container.process is None:
            for waiter, _ in stopping:
                _answer(waiter, "")  # ended, and the state it left is saved
            stopping.clear()
        elif stopping and time.monotonic() >= min(kill_at for _, kill_at in stopping):
            _serve(engine, container_id, {"op": "kill", "signal": int(signal.SIGKILL)})
            stopping = [(waiter, math.inf) for waiter, _ in stopping]
        if container.process is None and container.state != "restarting":
            container.run_state = None  # done: the next engine owns it
            engine._save(container)
            return
        if readable(wake, _TICK):
            try:
                os.read(wake, 512)
            except BlockingIOError:
                pass
        if asked_to_go:
            asked_to_go.clear()
            _, kill_at = _begin_stop(engine, container_id, 10)  # the monitor was asked to go: stop first
            if kill_at is not None:
                stopping.append((None, kill_at))


def _answer(done: Path | None, failure: str) -> None:
    """Served, and the state it left is in config.json: the requester reads it now (and the error,
    if the request failed: written whole before the name appears)."""
    if done is None:
        return
    try:
        tmp = done.with_suffix(".tmp")
        tmp.write_text(failure)
        os.replace(tmp, done)
    except FileNotFoundError:
        pass  # --rm removed the folder: the requester sees that


def _begin_stop(engine: Any, container_id: str, grace: Any) -> tuple[str, float | None]:
    """``stop``: SIGTERM now and the time SIGKILL is due (``grace`` < 0: never), or None when there is
    nothing to wait for (not running: restarting, exited; engine.stop settles it at once)."""
    container = engine._containers.get(container_id)
    try:
        grace = float(grace)
    except (TypeError, ValueError):
        return f"InvalidSpecError: invalid stop timeout {grace!r}", None
    if container is None or container.process is None or container.state != "running" or math.isnan(grace):
        return _serve(engine, container_id, {"op": "stop", "grace": grace}), None
    container.stopped_by_user = True
    try:
        container.process.kill(signal.SIGTERM)
    except ContainerStateError:  # it ended meanwhile: the stop records that at once
        return _serve(engine, container_id, {"op": "stop", "grace": grace}), None
    return "", time.monotonic() + grace if grace >= 0 else math.inf


def _take_requests(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    requests = []
    for path in sorted((folder / "requests").glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        try:
            requests.append((path.with_suffix(".done"), json.loads(path.read_text())))
        except (OSError, ValueError):
            pass
        path.unlink(missing_ok=True)
    return requests


def _serve(engine: Any, container_id: str, request: dict[str, Any]) -> str:
    """Serve one request; "" when it was served (or the container ended or went meanwhile: the requester
    reads the state), else what went wrong, also on stderr (``monitor.err``).  No failure of one request
    ends the supervision: the monitor going would take the container with it."""
    try:
        if request.get("op") == "stop":
            engine.stop(container_id, grace=float(request.get("grace", 10)))
        elif request.get("op") == "kill":
            engine.kill(container_id, int(request.get("signal", signal.SIGKILL)))
    except (ContainerStateError, LookupError):
        pass
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        print(f"layerlab monitor of {container_id[:12]}: {request.get('op')} failed: {failure}", file=sys.stderr,
              flush=True)
        return failure
    return ""


def _flush_logs(engine: Any, container: Any, folder: Path) -> None:
    """Append what the run wrote since the last look."""
    from realrt.containers._remote import append_logs

    append_logs(folder, engine._logs_of(container))
