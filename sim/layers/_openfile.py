"""Open files of the union: the descriptor table and what a descriptor reads and writes.

A descriptor opened on a lower file before that file is copied up reads the
copy afterwards (Linux 4.19 on): the table is given the union's copy map to
switch such a descriptor over on its next use.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sim.layers.layer import Directory, RegularFile

__all__ = ["FdTable", "OpenFile"]


@dataclass(slots=True)
class OpenFile:
    """One open file description: the object, its access mode and offset."""

    entry: RegularFile | Directory
    path: str
    readable: bool
    writable: bool
    append: bool
    pos: int = 0
    lower_key: tuple[int, str] | None = None  # set while the descriptor still reads a lower file


def _ebadf() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class FdTable:
    """Descriptors by number; ``copied`` maps ``(id(lower file), path)`` to its upper copy."""

    def __init__(self, copied: Mapping[tuple[int, str], RegularFile]) -> None:
        self._open: dict[int, OpenFile] = {}
        self._copied = copied

    def add(self, handle: OpenFile) -> int:
        """The lowest free descriptor from 3 (0-2 are the process's stdio), now naming ``handle``."""
        fd = 3
        while fd in self._open:
            fd += 1
        self._open[fd] = handle
        return fd

    def get(self, fd: int) -> OpenFile:
        try:
            return self._open[fd]
        except KeyError:
            raise _ebadf() from None

    def close(self, fd: int) -> None:
        self.get(fd)
        del self._open[fd]

    def clear(self) -> None:
        self._open.clear()

    def _current(self, handle: OpenFile) -> RegularFile | Directory:
        # Since Linux 4.19 a descriptor opened before a copy-up reads the copy afterwards.
        if handle.lower_key is not None and handle.lower_key in self._copied:
            handle.entry = self._copied[handle.lower_key]
            handle.lower_key = None
        return handle.entry

    def read(self, fd: int, n: int) -> bytes:
        handle = self.get(fd)
        if not handle.readable:
            raise _ebadf()
        entry = self._current(handle)
        if isinstance(entry, Directory):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        if n < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        chunk = bytes(entry._data[handle.pos:handle.pos + n])
        handle.pos += len(chunk)
        return chunk

    def write(self, fd: int, data: bytes) -> int:
        """Write at the offset (at the end with ``O_APPEND``), growing the file as needed."""
        handle = self.get(fd)
        if not handle.writable:
            raise _ebadf()
        entry = self._current(handle)
        assert isinstance(entry, RegularFile)
        buf = entry.buffer()
        if not data:
            return 0  # a zero-length write does not even move an O_APPEND offset
        if handle.append:
            handle.pos = len(buf)
        if handle.pos > len(buf):
            buf.extend(b"\0" * (handle.pos - len(buf)))
        buf[handle.pos:handle.pos + len(data)] = data
        handle.pos += len(data)
        entry.mtime_ns = time.time_ns()
        return len(data)
