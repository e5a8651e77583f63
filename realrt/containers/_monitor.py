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
import os
import pickle
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realrt.journal import start_time
from sim.errors import BackendUnavailableError
from sim.images._faults import FAULT_ACTION_VARIABLE, FAULT_VARIABLE

__all__ = ["spawn", "main"]

_TICK = 0.05  # how often the monitor looks at its container when nothing wakes it


def spawn(state_dir: Path, container_id: str, *, rootless: bool, timeout: float = 120.0) -> tuple[int, int]:
    """Start the monitor of ``container_id`` and return ``(pid, start time)`` once the container runs;
    raise what the start raised (the same errors as a foreground start)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    argv = [sys.executable, "-m", "realrt.containers", "monitor", str(state_dir), container_id,
            "rootless" if rootless else "root", str(write_end)]
    errors = Path(state_dir) / "containers" / container_id / "monitor.err"
    # The monitor runs the code this process runs (a source checkout too, not only an installed one).
    source = str(Path(__file__).resolve().parents[2])
    env = {name: value for name, value in os.environ.items() if name not in (FAULT_VARIABLE, FAULT_ACTION_VARIABLE)}
    # A crash test's fault point is meant for the engine it stops, never for a monitor nobody waits for.
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])
    with open(errors, "ab") as err:
        os.set_inheritable(write_end, True)
        first = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                 pass_fds=(write_end,), start_new_session=True, env=env, cwd="/")
    os.close(write_end)
    try:
        first.wait(timeout)  # it exits as soon as the monitor is forked off
        report = b""
        with os.fdopen(read_end, "rb") as fh:
            read_end = -1
            report = fh.read()  # EOF once the monitor has said how the start went
    finally:
        if read_end >= 0:
            os.close(read_end)
    if not report:
        detail = errors.read_text(errors="replace").strip().splitlines()[-1:] if errors.exists() else []
        raise BackendUnavailableError(f"the container's monitor died before starting it: {' '.join(detail)}")
    outcome = pickle.loads(report)
    if isinstance(outcome, BaseException):
        raise outcome
    pid, started = outcome
    return int(pid), int(started)


def _report(fd: int, value: Any) -> None:
    with os.fdopen(fd, "wb") as fh:
        try:
            fh.write(pickle.dumps(value))
        except (pickle.PicklingError, TypeError, AttributeError):
            fh.write(pickle.dumps(BackendUnavailableError(f"{type(value).__name__}: {value}")))


def main(argv: list[str], engine_class: Callable[..., Any]) -> int:
    """The monitor: ``argv`` is ``STATE_DIR CONTAINER_ID root|rootless FD``; ``engine_class`` opens the
    engine (:class:`~realrt.engine.RealEngine`)."""
    state_dir, container_id, mode, fd = Path(argv[0]), argv[1], argv[2], int(argv[3])
    if os.fork() != 0:
        os._exit(0)  # the first process goes at once: the monitor is re-parented and outlives the caller
    try:
        engine = engine_class(rootless=mode == "rootless", state_dir=state_dir)
    except BaseException as exc:
        _report(fd, exc)
        return 1
    try:
        container = engine._container(container_id)
        container.run_state = {"monitor": os.getpid(), "monitor_start": start_time(os.getpid())}
        engine.start(container_id, detach=True)
    except BaseException as exc:
        container_gone = container_id not in engine._containers
        if not container_gone:
            engine._containers[container_id].run_state = None
        engine.close()
        _report(fd, exc)
        return 1
    # Requests wake the monitor through SIGUSR1 (a handler that only writes to the wake-up pipe; handlers,
    # unlike a blocked mask, are not inherited across the container's execve).
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)
    asked_to_go: list[int] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: asked_to_go.append(signum))
    _report(fd, (os.getpid(), start_time(os.getpid())))
    try:
        _supervise(engine, container_id, wake_r, asked_to_go)
    finally:
        engine.close()
    return 0


def _supervise(engine: Any, container_id: str, wake: int, asked_to_go: list[int]) -> None:
    folder = engine.containers_dir / container_id
    container = engine._containers[container_id]
    while True:
        for done, request in _take_requests(folder):
            _serve(engine, container_id, request)
            try:
                done.touch()  # served, and the state it left is in config.json: the requester reads it now
            except FileNotFoundError:
                pass  # --rm removed the folder: the requester sees that
        engine._refresh(container)
        if container_id not in engine._containers:  # --rm: removed with its volumes (RealEngine._auto_remove)
            return
        _flush_logs(engine, container, folder)
        if container.process is None and container.state != "restarting":
            container.run_state = None  # done: the next engine owns it
            engine._save(container)
            return
        ready, _, _ = select.select([wake], [], [], _TICK)
        if ready:
            try:
                os.read(wake, 512)
            except BlockingIOError:
                pass
        if asked_to_go:
            asked_to_go.clear()
            _serve(engine, container_id, {"op": "stop", "grace": 10})  # the monitor was asked to go: stop first


def _take_requests(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    requests = []
    for path in sorted((folder / "requests").glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        try:
            requests.append((path.with_suffix(".done"), json.loads(path.read_text())))
        except (OSError, ValueError):
            pass
        path.unlink(missing_ok=True)
    return requests


def _serve(engine: Any, container_id: str, request: dict[str, Any]) -> None:
    from sim.errors import ContainerStateError

    try:
        if request.get("op") == "stop":
            engine.stop(container_id, grace=float(request.get("grace", 10)))
        elif request.get("op") == "kill":
            engine.kill(container_id, int(request.get("signal", signal.SIGKILL)))
    except (ContainerStateError, LookupError):
        pass  # it ended (or went) meanwhile: the requester reads the state


def _flush_logs(engine: Any, container: Any, folder: Path) -> None:
    """Append what the run wrote since the last look (the file is always a prefix of the logs)."""
    data = engine._logs_of(container)
    path = folder / "logs"
    size = path.stat().st_size if path.exists() else 0
    if len(data) > size:
        with open(path, "ab") as fh:
            fh.write(data[size:])
