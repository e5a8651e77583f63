"""The guest's serial console and the marker line on it (串口控制台, the console).

The VM's ``/init`` and the container's command both run :data:`MARKER_SCRIPT`, which prints
``LAYERLAB-INIT <uptime>``; :class:`Console` drains QEMU's stdout and notes when that line
arrives.  :class:`BootTimeoutError` is what a missing marker raises.
"""

from __future__ import annotations

import os
import re
import threading
import time

from sim.errors import LayerlabError

__all__ = ["MARKER", "MARKER_LINE", "MARKER_SCRIPT", "vm_init_script", "BootTimeoutError", "Console"]

#: The first word of the line the guest's init (or the container's command) prints.
MARKER = "LAYERLAB-INIT"
MARKER_LINE = re.compile(rb"LAYERLAB-INIT (\d+(?:\.\d+)?)\s*$", re.MULTILINE)

#: What the VM's ``/init`` and the container's command both run first: mount ``/proc`` unless the
#: runtime already did (a container has it; its capabilities would refuse a second mount), then
#: print the marker with the uptime the kernel reports.
MARKER_SCRIPT = (
    "[ -r /proc/uptime ] || mount -t proc proc /proc\n"
    "read up idle < /proc/uptime\n"
    f'echo "{MARKER} $up"\n'
)


def vm_init_script() -> str:
    """The guest's ``/init``: :data:`MARKER_SCRIPT`, then wait for a line on the console (the host
    sends one to stop it) or ``LAYERLAB_WAIT`` seconds (the kernel passes unknown ``KEY=value``
    boot parameters to init as environment), then power off at once."""
    return ("#!/bin/sh\n" + MARKER_SCRIPT
            + 'read -t "${LAYERLAB_WAIT:-60}" line\n'
            + "poweroff -f\n")


class BootTimeoutError(LayerlabError, TimeoutError):
    """The guest's init did not print its marker in time (or QEMU ended before it did).
    ``console`` holds the tail of what the guest printed, to see where it stopped."""

    def __init__(self, message: str, *, console: str = "") -> None:
        super().__init__(message)
        self.console = console

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_timeout, (str(self), self.console))


def _rebuild_timeout(message: str, console: str) -> BootTimeoutError:
    return BootTimeoutError(message, console=console)


class Console:
    """Drains QEMU's stdout (the guest's serial port) on a thread, keeping it all, and notes
    ``time.monotonic()`` when the marker line first arrives."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._data = bytearray()
        self._lock = threading.Lock()
        self.marker = threading.Event()
        self.closed = threading.Event()
        self.marker_time = 0.0
        self.uptime = 0.0
        self._thread = threading.Thread(target=self._pump, name="vm-console", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while chunk := os.read(self._fd, 65536):
                now = time.monotonic()
                with self._lock:
                    scan_from = max(0, len(self._data) - 64)  # a marker may straddle two reads
                    self._data += chunk
                    if not self.marker.is_set():
                        found = MARKER_LINE.search(self._data, scan_from)
                        if found:
                            self.marker_time, self.uptime = now, float(found.group(1))
                            self.marker.set()
        except OSError:
            pass
        finally:
            self.closed.set()

    def text(self, tail: int = 4000) -> str:
        with self._lock:
            return bytes(self._data[-tail:]).decode("utf-8", "replace")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        """The thread ended: it reads the fd no more, which may now be closed."""
        return not self._thread.is_alive()
