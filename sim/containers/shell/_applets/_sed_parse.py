"""The parser of sed scripts (busybox 1.35 ``editors/sed.c``'s ``add_cmd``), into :class:`SedCommand` lists.

Addresses are line numbers, ``$``, ``/RE/`` or ``\\cREc`` and
``ADDR,+N``; ``!`` negates; ``{ ... }`` groups.  The commands are
``s y d D p P q = a i c n N h H g G x b t T : r w`` and ``{ }``; anything else is
busybox's "unsupported command" (``l`` is not modelled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sim.containers.shell._proc import encode
from sim.containers.shell._regex import RegexError, posix_regex

__all__ = ["SedError", "SedUnsupported", "Address", "SedCommand", "parse_script", "compile_regex", "script_bytes"]


class SedError(Exception):
    """A script error: ``str()`` is busybox's message (printed as ``sed: MSG``, status 1)."""


class SedUnsupported(Exception):
    """A command busybox has but the model does not implement."""


@dataclass(frozen=True)
class Address:
    """A line number (``line``), the last line (``last``), or a regex (``regex``; ``None`` means the last one used)."""

    line: int | None = None
    last: bool = False
    regex: re.Pattern[bytes] | None = None
    is_regex: bool = False
    plus: int | None = None  # ``ADDR,+N`` (only as the second address)


@dataclass
class SedCommand:
    """One command; ``block_end`` is the index just past a ``{``'s matching ``}``."""

    cmd: str
    addr1: Address | None = None
    addr2: Address | None = None
    negate: bool = False
    # s: regex, replacement (list of bytes or group numbers; 0 is &), flags
    regex: re.Pattern[bytes] | None = None
    regex_is_last: bool = False
    replacement: list[bytes | int] = field(default_factory=list)
    global_: bool = False
    occurrence: int = 1
    print_: int = 0
    text: bytes = b""  # a/i/c text, the label of b/t/T/:, y's source, the file of r/w/s///w
    text2: bytes = b""  # y's destination
    block_end: int = 0
    # range state (mutable across lines, as busybox keeps it on the command)
    in_range: bool = False
    range_end_line: int = 0


_SIMPLE = set("dDpPnNhHgGx=")


def compile_regex(pat: bytes, *, extended: bool, icase: bool = False) -> re.Pattern[bytes]:
    try:
        return re.compile(posix_regex(pat, extended=extended), re.IGNORECASE if icase else 0)
    except (RegexError, re.error) as e:
        raise SedError(f"bad regex '{pat.decode('utf-8', 'surrogateescape')}': {e.args[1] if len(e.args) > 1 else e}") from None


class _Reader:
    def __init__(self, text: bytes, extended: bool) -> None:
        self.s = text
        self.i = 0
        self.extended = extended

    def peek(self) -> bytes:
        return self.s[self.i:self.i + 1]

    def next(self) -> bytes:
        c = self.peek()
        self.i += 1
        return c

    def skip_blanks(self) -> None:
        while self.peek() in (b" ", b"\t"):
            self.i += 1

    def skip_space(self) -> None:
        while self.peek() and self.peek() in b" \t\n;":
            self.i += 1

    def delimited(self, delim: bytes, *, regex: bool) -> bytes:
        """Bytes up to the unescaped ``delim``; ``\\DELIM`` is the delimiter itself, ``\\n`` a newline."""
        out = bytearray()
        while True:
            c = self.next()
            if not c:
                raise SedError(f"unmatched '{delim.decode('utf-8', 'surrogateescape')}'")
            if c == delim:
                return bytes(out)
            if c == b"\\":
                nxt = self.next()
                if nxt == delim:
                    out += delim
                elif nxt == b"n" and regex or nxt == b"\n" and not regex:
                    out += b"\n"
                else:
                    out += b"\\" + nxt
                continue
            if c == b"[" and regex:
                # a bracket expression may hold the delimiter unescaped: "s/[/]/x/"
                j = self.i + (1 if self.s[self.i:self.i + 1] == b"^" else 0)
                end = self.s.find(b"]", j + 1 if self.s[j:j + 1] == b"]" else j)
                if end < 0:
                    raise SedError(f"unmatched '{delim.decode('utf-8', 'surrogateescape')}'")
                if b"\n" not in self.s[self.i:end]:
                    out += c + self.s[self.i:end + 1]
                    self.i = end + 1
                    continue
            out += c

    def number(self) -> int:
        m = re.match(rb"[0-9]+", self.s[self.i:])
        assert m
        self.i += m.end()
        return int(m.group())

    def address(self) -> Address | None:
        c = self.peek()
        if c.isdigit():
            return Address(line=self.number())
        if c == b"$":
            self.i += 1
            return Address(last=True)
        if c in (b"/", b"\\"):
            self.i += 1
            delim = self.next() if c == b"\\" else b"/"
            pat = self.delimited(delim, regex=True)
            if not pat:
                return Address(is_regex=True)
            return Address(regex=compile_regex(pat, extended=self.extended), is_regex=True)
        return None


