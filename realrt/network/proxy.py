"""The userspace port forwarder: ``-p 127.0.0.1:HOST_PORT:CONTAINER_PORT`` as a small process.

::

    python -m realrt.network.proxy LISTEN_PORT TARGET_IP TARGET_PORT [--watch PID] [--parent PID]

listens on ``127.0.0.1:LISTEN_PORT`` only (never on another address) and, for each connection,
opens one to ``TARGET_IP:TARGET_PORT`` (the container's address, reached through its bridge) and
copies bytes both ways with plain sockets and :mod:`selectors`, passing on each side's EOF as a
half-close.  It ends when the process ``--watch`` names ends (the container's init: the
forwarder stops with its container), when its parent ends (``PR_SET_PDEATHSIG``; ``--parent``
closes the race of a parent that died before the signal was armed), or on SIGTERM.

Protocol with :func:`publish`: the forwarder reads one byte from stdin before it binds (the
parent writes it after the journal has the forwarder's "process" record, so nothing exists that
is not recorded), then writes ``ready`` or ``error <errno> <message>`` as one line on stdout.

Userspace rather than nftables DNAT: a DNAT to a container would need ``route_localnet`` for
127.0.0.1 and forwarding through the very table that keeps bridges from forwarding; one process
per port is easy to see (``ss -ltnp``), to kill, and to record.  The module imports only the
standard library at the top, so :func:`publish` runs this file with ``python -I -S`` and the
forwarder starts in milliseconds, without layerlab's imports.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from realrt.journal import Journal, Record
    from sim.network.model import PortMapping

__all__ = ["Published", "publish", "unpublish", "main"]

LISTEN_IP: Final = "127.0.0.1"
_CHUNK = 65536
_BUFFER_LIMIT = 1 << 20  # stop reading a side while the other has this much unsent
_CONNECT_TIMEOUT = 10.0
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


# -- the forwarder process ---------------------------------------------------------------------


class _Side:
    """One socket of a forwarded connection; ``pending`` is what still has to be written to it."""

    __slots__ = ("sock", "other", "pending", "eof", "shut", "connecting_since", "registered")

    def __init__(self, sock: socket.socket, connecting_since: float | None = None) -> None:
        self.sock = sock
        self.other: _Side = self
        self.pending = bytearray()
        self.eof = False  # this socket's reader saw EOF
        self.shut = False  # we shut this socket's writing half
        self.connecting_since = connecting_since
        self.registered = False


class _Forwarder:
    def __init__(self, listener: socket.socket, target: tuple[str, int], watch_fd: int | None) -> None:
        self.listener = listener
        self.target = target
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, "accept")
        if watch_fd is not None:
            self.sel.register(watch_fd, selectors.EVENT_READ, "watch")
        self.sides: set[_Side] = set()

    def run(self) -> None:
        while True:
            for key, events in self.sel.select(timeout=1.0):
                if key.data == "watch":
                    return  # the watched process ended
                if key.data == "accept":
                    self._accept()
                elif isinstance(key.data, _Side) and key.data in self.sides:
                    self._service(key.data, events)
            self._expire()

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        client.setblocking(False)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setblocking(False)
        code = upstream.connect_ex(self.target)
        if code not in (0, errno.EINPROGRESS):
            client.close()
            upstream.close()
            return
        a, b = _Side(client), _Side(upstream, time.monotonic())
        a.other, b.other = b, a
        for side in (a, b):
            self.sides.add(side)
            self._update(side)

    def _events(self, side: _Side) -> int:
        events = 0
        if not side.eof and side.connecting_since is None and len(side.other.pending) < _BUFFER_LIMIT:
            events |= selectors.EVENT_READ
        if side.connecting_since is not None or side.pending:
            events |= selectors.EVENT_WRITE
        return events

    def _service(self, side: _Side, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                self._write(side)
            if events & selectors.EVENT_READ and side in self.sides:
                self._read(side)
        except OSError:  # reset, broken pipe, refused: the pair is done
            self._close(side)
            return
        if side in self.sides:
            if side.shut and side.other.shut:  # both directions finished
                self._close(side)
                return
            self._update(side)
            self._update(side.other)

    def _update(self, side: _Side) -> None:
        # A selector cannot hold a socket with no events: one with nothing to do (EOF read and
        # nothing to write, or the other side's buffer full) is taken out until it has.
        wanted = self._events(side)
        if wanted and side.registered:
            self.sel.modify(side.sock, wanted, side)
        elif wanted:
            self.sel.register(side.sock, wanted, side)
        elif side.registered:
            self.sel.unregister(side.sock)
        side.registered = bool(wanted)

    def _read(self, side: _Side) -> None:
        data = side.sock.recv(_CHUNK)
        if data:
            side.other.pending += data
            return
        side.eof = True
        if not side.other.pending and side.other.connecting_since is None:  # else _write shuts it once connected
            self._shut(side.other)

    def _write(self, side: _Side) -> None:
        if side.connecting_since is not None:
            code = side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            side.connecting_since = None
        if side.pending:
            sent = side.sock.send(side.pending)
            del side.pending[:sent]
        if not side.pending and side.other.eof:
            self._shut(side)

    @staticmethod
    def _shut(side: _Side) -> None:
        if not side.shut:
            side.shut = True
            side.sock.shutdown(socket.SHUT_WR)

    def _expire(self) -> None:
        now = time.monotonic()
        for side in list(self.sides):
            if side in self.sides and side.connecting_since is not None and now - side.connecting_since > _CONNECT_TIMEOUT:
                self._close(side)

    def _close(self, side: _Side) -> None:
        for each in (side, side.other):
            if each in self.sides:
                self.sides.discard(each)
                if each.registered:
                    self.sel.unregister(each.sock)
                    each.registered = False
                each.sock.close()


def _arm_parent_death(parent: int | None) -> bool:
    """SIGTERM when the parent ends; False if it has ended already."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return parent is None or os.getppid() == parent


