"""One QEMU process and what it owns (客户机, the guest): :class:`Guest`.

QEMU gets ``PR_SET_PDEATHSIG=SIGKILL`` (it dies with the thread that started it), is recorded
in the journal as a "process" (with its start time), and its temporary files live in a folder
recorded as a "tree", so nothing is left even when its owner is killed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from realrt.journal import Journal, Record
from realrt.vm._console import Console
from sim.errors import BackendUnavailableError

__all__ = ["Guest", "kill_guest"]

def _pdeathsig_setter(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: in the forked child, ask for SIGKILL when the parent thread ends, and
    die now if the parent already did (then the request came too late to fire)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    prctl = libc.prctl  # resolved here: the child should do as little as possible before exec

    def setter() -> None:  # pragma: no cover - runs in the child
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return setter


class Guest:
    """One QEMU process and what it owns: its journal records, temporary folder (``workdir``, with
    the ``subdirs`` made in it before QEMU starts) and console."""

    def __init__(self, argv: list[str], *, accelerator: str, journal: Journal, workdir: Path,
                 subdirs: tuple[str, ...] = ()) -> None:
        self.accelerator = accelerator
        self.argv = argv
        self._journal = journal
        self._records: list[Record] = []
        self.workdir = workdir
        try:
            self._records.append(journal.record("tree", str(workdir)))  # before the mkdir
            workdir.mkdir(parents=True, mode=0o700)
            for sub in subdirs:  # e.g. a folder QEMU exports to the guest: it must exist at launch
                (workdir / sub).mkdir(mode=0o700)
            with open(workdir / "qemu.stderr", "wb") as stderr:  # QEMU keeps its own copy of the fd
                self.launched = time.monotonic()
                self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                             close_fds=True, preexec_fn=_pdeathsig_setter(os.getpid()),
                                             cwd=workdir, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                               "LC_ALL": "C"})
        except BaseException as exc:
            # Nothing runs yet: the folder (if made) and its record go, whatever stopped us.
            self._drop_records()
            if isinstance(exc, OSError):
                raise BackendUnavailableError(f"cannot start {argv[0]}: {exc}") from exc
            raise
        try:
            # The pid is only known once it runs; if this process dies before the record is
            # written, PDEATHSIG already takes QEMU with it, so nothing is left unrecorded.
            self._records.append(journal.record("process", str(workdir), pid=self.proc.pid))
            assert self.proc.stdout is not None
            self.console = Console(self.proc.stdout.fileno())
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            self._drop_records()
            raise

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr_text(self) -> str:
        try:
            return (self.workdir / "qemu.stderr").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def wait_for_marker(self, deadline: float) -> bool:
        """True once the marker arrived; False when ``deadline`` (monotonic) passed or QEMU ended."""
        while not self.console.marker.wait(0.02):
            if time.monotonic() > deadline or (not self.running and self.console.closed.is_set()):
                return self.console.marker.is_set()
        return True

    def stop(self, grace: float = 5.0) -> int | None:
        """Let the guest go (a line on its console: init powers off), SIGKILL after ``grace``
        seconds, reap, delete the folder, forget the records.  Idempotent; returns QEMU's status."""
        proc = self.proc
        if proc.poll() is None and grace > 0:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b"\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        # QEMU is gone, so the console thread reads EOF and ends; only then is its fd closed
        # (closed earlier, the number could be reused by another open() between two reads and
        # the thread would read someone else's file).  QEMU's children would keep the pipe
        # open: it has none, but the join is bounded all the same, and a thread still reading
        # keeps the fd (the pipe is only closed with the Popen object then).
        self.console.join(5)
        streams = [proc.stdin] + ([proc.stdout] if self.console.done else [])
        for stream in streams:
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._drop_records()
        return code

    def _drop_records(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        for rec in reversed(self._records):
            self._journal.forget(rec)
        self._records.clear()


def kill_guest(guest: Guest) -> None:
    """A dropped :class:`VM` that still ran one: no grace, just kill and clean up."""
    try:
        guest.stop(grace=0)
    except Exception:
        pass
