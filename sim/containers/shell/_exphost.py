"""What word expansion needs from the shell, and the error it raises.

The expander, arithmetic and globbing see the shell only through
:class:`ExpansionHost`, so they sit below the interpreter that implements it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sim.containers.shell._ast import CmdList
    from sim.interface import FileSystem

__all__ = ["ExpansionError", "ExpansionHost"]


class ExpansionError(Exception):
    """``${x?msg}``, a bad arithmetic expression, ``set -u`` on an unset name: ash aborts the command."""


class ExpansionHost(Protocol):  # what the expander needs from the shell
    @property
    def fs(self) -> FileSystem: ...

    def getvar(self, name: str) -> str | None: ...
    def setvar(self, name: str, value: str) -> None: ...
    def special(self, name: str) -> str | list[str] | None: ...
    def command_substitution(self, body: CmdList) -> str: ...
    def fs_path(self, path: str) -> str: ...
    def home_of(self, user: str) -> str | None: ...

    @property
    def nounset(self) -> bool: ...

    @property
    def noglob(self) -> bool: ...