def main(argv: list[str] | None = None) -> int:
    """The forwarder process (see the module docstring); returns its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    options: dict[str, int] = {}
    while len(args) > 3 and args[-2] in ("--watch", "--parent"):
        options[args[-2]] = int(args[-1])
        del args[-2:]
    if len(args) != 3:
        print("usage: python -m realrt.network.proxy LISTEN_PORT TARGET_IP TARGET_PORT [--watch PID] [--parent PID]",
              file=sys.stderr)
        return 2
    listen_port, target_ip, target_port = int(args[0]), str(ipaddress.IPv4Address(args[1])), int(args[2])
    if not _arm_parent_death(options.get("--parent")):
        return 0
    if not sys.stdin.buffer.read(1):  # the parent's "go": it has recorded us (EOF: it gave up)
        return 0
    try:
        watch_fd = os.pidfd_open(options["--watch"]) if "--watch" in options else None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        listener.bind((LISTEN_IP, listen_port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError as exc:
        print(f"error {exc.errno or 0} {exc.strerror or exc}", flush=True)
        return 1
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # the parent stops reading: later writes must not hit a closed pipe
    os.close(devnull)
    _Forwarder(listener, (target_ip, target_port), watch_fd).run()
    return 0


# -- the engine's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One running forwarder: ``mapping`` forwarded to ``target_ip``; ``pid`` its process,
    ``record`` its journal record.  Pass it to :func:`unpublish`."""

    mapping: PortMapping
    target_ip: str
    pid: int
    record: Record
    journal: Journal = field(repr=False, compare=False)
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def publish(mapping: PortMapping, target_ip: str, journal: Journal, *, watch_pid: int | None = None) -> Published:
    """Start a forwarder from ``127.0.0.1:mapping.host_port`` to ``target_ip:mapping.container_port``,
    recorded in ``journal`` as a "process" before it binds; returns once it listens.

    ``watch_pid`` (the container's init process) makes the forwarder end with that process; it
    always ends with the thread that called this (``PR_SET_PDEATHSIG``: call from a thread that
    lives as long as the engine).  Refused before anything starts: a ``mapping`` that is not a
    :class:`~sim.network.model.PortMapping`, a target that is not an IPv4 address, a bad
    ``watch_pid`` (:class:`~sim.errors.InvalidNetworkError`).  The port in use raises
    :class:`~sim.errors.ConflictError` ("port is already allocated"), any other failure to listen
    :class:`~sim.errors.BackendUnavailableError`; no process or record is left then."""
    from sim.errors import BackendUnavailableError, ConflictError, InvalidNetworkError
    from sim.network.model import PortMapping

    if not isinstance(mapping, PortMapping):
        raise InvalidNetworkError(f"publish takes a PortMapping, not {type(mapping).__name__}")
    try:
        target = ipaddress.IPv4Address(target_ip)
    except (ValueError, TypeError) as exc:
        raise InvalidNetworkError(f"forwarding target {target_ip!r} is not an IPv4 address") from exc
    if watch_pid is not None and (isinstance(watch_pid, bool) or not isinstance(watch_pid, int) or watch_pid <= 0):
        raise InvalidNetworkError(f"watch_pid must be a process id, not {watch_pid!r}")
    argv = [sys.executable, "-I", "-S", os.path.abspath(__file__), str(mapping.host_port), str(target),
            str(mapping.container_port), "--parent", str(os.getpid())]
    if watch_pid is not None:
        argv += ["--watch", str(watch_pid)]
    # A session of its own: a Ctrl-C meant for the engine's terminal does not cut a container's port.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    record: Record | None = None
    try:
        record = journal.record("process", pid=proc.pid)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"g")
        proc.stdin.close()
        line = _first_line(proc.stdout.fileno(), _READY_TIMEOUT)
        if line != "ready":
            code = int(line.split()[1]) if line.startswith("error ") and line.split()[1].isdigit() else 0
            if code == errno.EADDRINUSE:
                raise ConflictError(f"Bind for {LISTEN_IP}:{mapping.host_port} failed: port is already allocated")
            raise BackendUnavailableError(f"the forwarder for {mapping} could not listen: {line or 'it exited'}")
    except BaseException:
        _stop(proc)
        if record is not None:
            journal.forget(record)
        raise
    return Published(mapping, str(target), proc.pid, record, journal, proc)


def unpublish(handle: Published) -> None:
    """Stop the forwarder (SIGTERM, SIGKILL after 5 s), reap it and forget its record; idempotent."""
    _stop(handle.process)
    handle.journal.forget(handle.record)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None and not pipe.closed:
            pipe.close()


def _first_line(fd: int, limit: float) -> str:
    # Imported here: the forwarder runs this file with ``python -I -S``, where realrt is not importable.
    from realrt import _syscalls

    deadline = time.monotonic() + limit
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not _syscalls.readable(fd, left):
            return "error 0 no answer within %.0f s" % limit
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace").strip()


if __name__ == "__main__":
    sys.exit(main())
