"""``sed``, as busybox 1.35 (``editors/sed.c``) runs it; the script parser is :mod:`._sed_parse`.

Input files form one stream (line numbers and ``$`` run across them); with
``-i`` each file is its own stream and is rewritten in place.  A last line
without a newline is printed without one, as busybox does; one in the middle of
the stream gets a newline.  Substitution follows POSIX: an empty match right
after a match is skipped (``s/b*/-/g`` on ``abc`` gives ``-a-c-``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    close_stream,
    getopt,
    open_read,
    read_input,
    show_usage,
    unsupported,
)
from sim.containers.shell._applets._sed_parse import (
    Address,
    SedCommand,
    SedError,
    SedUnsupported,
    parse_script,
    script_bytes,
)
from sim.containers.shell._proc import Proc, decode
from sim.containers.shell._regex import successive_matches


class _Quit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Stream:
    """The lines of one sed input stream: ``(bytes, ended by a newline)``."""

    lines: list[tuple[bytes, bool]]
    pos: int = 0

    def next(self) -> tuple[bytes, bool] | None:
        if self.pos >= len(self.lines):
            return None
        self.pos += 1
        return self.lines[self.pos - 1]

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.lines)


@dataclass
class _Run:
    cmds: list[SedCommand]
    quiet: bool
    out: bytearray = field(default_factory=bytearray)
    hold: bytes = b""
    last_regex: re.Pattern[bytes] | None = None
    lineno: int = 0
    newline: bool = True  # whether the current input line ended with a newline
    pending: bool = False  # a line went out without its newline: the next output writes it first

    writes: dict[bytes, Any] = field(default_factory=dict)  # the files of w and s///w, by name

    def emit(self, data: bytes, newline: bool = True) -> None:
        """Output a line; ``newline=False`` leaves it off (the input's last line had none) until more follows."""
        if self.pending:
            self.out += b"\n"
        self.out += data
        self.pending = not newline
        if newline:
            self.out += b"\n"

    def write_file(self, name: bytes, data: bytes) -> None:
        target = self.writes.get(name)
        if target is None:
            self.emit(data)  # /dev/stdout: busybox's own output stream
        else:
            target.write(data + b"\n")

    def regex(self, rx: re.Pattern[bytes] | None) -> re.Pattern[bytes]:
        if rx is None:
            if self.last_regex is None:
                raise SedError("no previous regexp")
            return self.last_regex
        self.last_regex = rx
        return rx

    def addr_matches(self, addr: Address, ps: bytes, stream: _Stream) -> bool:
        if addr.last:
            return stream.at_end
        if addr.line is not None:
            return self.lineno == addr.line
        return self.regex(addr.regex).search(ps) is not None

    def selected(self, cmd: SedCommand, ps: bytes, stream: _Stream) -> bool:
        if cmd.addr1 is None:
            return not cmd.negate
        if cmd.addr2 is None:
            return self.addr_matches(cmd.addr1, ps, stream) != cmd.negate
        a2 = cmd.addr2
        if not cmd.in_range:
            if not self.addr_matches(cmd.addr1, ps, stream):
                return cmd.negate
            cmd.in_range = True
            if a2.plus is not None:
                cmd.range_end_line = self.lineno + a2.plus
                cmd.in_range = a2.plus > 0
            elif a2.line is not None and a2.line <= self.lineno or a2.last and stream.at_end:
                cmd.in_range = False
            return not cmd.negate
        if a2.plus is not None:
            ended = self.lineno >= cmd.range_end_line
        elif a2.line is not None:
            ended = self.lineno >= a2.line
        else:
            ended = self.addr_matches(a2, ps, stream)
        if ended:
            cmd.in_range = False
        return not cmd.negate

    def substitute(self, cmd: SedCommand, ps: bytes) -> bytes | None:
        rx = self.regex(None if cmd.regex_is_last else cmd.regex)
        out = bytearray()
        copied = 0
        replaced = False
        for count, m in enumerate(successive_matches(rx, ps), start=1):
            s, e = m.span()
            if count >= cmd.occurrence:
                out += ps[copied:s]
                for part in cmd.replacement:
                    if isinstance(part, int):
                        group = m.group(part) if part <= (rx.groups or 0) else None
                        if part > (rx.groups or 0):
                            raise SedError(f"invalid reference \\{part} on s command's RHS")
                        out += group or b""
                    else:
                        out += part
                copied = e
                replaced = True
                if not cmd.global_:
                    break
        if not replaced:
            return None
        out += ps[copied:]
        return bytes(out)

    def cycle(self, first: tuple[bytes, bool], stream: _Stream) -> None:
        ps, self.newline = first
        self.lineno += 1
        append: list[bytes] = []
        substituted = False
        pc = 0
        restart = True
        while restart:
            restart = False
            autoprint = not self.quiet
            pc = 0
            while pc < len(self.cmds):
                cmd = self.cmds[pc]
                pc += 1
                if cmd.cmd == ":":
                    continue
                if not self.selected(cmd, ps, stream):
                    if cmd.cmd == "{":
                        pc = cmd.block_end
                    continue
                c = cmd.cmd
                if c == "{":
                    continue
                if c == "s":
                    new = self.substitute(cmd, ps)
                    if new is not None:
                        ps = new
                        substituted = True
                        for _ in range(cmd.print_):
                            self.emit(ps, self.newline)
                        if cmd.text:
                            self.write_file(cmd.text, ps)
                elif c == "y":
                    table = bytes.maketrans(cmd.text[:len(cmd.text2)], cmd.text2[:len(cmd.text)])
                    ps = ps.translate(table)
                elif c == "p":
                    self.emit(ps)
                elif c == "P":
                    self.emit(ps.split(b"\n", 1)[0])
                elif c == "=":
                    self.emit(b"%d" % self.lineno)
                elif c == "w":
                    self.write_file(cmd.text, ps)
                elif c == "r":
                    append.append(self.read_file(cmd.text))
                elif c == "d":
                    autoprint = False
                    break
                elif c == "D":
                    if b"\n" not in ps:
                        autoprint = False
                        break
                    ps = ps.split(b"\n", 1)[1]
                    self._flush(append)
                    restart = True
                    break
                elif c in "aic":
                    text = cmd.text
                    if c == "a":
                        append.append(text + b"\n")
                    elif c == "i":
                        self.emit(text)
                    else:
                        if cmd.addr2 is None or not cmd.in_range or cmd.negate:
                            self.emit(text)
                        autoprint = False
                        break
                elif c == "q":
                    if autoprint:
                        self.emit(ps, self.newline)
                    self._flush(append)
                    raise _Quit(0)
                elif c in "nN":
                    nxt = stream.next()
                    if nxt is None:
                        break  # GNU and busybox: the end of input ends the script, the autoprint still happens
                    if c == "n":
                        if autoprint:
                            self.emit(ps, self.newline)
                        self._flush(append)
                        append = []
                        ps, self.newline = nxt
                    else:
                        ps = ps + b"\n" + nxt[0]
                        self.newline = nxt[1]
                    self.lineno += 1
                elif c == "h":
                    self.hold = ps
                elif c == "H":
                    self.hold = self.hold + b"\n" + ps
                elif c == "g":
                    ps = self.hold
                elif c == "G":
                    ps = ps + b"\n" + self.hold
                elif c == "x":
                    ps, self.hold = self.hold, ps
                elif c in "btT":
                    take = c == "b" or (c == "t" and substituted) or (c == "T" and not substituted)
                    if c != "b":
                        substituted = False
                    if take:
                        pc = self._label(cmd.text)
            if restart:
                continue
            if autoprint:
                self.emit(ps, self.newline)
        self._flush(append)

    def _label(self, name: bytes) -> int:
        if not name:
            return len(self.cmds)
        for k, cmd in enumerate(self.cmds):
            if cmd.cmd == ":" and cmd.text == name:
                return k + 1
        raise SedError(f"can't find label for jump to '{decode(name)}'")

    def _flush(self, append: list[bytes]) -> None:
        """The queued a/r texts, each already ended by its newline."""
        for text in append:
            if text:
                if self.pending:
                    self.out += b"\n"
                    self.pending = False
                self.out += text
        append.clear()

    read_file: Any = None  # set by the applet: bytes of an r file ("" when it cannot be read)

    def run(self, stream: _Stream) -> None:
        while (line := stream.next()) is not None:
            self.cycle(line, stream)


def _split_lines(data: bytes) -> list[tuple[bytes, bool]]:
    parts = data.split(b"\n")
    lines = [(x, True) for x in parts[:-1]]
    if parts[-1]:
        lines.append((parts[-1], False))
    return lines


def _options(p: Proc) -> tuple[dict[str, list[str]], list[str], str | None]:
    """getopt with busybox's optional ``-i[SFX]``: returns the options, operands and the -i suffix (or None)."""
    args: list[str] = []
    inplace: str | None = None
    rest = list(p.argv[1:])
    while rest:
        a = rest.pop(0)
        if a == "--":
            args += [a, *rest]
            break
        if a.startswith("-") and not a.startswith("--") and len(a) > 1:
            k = 1
            while k < len(a) and a[k] in "nrE":
                k += 1
            if k < len(a) and a[k] == "i":
                inplace = a[k + 1:]
                if k > 1:
                    args.append(a[:k])
                continue
            args.append(a)
            if k < len(a) and a[k] in "ef" and k == len(a) - 1 and rest:
                args.append(rest.pop(0))
            continue
        args.append(a)
    opts, operands = getopt(p, args, "e:f:nrE", longopts={"in-place=": "i", "expression=": "e", "quiet": "n",
                                                               "silent": "n", "regexp-extended": "r", "file=": "f"})
    if "i" in opts:
        inplace = opts["i"][-1]
    return opts, operands, inplace


@applet("sed")
def sed(p: Proc) -> int:
    if p.argv[1:] == ["--version"]:
        p.out("This is not GNU sed version 4.0\n")  # busybox's answer, for configure scripts
        return 0
    try:
        opts, operands, inplace = _options(p)
    except UsageError as e:
        return show_usage(p, "sed", e.msg)
    if inplace:
        raise unsupported(p, f"a backup suffix (-i{inplace})")
    pieces: list[str] = []
    for kind, value in _script_sources(p):
        if kind == "e":
            pieces.append(value)
        else:
            try:
                stream = open_read(p, value)
                pieces.append(decode(stream.read()).removesuffix("\n"))
                close_stream(p, value, stream)
            except OSError as e:
                p.perror(value, e)
                return 1
    if not pieces:
        if not operands:
            return show_usage(p, "sed")
        pieces.append(operands.pop(0))
    try:
        cmds = parse_script(script_bytes(pieces), extended="r" in opts or "E" in opts)
        for cmd in cmds:
            if cmd.cmd in "btT" and cmd.text and not any(c.cmd == ":" and c.text == cmd.text for c in cmds):
                raise SedError(f"can't find label for jump to '{decode(cmd.text)}'")
    except SedError as e:
        p.error(str(e))
        return 1
    except SedUnsupported as e:
        raise unsupported(p, f"the command {e.args[0]}") from None
    quiet = "n" in opts
    if inplace is not None:
        if not operands:
            p.error("-i requires an argument")
            return 1
        writes = _open_writes(p, cmds)
        try:
            return _in_place(p, cmds, quiet, operands, writes)
        finally:
            for stream in writes.values():
                stream.close()
    status = 0
    lines: list[tuple[bytes, bool]] = []
    for name in operands or ["-"]:
        data = read_input(p, name)
        if data is None:
            status = 1
            continue
        if lines and not lines[-1][1]:
            lines[-1] = (lines[-1][0], True)
        lines += _split_lines(data)
    writes = _open_writes(p, cmds)
    run = _new_run(p, cmds, quiet, writes)
    try:
        run.run(_Stream(lines))
    except _Quit as q:
        status = q.code or status
    except SedError as e:
        p.out(bytes(run.out))
        p.error(str(e))
        return 1
    finally:
        for stream in writes.values():
            stream.close()
    p.out(bytes(run.out))
    return status


def _open_writes(p: Proc, cmds: list[SedCommand]) -> dict[bytes, Any]:
    """The files of ``w`` and ``s///w``, opened (truncated) before the first line as busybox does."""
    writes: dict[bytes, Any] = {}
    for cmd in cmds:
        if cmd.text and (cmd.cmd == "w" or cmd.cmd == "s") and cmd.text not in writes:
            if cmd.text == b"/dev/stdout":
                continue
            writes[cmd.text] = p.world.open_stream(p.cwd, decode(cmd.text), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, p.fds)
    return writes


def _new_run(p: Proc, cmds: list[SedCommand], quiet: bool, writes: dict[bytes, Any]) -> _Run:
    def read_file(name: bytes) -> bytes:
        try:
            stream = open_read(p, decode(name))
            data: bytes = stream.read()
        except OSError:
            return b""  # busybox's r ignores a file it cannot read
        close_stream(p, decode(name), stream)
        return data if not data or data.endswith(b"\n") else data + b"\n"

    run = _Run(cmds, quiet, writes=writes)
    run.read_file = read_file
    return run


def _script_sources(p: Proc) -> list[tuple[str, str]]:
    """The -e and -f arguments in command-line order (getopt keeps them per letter)."""
    found: list[tuple[str, str]] = []
    args = p.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--" or not a.startswith("-") or len(a) < 2:
            if a == "--":
                break
            continue
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if name in ("expression", "file"):
                if not eq and i < len(args):
                    value = args[i]
                    i += 1
                found.append((name[0], value))
            continue
        for k in range(1, len(a)):
            c = a[k]
            if c == "i":
                break
            if c in "ef":
                value = a[k + 1:]
                if not value and i < len(args):
                    value = args[i]
                    i += 1
                found.append((c, value))
                break
    return found


def _in_place(p: Proc, cmds: list[SedCommand], quiet: bool, files: list[str], writes: dict[bytes, Any]) -> int:
    status = 0
    for name in files:
        data = read_input(p, name)
        if data is None:
            status = 1
            continue
        for cmd in cmds:
            cmd.in_range = False
        run = _new_run(p, cmds, quiet, writes)
        code = 0
        try:
            run.run(_Stream(_split_lines(data)))
        except _Quit as q:
            code = q.code
        except SedError as e:
            p.error(str(e))
            return 1
        out = p.world.open_stream(p.cwd, name, os.O_WRONLY | os.O_TRUNC, p.fds)
        out.write(bytes(run.out))
        out.close()
        if code:
            return code
    return status
