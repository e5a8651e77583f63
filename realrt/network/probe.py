"""Measuring real reachability: a TCP connect from inside one namespace, and listeners to connect to.

:func:`reachable` answers "does a TCP handshake from namespace A to ``ip:port`` complete?" by
forking a child that joins A (``setns(CLONE_NEWNET)``) and connects; the caller's own namespace is
never touched.  :func:`listen` puts an echo listener into a namespace (its socket is made by a
thread that joined the namespace; a socket keeps its namespace for life) and serves it from a
thread of the calling process.  Tests and the model-vs-kernel state machine pair them: a
listener in every container, then a probe for every ordered pair.

Only namespaces the caller names and the addresses it gives are ever contacted; the probe sends
nothing but one TCP handshake (and the close that follows).
"""

from __future__ import annotations

import ipaddress
import os
import selectors
import signal
import socket
import threading
from typing import Final

from realrt import _syscalls
from realrt.network import _netns
from sim.errors import InvalidNetworkError

__all__ = ["PROBE_PORT", "reachable", "listen", "Listener"]

#: The port :func:`listen` and :func:`reachable` use unless told otherwise (TCP echo's number).
PROBE_PORT: Final = 7
# Exit codes of the probing child.
_CONNECTED, _FAILED, _NOT_A_NETNS = 0, 1, 2
# How long after its connect timeout a probing child may take before it is killed.
_GRACE = 2.0


def _check_target(ip: object, port: object) -> str:
    try:
        address = ipaddress.IPv4Address(ip)
    except (ValueError, TypeError) as exc:
        raise InvalidNetworkError(f"probe target {ip!r} is not an IPv4 address") from exc
    _check_port(port)
    return str(address)


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidNetworkError(f"port {port!r} is out of range: ports are 1..65535")
    return port


def reachable(src_netns_path: str, dst_ip: str, port: int = PROBE_PORT, timeout: float = 0.3) -> bool:
    """Whether a TCP connection from inside the namespace ``src_netns_path`` (a ``/run/netns/X`` or
    ``/proc/<pid>/ns/net`` path) to ``dst_ip:port`` is accepted within ``timeout`` seconds.

    False for every failure to connect: no route, refused (nothing listens: put a :func:`listen`
    there), dropped (the isolation table), timed out.  Refused before anything runs:
    a malformed address, port or timeout, or a path that is not a network namespace
    (:class:`~sim.errors.InvalidNetworkError`); a missing path (:class:`~sim.errors.NotFoundError`)."""
    target = _check_target(dst_ip, port)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise InvalidNetworkError(f"timeout {timeout!r} must be a number of seconds in (0, 60]")
    fd = _netns.open_netns(src_netns_path)
    try:
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            code = _FAILED
            try:
                try:
                    _syscalls.setns(fd, _syscalls.CLONE_NEWNET)
                except OSError:
                    code = _NOT_A_NETNS
                else:
                    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                        sock.settimeout(timeout)
                        sock.connect((target, port))  # a numeric address: no resolver in the child
                        code = _CONNECTED
            except BaseException:
                pass
            finally:
                os._exit(code)
    finally:
        os.close(fd)
    code = _wait(pid, timeout + _GRACE)
    if code == _NOT_A_NETNS:
        raise InvalidNetworkError(f"{src_netns_path} is not a network namespace")
    return code == _CONNECTED


def _wait(pid: int, limit: float) -> int:
    """The child's exit code; killed (and counted as a failure) if it is not done after ``limit``."""
    pidfd = os.pidfd_open(pid)
    try:
        if not _syscalls.readable(pidfd, limit):
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else _FAILED


class Listener:
    """A TCP echo listener on ``0.0.0.0:port`` inside one namespace (see :func:`listen`).

    ``accepted`` counts the connections it has accepted, so a test can tell that a probe reached
    *this* listener.  :meth:`close` (or leaving a ``with`` block) stops the thread and closes every
    socket; it is idempotent."""

    def __init__(self, netns_path: str, port: int, sock: socket.socket) -> None:
        self.netns_path = netns_path
        self.port = port
        self._sock = sock
        self._accepted = 0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._serve, name=f"layerlab-listen-{port}", daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def close(self) -> None:
        if self._wake_w < 0:
            return
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_w)
        os.close(self._wake_r)
        self._wake_w = self._wake_r = -1

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Listener {self.netns_path} :{self.port} accepted={self.accepted}>"

    def _serve(self) -> None:
        clients: list[socket.socket] = []
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in sel.select():
                        if key.fileobj == self._wake_r:
                            return
                        if key.fileobj is self._sock:
                            try:
                                conn, _ = self._sock.accept()
                            except OSError:
                                continue
                            with self._lock:
                                self._accepted += 1
                            conn.settimeout(1.0)  # sendall below waits at most this long for a slow reader
                            clients.append(conn)
                            sel.register(conn, selectors.EVENT_READ)
                            continue
                        conn = key.fileobj  # type: ignore[assignment]
                        try:
                            data = conn.recv(65536)
                            if data:
                                conn.sendall(data)
                                continue
                        except OSError:
                            pass
                        sel.unregister(conn)
                        clients.remove(conn)
                        conn.close()
            finally:
                for conn in clients:
                    conn.close()
                self._sock.close()


def listen(netns_path: str, port: int = PROBE_PORT) -> Listener:
    """Start a :class:`Listener` on ``0.0.0.0:port`` in the namespace at ``netns_path``.
    Refused: a bad port or a path that is not a network namespace
    (:class:`~sim.errors.InvalidNetworkError`), a missing path (:class:`~sim.errors.NotFoundError`);
    a port in use there raises the kernel's :class:`OSError` (``EADDRINUSE``)."""
    _check_port(port)
    fd = _netns.open_netns(netns_path)

    def bound() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    try:
        sock = _netns.run_inside(fd, bound)
    finally:
        os.close(fd)
    return Listener(netns_path, port, sock)
