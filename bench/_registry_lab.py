"""The registry benchmark's resources: one temporary folder, its registry servers and byte-counting relays.

:class:`Lab` owns everything a run of ``bench/registry_bench.py`` starts: every
:class:`~realrt.registries.RegistryServer` lives in a folder under one temporary
folder, and :meth:`Lab.close` stops them all (with SIGINT/SIGTERM/SIGHUP held
off, so a second Ctrl-C cannot cut it short) and removes the folder.
:class:`CountingRelay` is a TCP relay on 127.0.0.1 that counts the bytes it
passes each way (standard library only).  The rest reads distribution's log
and measures folders.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from realrt.registries import RegistryServer

__all__ = ["PREFIX", "Lab", "CountingRelay", "access_log", "log_summary", "log_offset", "du", "registry_processes"]

#: Temporary folders of this benchmark are named so (a killed run's are swept at the next start).
PREFIX = "layerlab-bench-registry-"
_FIELD = re.compile(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S+)')


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Cleanup runs to the end: a second Ctrl-C waits until every registry is stopped."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def sweep_stale(parent: Path) -> None:
    """Remove the folders of earlier runs that were killed (SIGKILL skips cleanup; their registries
    died with them, PR_SET_PDEATHSIG)."""
    for folder in parent.glob(PREFIX + "*"):
        try:
            owner = int((folder / "bench-owner").read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


def registry_processes(root: Path) -> list[int]:
    """docker-registry processes whose command line names a path under ``root``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"docker-registry") and any(str(root).encode() in a for a in args):
            found.append(int(cmdline.parent.name))
    return found


class Lab:
    """The run's temporary folder, its registry servers and relays."""

    def __init__(self, parent: Path) -> None:
        sweep_stale(parent)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        (self.root / "bench-owner").write_text(str(os.getpid()))
        self._servers: list[RegistryServer] = []
        self._relays: list[CountingRelay] = []
        self._count = 0

    def folder(self, name: str) -> Path:
        self._count += 1
        return self.root / f"{self._count:03d}-{name}"

    def server(self, name: str, **options: Any) -> RegistryServer:
        srv = RegistryServer(self.folder(name), **options)
        self._servers.append(srv)
        return srv.start()

    def relay(self, port: int) -> CountingRelay:
        self._relays.append(CountingRelay(port))
        return self._relays[-1]

    def release(self, srv: RegistryServer) -> None:
        """Stop ``srv`` and delete its folder (its measurement is done)."""
        with signals_blocked():
            srv.stop()
            shutil.rmtree(srv.root, ignore_errors=True)
            self._servers.remove(srv)

    def close(self) -> list[int]:
        """Stop everything, remove the folder; returns registry processes still alive (must be none)."""
        with signals_blocked():
            for srv in reversed(self._servers):  # mirrors before their upstreams
                srv.stop()
            for relay in self._relays:
                relay.close()
            left = registry_processes(self.root)
            shutil.rmtree(self.root, ignore_errors=True)
        return left


class CountingRelay:
    """A TCP relay from 127.0.0.1:<port> to 127.0.0.1:<target> that counts the bytes it passes each way."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # the accept loop checks for close() this often
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.sent = self.received = self.connections = 0  # sent: to the target; received: from it
        self.last_activity = time.monotonic()
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return self.sent, self.received, self.connections

    def wait_quiet(self, quiet: float = 0.5, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last_activity < quiet and time.monotonic() < deadline:
            time.sleep(0.05)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._sockets += [client, upstream]
            for src, dst, sending in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(src, dst, sending), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, sending: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                with self._lock:
                    if sending:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                    self.last_activity = time.monotonic()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        for thread in self._threads:
            thread.join(timeout=2.0)


def access_log(srv: RegistryServer, offset: int, end: int | None = None) -> list[dict[str, str]]:
    """The registry's per-request log entries (``msg="response completed..."``) from byte ``offset`` to ``end``."""
    with open(srv.log_file, "rb") as fh:
        fh.seek(offset)
        text = fh.read(-1 if end is None else end - offset).decode(errors="replace")
    entries = []
    for line in text.splitlines():
        if 'msg="response completed' in line:
            entries.append({k: v.strip('"') for k, v in _FIELD.findall(line)})
    return entries


def log_summary(entries: list[dict[str, str]]) -> dict[str, Any]:
    """Requests, requests by method, blob GETs, and the body bytes the registry wrote.

    ``written`` leaves HEAD answers out: distribution logs the body a HEAD *would* have had
    (Go's server drops it), so counting them would report bytes that never crossed.
    """
    methods = Counter(e.get("http.request.method", "?") for e in entries)
    blob_gets = sum(1 for e in entries if e.get("http.request.method") == "GET" and "/blobs/" in e.get("http.request.uri", ""))
    written = sum(int(e.get("http.response.written", "0") or 0) for e in entries if e.get("http.request.method") != "HEAD")
    return {"requests": len(entries), "methods": dict(methods), "blob_gets": blob_gets, "written": written}


def log_offset(srv: RegistryServer, settle: float = 0.1) -> int:
    """The log's size once it has not grown for ``settle`` seconds: the registry writes a request's
    line after sending the answer, so a client can be done before its last line is there."""
    last, since = srv.log_file.stat().st_size, time.monotonic()
    while time.monotonic() - since < settle:
        time.sleep(0.02)
        now = srv.log_file.stat().st_size
        if now != last:
            last, since = now, time.monotonic()
    return last


def du(path: Path) -> dict[str, int]:
    """``du -s`` of ``path``: bytes allocated on disk and the apparent size."""
    def run(*flags: str) -> int:
        return int(subprocess.run(["du", "-s", *flags, str(path)], capture_output=True, text=True, check=True).stdout.split()[0])
    return {"allocated": run("--block-size=1"), "apparent": run("-b")}
