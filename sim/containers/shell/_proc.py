"""What a modelled process sees: descriptors (streams), arguments, environment, cwd.

Pipelines run their stages one after another, so a pipe is just the bytes the
previous stage wrote.  Files opened by redirections are descriptors of the
:class:`~sim.interface.FileSystem`, so every write goes through the union
(copy-up on open for write, exactly as the kernel does it).
"""

from __future__ import annotations

import errno
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.interface import FileSystem

__all__ = ["Stream", "BytesIn", "BufferOut", "NullStream", "FsStream", "Proc", "encode", "decode", "fs_join"]


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def fs_join(cwd: str, path: str) -> str:
    """``path`` as the file system takes it: absolute, or the process's cwd joined in front.

    No lexical ``..`` folding: the file system walks ``cwd/../x`` through
    symlinks exactly as the kernel does for a process whose cwd is ``cwd``.
    """
    if path.startswith("/"):
        return path
    if not path:
        return path
    return cwd.rstrip("/") + "/" + path


def _bad() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class Stream:
    """One open descriptor.  Subclasses implement the directions they allow."""

    readable = False
    writable = False

    def write(self, data: bytes) -> None:
        raise _bad()

    def read(self, n: int = -1) -> bytes:
        raise _bad()

    def readline(self) -> bytes:
        out = bytearray()
        while True:
            ch = self.read(1)
            if not ch:
                return bytes(out)
            out += ch
            if ch == b"\n":
                return bytes(out)

    def close(self) -> None:
        pass


class BytesIn(Stream):
    """A pipe's read end (or the container's stdin): bytes already written."""

    readable = True

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else min(len(self.data), self.pos + n)
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        end = len(self.data) if end < 0 else end + 1
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk


class BufferOut(Stream):
    """A pipe's write end, or the captured stdout/stderr of the whole run."""

    writable = True

    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        self.buf += data

    def getvalue(self) -> bytes:
        return bytes(self.buf)


class NullStream(Stream):
    """``/dev/null``: the container's /dev is its own mount, never the union."""

    readable = True
    writable = True

    def write(self, data: bytes) -> None:
        pass

    def read(self, n: int = -1) -> bytes:
        return b""


class FsStream(Stream):
    """A descriptor of the FileSystem (``> file``, ``>> file``, ``< file``, ``<> file``)."""

    def __init__(self, fs: FileSystem, fd: int, path: str, *, readable: bool, writable: bool) -> None:
        self.fs = fs
        self.fd: int | None = fd
        self.path = path
        self.readable = readable
        self.writable = writable
        self._pending = b""

    def write(self, data: bytes) -> None:
        if self.fd is None or not self.writable:
            raise _bad()
        view = memoryview(data)
        while view:
            view = view[self.fs.write(self.fd, bytes(view)):]

    def read(self, n: int = -1) -> bytes:
        if self.fd is None or not self.readable:
            raise _bad()
        if n < 0:
            chunks = [self._pending]
            self._pending = b""
            while chunk := self.fs.read(self.fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        if len(self._pending) < n:
            self._pending += self.fs.read(self.fd, max(n - len(self._pending), 4096))
        chunk, self._pending = self._pending[:n], self._pending[n:]
        return chunk

    def readline(self) -> bytes:
        out = bytearray()
        while True:
            if not self._pending:
                assert self.fd is not None
                self._pending = self.fs.read(self.fd, 4096)
                if not self._pending:
                    return bytes(out)
            nl = self._pending.find(b"\n")
            if nl >= 0:
                out += self._pending[:nl + 1]
                self._pending = self._pending[nl + 1:]
                return bytes(out)
            out += self._pending
            self._pending = b""

    def close(self) -> None:
        if self.fd is not None:
            self.fs.close(self.fd)
            self.fd = None


@dataclass
class Proc:
    """The view of one applet run: ``name`` prefixes its messages (``sh`` for ash builtins)."""

    world: Any  # the interpreter's World (typed loosely to keep this module import-free)
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    fds: dict[int, Stream]
    shell: Any = None  # the calling shell, for ash builtins

    @property
    def fs(self) -> FileSystem:
        fs: FileSystem = self.world.fs
        return fs

    def path(self, p: str) -> str:
        return fs_join(self.cwd, p)

    # output ----------------------------------------------------------------------

    def out(self, data: bytes | str) -> None:
        self._write(1, data)

    def errout(self, data: bytes | str) -> None:
        self._write(2, data)

    def _write(self, fd: int, data: bytes | str) -> None:
        stream = self.fds.get(fd)
        if stream is None or not data:
            return
        try:
            stream.write(encode(data) if isinstance(data, str) else data)
        except OSError:
            pass

    def error(self, msg: str) -> None:
        """``bb_error_msg``: ``name: msg``."""
        self.errout(f"{self.name}: {msg}\n")

    def perror(self, msg: str | None, exc: OSError | int) -> None:
        """``bb_perror_msg``: ``name: msg: strerror``."""
        code = exc if isinstance(exc, int) else (exc.errno or errno.EIO)
        text = os.strerror(code)
        self.errout(f"{self.name}: {msg}: {text}\n" if msg is not None else f"{self.name}: {text}\n")

    # input -----------------------------------------------------------------------

    def stdin(self) -> Stream | None:
        return self.fds.get(0)

    def read_stdin(self) -> bytes:
        stream = self.fds.get(0)
        if stream is None:
            raise _bad()
        return stream.read()

    def basename(self, p: str) -> str:
        return posixpath.basename(p.rstrip("/")) or ("/" if p.startswith("/") else p)
