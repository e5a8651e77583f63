"""A running container as the host sees it (进程, process): :class:`Process`, its output pump, exit codes.

The parent keeps a pidfd on the container's first process (rootless: the intermediate that
reaps PID 1), so waiting and signalling never hit a recycled pid; a thread copies stdin in and
stdout/stderr out (:func:`pump_output`) until every writer is gone.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import weakref

from realrt import _syscalls
from realrt.containers import cgroups
from realrt.containers._plan import Plan
from realrt.containers.spec import ContainerSpec
from realrt.journal import Journal, Record
from sim.errors import ContainerStateError

__all__ = ["Process", "Output", "pump_output", "exit_code", "wait_pidfd"]

class Output:
    """Chunks in arrival order, each tagged 1 (stdout) or 2 (stderr)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def stream(self, which: int) -> bytes:
        with self.lock:
            return b"".join(data for tag, data in self.chunks if tag == which)

    def both(self) -> bytes:
        with self.lock:
            return b"".join(data for _, data in self.chunks)


def pump_output(out: Output, outputs: dict[int, int], stdin_fd: int | None, data: bytes) -> None:
    """Copy ``data`` into ``stdin_fd`` and the output pipes into ``out`` until every pipe closes."""
    poller = select.poll()
    for fd in outputs:
        poller.register(fd, select.POLLIN)
    view = memoryview(data)
    if stdin_fd is not None and not view:
        os.close(stdin_fd)
        stdin_fd = None
    if stdin_fd is not None:
        os.set_blocking(stdin_fd, False)
        poller.register(stdin_fd, select.POLLOUT)
    live = dict(outputs)
    try:
        while live or stdin_fd is not None:
            for fd, event in poller.poll():
                if fd == stdin_fd:
                    done = bool(event & (select.POLLERR | select.POLLHUP))
                    if not done:
                        try:
                            view = view[os.write(fd, view[:65536]):]
                        except BlockingIOError:
                            pass
                        except OSError:  # EPIPE: the process closed its stdin
                            done = True
                    if done or not view:
                        poller.unregister(fd)
                        os.close(fd)
                        stdin_fd = None
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    with out.lock:
                        out.chunks.append((live[fd], chunk))
                else:
                    poller.unregister(fd)
                    os.close(fd)
                    del live[fd]
    finally:
        for fd in live:
            os.close(fd)
        if stdin_fd is not None:
            os.close(stdin_fd)
        out.done.set()


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as Docker reports


def wait_pidfd(pidfd: int, timeout: float | None) -> bool:
    """The process exited within ``timeout`` seconds (None or infinity, as `stop -t -1`: however long)."""
    return _syscalls.readable(pidfd, timeout)


class Process:
    """A running (or finished) container: its PID 1 as seen from the host.

    ``wait()`` reaps it and returns the exit code (128+N for signal N);
    ``stdout``/``stderr`` are what it wrote so far; ``stop()`` sends SIGTERM,
    then SIGKILL after ``grace`` seconds.  A Process that is dropped while
    its container runs kills and reaps it (there is no daemon to keep it).
    """

    def __init__(self, *, pid: int, child: int, spec: ContainerSpec, rootfs: str, journal: Journal,
                 records: list[Record], output: Output, pump: threading.Thread, rootless: bool,
                 plan: Plan, cgroup: cgroups.Cgroup | None = None) -> None:
        self.pid = pid
        self.spec = spec
        self.rootfs = rootfs
        self.rootless = rootless
        self._child = child
        self._plan = plan
        self._pidfd = os.pidfd_open(child)
        self._journal = journal
        self._records = records
        self._output = output
        self._pump = pump
        self._returncode: int | None = None
        self._lock = threading.RLock()
        self.cgroup = cgroup  # the container's cgroup (spec.limits), removed once it is reaped
        self._final_usage: cgroups.Usage | None = None
        self._finalizer = weakref.finalize(self, _abandon, child, self._pidfd, pid, journal, records, cgroup)

    @property
    def returncode(self) -> int | None:
        """The exit code once reaped, else ``None``."""
        return self._returncode

    @property
    def running(self) -> bool:
        if self._returncode is not None:
            return False
        return not wait_pidfd(self._pidfd, 0)

    @property
    def stdout(self) -> bytes:
        return self._output.stream(1)

    @property
    def stderr(self) -> bytes:
        return self._output.stream(2)

    def logs(self) -> bytes:
        """stdout and stderr interleaved in the order they arrived (``docker logs``)."""
        return self._output.both()

    def usage(self) -> cgroups.Usage | None:
        """The cgroup's counters (``docker stats``): now while it runs, the last reading (taken
        just before the cgroup was removed) once it is reaped; ``None`` without limits."""
        with self._lock:
            if self.cgroup is not None and self._returncode is None:
                return self.cgroup.usage()
            return self._final_usage

    def wait(self, timeout: float | None = None) -> int:
        """Reap the container and return its exit code; :class:`TimeoutError` if it outlives ``timeout``."""
        with self._lock:
            if self._returncode is None:
                if not wait_pidfd(self._pidfd, timeout):
                    raise TimeoutError(f"container pid {self.pid} still running after {timeout} s")
                _, status = os.waitpid(self._child, 0)
                self._returncode = exit_code(status)
                self._release()
            self._pump.join(5)  # every writer is gone with the PID namespace; the pipes hit EOF
            return self._returncode

    def _release(self) -> None:
        self._finalizer.detach()
        os.close(self._pidfd)
        self._pidfd = -1
        for rec in reversed(self._records):
            self._journal.forget(rec)  # the processes are gone: nothing left to undo
        self._records.clear()
        if self.cgroup is not None:
            self._final_usage = self.cgroup.usage()
            self.cgroup.remove()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to PID 1 (it ignores signals it has no handler for, except SIGKILL)."""
        with self._lock:
            if self._returncode is not None:
                raise ContainerStateError(f"container pid {self.pid} is not running (exit code {self._returncode})")
            try:
                if self.rootless:
                    os.kill(self.pid, sig)  # PID 1 is a grandchild; the pidfd is the middle process's
                else:
                    signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass  # exited, not yet reaped: wait() will tell

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds; returns the exit code."""
        if self._returncode is not None:
            return self._returncode
        try:
            self.kill(signal.SIGTERM)
            return self.wait(grace)
        except TimeoutError:
            self.kill(signal.SIGKILL)
        except ContainerStateError:
            pass
        return self.wait()

    def close(self) -> None:
        """Kill (if running) and reap; idempotent."""
        if self._returncode is None:
            try:
                self.kill(signal.SIGKILL)
            except ContainerStateError:
                pass
            self.wait()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self._returncode is None else f"exited {self._returncode}"
        return f"<Process pid={self.pid} {state} {list(self.spec.argv)!r}>"


def _abandon(child: int, pidfd: int, pid: int, journal: Journal, records: list[Record],
             cgroup: cgroups.Cgroup | None = None) -> None:
    """A dropped Process: kill its container, reap it, forget the records."""
    try:
        os.kill(pid, signal.SIGKILL)  # rootless: the intermediate reaps it and exits; killing that first
    except OSError:                   # would leave PID 1 to the host's init, unreaped for a while
        pass
    try:
        os.waitpid(child, 0)
    except ChildProcessError:
        pass
    if pidfd >= 0:
        os.close(pidfd)
    for rec in records:
        journal.forget(rec)
    if cgroup is not None:
        cgroup.remove()
