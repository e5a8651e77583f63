"""Redirections: a command's descriptor table with its ``<``, ``>``, ``>>``, ``<>``, ``<&``, ``>&`` and here-documents."""

from __future__ import annotations

import errno
import os

from sim.containers.shell._ast import Redir
from sim.containers.shell._control import RedirError
from sim.containers.shell._proc import BytesIn, Stream, encode
from sim.containers.shell._state import ShellState

__all__ = ["apply_redirs"]


def apply_redirs(shell: ShellState, redirs: list[Redir],
                 fds: dict[int, Stream]) -> tuple[dict[int, Stream], list[Stream]]:
    """``fds`` with ``redirs`` applied in order, and the streams opened for them (the caller closes those)."""
    if not redirs:
        return fds, []
    new = dict(fds)
    opened: list[Stream] = []
    try:
        for r in redirs:
            if r.op in ("<<", "<<-"):
                assert r.heredoc is not None
                body = shell.expand_single(r.heredoc, tilde=False) if r.heredoc.parts else ""
                new[r.fd] = BytesIn(encode(body))
                continue
            target = shell.expand_single(r.target)
            if r.op in ("<&", ">&"):
                if target == "-":
                    new.pop(r.fd, None)
                    continue
                if not target.isdigit():
                    if r.op == ">&" and r.fd == 1:  # ">&file" is bash's "&>file"; ash: a file name
                        raise RedirError(f"{target}: bad number")
                    raise RedirError(f"{target}: bad number")
                src = new.get(int(target))
                if src is None:
                    raise RedirError(f"{target}: Bad file descriptor")
                new[r.fd] = src
                continue
            flags = {
                "<": os.O_RDONLY,
                ">": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                ">|": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                ">>": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                "<>": os.O_RDWR | os.O_CREAT,
            }[r.op]
            try:
                stream = shell.world.open_stream(shell.cwd, target, flags, new)
            except OSError as e:
                verb = "open" if r.op == "<" else "create"
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    why = "no such file" if r.op == "<" else "nonexistent directory"
                else:
                    why = os.strerror(e.errno or errno.EIO)
                raise RedirError(f"can't {verb} {target}: {why}") from None
            opened.append(stream)
            new[r.fd] = stream
    except BaseException:
        for stream in opened:
            stream.close()
        raise
    return new, opened