def parse_script(script: bytes, *, extended: bool) -> list[SedCommand]:
    """Parse a whole script (the ``-e`` pieces joined by newlines) into a flat list with block ends set."""
    r = _Reader(script, extended)
    cmds: list[SedCommand] = []
    opened: list[int] = []
    while True:
        r.skip_space()
        if not r.peek():
            break
        if r.peek() == b"#":
            while r.peek() and r.peek() != b"\n":
                r.i += 1
            continue
        cmd = SedCommand("")
        cmd.addr1 = r.address()
        if cmd.addr1 is not None and r.peek() == b",":
            r.i += 1
            r.skip_blanks()
            if r.peek() == b"+":
                r.i += 1
                if not r.peek().isdigit():
                    raise SedError("no address after comma")
                cmd.addr2 = Address(plus=r.number())
            else:
                cmd.addr2 = r.address()
                if cmd.addr2 is None:
                    raise SedError("no address after comma")
        r.skip_blanks()
        while r.peek() == b"!":
            cmd.negate = True
            r.i += 1
            r.skip_blanks()
        c = r.next().decode("latin-1")
        if not c:
            raise SedError("missing command")
        cmd.cmd = c
        if c == "{":
            opened.append(len(cmds))
            cmds.append(cmd)
            continue
        if c == "}":
            if opened:  # busybox ignores a "}" that closes nothing
                cmds[opened.pop()].block_end = len(cmds)
            continue
        if c in _SIMPLE:
            pass
        elif c == "q":
            pass  # busybox 1.35's q takes no exit code: "2q5" reads a "5" with no command
        elif c in "aic":
            cmd.text = _text_argument(r)
        elif c in "btT:":
            r.skip_blanks()
            start = r.i
            while r.peek() and r.peek() not in (b"\n", b";"):
                r.i += 1
            cmd.text = r.s[start:r.i].rstrip(b" \t")
            if c == ":" and not cmd.text:
                raise SedError("\":\" lacks a label")
        elif c == "s":
            _parse_substitute(r, cmd)
        elif c == "y":
            delim = r.next()
            src = _unescape_y(r.delimited(delim, regex=False))
            dst = _unescape_y(r.delimited(delim, regex=False))
            cmd.text, cmd.text2 = src, dst
        elif c in "rw":
            r.skip_blanks()
            start = r.i
            while r.peek() and r.peek() != b"\n":
                r.i += 1
            cmd.text = r.s[start:r.i]
        elif c == "l":
            raise SedUnsupported(c)
        else:
            raise SedError(f"unsupported command {c}")
        cmds.append(cmd)
    for k in opened:
        cmds[k].block_end = len(cmds)  # busybox accepts a missing "}"
    return cmds


def _text_argument(r: _Reader) -> bytes:
    """a/i/c text: ``a\\`` NEWLINE TEXT (continued by trailing backslashes) or GNU's one-line ``a TEXT``."""
    r.skip_blanks()
    if r.peek() == b"\\":
        r.i += 1
        if r.peek() == b"\n":
            r.i += 1
        else:
            r.skip_blanks()
    out = bytearray()
    while r.peek():
        c = r.next()
        if c == b"\\":
            nxt = r.next()
            out += nxt if nxt else b""
            continue
        if c == b"\n":
            break
        out += c
    return bytes(out)


def _unescape_y(data: bytes) -> bytes:
    return data.replace(b"\\n", b"\n").replace(b"\\\\", b"\\")


def _parse_substitute(r: _Reader, cmd: SedCommand) -> None:
    delim = r.next()
    if not delim or delim in (b"\n", b"\\"):
        raise SedError("bad format in substitution expression")
    pat = r.delimited(delim, regex=True)
    repl = r.delimited(delim, regex=False)
    icase = False
    while True:
        c = r.peek()
        if c == b"g":
            cmd.global_ = True
        elif c == b"p":
            cmd.print_ += 1
        elif c in (b"i", b"I"):
            icase = True
        elif c.isdigit():
            cmd.occurrence = r.number()
            if cmd.occurrence == 0:
                raise SedError("bad option in substitution expression")
            continue
        elif c == b"w":
            r.i += 1
            r.skip_blanks()
            start = r.i
            while r.peek() and r.peek() != b"\n":
                r.i += 1
            cmd.text = r.s[start:r.i]
            break
        elif c in (b"", b"\n", b";", b"}", b"#", b" ", b"\t"):
            break
        else:
            raise SedError("bad option in substitution expression")
        r.i += 1
    if cmd.global_:
        cmd.occurrence = 1  # busybox: "g" wins over a number ("s/o/0/2g" replaces every o)
    if pat:
        cmd.regex = compile_regex(pat, extended=r.extended, icase=icase)
    else:
        cmd.regex_is_last = True
    cmd.replacement = _replacement(repl)


def _replacement(repl: bytes) -> list[bytes | int]:
    parts: list[bytes | int] = []
    lit = bytearray()
    i = 0
    while i < len(repl):
        c = repl[i:i + 1]
        if c == b"\\" and i + 1 < len(repl):
            nxt = repl[i + 1:i + 2]
            i += 2
            if nxt.isdigit():
                parts += [bytes(lit), int(nxt)]
                lit.clear()
            else:
                lit += {b"n": b"\n", b"t": b"\t"}.get(nxt, nxt)
            continue
        if c == b"&":
            parts += [bytes(lit), 0]
            lit.clear()
        else:
            lit += c
        i += 1
    parts.append(bytes(lit))
    return [x for x in parts if x != b""]


def script_bytes(pieces: list[str]) -> bytes:
    return b"\n".join(encode(x) for x in pieces)
