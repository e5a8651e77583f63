"""What every applet shares: the applet table, the usage and "not modelled" errors, getopt, file helpers."""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable

from sim.containers.shell._proc import Proc, Stream
from sim.containers.shell._usage import BANNER, USAGE
from sim.errors import UnsupportedCommandError

APPLETS: dict[str, Callable[[Proc], int]] = {}


def applet(*names: str) -> Callable[[Callable[[Proc], int]], Callable[[Proc], int]]:
    def register(fn: Callable[[Proc], int]) -> Callable[[Proc], int]:
        for name in names:
            APPLETS[name] = fn
        return fn
    return register


def unsupported(p: Proc, what: str) -> UnsupportedCommandError:
    return UnsupportedCommandError(f"the model's {p.argv and posixpath.basename(p.argv[0]) or p.name} does not implement {what}; "
                                   "run it with BACKEND='real'")


# -- option parsing (glibc getopt as busybox's getopt32 uses it) ----------------------


class UsageError(Exception):
    """Print ``msg`` (if any) then the applet's usage text; exit 1."""

    def __init__(self, msg: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg


def show_usage(p: Proc, name: str, msg: str | None = None) -> int:
    if msg:
        p.errout(f"{p.name}: {msg}\n")
    text = USAGE.get(name)
    if text is not None:
        p.errout(f"{BANNER}\n\n{text}")
    return 1


def getopt(
    p: Proc,
    args: list[str],
    spec: str,
    *,
    longopts: dict[str, str] | None = None,
    permute: bool = True,
) -> tuple[dict[str, list[str]], list[str]]:
    """Parse ``args`` (without argv[0]) like glibc getopt_long; ``spec`` uses ``x:`` for arguments.

    Returns ``({opt: [values...]}, operands)``; a flag's list holds one ``""``
    per occurrence.  Long options map to a short key in ``longopts``
    (``{"full-time": "\\x01"}``); a trailing ``=`` in the key takes a value.
    """
    takes = {c for i, c in enumerate(spec) if c != ":" and spec[i + 1:i + 2] == ":"}
    known = {c for c in spec if c != ":"}
    longopts = longopts or {}
    opts: dict[str, list[str]] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            operands.extend(args[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, value = a[2:].partition("=")
            matches = [k for k in longopts if k.rstrip("=") == name] or [k for k in longopts if k.rstrip("=").startswith(name)]
            if len(matches) != 1:
                raise UsageError(f"unrecognized option '{a}'")
            key = matches[0]
            if key.endswith("="):
                if not eq:
                    if i >= len(args):
                        raise UsageError(f"option '--{key[:-1]}' requires an argument")
                    value = args[i]
                    i += 1
                opts.setdefault(longopts[key], []).append(value)
            else:
                if eq:
                    raise UsageError(f"option '--{key}' doesn't allow an argument")
                opts.setdefault(longopts[key], []).append("")
            continue
        if a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                j += 1
                if c not in known:
                    raise UsageError(f"invalid option -- '{c}'")
                if c in takes:
                    if j < len(a):
                        value = a[j:]
                    elif i < len(args):
                        value = args[i]
                        i += 1
                    else:
                        raise UsageError(f"option requires an argument -- '{c}'")
                    opts.setdefault(c, []).append(value)
                    break
                opts.setdefault(c, []).append("")
            continue
        operands.append(a)
        if not permute:
            operands.extend(args[i:])
            break
    return opts, operands


def process_umask(p: Proc) -> int:
    options = getattr(p.fs, "options", None)
    return getattr(options, "umask", 0o022)


def current_time(p: Proc) -> float:
    return float(p.world.now())


# -- files through the FileSystem ------------------------------------------------------


def open_read(p: Proc, name: str) -> Stream:
    """Open ``name`` for reading (``-`` is stdin); raises OSError like open(2)."""
    if name == "-":
        stdin = p.fds.get(0)
        if stdin is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return stdin
    stream: Stream = p.world.open_stream(p.cwd, name, os.O_RDONLY, p.fds)
    return stream


def close_stream(p: Proc, name: str, stream: Stream) -> None:
    if name != "-" and stream is not p.fds.get(0):
        stream.close()


def read_input(p: Proc, name: str) -> bytes | None:
    """All of ``name`` (``-`` is stdin), or None after busybox's ``APPLET: NAME: strerror`` message
    when it cannot be opened or read (the caller decides the exit status)."""
    try:
        stream = open_read(p, name)
        data = stream.read()
    except OSError as e:
        p.perror(name, e)
        return None
    close_stream(p, name, stream)
    return data


# -- operand paths joined as libbb's concat_path_file does, so messages show them as typed


def concat_path(path: str, name: str) -> str:
    if not path:
        return name
    return path + name if path.endswith("/") else path + "/" + name


def last_component(path: str) -> str:
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else path
    return stripped.rsplit("/", 1)[-1]
