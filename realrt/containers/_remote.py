"""A container another process supervises (its monitor, :mod:`realrt.containers._monitor`), seen from
an engine that did not start it: :class:`RemoteProcess`.

Everything goes through the container's folder in the store: the monitor writes ``config.json``
(state, exit code, times, restart count) atomically and the ``logs`` file as the output comes; a
``stop`` or ``kill`` is a request file in ``requests/`` followed by SIGUSR1 to the monitor (sent
through a pidfd opened and checked against the monitor's start time, so never to a recycled pid).
The engine holding this handle never writes the container itself (``remote = True``).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from realrt.journal import Journal, start_time
from sim.errors import BackendUnavailableError, ContainerStateError

__all__ = ["RemoteProcess", "monitor_alive", "TOMBSTONES", "write_tombstone", "read_tombstone", "record_exit",
           "recorded_exits", "append_logs"]

_POLL = 0.05
_READS = 3  # looks at a config.json that is not JSON before it counts as damaged
#: Where a monitor leaves the exit code of an ``--rm`` container it removed, for a ``wait`` under way.
TOMBSTONES = ".exited"


def monitor_alive(pid: int, started: int) -> bool:
    """The monitor ``pid`` that started at ``started`` (clock ticks) still runs (not a zombie)."""
    if pid <= 0 or start_time(pid) != started:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def write_tombstone(folder: Path, exit_code: int | None, logs: bytes) -> None:
    """What a ``wait`` or ``logs -f`` under way needs of an ``--rm`` container whose ``folder`` is about to
    go (written before it goes; the next engine removes tombstones older than a minute)."""
    tombs = folder.parent / TOMBSTONES
    tombs.mkdir(exist_ok=True)
    tmp = tombs / f".{folder.name}.tmp"
    tmp.write_text(json.dumps({"exit_code": exit_code, "logs": logs.decode("latin-1")}))
    os.replace(tmp, tombs / f"{folder.name}.json")


def read_tombstone(folder: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((folder.parent / TOMBSTONES / f"{folder.name}.json").read_text())
        return data
    except (OSError, ValueError):
        return None


#: The monitor's log of run ends in the container's folder: one line ``CODE FINISHED_AT`` a run, appended.
EXITS = "exits"


def append_logs(folder: Path, data: bytes) -> None:
    """Append to the container's ``logs`` file what ``data`` (all the output so far) has beyond it:
    the file is always a prefix of the output, so readers never see a line twice."""
    path = folder / "logs"
    size = path.stat().st_size if path.exists() else 0
    if len(data) > size:
        with open(path, "ab") as fh:
            fh.write(data[size:])


def record_exit(folder: Path, exit_code: int | None, finished_at: float | None) -> None:
    """Append the end of one run (the monitor writes it once the run's state and output are saved,
    before any restart)."""
    line = f"{137 if exit_code is None else int(exit_code)} {finished_at if finished_at is not None else 0.0!r}\n"
    with open(folder / EXITS, "a", encoding="ascii") as fh:
        fh.write(line)  # one short write in append mode: a reader sees whole lines or none


def recorded_exits(folder: Path) -> list[int]:
    """The exit codes of the runs the container's monitors saw end, oldest first (a torn last line
    is not counted yet)."""
    try:
        text = (folder / EXITS).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    return [int(line.split()[0]) for line in text.split("\n")[:-1] if line.split()[:1] and line.split()[0].isdigit()]


class RemoteProcess:
    """The handle protocol of :mod:`sim.containers._lifecycle` over a monitor's container folder."""

    remote = True

    def __init__(self, folder: Path, pid: int, started: int, journal: Journal) -> None:
        self.folder = folder
        self.pid = pid
        self.started = started
        self.journal = journal

    # -- reading what the monitor recorded -----------------------------------------------------------

    def _meta(self) -> dict[str, Any] | None:
        """The container's config.json, or None once the monitor removed it (``--rm``).  A file that
        is not JSON on :data:`_READS` reads :data:`_POLL` s apart raises
        :class:`~sim.errors.ContainerStateError` naming the container."""
        for attempt in range(_READS):
            try:
                meta: dict[str, Any] = json.loads((self.folder / "config.json").read_text())
                return meta
            except FileNotFoundError:
                return None
            except ValueError:  # never half-written (atomic), but be safe: read again
                if attempt + 1 < _READS:
                    time.sleep(_POLL)
        raise ContainerStateError(f"container {self.folder.name[:12]}: its config.json ({self.folder / 'config.json'}) "
                                  f"is damaged (not JSON on {_READS} reads): run layerlab fsck")

    def _tombstone(self) -> dict[str, Any]:
        """The monitor's last word on an ``--rm`` container it removed (137 if it left none)."""
        return read_tombstone(self.folder) or {"exit_code": 137}

    def alive(self) -> bool:
        return monitor_alive(self.pid, self.started)

    @property
    def running(self) -> bool:
        meta = self._meta()
        return meta is not None and meta.get("state") == "running" and self.alive()

    def sync(self, container: Any) -> bool:
        """Copy the monitor's record into ``container``; False when the container is gone (``--rm``).
        Once the monitor has finished (or died: its container then ended with it, 137), the engine
        holding this handle owns the container again (``container.process`` is cleared)."""
        # Alive first, then the record: a monitor found gone has written its last word already, so a
        # record read after that look never shows a finished monitor's container as killed mid-run.
        alive = self.alive()
        meta = self._meta()
        if meta is None:
            self.release()  # it is removing the container's volumes and leaving: let it finish first
            tomb = self._tombstone()
            container.state, container.exit_code = "exited", tomb.get("exit_code", 137)
            container.logs = str(tomb.get("logs", "")).encode("latin-1") or container.logs
            container.process = None
            return False
        for key in ("state", "exit_code", "started_at", "finished_at", "restart_count", "restart_at",
                    "restart_delay", "stopped_by_user", "upper_size"):
            if key in meta:
                setattr(container, "saved_size" if key == "upper_size" else key, meta[key])
        try:
            container.logs = (self.folder / "logs").read_bytes()
        except FileNotFoundError:
            container.logs = b""
        if not alive:
            if container.state in ("running", "restarting") or meta.get("run_state") is not None:
                if container.state != "exited" or container.exit_code is None:
                    container.state, container.exit_code = "exited", 137  # the monitor was killed mid-run
                    container.finished_at = time.time()
                self.journal.sweep()  # its container, mounts and cgroup go with it
            container.process, container.run_state = None, None
        elif meta.get("run_state") is None:  # finished: the monitor is writing its last state and going
            self.release()
            container.process, container.run_state = None, None
        return True

    # -- waiting -----------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        """The exit code of the first run to end after the call (the one going on, or, while the
        container is restarting, the next), read from the monitor's log of run ends, so a restart that
        comes between two looks loses no end; at once for a container that has exited for good."""
        seen = len(recorded_exits(self.folder))  # counted before the state is read: no end falls between
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            exits = recorded_exits(self.folder)
            if len(exits) > seen:
                return exits[seen]
            meta = self._meta()
            if meta is None:
                tomb = read_tombstone(self.folder)
                if tomb is not None or not self.alive():
                    return int((tomb or {}).get("exit_code", 137))
                time.sleep(_POLL)
                continue
            if meta.get("state") == "exited":
                code = meta.get("exit_code")
                return int(code) if code is not None else 137
            if not self.alive():
                exits = recorded_exits(self.folder)  # it may have ended the run just before it went
                return exits[seen] if len(exits) > seen else 137
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"container {self.folder.name[:12]} still running after {timeout} s")
            time.sleep(_POLL)

    def release(self, timeout: float = 30.0) -> None:
        """Until the monitor process is gone (it has written its last state)."""
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(_POLL)

    # -- asking the monitor ------------------------------------------------------------------------

    def _request(self, timeout: float, **request: Any) -> None:
        """Leave ``request`` for the monitor, wake it, and wait until it has served it (it writes
        ``<name>.done`` then, or the folder is gone: ``--rm``) or is gone."""
        if not self.alive():
            raise ContainerStateError(f"container {self.folder.name[:12]} is not running (its monitor is gone)")
        folder = self.folder / "requests"
        folder.mkdir(exist_ok=True)
        name = uuid.uuid4().hex
        tmp = folder / f".{name}.tmp"
        tmp.write_text(json.dumps(request))
        os.replace(tmp, folder / f"{name}.json")
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return
        try:
            if start_time(self.pid) == self.started:  # the pidfd names our monitor, not a new process
                signal.pidfd_send_signal(pidfd, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)
        done = folder / f"{name}.done"
        deadline = time.monotonic() + timeout
        while not done.exists() and self.folder.exists() and self.alive():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the monitor of {self.folder.name[:12]} did not answer in {timeout} s")
            time.sleep(_POLL / 5)
        try:
            failure = done.read_text()  # the monitor's error, if serving the request failed
        except FileNotFoundError:
            failure = ""
        done.unlink(missing_ok=True)
        if failure:
            raise BackendUnavailableError(f"the monitor of {self.folder.name[:12]} could not {request.get('op')} it: "
                                          f"{failure} (it goes on supervising the container)")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        meta = self._meta()
        if meta is None or meta.get("state") != "running":
            raise ContainerStateError(f"container {self.folder.name[:12]} is not running")
        self._request(30.0, op="kill", signal=int(sig))

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM then SIGKILL after ``grace`` seconds, by the monitor; the exit code once it ended."""
        forever = grace == float("inf")
        self._request(1e9 if forever else grace + 30.0, op="stop", grace=-1 if forever else grace)
        meta = self._meta()
        code = (meta or self._tombstone()).get("exit_code")
        return int(code) if code is not None else 137

    def logs(self) -> bytes:
        return b""  # all of it is in the logs file, which sync reads

    def __repr__(self) -> str:
        return f"<RemoteProcess monitor={self.pid} {self.folder.name[:12]}>"
