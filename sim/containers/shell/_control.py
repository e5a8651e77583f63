"""The exceptions that carry ash's control flow and errors through the interpreter."""

from __future__ import annotations

__all__ = ["ShellExit", "ShellError", "LoopControl", "FunctionReturn", "RedirError"]


class ShellExit(Exception):
    """``exit``, ``exec`` or ``set -e``: the process ends with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ShellError(Exception):
    """An error ash raises: printed with the shell's prefix; a non-interactive shell exits 2."""

    def __init__(self, msg: str, *, command: str | None = None, status: int = 2) -> None:
        super().__init__(msg)
        self.msg = msg
        self.command = command
        self.status = status


class LoopControl(Exception):
    """``break N`` / ``continue N``: unwinds to the N-th enclosing loop."""

    def __init__(self, kind: str, count: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.count = count


class FunctionReturn(Exception):
    """``return`` inside a function."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class RedirError(Exception):
    """A redirection failed: the command does not run, and its status is 1."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg

