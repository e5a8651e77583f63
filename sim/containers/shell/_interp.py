"""The executor: ash's semantics over the AST, one ash process at a time.

:class:`Shell` runs scripts (``sh -c``, a file, stdin) one complete command
at a time, as ash does: lists, pipelines, compound commands, functions,
simple commands and their lookup (special builtin, function, builtin,
program).  Subshells, pipeline stages and command substitutions run on a
:meth:`~Shell.fork` of it.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Mapping

from sim.containers.shell._applets import APPLETS
from sim.containers.shell._ast import (
    AndOr,
    Case,
    CmdList,
    Command,
    For,
    FuncDef,
    Group,
    If,
    Pipeline,
    Redir,
    Simple,
    While,
)
from sim.containers.shell._builtins import REGULAR_BUILTINS, SPECIAL_BUILTINS, Builtins, quote
from sim.containers.shell._control import FunctionReturn, LoopControl, RedirError, ShellError, ShellExit
from sim.containers.shell._expand import Expander
from sim.containers.shell._lexer import ShellSyntaxError
from sim.containers.shell._parser import Parser
from sim.containers.shell._pattern import match_pattern
from sim.containers.shell._proc import BufferOut, BytesIn, NullStream, Proc, Stream, decode
from sim.containers.shell._redirs import apply_redirs
from sim.containers.shell._state import Var
from sim.containers.shell._usage import BUSYBOX_APPLETS
from sim.errors import UnsupportedCommandError

__all__ = ["Shell"]


class Shell(Builtins):
    """One ash process."""

    # -- forking -------------------------------------------------------------------

    def fork(self) -> Shell:
        child = Shell.__new__(Shell)
        child.__dict__.update(self.__dict__)
        child.vars = {k: Var(v.value, v.exported, v.readonly, v.seq) for k, v in self.vars.items()}
        child.funcs = dict(self.funcs)
        child.positional = list(self.positional)
        child.opts = set(self.opts)
        child.locals = []
        child.loop_depth = 0
        child.func_depth = 0
        child.expander = Expander(child)
        return child

    def subshell(self, fn: object, *args: object) -> int:
        """Run ``fn(*args)`` as a forked child: its exit, errors and changes stay inside."""
        try:
            status = fn(*args)  # type: ignore[operator]
            assert isinstance(status, int)
            return status
        except ShellExit as e:
            return e.status
        except ShellError as e:
            self.report(e, {2: self._stderr_of(args)})
            return e.status
        except (LoopControl, FunctionReturn):
            return self.status

    def _stderr_of(self, args: tuple[object, ...]) -> Stream:
        for a in args:
            if isinstance(a, dict) and 2 in a:
                return a[2]  # type: ignore[no-any-return]
        return NullStream()

    # -- running scripts -------------------------------------------------------------

    def run_source(self, src: str, fds: dict[int, Stream], *, first_line: int) -> int:
        """Parse and run one complete command at a time, as ash does (earlier lines run first)."""
        parser = Parser(src, first_line)
        while True:
            try:
                items = parser.parse_next()
            except ShellSyntaxError as e:
                self._err(fds, self._prefix(None, e.line) + f"syntax error: {e}\n")
                self.status = 2
                raise ShellExit(2) from None
            if items is None:
                break
            self.exec_list(items, fds)
        return self.status

    def main(self, argv: list[str], fds: dict[int, Stream], env: Mapping[str, str]) -> int:
        """``sh [-eux] -c SCRIPT [ARG0 ARGS...] | sh FILE ARGS... | sh [-s] ARGS...`` (script on stdin).

        ``argv[0]`` is ``$0`` and prefixes ash's own messages, so a container's
        ``/bin/sh -c foo`` says ``/bin/sh: foo: not found``.
        """
        self.arg0 = argv[0] if argv else self.applet_name
        args = argv[1:]
        command: str | None = None
        read_stdin = False
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                i += 1
                break
            if a == "-" :
                i += 1
                break
            if not (a.startswith("-") or a.startswith("+")) or len(a) < 2:
                break
            on = a[0] == "-"
            j = 1
            stop = False
            while j < len(a):
                c = a[j]
                j += 1
                if c == "c":
                    if on:
                        command = ""
                elif c == "s":
                    read_stdin = True
                elif c in "eufx":
                    (self.opts.add if on else self.opts.discard)(c)
                elif c in "ilmvC":
                    pass
                elif c == "o":
                    if i + 1 >= len(args):
                        stop = True
                        break
                    i += 1
                    opt = args[i]
                    letter = {"errexit": "e", "nounset": "u", "noglob": "f", "xtrace": "x"}.get(opt)
                    if letter is None and opt not in ("pipefail", "noclobber", "verbose", "monitor", "interactive"):
                        self._err(fds, f"{self.arg0}: illegal option {a[0]}o {opt}\n")
                    if opt == "pipefail":
                        raise UnsupportedCommandError("the model's shell does not implement 'set -o pipefail'; run it with BACKEND='real'")
                    if letter:
                        (self.opts.add if on else self.opts.discard)(letter)
                else:
                    self._err(fds, f"{self.arg0}: illegal option {a[0]}{c}\n")
                    return 2
            if stop:
                break
            i += 1
        rest = args[i:]
        try:
            if command is not None:
                if not rest:
                    self._err(fds, f"{self.arg0}: -c requires an argument\n")
                    return 2
                command = rest[0]
                if len(rest) > 1:
                    self.arg0 = self.commandname = rest[1]
                    self.positional = rest[2:]
                return self.run_source(command, fds, first_line=0)
            if rest and not read_stdin:
                name = rest[0]
                try:
                    stream = self.world.open_stream(self.cwd, name, os.O_RDONLY, fds)
                    data = stream.read()
                    stream.close()
                except OSError as e:
                    self._err(fds, f"{self.arg0}: can't open '{name}': {os.strerror(e.errno or errno.EIO)}\n")
                    return 2
                self.arg0 = self.commandname = name
                self.positional = rest[1:]
                return self.run_source(decode(data), fds, first_line=1)
            self.positional = rest
            stdin = fds.get(0)
            data = stdin.read() if stdin is not None else b""
            return self.run_source(decode(data), fds, first_line=1)
        except ShellExit as e:
            return e.status
        except ShellError as e:
            self.report(e, fds)
            return e.status
        except (LoopControl, FunctionReturn):
            return self.status

    # -- execution -------------------------------------------------------------------

    def exec_list(self, cmds: CmdList, fds: dict[int, Stream]) -> int:
        for item in cmds.items:
            if item.background:
                self.world.next_pid += 1
                self.last_bg = str(self.world.next_pid)
                child = self.fork()
                child.subshell(child.exec_andor, item.andor, fds)
                self.status = 0
            else:
                self.exec_andor(item.andor, fds)
        return self.status

    def exec_andor(self, andor: AndOr, fds: dict[int, Stream]) -> int:
        pipelines = [("", andor.first), *andor.rest]
        status = 0
        last_run = -1
        for k, (op, pl) in enumerate(pipelines):
            if k and (op == "&&") != (status == 0):
                continue
            last_run = k
            suppress = k < len(pipelines) - 1
            status = self.exec_pipeline(pl, fds, suppress=suppress)
        self.status = status
        if (status and "e" in self.opts and self.errexit_off == 0 and last_run == len(pipelines) - 1
                and not pipelines[last_run][1].negate):
            raise ShellExit(status)
        return status

    def exec_pipeline(self, pl: Pipeline, fds: dict[int, Stream], *, suppress: bool = False) -> int:
        off = pl.negate or suppress
        if off:
            self.errexit_off += 1
        try:
            if len(pl.cmds) == 1:
                status = self.exec_command(pl.cmds[0], fds)
            else:
                data: bytes | None = None
                status = 0
                for k, cmd in enumerate(pl.cmds):
                    stage = dict(fds)
                    if k:
                        stage[0] = BytesIn(data or b"")
                    out = None
                    if k < len(pl.cmds) - 1:
                        out = BufferOut()
                        stage[1] = out
                    child = self.fork()
                    status = child.subshell(child.exec_command, cmd, stage)
                    data = out.getvalue() if out is not None else None
        finally:
            if off:
                self.errexit_off -= 1
        if pl.negate:
            status = 0 if status else 1
        self.status = status
        return status

    def exec_command(self, cmd: Command, fds: dict[int, Stream]) -> int:
        self._current_fds = fds  # where a command substitution in this command's words sends stderr
        if isinstance(cmd, Simple):
            status = self.exec_simple(cmd, fds)
            self.status = status
            return status
        if isinstance(cmd, FuncDef):
            self.funcs[cmd.name] = cmd.body
            self.status = 0
            return 0
        redirs: list[Redir] = getattr(cmd, "redirs", [])
        if redirs:
            try:
                cmd_fds, opened = apply_redirs(self, redirs, fds)
            except RedirError as e:
                self.message(fds, e.msg)
                self.status = 1
                return 1
        else:
            cmd_fds, opened = fds, []
        self._current_fds = cmd_fds
        try:
            status = self._exec_compound(cmd, cmd_fds)
        finally:
            for stream in opened:
                stream.close()
        self.status = status
        return status

    def _loop_body(self, body: CmdList, fds: dict[int, Stream]) -> tuple[int, bool]:
        """Run one pass of a for/while/until body: its status, and whether a `break` ends the loop.

        A break or continue aimed at an outer loop (count > 1) is passed on with its count less one.
        """
        try:
            return self.exec_list(body, fds), False
        except LoopControl as lc:
            if lc.count > 1:
                lc.count -= 1
                raise
            return self.status, lc.kind == "break"

    def _exec_compound(self, cmd: Command, fds: dict[int, Stream]) -> int:
        if isinstance(cmd, If):
            for cond, body in cmd.clauses:
                self.errexit_off += 1
                try:
                    st = self.exec_list(cond, fds)
                finally:
                    self.errexit_off -= 1
                if st == 0:
                    return self.exec_list(body, fds)
            if cmd.else_ is not None:
                return self.exec_list(cmd.else_, fds)
            return 0
        if isinstance(cmd, For):
            values = list(self.positional) if cmd.words is None else self.expand_fields(cmd.words)
            status = 0
            self.loop_depth += 1
            try:
                for value in values:
                    self.setvar(cmd.var, value)
                    status, stop = self._loop_body(cmd.body, fds)
                    if stop:
                        break
            finally:
                self.loop_depth -= 1
            return status
        if isinstance(cmd, While):
            status = 0
            self.loop_depth += 1
            try:
                while True:
                    self.errexit_off += 1
                    try:
                        st = self.exec_list(cmd.cond, fds)
                    finally:
                        self.errexit_off -= 1
                    if (st == 0) == cmd.until:
                        break
                    status, stop = self._loop_body(cmd.body, fds)
                    if stop:
                        break
            finally:
                self.loop_depth -= 1
            return status
        if isinstance(cmd, Case):
            word = self.expand_single(cmd.word)
            for patterns, body in cmd.arms:
                for pat in patterns:
                    if match_pattern(self.expander.pattern(pat), word):
                        return self.exec_list(body, fds) if body.items else 0
            return 0
        if isinstance(cmd, Group):
            if cmd.subshell:
                child = self.fork()
                return child.subshell(child.exec_list, cmd.body, fds)
            return self.exec_list(cmd.body, fds)
        raise AssertionError(cmd)

    # -- command substitution --------------------------------------------------------
    def command_substitution(self, body: CmdList) -> str:
        child = self.fork()
        out = BufferOut()
        fds = dict(self._current_fds)
        fds[1] = out
        status = child.subshell(child.exec_list, body, fds)
        self.cmdsub_status = status
        self.status = status
        return decode(out.getvalue()).rstrip("\n")

    _current_fds: dict[int, Stream] = {}

    # -- simple commands -------------------------------------------------------------

    def exec_simple(self, cmd: Simple, fds: dict[int, Stream]) -> int:
        self.lineno = cmd.line
        self._current_fds = fds
        self.cmdsub_status = None
        argv = self.expand_fields(cmd.words)
        if not argv:
            try:
                cmd_fds, opened = apply_redirs(self, cmd.redirs, fds)
            except RedirError as e:
                self.message(fds, e.msg)
                return 1
            for stream in opened:
                stream.close()
            for name, word in cmd.assigns:
                self.setvar(name, self.expand_single(word))
            if "x" in self.opts and cmd.assigns:
                self._xtrace(fds, [f"{n}={self.getvar(n)}" for n, _ in cmd.assigns])
            return self.cmdsub_status if self.cmdsub_status is not None else 0
        assigns = [(name, self.expand_single(word)) for name, word in cmd.assigns]
        if "x" in self.opts:
            self._xtrace(fds, [f"{n}={v}" for n, v in assigns] + argv)
        try:
            cmd_fds, opened = apply_redirs(self, cmd.redirs, fds)
        except RedirError as e:
            self.message(fds, e.msg)
            return 1
        keep = False
        try:
            if argv == ["exec"] and not assigns:
                fds.clear()
                fds.update(cmd_fds)
                self.world.open_streams.extend(opened)
                keep = True
                return 0
            return self.dispatch(argv, assigns, cmd_fds)
        finally:
            if not keep:
                for stream in opened:
                    stream.close()

    def _xtrace(self, fds: Mapping[int, Stream], words: list[str]) -> None:
        ps4 = self.getvar("PS4") or ""
        self._err(fds, ps4 + " ".join(quote(w) for w in words) + "\n")

    def dispatch(self, argv: list[str], assigns: list[tuple[str, str]], fds: dict[int, Stream]) -> int:
        name = argv[0]
        if name in SPECIAL_BUILTINS:
            for n, v in assigns:
                self.setvar(n, v)
            return self.builtin(name, argv, fds)
        if name in self.funcs:
            return self._with_temp(assigns, lambda: self.call_function(name, argv, fds))
        if name in REGULAR_BUILTINS:
            return self._with_temp(assigns, lambda: self.builtin(name, argv, fds))
        return self.run_program(argv, self.environment(assigns), fds)

    def _with_temp(self, assigns: list[tuple[str, str]], fn: object) -> int:
        saved: list[tuple[str, Var | None]] = []
        for n, v in assigns:
            old = self.vars.get(n)
            if old is not None and old.readonly:
                raise ShellError(f"{n}: is read only")
            saved.append((n, None if old is None else Var(old.value, old.exported, old.readonly, old.seq)))
            self._set_raw(n, v, export=True)
        try:
            return fn()  # type: ignore[operator,no-any-return]
        finally:
            for n, old in reversed(saved):
                if old is None:
                    self.vars.pop(n, None)
                else:
                    self.vars[n] = old

    def call_function(self, name: str, argv: list[str], fds: dict[int, Stream]) -> int:
        body = self.funcs[name]
        saved_pos = self.positional
        self.positional = argv[1:]
        self.locals.append({})
        self.func_depth += 1
        try:
            status = self.exec_command(body, fds)
        except FunctionReturn as r:
            status = r.status
        finally:
            self.func_depth -= 1
            frame = self.locals.pop()
            for n, old in frame.items():
                if old is None:
                    self.vars.pop(n, None)
                else:
                    self.vars[n] = old
            self.positional = saved_pos
        self.status = status
        return status

    def run_program(self, argv: list[str], env: dict[str, str], fds: dict[int, Stream]) -> int:
        """An external command: an applet (busybox's standalone shell) or a file found on $PATH."""
        world = self.world
        name = argv[0]
        try:
            if "/" in name:
                return world.execve(name, argv, env, self.cwd, fds)
            if world.builtin_applets and name in BUSYBOX_APPLETS:
                return world.run_applet(name, argv, env, self.cwd, fds)
            path_var = env.get("PATH", self.getvar("PATH") or "")
            found = world.search_path(name, path_var, self.cwd)
            if found is None:
                self.message(fds, f"{name}: not found")
                return 127
            return world.execve(found, argv, env, self.cwd, fds)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                self.message(fds, f"{name}: not found")
                return 127
            self.message(fds, f"{name}: {os.strerror(e.errno or errno.EIO)}")
            return 126


def _sh_applet(p: Proc) -> int:
    shell = Shell(p.world, p.env, p.cwd, applet_name=posixpath.basename(p.argv[0]) if p.argv else "sh")
    return shell.main(p.argv, p.fds, p.env)


APPLETS["sh"] = _sh_applet
APPLETS["ash"] = _sh_applet
