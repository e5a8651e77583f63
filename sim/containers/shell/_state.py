"""One ash process's state: variables (in ash's hash-table order), parameters, options and messages.

The variables keep ash's order so ``env`` prints what busybox prints.
The builtins and the executor build on :class:`ShellState`; subshells,
pipeline stages and command substitutions run on a copy of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from sim.containers.shell._applets import passwd_entry
from sim.containers.shell._ast import CmdList, Command, Word
from sim.containers.shell._control import ShellError
from sim.containers.shell._expand import Expander
from sim.containers.shell._exphost import ExpansionError
from sim.containers.shell._proc import Proc, Stream, encode, fs_join
from sim.containers.shell._world import ASH_DEFAULT_PATH, World
from sim.interface import FileSystem

__all__ = ["ShellState", "Var", "FAKE_PID", "normalize"]

#: ``$$``: the shell is PID 1 of its container.
FAKE_PID = 1

# ash's fixed variables (varinit order); they sit first in their hash bucket, last-declared first
_FIXED = ("IFS", "MAIL", "MAILPATH", "PATH", "PS1", "PS2", "PS4", "OPTIND", "LINENO", "FUNCNAME", "RANDOM", "SECONDS",
          "HISTFILE")


def _ash_bucket(name: str) -> int:
    raw = encode(name)
    if not raw:
        return 0
    h = raw[0] << 4
    for b in raw:
        h += b
    return h % 39


@dataclass
class Var:
    value: str | None
    exported: bool = False
    readonly: bool = False
    seq: int = 0


class ShellState(ABC):
    """What one ash process holds, and its variables; running commands is the executor's."""

    def __init__(self, world: World, env: Mapping[str, str], cwd: str, *, applet_name: str = "sh") -> None:
        self.world = world
        self.applet_name = applet_name
        self.arg0 = applet_name
        # ash's commandname: the script (or ``sh -c CMD NAME``), or the running builtin; when
        # set, messages carry "line N: " (and the name itself when it is not $0)
        self.commandname: str | None = None
        self.vars: dict[str, Var] = {}
        self.seq = 0
        self.funcs: dict[str, Command] = {}
        self.positional: list[str] = []
        self.status = 0
        self.opts: set[str] = set()
        self.lineno = 0
        self.loop_depth = 0
        self.func_depth = 0
        self.errexit_off = 0
        self.last_bg = ""
        self.locals: list[dict[str, Var | None]] = []
        self.cmdsub_status: int | None = None
        self.expander = Expander(self)
        for i, name in enumerate(_FIXED):
            self.vars[name] = Var(None, seq=-1 - i)
        self.vars["IFS"].value = " \t\n"
        self.vars["PS1"].value = "\\w \\$ "
        self.vars["PS2"].value = "> "
        self.vars["PS4"].value = "+ "
        self.vars["OPTIND"].value = "1"
        for name, value in env.items():
            if "=" in name or not name:
                continue
            self._set_raw(name, value, export=True)
        if self.vars["PATH"].value is None:
            self._set_raw("PATH", ASH_DEFAULT_PATH, export=True)
        self.vars["PATH"].exported = True
        self.cwd = cwd if cwd.startswith("/") else "/" + cwd
        pwd = env.get("PWD")
        if pwd and pwd.startswith("/"):
            try:
                same = world.realpath(pwd) == world.realpath(self.cwd)
            except OSError:
                same = False
            if same:
                self.cwd = normalize(pwd)
        self._set_raw("PWD", self.cwd, export=True)
        level = env.get("SHLVL", "0")
        try:
            shlvl = int(level.strip() or "0")
        except ValueError:
            shlvl = 0
        self._set_raw("SHLVL", str(shlvl + 1), export=True)

    # -- variables -----------------------------------------------------------------

    def _set_raw(self, name: str, value: str | None, *, export: bool = False) -> None:
        var = self.vars.get(name)
        if var is None:
            self.seq += 1
            var = self.vars[name] = Var(value, seq=self.seq)
        else:
            var.value = value
        if export:
            var.exported = True

    def getvar(self, name: str) -> str | None:
        if name == "LINENO":
            return str(self.lineno)
        var = self.vars.get(name)
        return var.value if var is not None else None

    def setvar(self, name: str, value: str, *, export: bool = False) -> None:
        var = self.vars.get(name)
        if var is not None and var.readonly:
            raise ShellError(f"{name}: is read only")
        self._set_raw(name, value, export=export)

    def unsetvar(self, name: str) -> None:
        var = self.vars.get(name)
        if var is None:
            return
        if var.readonly:
            raise ShellError(f"{name}: is read only", command="unset")
        if name in _FIXED:
            var.value = None
            var.exported = False
        else:
            del self.vars[name]

    def special(self, name: str) -> str | list[str] | None:
        if name in ("@", "*"):
            return list(self.positional)
        if name == "#":
            return str(len(self.positional))
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(FAKE_PID)
        if name == "!":
            return self.last_bg
        if name == "-":
            return "".join(sorted(self.opts))
        if name == "0":
            return self.arg0
        if name.isdigit():
            k = int(name)
            return self.positional[k - 1] if k <= len(self.positional) else None
        return None

    @property
    def nounset(self) -> bool:
        return "u" in self.opts

    @property
    def noglob(self) -> bool:
        return "f" in self.opts

    @property
    def fs(self) -> FileSystem:
        return self.world.fs

    def fs_path(self, path: str) -> str:
        return fs_join(self.cwd, path)

    def home_of(self, user: str) -> str | None:
        entry = passwd_entry(self._proc([]), user)
        return entry[5] if entry else None

    def environment(self, extra: list[tuple[str, str]] = ()) -> dict[str, str]:  # type: ignore[assignment]
        """The exported variables in ash's order (hash bucket, then bucket position)."""
        table = {name: (var.value, var.seq, var.exported) for name, var in self.vars.items()}
        seq = self.seq
        for name, value in extra:
            if name in table:
                _old, s, _e = table[name]
                table[name] = (value, s, True)
            else:
                seq += 1
                table[name] = (value, seq, True)
        items = [(_ash_bucket(n), s, n, v) for n, (v, s, e) in table.items() if e and v is not None]
        items.sort()
        return {n: v for _b, _s, n, v in items}

    # -- messages ------------------------------------------------------------------

    def _prefix(self, command: str | None, line: int) -> str:
        """ash's ``ash_vmsg``: ``arg0: [commandname: ][line N: ]``."""
        name = command if command is not None else self.commandname
        if name is None:
            return f"{self.arg0}: "
        return f"{self.arg0}: " + (f"{name}: " if name != self.arg0 else "") + f"line {line}: "

    def message(self, fds: Mapping[int, Stream], text: str, *, command: str | None = None) -> None:
        self._err(fds, self._prefix(command, self.lineno) + text + "\n")

    def _err(self, fds: Mapping[int, Stream], text: str) -> None:
        stream = fds.get(2)
        if stream is not None:
            try:
                stream.write(encode(text))
            except OSError:
                pass

    def report(self, e: ShellError, fds: Mapping[int, Stream]) -> None:
        self.message(fds, e.msg, command=e.command)

    def _out(self, fds: Mapping[int, Stream], text: str) -> None:
        stream = fds.get(1)
        if stream is not None:
            try:
                stream.write(encode(text))
            except OSError:
                pass

    def _proc(self, argv: list[str], fds: dict[int, Stream] | None = None) -> Proc:
        return Proc(self.world, self.applet_name, argv, self.environment(), self.cwd, fds if fds is not None else {}, shell=self)

    # -- expansion -----------------------------------------------------------------

    def expand_fields(self, words: list[Word]) -> list[str]:
        try:
            return self.expander.fields(words)
        except ExpansionError as e:
            raise ShellError(str(e)) from None

    def expand_single(self, word: Word, *, tilde: bool = True) -> str:
        try:
            return self.expander.single(word, tilde=tilde)
        except ExpansionError as e:
            raise ShellError(str(e)) from None

    @abstractmethod
    def command_substitution(self, body: CmdList) -> str:
        """``$(body)``: its output without trailing newlines (the executor runs it)."""


def normalize(path: str) -> str:
    """``path`` (absolute) with ``.``, ``..`` and doubled slashes folded away lexically, as ``cd -L`` does."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)

