"""The busybox applets the model implements, each a port of busybox 1.35's logic.

Every applet takes a :class:`~sim.containers.shell._proc.Proc` and returns its exit
status.  Messages, exit codes and the order of system calls follow the
busybox sources (``coreutils/*.c``, ``libbb/copy_file.c``,
``libbb/remove_file.c``, ``libbb/make_directory.c``), because the calls are
what the union sees: ``cat`` opens read-only (no copy-up), ``touch`` of an
existing file is ``utimensat`` (a copy-up), ``rm -r`` unlinks children before
``rmdir``.  An option busybox has but the model does not raises
:class:`~sim.errors.UnsupportedCommandError`.
"""

from __future__ import annotations

import calendar
import errno
import math
import os
import posixpath
import re
import stat as _stat
import time
from collections.abc import Callable

from sim.containers.shell._proc import Proc, Stream, decode, encode
from sim.containers.shell._regex import RegexError, posix_regex
from sim.containers.shell._usage import BANNER, USAGE
from sim.errors import UnsupportedCommandError

__all__ = ["APPLETS", "applet", "UsageError", "lookup_user", "lookup_group"]

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


# -- users, groups, modes, times ------------------------------------------------------


def _db(p: Proc, path: str) -> list[list[str]]:
    try:
        data = p.fs.read_bytes(path)
    except OSError:
        return []
    rows = []
    for line in decode(data).splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def lookup_user(p: Proc, uid: int) -> str | None:
    for row in _db(p, "/etc/passwd"):
        if len(row) >= 3 and row[2] == str(uid):
            return row[0]
    return None


def lookup_group(p: Proc, gid: int) -> str | None:
    for row in _db(p, "/etc/group"):
        if len(row) >= 3 and row[2] == str(gid):
            return row[0]
    return None


def passwd_entry(p: Proc, name: str) -> list[str] | None:
    for row in _db(p, "/etc/passwd"):
        if len(row) >= 7 and row[0] == name:
            return row
    return None


def member_groups(p: Proc, user: str | None, gid: int) -> list[int]:
    """The primary group, then every /etc/group entry listing ``user`` (what a container's process gets)."""
    groups = [gid]
    if user is None:
        return groups
    for row in _db(p, "/etc/group"):
        if len(row) >= 4 and user in row[3].split(",") and row[2].isdigit():
            g = int(row[2])
            if g not in groups:
                groups.append(g)
    return groups


def mode_string(mode: int) -> str:
    """``bb_mode_string``: ``-rwxr-xr-x``."""
    kind = {
        _stat.S_IFDIR: "d", _stat.S_IFLNK: "l", _stat.S_IFREG: "-", _stat.S_IFCHR: "c",
        _stat.S_IFBLK: "b", _stat.S_IFIFO: "p", _stat.S_IFSOCK: "s",
    }.get(_stat.S_IFMT(mode), "?")
    chars = [kind]
    for shift, special, low, up in ((6, _stat.S_ISUID, "s", "S"), (3, _stat.S_ISGID, "s", "S"), (0, _stat.S_ISVTX, "t", "T")):
        bits = (mode >> shift) & 7
        chars.append("r" if bits & 4 else "-")
        chars.append("w" if bits & 2 else "-")
        if mode & special:
            chars.append(low if bits & 1 else up)
        else:
            chars.append("x" if bits & 1 else "-")
    return "".join(chars)


def parse_mode(spec: str, current: int, umask: int) -> int | None:
    """``bb_parse_mode``: octal or ``[ugoa]*[-+=][rwxXst]*`` clauses; None when invalid."""
    if spec and spec[0] in "01234567":
        if not re.fullmatch(r"[0-7]+", spec) or int(spec, 8) > 0o7777:
            return None
        return int(spec, 8)
    who_mask = {"a": 0o7777, "u": _stat.S_ISUID | 0o700, "g": _stat.S_ISGID | 0o070, "o": 0o007}
    perm_mask = {"r": 0o444, "w": 0o222, "x": 0o111, "X": 0o111, "s": _stat.S_ISUID | _stat.S_ISGID, "t": _stat.S_ISVTX}
    new = current
    s = spec
    i = 0
    while i < len(s):
        if s[i] == ",":
            i += 1
            continue
        wholist = 0
        while i < len(s) and s[i] in "augo":
            wholist |= who_mask[s[i]]
            i += 1
            if i >= len(s):
                return None
        while True:
            if i >= len(s) or s[i] not in "+-=":
                return None
            op = s[i]
            if op == "=":
                new &= ~wholist if wholist else ~0o7777
            i += 1
            if i < len(s) and s[i] in "ugo":
                permlist = who_mask[s[i]] & 0o777 & new
                for m in (0o444, 0o222, 0o111):
                    if permlist & m:
                        permlist |= m
                i += 1
            else:
                permlist = 0
                while i < len(s) and s[i] in perm_mask:
                    c = s[i]
                    if c != "X" or (new & (_stat.S_IFDIR | 0o111)):
                        permlist |= perm_mask[c]
                    i += 1
            if permlist:
                permlist &= wholist if wholist else ~umask
                if op == "-":
                    new &= ~permlist
                else:
                    new |= permlist
            if i >= len(s) or s[i] == ",":
                break
    return new


def _umask(p: Proc) -> int:
    options = getattr(p.fs, "options", None)
    return getattr(options, "umask", 0o022)


def _now(p: Proc) -> float:
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


# -- true, false, echo, printf, test --------------------------------------------------


@applet("true")
def true_(p: Proc) -> int:
    return 0


@applet("false")
def false_(p: Proc) -> int:
    return 1


def process_escape(data: bytes, i: int) -> tuple[int, int]:
    """``bb_process_escape_sequence`` at ``data[i]`` (just after the backslash): (byte, new index)."""
    q = i
    base = 8
    num_digits = 0
    n = 0
    if q < len(data) and data[q:q + 1] == b"x":
        q += 1
        base = 16
        num_digits = 1
    while True:
        if q >= len(data):
            if base == 16:
                num_digits -= 1
                if num_digits == 0:
                    return 0x5C, i
            break
        ch = data[q]
        d = ch - 0x30
        if d < 0 or d >= 10:
            low = ch | 0x20
            d = low - 0x61 + 10 if low >= 0x61 else 99
            if ch < 0x30 and not (low >= 0x61):
                d = 99
        if d >= base:
            if base == 16:
                num_digits -= 1
                if num_digits == 0:
                    return 0x5C, i
            break
        r = n * base + d
        if r > 255:
            break
        n = r
        q += 1
        num_digits += 1
        if num_digits >= 3:
            break
    if num_digits == 0:
        table = {ord("a"): 7, ord("b"): 8, ord("e"): 27, ord("f"): 12, ord("n"): 10, ord("r"): 13,
                 ord("t"): 9, ord("v"): 11, ord("\\"): 0x5C}
        if q < len(data) and data[q] in table:
            return table[data[q]], q + 1
        return 0x5C, q
    return n, q


@applet("echo")
def echo(p: Proc) -> int:
    args = p.argv[1:]
    nflag = eflag = False
    while args and args[0].startswith("-") and len(args[0]) > 1 and all(c in "neE" for c in args[0][1:]):
        for flag in args[0][1:]:
            if flag == "n":
                nflag = True
            elif flag == "e":
                eflag = True
            else:
                eflag = False
        args = args[1:]
    out = bytearray()
    for k, arg in enumerate(args):
        data = encode(arg)
        if not eflag:
            out += data
        else:
            i = 0
            while i < len(data):
                c = data[i]
                i += 1
                if c == 0x5C and i < len(data):
                    if data[i:i + 1] == b"c":
                        p.out(bytes(out))
                        return 0
                    if data[i:i + 1] == b"0" and i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37:
                        i += 1
                    c, i = process_escape(data, i)
                out.append(c)
        if k != len(args) - 1:
            out += b" "
    if not nflag:
        out += b"\n"
    p.out(bytes(out))
    return 0


def _printf_number(p: Proc, arg: str, unsigned: bool, state: dict[str, int]) -> int:
    text = arg
    if text[:1] in ("'", '"'):
        b = encode(text[1:2])
        text = str(b[0]) if b else "0"
    s = text.lstrip(" \t\n\r\f\v")
    t = s[1:] if s.startswith("+") else s
    m = re.fullmatch(r"(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", t)
    if m:
        value = int(m.group(2), 0) if not m.group(2).startswith("0") or m.group(2) == "0" or m.group(2)[1:2] in "xX" else int(m.group(2), 8)
        return -value if m.group(1) else value
    state["err"] = 1
    p.error(f"invalid number '{text}'")
    return 0


def _printf_float(p: Proc, arg: str, state: dict[str, int]) -> float:
    text = arg
    if text[:1] in ("'", '"'):
        b = encode(text[1:2])
        text = str(b[0]) if b else "0"
    try:
        return float(text.strip())
    except ValueError:
        state["err"] = 1
        p.error(f"invalid number '{text}'")
        return 0.0


def _print_esc_string(data: bytes) -> tuple[bytes, bool]:
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        i += 1
        if c == 0x5C:
            if data[i:i + 1] == b"0":
                if i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37:
                    i += 1
            elif data[i:i + 1] == b"c":
                return bytes(out), True
            c, i = process_escape(data, i)
        out.append(c)
    return bytes(out), False


def _printf_once(p: Proc, fmt: bytes, args: list[str], state: dict[str, int]) -> tuple[int, bool]:
    """One pass over the format; returns (arguments consumed, stop)."""
    out = bytearray()
    used = 0
    i = 0

    def next_arg() -> str | None:
        nonlocal used
        if used < len(args):
            used += 1
            return args[used - 1]
        return None

    try:
        while i < len(fmt):
            c = fmt[i]
            if c == 0x25:  # %
                start = i
                i += 1
                if fmt[i:i + 1] == b"%":
                    out += b"%"
                    i += 1
                    continue
                if fmt[i:i + 1] == b"b":
                    i += 1
                    a = next_arg()
                    if a is not None:
                        text, stop = _print_esc_string(encode(a))
                        out += text
                        if stop:
                            return used, True
                    continue
                flags = b""
                if i < len(fmt) and fmt[i:i + 1] in (b"-", b"+", b" ", b"#"):
                    flags = fmt[i:i + 1]
                    i += 1
                width: bytes = b""
                if fmt[i:i + 1] == b"*":
                    i += 1
                    a = next_arg()
                    width = str(_printf_number(p, a, False, state) if a is not None else 0).encode()
                else:
                    m = re.compile(rb"\d*").match(fmt, i)
                    assert m is not None
                    width = m.group()
                    i = m.end()
                prec: bytes | None = None
                if fmt[i:i + 1] == b".":
                    i += 1
                    if fmt[i:i + 1] == b"*":
                        i += 1
                        a = next_arg()
                        prec = str(_printf_number(p, a, False, state) if a is not None else 0).encode()
                    else:
                        m = re.compile(rb"\d*").match(fmt, i)
                        assert m is not None
                        prec = m.group()
                        i = m.end()
                mod_start = i
                while i < len(fmt) and fmt[i:i + 1] in (b"l", b"L", b"h", b"z"):
                    i += 1
                conv = fmt[i:i + 1]
                if not conv or conv not in b"diouxXfeEgGcs":
                    # busybox strips the size modifiers in place, so the message shows the rest without them
                    p.error(f"{decode(fmt[start:mod_start] + fmt[i:])}: invalid format")
                    state["err"] = 1
                    return used, True
                i += 1
                a = next_arg()
                arg = a if a is not None else ""
                spec = b"%" + flags + width + (b"." + prec if prec is not None else b"")
                if conv in b"di":
                    v = _printf_number(p, arg, False, state)
                    out += (spec + b"d") % v
                elif conv in b"ouxX":
                    v = _printf_number(p, arg, True, state)
                    if v < 0:
                        v += 1 << 64
                    if conv == b"o" and flags == b"#":
                        body = (b"%" + width + (b"." + prec if prec is not None else b"") + b"o") % v
                        text = b"%o" % v
                        out += body if text.startswith(b"0") else (b"%" + width + b"s") % (b"0" + (b"%" + (b"." + prec if prec is not None else b"") + b"o") % v)
                    else:
                        out += (spec + (b"d" if conv == b"u" else conv)) % v
                elif conv in b"feEgG":
                    fv = _printf_float(p, arg, state)
                    out += (spec + conv) % fv
                elif conv == b"c":
                    ch = encode(arg)[:1] or b"\0"
                    out += (b"%" + flags + width + b"s") % ch
                else:  # s
                    out += (spec + b"s") % encode(arg)
                continue
            if c == 0x5C:  # backslash
                if fmt[i + 1:i + 2] == b"c":
                    return used, True
                byte, j = process_escape(fmt, i + 1)
                out.append(byte)
                i = j if j > i + 1 else i + 1
                continue
            out.append(c)
            i += 1
        return used, False
    finally:
        p.out(bytes(out))


@applet("printf")
def printf(p: Proc) -> int:
    args = p.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        if p.name != "printf" and not p.name.startswith("p"):
            p.error("usage: printf FORMAT [ARGUMENT...]")
            return 2
        return show_usage(p, "printf")
    fmt = encode(args[0])
    rest = args[1:]
    state = {"err": 0}
    while True:
        used, stop = _printf_once(p, fmt, rest, state)
        if stop:
            break
        rest = rest[used:]
        if used == 0 or not rest:
            break
    return state["err"]


# test / [ : a port of coreutils/test.c -----------------------------------------------

_UNOPS = {"-r", "-w", "-x", "-e", "-f", "-d", "-c", "-b", "-p", "-u", "-g", "-k", "-s", "-t", "-z", "-n", "-h", "-L", "-S", "-O", "-G"}
_BINOPS = {"=", "==", "!=", "<", ">", "-eq", "-ne", "-ge", "-gt", "-le", "-lt", "-nt", "-ot", "-ef"}


class _TestError(Exception):
    pass


class _Test:
    def __init__(self, p: Proc, args: list[str]) -> None:
        self.p = p
        self.args = args
        self.i = 0

    def kind(self, s: str | None) -> str:
        if s is None:
            return "EOI"
        if s in _UNOPS:
            return "UNOP"
        if s in _BINOPS:
            return "BINOP"
        if s == "!":
            return "NOT"
        if s in ("-a", "-o"):
            return "BBINOP"
        if s == "(":
            return "LPAREN"
        if s == ")":
            return "RPAREN"
        return "OPERAND"

    def at(self, k: int) -> str | None:
        return self.args[k] if 0 <= k < len(self.args) else None

    def syntax(self, op: str | None, msg: str) -> _TestError:
        if op:
            self.p.error(f"{op}: {msg}")
        else:
            self.p.error(msg)
        return _TestError()

    def getn(self, s: str) -> int:
        m = re.fullmatch(r"[ \t\n\r\f\v]*([-+]?\d+)[ \t\n\r\f\v]*", s)
        if not m:
            raise self.syntax(s, "bad number")
        v = int(m.group(1))
        if not -(1 << 63) <= v < (1 << 63):
            raise self.syntax(s, "out of range")
        return v

    def oexpr(self) -> bool:
        res = self.aexpr()
        self.i += 1
        if self.at(self.i) == "-o":
            self.i += 1
            return self.oexpr() or res
        self.i -= 1
        return res

    def aexpr(self) -> bool:
        res = self.nexpr()
        self.i += 1
        if self.at(self.i) == "-a":
            self.i += 1
            return self.aexpr() and res
        self.i -= 1
        return res

    def nexpr(self) -> bool:
        if self.at(self.i) == "!":
            self.i += 1
            if self.at(self.i) is None:
                self.i -= 1
                return True
            return not self.nexpr()
        return self.primary()

    def primary(self) -> bool:
        cur = self.at(self.i)
        if cur is None:
            raise self.syntax(None, "argument expected")
        if cur == "(":
            self.i += 1
            res = self.oexpr()
            self.i += 1
            if self.at(self.i) != ")":
                raise self.syntax(None, "closing paren expected")
            return res
        nxt = self.at(self.i + 1)
        if nxt is not None and self.at(self.i + 2) is not None and self.kind(nxt) == "BINOP":
            return self.binop()
        if self.kind(cur) == "UNOP":
            if nxt is None:
                return cur != ""
            self.i += 1
            arg = nxt
            if cur == "-z":
                return arg == ""
            if cur == "-n":
                return arg != ""
            if cur == "-t":
                self.getn(arg)
                return False
            return self.filstat(arg, cur)
        if self.kind(nxt) == "BINOP":
            return self.binop()
        return cur != ""

    def binop(self) -> bool:
        a = self.args[self.i]
        self.i += 1
        op = self.args[self.i]
        self.i += 1
        b = self.at(self.i)
        if b is None:
            raise self.syntax(op, "argument expected")
        if op in ("-eq", "-ne", "-ge", "-gt", "-le", "-lt"):
            x, y = self.getn(a), self.getn(b)
            return {"-eq": x == y, "-ne": x != y, "-ge": x >= y, "-gt": x > y, "-le": x <= y, "-lt": x < y}[op]
        if op in ("=", "==", "!=", "<", ">"):
            ea, eb = encode(a), encode(b)
            return {"=": ea == eb, "==": ea == eb, "!=": ea != eb, "<": ea < eb, ">": ea > eb}[op]
        try:
            s1 = self.p.fs.stat(self.p.path(a))
            s2 = self.p.fs.stat(self.p.path(b))
        except OSError:
            return False
        if op == "-nt":
            return int(s1.st_mtime) > int(s2.st_mtime)
        if op == "-ot":
            return int(s1.st_mtime) < int(s2.st_mtime)
        return s1.st_ino == s2.st_ino and s1.st_dev == s2.st_dev

    def filstat(self, name: str, op: str) -> bool:
        fs = self.p.fs
        path = self.p.path(name)
        if op in ("-h", "-L"):
            try:
                return _stat.S_ISLNK(fs.lstat(path).st_mode)
            except (OSError, ValueError):
                return False
        try:
            st = fs.stat(path) if name else None
        except (OSError, ValueError):
            return False
        if st is None:
            return False
        mode = st.st_mode
        uid: int = self.p.world.uid
        if op == "-e":
            return True
        if op in ("-r", "-w", "-x"):
            bit = {"-r": 4, "-w": 2, "-x": 1}[op]
            if uid == 0:
                return bit != 1 or bool(mode & 0o111) or _stat.S_ISDIR(mode)
            if st.st_uid == uid:
                return bool((mode >> 6) & bit)
            if st.st_gid == self.p.world.gid:
                return bool((mode >> 3) & bit)
            return bool(mode & bit)
        if op == "-f":
            return _stat.S_ISREG(mode)
        if op == "-d":
            return _stat.S_ISDIR(mode)
        if op == "-c":
            return _stat.S_ISCHR(mode)
        if op == "-b":
            return _stat.S_ISBLK(mode)
        if op == "-p":
            return _stat.S_ISFIFO(mode)
        if op == "-S":
            return _stat.S_ISSOCK(mode)
        if op == "-u":
            return bool(mode & _stat.S_ISUID)
        if op == "-g":
            return bool(mode & _stat.S_ISGID)
        if op == "-k":
            return bool(mode & _stat.S_ISVTX)
        if op == "-s":
            return st.st_size > 0
        if op == "-O":
            return bool(st.st_uid == uid)
        if op == "-G":
            return bool(st.st_gid == self.p.world.gid)
        return True

    def run(self) -> int:
        argv = self.args
        negate = False
        k = 0
        while True:
            rest = argv[k:]
            if not rest:
                return 0 if negate else 1
            if len(rest) == 1:
                res = rest[0] != ""
                return 0 if res ^ negate else 1
            if len(rest) == 3 and self.kind(rest[1]) == "BINOP":
                self.args = rest
                self.i = 0
                res = self.binop()
                return 0 if res ^ negate else 1
            if rest[0] == "!":
                negate = not negate
                k += 1
                continue
            break
        self.args = argv
        self.i = 0
        res = self.oexpr()
        status = 0 if res else 1
        if self.at(self.i) is not None and self.at(self.i + 1) is not None:
            self.p.error(f"{self.at(self.i + 1)}: unknown operand")
            return 2
        return status


@applet("test", "[")
def test(p: Proc) -> int:
    args = p.argv[1:]
    if posixpath.basename(p.argv[0]) == "[":
        if not args or args[-1] != "]":
            p.error("missing ]")
            return 2
        args = args[:-1]
    try:
        return _Test(p, args).run()
    except _TestError:
        return 2


# -- cat, head, wc, grep ---------------------------------------------------------------


@applet("cat")
def cat(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "nbvteAu")
    except UsageError as e:
        return show_usage(p, "cat", e.msg)
    for o in "vteA":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    number = "n" in opts or "b" in opts
    nonblank = "b" in opts
    status = 0
    lineno = 0
    at_line_start = True
    for name in files or ["-"]:
        try:
            stream = open_read(p, name)
        except OSError as e:
            p.perror(f"can't open '{name}'", e)
            status = 1
            continue
        try:
            data = stream.read()
        except OSError as e:
            p.perror("read error", e)
            status = 1
            close_stream(p, name, stream)
            continue
        close_stream(p, name, stream)
        if not number:
            p.out(data)
            continue
        out = bytearray()
        for line in data.splitlines(keepends=True):
            if at_line_start and not (nonblank and line == b"\n"):
                lineno += 1
                out += b"%6d\t" % lineno
            out += line
            at_line_start = line.endswith(b"\n")
        p.out(bytes(out))
    return status


def _scaled(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)(b|k|m|kB|KB|K|MB|M|GB|G|kD|KD|MD)?", text)
    if not m:
        return None
    mult = {None: 1, "b": 512, "k": 1024, "m": 1024 * 1024, "kB": 1000, "KB": 1000, "K": 1024, "MB": 1000000,
            "M": 1048576, "GB": 1000000000, "G": 1073741824, "kD": 1000, "KD": 1000, "MD": 1000000}[m.group(2)]
    return int(m.group(1)) * mult


@applet("head")
def head(p: Proc) -> int:
    args = list(p.argv[1:])
    if args and re.fullmatch(r"-\d+", args[0]):
        args[0] = "-n" + args[0][1:]
    try:
        opts, files = getopt(p, args, "n:c:qv")
    except UsageError as e:
        return show_usage(p, "head", e.msg)
    count = 10
    by_bytes = False
    all_but = False
    spec = None
    if "n" in opts:
        spec = opts["n"][-1]
    if "c" in opts:
        spec = opts["c"][-1]
        by_bytes = True
    if spec is not None:
        text = spec
        if text.startswith("-"):
            all_but = True
            text = text[1:]
        elif text.startswith("+"):
            text = text[1:]
        value = _scaled(text)
        if value is None:
            p.error(f"invalid number '{spec}'")
            return 1
        count = value
    files = files or ["-"]
    threshold = 1
    if "q" in opts:
        threshold = 1 << 30
    if "v" in opts:
        threshold = 0
    show_header = len(files) > threshold
    first = True
    status = 0
    for name in files:
        try:
            stream = open_read(p, name)
        except OSError as e:
            p.perror(name, e)
            status = 1
            continue
        if show_header:
            p.out(("" if first else "\n") + f"==> {'standard input' if name == '-' else name} <==\n")
        first = False
        try:
            data = stream.read()
        except OSError:
            close_stream(p, name, stream)
            p.perror(name, errno.EIO)
            status = 1
            continue
        close_stream(p, name, stream)
        if by_bytes:
            out = data[:max(len(data) - count, 0)] if all_but else data[:count]
        else:
            lines = data.splitlines(keepends=True)
            out = b"".join(lines[:max(len(lines) - count, 0)] if all_but else lines[:count])
        p.out(out)
    return status


@applet("wc")
def wc(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "cmlwL")
    except UsageError as e:
        return show_usage(p, "wc", e.msg)
    order = "lwmcL"
    wanted = [o for o in order if o in opts] or ["l", "w", "c"]
    names: list[str | None] = list(files) or [None]
    one = len(names) == 1 and len(wanted) == 1
    totals = dict.fromkeys(order, 0)
    status = 0
    for name in names:
        label = "-" if name is None else name
        try:
            stream = open_read(p, label)
        except OSError as e:
            p.perror(label, e)
            status = 1
            continue
        try:
            data = stream.read()
        except OSError as e:
            p.perror(label, e)
            data = b""
            status = 1
        close_stream(p, label, stream)
        counts = _wc_counts(data)
        for k in order:
            totals[k] += counts[k]
        p.out(_wc_line(counts, wanted, one) + ("\n" if name is None else f" {name}\n"))
    if len(names) > 1:
        p.out(_wc_line(totals, wanted, False) + " total\n")
    return status


def _wc_line(counts: dict[str, int], wanted: list[str], unpadded: bool) -> str:
    parts = []
    for k, o in enumerate(wanted):
        if k == 0 and unpadded:
            parts.append(str(counts[o]))
        else:
            parts.append(("%9d" if k == 0 else " %9d") % counts[o])
    return "".join(parts)


def _wc_counts(data: bytes) -> dict[str, int]:
    lines = words = 0
    longest = linepos = 0
    in_word = False
    for c in data:
        if 0x20 <= c < 0x7F:
            linepos += 1
            if c != 0x20:
                in_word = True
                continue
        elif 9 <= c <= 13:
            if c == 9:
                linepos = (linepos | 7) + 1
            else:
                longest = max(longest, linepos)
                if c == 10:
                    lines += 1
                if c != 11:
                    linepos = 0
        else:
            continue
        words += in_word
        in_word = False
    longest = max(longest, linepos)
    words += in_word
    # -m counts characters of the locale; a container has none set (C), where a character is a byte
    return {"l": lines, "w": words, "m": len(data), "c": len(data), "L": longest}


@applet("grep", "egrep", "fgrep")
def grep(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "HhnlLocqvsrRiwFExzm:A:B:C:e:f:")
    except UsageError as e:
        return show_usage(p, "grep", e.msg) and 2
    for o in "rRzABC":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    invoked = posixpath.basename(p.argv[0])
    patterns: list[str] = []
    for expr in opts.get("e", []):
        patterns.extend(expr.split("\n"))
    for f in opts.get("f", []):
        try:
            stream = open_read(p, f)
            data = stream.read()
            close_stream(p, f, stream)
        except OSError as e:
            p.perror(f"can't open '{f}'", e)
            return 2
        patterns.extend(decode(data).split("\n")[:-1] if data.endswith(b"\n") else decode(data).split("\n"))
    if "e" not in opts and "f" not in opts:
        if not operands:
            return show_usage(p, "grep") and 2
        patterns.extend(operands[0].split("\n"))
        operands = operands[1:]
    fixed = "F" in opts or invoked == "fgrep"
    extended = "E" in opts or invoked == "egrep"
    icase = "i" in opts
    try:
        regexes = [re.compile(re.escape(pat) if fixed else posix_regex(pat, extended=extended), re.IGNORECASE if icase else 0)
                   for pat in (encode(x) for x in patterns)]
    except RegexError as e:
        p.error(str(e))
        return 2
    invert = "v" in opts
    whole_line = "x" in opts
    whole_word = "w" in opts
    max_count = None
    if "m" in opts:
        try:
            max_count = int(opts["m"][-1])
        except ValueError:
            p.error(f"invalid number '{opts['m'][-1]}'")
            return 2
    files = operands or ["-"]
    prefix = ("H" in opts or len(files) > 1) and "h" not in opts
    quiet = "q" in opts
    matched_any = False
    open_errors = False

    def line_matches(line: bytes) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for rx in regexes:
            if whole_line:
                if rx.fullmatch(line):
                    spans.append((0, len(line)))
                continue
            pos = 0
            while pos <= len(line):
                m = rx.search(line, pos)
                if not m:
                    break
                s, e = m.span()
                if whole_word:
                    before = line[s - 1:s] if s > 0 else b""
                    after = line[e:e + 1]
                    if (before and (before.isalnum() or before == b"_")) or (after and (after.isalnum() or after == b"_")):
                        pos = s + 1
                        continue
                spans.append((s, e))
                pos = e if e > s else e + 1
                if "o" not in opts:
                    break
        return sorted(spans)

    for name in files:
        label = "(standard input)" if name == "-" else name
        try:
            stream = open_read(p, name)
        except OSError as e:
            if "s" not in opts:
                p.perror(name, e)
            open_errors = True
            continue
        try:
            data = stream.read()
        except OSError:
            data = b""
        close_stream(p, name, stream)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        count = 0
        out = bytearray()
        for n, line in enumerate(lines, 1):
            spans = line_matches(line)
            selected = bool(spans) != invert
            if not selected:
                continue
            count += 1
            matched_any = True
            if quiet:
                p.out(bytes(out))
                return 0
            if "l" in opts or "L" in opts:
                break
            if "c" not in opts:
                pre = (encode(label) + b":" if prefix else b"") + (b"%d:" % n if "n" in opts else b"")
                if "o" in opts and not invert:
                    for lo, hi in spans:
                        if hi > lo:
                            out += pre + line[lo:hi] + b"\n"
                elif "o" not in opts:
                    out += pre + line + b"\n"
            if max_count is not None and count >= max_count:
                break
        if "c" in opts:
            out += (encode(label) + b":" if prefix else b"") + b"%d\n" % count
        if "l" in opts and count:
            out += encode(label) + b"\n"
        if "L" in opts and not count:
            out += encode(label) + b"\n"
        p.out(bytes(out))
    if "L" in opts:
        pass
    if open_errors and not (quiet and matched_any):
        return 2
    return 0 if matched_any else 1


# -- ls ---------------------------------------------------------------------------------------


def _ls_time(t: int, now: float) -> str:
    tm = time.gmtime(t)
    age = now - t
    month = time.strftime("%b", tm)
    if -15 * 60 < age < 3600 * 24 * 365 / 2:
        return f"{month} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}"
    return f"{month} {tm.tm_mday:2d} {tm.tm_year:5d}"


def _blocks(st: os.stat_result) -> int:
    """512-byte blocks: ``st_blocks`` when the file system reports it, else ext4's allocation."""
    blocks = getattr(st, "st_blocks", None)
    if blocks is not None:
        return int(blocks)
    if _stat.S_ISLNK(st.st_mode):
        return 0 if st.st_size < 60 else 8
    if _stat.S_ISDIR(st.st_mode):
        return 8
    return int(math.ceil(st.st_size / 4096)) * 8


@applet("ls")
def ls(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "1AaCxdLHRFplinshrSXvctuw:eZ",
                                longopts={"full-time": "\x01", "group-directories-first": "\x02", "color": "\x03", "color=": "\x03"})
    except UsageError as e:
        return show_usage(p, "ls", e.msg)
    for o in "CxXvcuwheZ\x02":
        if o in opts:
            raise unsupported(p, f"option {'-' + o if o.isalpha() else '--group-directories-first'}")
    if "\x03" in opts and any(v not in ("", "never", "auto") for v in opts["\x03"]):
        raise unsupported(p, "--color=always")
    long = "l" in opts or "n" in opts or "\x01" in opts
    show_all = "a" in opts
    almost_all = "A" in opts
    dirs_as_files = "d" in opts
    recursive = "R" in opts and not dirs_as_files
    classify = "F" in opts
    slash = "p" in opts
    follow_all = "L" in opts
    follow_cmdline = follow_all or "H" in opts or not (long or classify or dirs_as_files)
    reverse = "r" in opts
    by_time = "t" in opts
    by_size = "S" in opts
    inode = "i" in opts
    blocks = "s" in opts
    full_time = "\x01" in opts
    now = _now(p)
    fs = p.fs
    status = 0
    users: dict[int, str | None] = {}
    groups: dict[int, str | None] = {}

    def stat_of(path: str, follow: bool) -> os.stat_result:
        return fs.stat(path) if follow else fs.lstat(path)

    def sort(entries: list[tuple[str, str, os.stat_result]]) -> list[tuple[str, str, os.stat_result]]:
        if by_size:
            entries.sort(key=lambda e: (-e[2].st_size, encode(e[0])))
        elif by_time:
            entries.sort(key=lambda e: (-int(e[2].st_mtime), encode(e[0])))
        else:
            entries.sort(key=lambda e: encode(e[0]))
        if reverse:
            entries.reverse()
        return entries

    def suffix(st: os.stat_result) -> str:
        mode = st.st_mode
        if classify:
            if _stat.S_ISDIR(mode):
                return "/"
            if _stat.S_ISLNK(mode):
                return "@"
            if _stat.S_ISFIFO(mode):
                return "|"
            if _stat.S_ISSOCK(mode):
                return "="
            if mode & 0o111:
                return "*"
            return ""
        if slash and _stat.S_ISDIR(mode):
            return "/"
        return ""

    def line(name: str, path: str, st: os.stat_result) -> str:
        text = ""
        if inode:
            text += f"{st.st_ino:8d} "
        if blocks:
            text += f"{_blocks(st) // 2:6d} "
        if long:
            if "n" in opts:
                owner, group = str(st.st_uid), str(st.st_gid)
            else:
                if st.st_uid not in users:
                    users[st.st_uid] = lookup_user(p, st.st_uid)
                if st.st_gid not in groups:
                    groups[st.st_gid] = lookup_group(p, st.st_gid)
                owner = users[st.st_uid] or str(st.st_uid)
                group = groups[st.st_gid] or str(st.st_gid)
            if full_time:
                when = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(int(st.st_mtime)))
            else:
                when = _ls_time(int(st.st_mtime), now)
            text += f"{mode_string(st.st_mode):<10s} {st.st_nlink:4d} {owner[:8]:<8s} {group[:8]:<8s} {st.st_size:9d} {when} "
        text += name
        if long and _stat.S_ISLNK(st.st_mode):
            try:
                target = fs.readlink(path)
            except OSError:
                target = ""
            text += f" -> {target}"
            if classify:
                try:
                    text += suffix(fs.stat(path))
                except OSError:
                    pass
            return text + "\n"
        return text + suffix(st) + "\n"

    files: list[tuple[str, str, os.stat_result]] = []
    dirs: list[tuple[str, str, os.stat_result]] = []
    for name in operands or ["."]:
        path = p.path(name)
        try:
            st = stat_of(path, follow_cmdline)
        except OSError as e:
            p.perror(name, e)
            status = 1
            continue
        if _stat.S_ISDIR(st.st_mode) and not dirs_as_files:
            dirs.append((name, path, st))
        else:
            files.append((name, path, st))
    out: list[str] = []
    for name, path, st in sort(files):
        out.append(line(name, path, st))
    headers = len(operands) > 1 or recursive
    first = not files

    def list_dir(name: str, path: str) -> None:
        nonlocal status, first
        try:
            names = fs.listdir(path)
        except OSError as e:
            p.perror(f"can't open '{name}'", e)
            status = 1
            return
        if show_all:
            names = [".", "..", *names]
        elif not almost_all:
            names = [n for n in names if not n.startswith(".")]
        entries = []
        for n in names:
            child = path.rstrip("/") + "/" + n
            try:
                st = stat_of(child, follow_all)
            except OSError as e:
                p.perror(n if name == "." else posixpath.join(name, n), e)
                status = 1
                continue
            entries.append((n, child, st))
        sort(entries)
        if headers:
            out.append(("" if first else "\n") + f"{name}:\n")
        first = False
        if long or blocks:
            out.append(f"total {sum(_blocks(e[2]) for e in entries) // 2}\n")
        for n, child, st in entries:
            out.append(line(n, child, st))
        if recursive:
            for n, child, st in entries:
                if n in (".", "..") or not _stat.S_ISDIR(st.st_mode):
                    continue
                list_dir(name.rstrip("/") + "/" + n if name != "/" else "/" + n, child)

    for name, path, _st in sort(dirs):
        list_dir(name, path)
    p.out("".join(out))
    return status


# -- mkdir, rmdir, rm, touch -----------------------------------------------------------


def make_directory(p: Proc, path: str, mode: int | None, recursive: bool) -> bool:
    """``bb_make_directory``: the prefixes keep their trailing slashes, as the errors show."""
    fs = p.fs
    if path == "/" or path == ".":
        return True
    s = 0
    while True:
        c_found = False
        if recursive:
            while s < len(path):
                if path[s] == "/":
                    while s < len(path) and path[s] == "/":
                        s += 1
                    c_found = s < len(path)
                    break
                s += 1
        prefix = path[:s] if c_found else path
        try:
            fs.mkdir(p.path(prefix), 0o777)
        except OSError as e:
            err = e
            if e.errno not in (errno.EEXIST, errno.EISDIR) or not recursive:
                p.perror(f"can't create directory '{prefix}'", err)
                return False
            try:
                st = fs.stat(p.path(prefix))
            except OSError as e2:
                p.perror(f"can't create directory '{prefix}'", e2)
                return False
            if not _stat.S_ISDIR(st.st_mode):
                p.perror(f"can't create directory '{prefix}'", err)
                return False
            if not c_found:
                return True
        if not c_found:
            if mode is not None:
                try:
                    fs.chmod(p.path(prefix), mode)
                except OSError as e:
                    p.perror(f"can't set permissions of directory '{prefix}'", e)
                    return False
            return True


@applet("mkdir")
def mkdir(p: Proc) -> int:
    try:
        opts, dirs = getopt(p, p.argv[1:], "m:pv", longopts={"mode=": "m", "parents": "p", "verbose": "v"})
    except UsageError as e:
        return show_usage(p, "mkdir", e.msg)
    if "v" in opts:
        raise unsupported(p, "option -v")
    if not dirs:
        return show_usage(p, "mkdir")
    mode = None
    if "m" in opts:
        mode = parse_mode(opts["m"][-1], 0o777, _umask(p))
        if mode is None:
            p.error(f"invalid mode '{opts['m'][-1]}'")
            return 1
    status = 0
    for d in dirs:
        if not make_directory(p, d, mode, "p" in opts):
            status = 1
    return status


@applet("rmdir")
def rmdir(p: Proc) -> int:
    try:
        opts, dirs = getopt(p, p.argv[1:], "pv", longopts={"parents": "p", "ignore-fail-on-non-empty": "\x01"})
    except UsageError as e:
        return show_usage(p, "rmdir", e.msg)
    if not dirs:
        return show_usage(p, "rmdir")
    status = 0
    for d in dirs:
        path = d
        while True:
            try:
                p.fs.rmdir(p.path(path))
            except OSError as e:
                if not ("\x01" in opts and e.errno == errno.ENOTEMPTY):
                    p.perror(f"'{path}'", e)
                    status = 1
                break
            if "p" not in opts:
                break
            path = path.rstrip("/")
            if "/" not in path:
                break
            path = path.rsplit("/", 1)[0].rstrip("/")
            if not path:
                break
    return status


def remove_file(p: Proc, path: str, force: bool, recursive: bool) -> bool:
    """``remove_file``: lstat, recurse into directories, unlink or rmdir."""
    fs = p.fs
    try:
        st = fs.lstat(p.path(path))
    except OSError as e:
        if e.errno != errno.ENOENT:
            p.perror(f"can't stat '{path}'", e)
            return False
        if not force:
            p.perror(f"can't remove '{path}'", e)
            return False
        return True
    if _stat.S_ISDIR(st.st_mode):
        if not recursive:
            p.error(f"'{path}' is a directory")
            return False
        try:
            names = fs.listdir(p.path(path))
        except OSError as e:
            p.perror(f"can't open '{path}'", e)
            return False
        ok = True
        for name in names:
            child = path + name if path.endswith("/") else path + "/" + name
            if not remove_file(p, child, force, recursive):
                ok = False
        if ok:
            try:
                fs.rmdir(p.path(path))
            except OSError as e:
                p.perror(f"can't remove '{path}'", e)
                return False
        return ok
    try:
        fs.unlink(p.path(path))
    except OSError as e:
        p.perror(f"can't remove '{path}'", e)
        return False
    return True


@applet("rm")
def rm(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "fiRrv", longopts={"force": "f", "recursive": "r", "verbose": "v"})
    except UsageError as e:
        return show_usage(p, "rm", e.msg)
    if "i" in opts or "v" in opts:
        raise unsupported(p, "option -i" if "i" in opts else "option -v")
    force = "f" in opts
    if not files:
        if force:
            return 0
        return show_usage(p, "rm")
    status = 0
    for f in files:
        base = f.rstrip("/").rsplit("/", 1)[-1] if f.rstrip("/") else f
        if base in (".", ".."):
            p.error("can't remove '.' or '..'")
            status = 1
            continue
        if not remove_file(p, f, force, "r" in opts or "R" in opts):
            status = 1
    return status


def parse_date(text: str) -> int | None:
    """The forms of busybox ``parse_datestr`` the model takes (UTC, as in a container without TZ)."""
    if text.startswith("@"):
        try:
            return int(float(text[1:]))
        except ValueError:
            return None
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", text)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        h, mi, s = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
        try:
            return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        except (ValueError, OverflowError):
            return None
    return None


def parse_touch_t(text: str, now: float) -> int | None:
    m = re.fullmatch(r"(\d{2,4})?(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{2}))?", text)
    if not m or (m.group(1) is not None and len(m.group(1)) not in (2, 4)):
        return None
    year = time.gmtime(now).tm_year
    if m.group(1):
        year = int(m.group(1))
        if len(m.group(1)) == 2:
            year += 2000 if year < 69 else 1900
    try:
        return calendar.timegm((year, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6) or 0), 0, 0, 0))
    except (ValueError, OverflowError):
        return None


@applet("touch")
def touch(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "chamd:t:r:", longopts={"no-create": "c", "date=": "d", "reference=": "r"})
    except UsageError as e:
        return show_usage(p, "touch", e.msg)
    if not files:
        return show_usage(p, "touch")
    fs = p.fs
    when: int | None = None
    if "r" in opts:
        try:
            when = fs.stat(p.path(opts["r"][-1])).st_mtime_ns
        except OSError as e:
            p.perror(opts["r"][-1], e)
            return 1
    if "d" in opts:
        t = parse_date(opts["d"][-1])
        if t is None:
            p.error(f"invalid date '{opts['d'][-1]}'")
            return 1
        when = t * 10**9
    if "t" in opts:
        t = parse_touch_t(opts["t"][-1], _now(p))
        if t is None:
            p.error(f"invalid date '{opts['t'][-1]}'")
            return 1
        when = t * 10**9
    follow = "h" not in opts
    status = 0
    for f in files:
        path = p.path(f)
        try:
            if when is None:
                fs.utime(path, follow_symlinks=follow)
            else:
                fs.utime(path, ns=(when, when), follow_symlinks=follow)
            continue
        except OSError as e:
            err = e
        if err.errno == errno.ENOENT:
            if "c" in opts:
                continue
            try:
                fd = fs.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                err = e
            else:
                fs.close(fd)
                if when is not None:
                    fs.utime(path, ns=(when, when))
                continue
        p.perror(f, err)
        status = 1
    return status


# -- cp, mv, ln, chmod ------------------------------------------------------------------

_PRESERVE, _DEREF, _RECUR, _FORCE, _NOCLOBBER, _HARDLINK, _SOFTLINK, _NOTARGET, _UPDATE, _VERBOSE, _DEREF_L0 = (
    1 << i for i in range(11)
)


def _flag_bits(opts: dict, table: dict[str, int]) -> int:
    """OR together the bit of every option letter in `table` that `opts` holds."""
    bits = 0
    for letter, bit in table.items():
        if letter in opts:
            bits |= bit
    return bits


def _cp_stat(p: Proc, name: str, follow: bool) -> tuple[int, os.stat_result | None]:
    """``cp_mv_stat2``: 0 missing, 1 exists, 3 directory, -1 error (printed)."""
    try:
        st = p.fs.stat(p.path(name)) if follow else p.fs.lstat(p.path(name))
    except OSError as e:
        if e.errno != errno.ENOENT:
            p.perror(f"can't stat '{name}'", e)
            return -1, None
        return 0, None
    return (3 if _stat.S_ISDIR(st.st_mode) else 1), st


def _concat(path: str, name: str) -> str:
    if not path:
        return name
    return path + name if path.endswith("/") else path + "/" + name


def _last_component(path: str) -> str:
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else path
    return stripped.rsplit("/", 1)[-1]


def _ask_and_unlink(p: Proc, dest: str, flags: int, err: OSError) -> int:
    """busybox without FEATURE_NON_POSIX_CP: only ``-f`` may remove what is in the way."""
    if not flags & _FORCE:
        p.perror(f"can't create '{dest}'", err)
        return -1
    try:
        p.fs.unlink(p.path(dest))
    except OSError:
        p.perror(f"can't create '{dest}'", err)  # errno of the failed create, not of unlink
        return -1
    return 1


def copy_file(p: Proc, source: str, dest: str, flags: int, seen: dict[int, str]) -> int:
    """``copy_file`` from libbb: returns 0 or -1 (messages printed)."""
    fs = p.fs
    deref = bool(flags & (_DEREF | _DEREF_L0))
    try:
        sst = fs.stat(p.path(source)) if deref else fs.lstat(p.path(source))
    except OSError as e:
        if flags & (_SOFTLINK | _HARDLINK):
            return _make_links(p, source, dest, flags)
        p.perror(f"can't stat '{source}'", e)
        return -1
    dest_exists = False
    dst: os.stat_result | None = None
    try:
        dst = fs.lstat(p.path(dest))
    except OSError as e:
        if e.errno != errno.ENOENT:
            p.perror(f"can't stat '{dest}'", e)
            return -1
    else:
        if dst.st_ino == sst.st_ino and dst.st_dev == sst.st_dev:
            p.error(f"'{source}' and '{dest}' are the same file")
            return -1
        if flags & _NOCLOBBER:
            return 0
        dest_exists = True
    umask = _umask(p)
    if _stat.S_ISDIR(sst.st_mode):
        if not flags & _RECUR:
            p.error(f"omitting directory '{source}'")
            return -1
        if sst.st_ino in seen and seen[sst.st_ino] == "\0dir":
            p.error(f"recursion detected, omitting directory '{source}'")
            return -1
        if dest_exists:
            assert dst is not None
            if not _stat.S_ISDIR(dst.st_mode):
                p.error(f"target '{dest}' is not a directory")
                return -1
        else:
            mode = sst.st_mode & 0o7777
            if not flags & _PRESERVE:
                mode &= ~umask
            mode |= 0o700
            try:
                fs.mkdir(p.path(dest), mode)
                dst = fs.lstat(p.path(dest))
            except OSError as e:
                p.perror(f"can't create directory '{dest}'", e)
                return -1
        assert dst is not None
        seen[dst.st_ino] = "\0dir"
        retval = 0
        try:
            names = fs.listdir(p.path(source))
        except OSError as e:
            p.perror(f"can't open '{source}'", e)
            return -1
        for name in names:
            if copy_file(p, _concat(source, name), _concat(dest, name), flags & ~_DEREF_L0, seen) < 0:
                retval = -1
        if not dest_exists:
            try:
                fs.chmod(p.path(dest), sst.st_mode & 0o7777 & ~umask)
            except OSError as e:
                p.perror(f"can't preserve permissions of '{dest}'", e)
        return _preserve(p, source, dest, sst, flags, retval)
    if dest_exists and flags & _UPDATE:
        assert dst is not None
        if int(sst.st_mtime) <= int(dst.st_mtime):
            return 0
    if flags & (_SOFTLINK | _HARDLINK):
        return _make_links(p, source, dest, flags)
    if not flags & _RECUR or _stat.S_ISREG(sst.st_mode):
        if not deref and _stat.S_ISLNK(sst.st_mode):
            return _copy_special(p, source, dest, sst, flags, dest_exists)
        if not deref and _stat.S_ISREG(sst.st_mode) and sst.st_nlink > 1:
            target = seen.get(sst.st_ino)
            if target is not None and target != "\0dir":
                try:
                    fs.link(p.path(target), p.path(dest), follow_symlinks=False)
                except OSError as e:
                    ovr = _ask_and_unlink(p, dest, flags, e)
                    if ovr <= 0:
                        return ovr
                    try:
                        fs.link(p.path(target), p.path(dest), follow_symlinks=False)
                    except OSError as e2:
                        p.perror(f"can't create link '{dest}'", e2)
                        return -1
                return 0
            seen[sst.st_ino] = dest
        try:
            src = p.world.open_stream(p.cwd, source, os.O_RDONLY, p.fds)
        except OSError as e:
            p.perror(f"can't open '{source}'", e)
            return -1
        new_mode = sst.st_mode & 0o7777 if _stat.S_ISREG(sst.st_mode) else 0o666
        try:
            out = p.world.open_stream(p.cwd, dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, p.fds, mode=new_mode)
        except OSError as e:
            ovr = _ask_and_unlink(p, dest, flags, e)
            if ovr <= 0:
                src.close()
                return ovr
            try:
                out = p.world.open_stream(p.cwd, dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, p.fds, mode=new_mode)
            except OSError as e2:
                src.close()
                p.perror(f"can't open '{dest}'", e2)
                return -1
        retval = 0
        try:
            data = src.read()
        except OSError as e:
            p.perror("read error", e)
            data = b""
            retval = -1
        try:
            out.write(data)
        except OSError as e:
            p.perror("write error", e)
            retval = -1
        out.close()
        src.close()
        if not _stat.S_ISREG(sst.st_mode):
            return retval
        return _preserve(p, source, dest, sst, flags, retval)
    return _copy_special(p, source, dest, sst, flags, dest_exists)


def _copy_special(p: Proc, source: str, dest: str, sst: os.stat_result, flags: int, dest_exists: bool) -> int:
    if dest_exists:
        ovr = _ask_and_unlink(p, dest, flags, OSError(errno.EEXIST, os.strerror(errno.EEXIST)))
        if ovr <= 0:
            return ovr
    if _stat.S_ISLNK(sst.st_mode):
        try:
            target = p.fs.readlink(p.path(source))
        except OSError as e:
            p.perror(f"can't read link '{source}'", e)
            return 0
        try:
            p.fs.symlink(target, p.path(dest))
        except OSError as e:
            p.perror(f"can't create symlink '{dest}' to '{target}'", e)
            return -1
        return 0
    p.error(f"unrecognized file '{source}' with mode {sst.st_mode:x}")
    return -1


def _make_links(p: Proc, source: str, dest: str, flags: int) -> int:
    soft = bool(flags & _SOFTLINK)

    def make() -> None:
        if soft:
            p.fs.symlink(source, p.path(dest))
        else:
            p.fs.link(p.path(source), p.path(dest), follow_symlinks=False)

    try:
        make()
    except OSError as e:
        ovr = _ask_and_unlink(p, dest, flags, e)
        if ovr <= 0:
            return ovr
        try:
            make()
        except OSError as e2:
            p.perror(f"can't create link '{dest}'", e2)
            return -1
    return 0


def _preserve(p: Proc, source: str, dest: str, sst: os.stat_result, flags: int, retval: int) -> int:
    if flags & _PRESERVE:
        fs = p.fs
        secs = int(sst.st_mtime)
        try:
            fs.utime(p.path(dest), ns=(secs * 10**9, secs * 10**9))
        except OSError as e:
            p.perror(f"can't preserve times of '{dest}'", e)
        try:
            st = fs.stat(p.path(dest))
            if (st.st_uid, st.st_gid) != (sst.st_uid, sst.st_gid):
                raise UnsupportedCommandError(
                    "the model's cp -p cannot preserve file ownership (the FileSystem has no chown); run it with BACKEND='real'")
        except OSError:
            pass
        try:
            fs.chmod(p.path(dest), sst.st_mode & 0o7777)
        except OSError as e:
            p.perror(f"can't preserve permissions of '{dest}'", e)
    if flags & _VERBOSE:
        p.out(f"'{source}' -> '{dest}'\n")
    return retval


@applet("cp")
def cp(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "arPLHpfinlsTuvt:dR",
                            longopts={"archive": "a", "force": "f", "interactive": "i", "link": "l", "dereference": "L",
                                      "no-dereference": "P", "recursive": "R", "symbolic-link": "s", "no-clobber": "n",
                                      "target-directory=": "t", "no-target-directory": "T", "update": "u", "verbose": "v",
                                      "parents": "\x01", "preserve=": "\x02", "reflink": "\x03", "reflink=": "\x03"})
    except UsageError as e:
        return show_usage(p, "cp", e.msg)
    for o, what in (("i", "option -i"), ("\x01", "--parents"), ("\x02", "--preserve"), ("\x03", "--reflink")):
        if o in opts:
            raise unsupported(p, what)
    flags = 0
    if "a" in opts:
        opts.setdefault("p", [""])
        opts.setdefault("d", [""])
        opts.setdefault("R", [""])
    if "r" in opts:
        opts.setdefault("R", [""])
    if "R" in opts or "P" in opts:
        opts.setdefault("d", [""])
    if "d" not in opts:
        flags |= _DEREF
    flags |= _flag_bits(opts, {"p": _PRESERVE, "R": _RECUR, "f": _FORCE, "n": _NOCLOBBER, "l": _HARDLINK,
                               "s": _SOFTLINK, "T": _NOTARGET, "u": _UPDATE, "v": _VERBOSE, "L": _DEREF,
                               "H": _DEREF_L0})
    if "l" in opts and "s" in opts:
        return show_usage(p, "cp")
    if "t" in opts:
        last = opts["t"][-1]
        sources = args
        if not sources:
            return show_usage(p, "cp")
    else:
        if len(args) < 2:
            return show_usage(p, "cp")
        last = args[-1]
        sources = args[:-1]
    seen: dict[int, str] = {}
    if len(sources) == 1 and "t" not in opts:
        s_flags, _ = _cp_stat(p, sources[0], bool(flags & (_DEREF | _DEREF_L0)))
        if s_flags < 0:
            return 1
        d_flags, _ = _cp_stat(p, last, True)
        if d_flags < 0:
            return 1
        if flags & _NOTARGET:
            if not (s_flags & 2) and (d_flags & 2):
                p.error(f"'{last}' is a directory")
                return 1
            if (s_flags & 2) and (d_flags & 1) and not (d_flags & 2):
                p.error(f"can't overwrite non-directory '{last}' with directory '{sources[0]}'")
                return 1
        if not ((s_flags | d_flags) & 2) or ((flags & _RECUR) and (s_flags & 2) and not d_flags) or (flags & _NOTARGET):
            return 1 if copy_file(p, sources[0], last, flags, seen) < 0 else 0
    elif flags & _NOTARGET:
        p.error("too many arguments")
        return 1
    status = 0
    for src in sources:
        dest = _concat(last, _last_component(src))
        if copy_file(p, src, dest, flags, seen) < 0:
            status = 1
    return status


@applet("mv")
def mv(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "finTt:v", longopts={"force": "f", "interactive": "i", "no-clobber": "n",
                                                               "no-target-directory": "T", "target-directory=": "t",
                                                               "verbose": "v"})
    except UsageError as e:
        return show_usage(p, "mv", e.msg)
    if "i" in opts:
        raise unsupported(p, "option -i")
    fs = p.fs
    if "t" in opts:
        last = opts["t"][-1]
        sources = args
        if not sources:
            return show_usage(p, "mv")
    else:
        if len(args) < 2:
            return show_usage(p, "mv")
        last, sources = args[-1], args[:-1]
    status = 0
    for k, src in enumerate(sources):
        if k == 0 and len(sources) == 1 and "t" not in opts:
            dest_exists, _ = _cp_stat(p, last, True)
            if dest_exists < 0:
                return 1
            if not (dest_exists & 2) or "T" in opts:
                dest = last
            else:
                dest = _concat(last, _last_component(src))
                dest_exists, _ = _cp_stat(p, dest, True)
                if dest_exists < 0:
                    status = 1
                    continue
        else:
            dest = _concat(last, _last_component(src))
            dest_exists, _ = _cp_stat(p, dest, True)
            if dest_exists < 0:
                status = 1
                continue
        if dest_exists and "n" in opts:
            continue
        try:
            fs.rename(p.path(src), p.path(dest))
            if "v" in opts:
                p.out(f"'{src}' -> '{dest}'\n")
            continue
        except OSError as e:
            err = e
        source_exists = 0
        if err.errno == errno.EXDEV:
            source_exists, _ = _cp_stat(p, src, False)
        if err.errno != errno.EXDEV or source_exists < 1:
            p.perror(f"can't rename '{src}'", err)
            status = 1
            continue
        if dest_exists:
            if dest_exists == 3 and source_exists != 3:
                p.error("can't overwrite directory with non-directory")
                status = 1
                continue
            if dest_exists != 3 and source_exists == 3:
                p.error("can't overwrite non-directory with directory")
                status = 1
                continue
            try:
                fs.unlink(p.path(dest)) if dest_exists != 3 else fs.rmdir(p.path(dest))
            except OSError as e:
                p.perror(f"can't remove '{dest}'", e)
                status = 1
                continue
        if copy_file(p, src, dest, _RECUR | _PRESERVE, {}) >= 0 and remove_file(p, src, True, True):
            if "v" in opts:
                p.out(f"'{src}' -> '{dest}'\n")
            continue
        status = 1
    return status


@applet("ln")
def ln(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "sfnbS:vT", longopts={"symbolic": "s", "force": "f", "no-dereference": "n",
                                                                "verbose": "v", "no-target-directory": "T"})
    except UsageError as e:
        return show_usage(p, "ln", e.msg)
    if "b" in opts or "S" in opts:
        raise unsupported(p, "backups (-b, -S)")
    if not args:
        return show_usage(p, "ln")
    fs = p.fs
    if len(args) == 1:
        last = _last_component(args[0])
        sources = args
    else:
        last = args[-1]
        sources = args[:-1]
    if "T" in opts and len(sources) > 1:
        return show_usage(p, "ln")
    status = 0
    for src in sources:
        link_name = last
        try:
            st = fs.stat(p.path(last)) if "n" not in opts else fs.lstat(p.path(last))
            is_dir = _stat.S_ISDIR(st.st_mode)
        except OSError:
            is_dir = False
        if is_dir:
            if "T" in opts:
                p.error(f"'{last}' is a directory")
                status = 1
                continue
            link_name = _concat(last, _last_component(src))
        if "s" not in opts:
            try:
                fs.stat(p.path(src))
            except OSError as e:
                p.perror(src, e)
                status = 1
                continue
        if "f" in opts:
            try:
                fs.unlink(p.path(link_name))
            except OSError:
                pass
        if "v" in opts:
            p.out(f"'{link_name}' -> '{src}'\n")
        try:
            if "s" in opts:
                fs.symlink(src, p.path(link_name))
            else:
                fs.link(p.path(src), p.path(link_name), follow_symlinks=False)
        except OSError as e:
            p.perror(link_name, e)
            status = 1
    return status


@applet("chmod")
def chmod(p: Proc) -> int:
    args = p.argv[1:]
    mode_index = None
    for k, a in enumerate(args):
        if not a.startswith("-"):
            break
        if a == "--":
            break
        if a[1:] and a[1 + len(a[1:]) - len(a[1:].lstrip("Rvcf")):]:
            mode_index = k
            break
    if mode_index is not None:
        mode_arg = args[mode_index]
        rest = args[:mode_index] + ["\x00MODE"] + args[mode_index + 1:]
    else:
        mode_arg = None
        rest = args
    try:
        opts, operands = getopt(p, rest, "Rvcf", longopts={"recursive": "R", "verbose": "v", "changes": "c", "silent": "f", "quiet": "f"})
    except UsageError as e:
        return show_usage(p, "chmod", e.msg)
    operands = [mode_arg if o == "\x00MODE" and mode_arg is not None else o for o in operands]
    if len(operands) < 2:
        return show_usage(p, "chmod")
    spec, files = operands[0], operands[1:]
    fs = p.fs
    umask = _umask(p)
    status = 0

    def one(name: str, top: bool) -> bool:
        path = p.path(name)
        try:
            st = fs.stat(path) if top else fs.lstat(path)
        except OSError as e:
            if "f" not in opts:
                p.perror(name, e)
            return False
        if not top and _stat.S_ISLNK(st.st_mode):
            return True
        new = parse_mode(spec, st.st_mode, umask)
        if new is None:
            raise _ModeError(spec)
        new &= 0o7777
        try:
            fs.chmod(path, new)
        except OSError as e:
            if "f" not in opts:
                p.perror(name, e)
            return False
        if "v" in opts or ("c" in opts and (st.st_mode & 0o7777) != new):
            p.out(f"mode of '{name}' changed to {new:04o} ({mode_string(_stat.S_IFMT(st.st_mode) | new)[1:]})\n")
        ok = True
        if "R" in opts and _stat.S_ISDIR(st.st_mode):
            try:
                names = fs.listdir(path)
            except OSError as e:
                p.perror(f"can't open '{name}'", e)
                return False
            for child in names:
                if not one(_concat(name, child), False):
                    ok = False
        return ok

    try:
        for f in files:
            if not one(f, True):
                status = 1
    except _ModeError as e:
        p.error(f"invalid mode '{e.args[0]}'")
        return 1
    return status


class _ModeError(Exception):
    pass


# -- pwd, id, hostname, env, sleep -----------------------------------------------------


@applet("pwd")
def pwd(p: Proc) -> int:
    try:
        opts, _ = getopt(p, p.argv[1:], "LP")
    except UsageError as e:
        return show_usage(p, "pwd", e.msg)
    physical = p.world.realpath(p.cwd)
    logical = p.env.get("PWD")
    # busybox's pwd applet is physical unless -L ("most scripts expect -P"); ash's builtin is logical
    if "L" in opts and "P" not in opts and logical and logical.startswith("/"):
        try:
            if p.world.realpath(logical) == physical:
                p.out(logical + "\n")
                return 0
        except OSError:
            pass
    p.out(physical + "\n")
    return 0


@applet("id")
def id_(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "ugGnrZ")
    except UsageError as e:
        return show_usage(p, "id", e.msg)
    if "Z" in opts:
        raise unsupported(p, "option -Z")
    if len(args) > 1 or sum(o in opts for o in "ugG") > 1 or (("n" in opts or "r" in opts) and not any(o in opts for o in "ugG")):
        return show_usage(p, "id")
    world = p.world
    if args:
        entry = passwd_entry(p, args[0])
        if entry is None:
            if args[0].isdigit():
                uid = int(args[0])
                entry_name = lookup_user(p, uid)
                if entry_name is None:
                    p.error(f"unknown user {args[0]}")
                    return 1
                entry = passwd_entry(p, entry_name)
                assert entry is not None
            else:
                p.error(f"unknown user {args[0]}")
                return 1
        uid, gid = int(entry[2]), int(entry[3])
        user: str | None = entry[0]
    else:
        uid, gid = world.uid, world.gid
        user = lookup_user(p, uid)
    groups = member_groups(p, user, gid)
    names = "n" in opts
    status = 0

    def show(value: int, name: str | None, prefix: str) -> str:
        nonlocal status
        if opts:
            if names:
                if name is None:
                    p.error(f"unknown ID {value}")
                    status = 1
                    return prefix + str(value)
                return prefix + name
            return prefix + str(value)
        return f"{prefix}{value}" + (f"({name})" if name is not None else "")

    if "u" in opts:
        p.out(show(uid, user, "") + "\n")
        return status
    if "g" in opts:
        p.out(show(gid, lookup_group(p, gid), "") + "\n")
        return status
    if "G" in opts:
        p.out(" ".join(show(g, lookup_group(p, g), "") for g in groups) + "\n")
        return status
    text = show(uid, user, "uid=") + show(gid, lookup_group(p, gid), " gid=")
    if groups:
        text += " groups=" + ",".join(show(g, lookup_group(p, g), "") for g in groups)
    p.out(text + "\n")
    return status


@applet("hostname")
def hostname(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "sidfF:", longopts={"short": "s", "domain": "d", "fqdn": "f", "file=": "F"})
    except UsageError as e:
        return show_usage(p, "hostname", e.msg)
    if "i" in opts:
        raise unsupported(p, "option -i (it resolves the name on the network)")
    world = p.world
    if "F" in opts or args:
        if "F" in opts:
            try:
                stream = open_read(p, opts["F"][-1])
                data = decode(stream.read())
                stream.close()
            except OSError as e:
                p.perror(f"can't open '{opts['F'][-1]}'", e)
                return 1
            lines = [ln_.strip() for ln_ in data.splitlines() if ln_.strip() and not ln_.strip().startswith("#")]
            if not lines:
                return 0
            name = lines[0]
        else:
            name = args[0]
        # a container runs without CAP_SYS_ADMIN: sethostname(2) fails even for root
        p.perror("sethostname", errno.EPERM)
        return 1
    name = world.hostname
    if "s" in opts:
        name = name.split(".", 1)[0]
    elif "d" in opts:
        name = name.split(".", 1)[1] if "." in name else ""
        if not name:
            return 0
    p.out(name + "\n")
    return 0


@applet("env")
def env(p: Proc) -> int:
    args = p.argv[1:]
    if args and args[0] == "-":
        args = ["-i", *args[1:]]
    try:
        opts, rest = _env_opts(p, args)
    except UsageError as e:
        return show_usage(p, "env", e.msg)
    environ = {} if "i" in opts else dict(p.env)
    for name in opts.get("u", []):
        environ.pop(name, None)
    while rest and "=" in rest[0]:
        name, _, value = rest[0].partition("=")
        environ.pop(name, None)
        environ[name] = value
        rest = rest[1:]
    if rest:
        status: int = p.world.exec_from_applet(p, rest, environ)
        return status
    sep = "\0" if "0" in opts else "\n"
    p.out("".join(f"{k}={v}{sep}" for k, v in environ.items()))
    return 0


def _env_opts(p: Proc, args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    # getopt32 with "+": stop at the first operand (NAME=VALUE or PROG)
    out: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            i += 1
            break
        out.append(args[i])
        if args[i] in ("-u",) and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        i += 1
    opts, _ = getopt(p, out, "iu:0", longopts={"ignore-environment": "i", "unset=": "u", "null": "0"})
    rest = args[i:]
    if rest and rest[0] == "-":
        opts.setdefault("i", [""])
        rest = rest[1:]
    return opts, rest


@applet("sleep")
def sleep(p: Proc) -> int:
    args = p.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        return show_usage(p, "sleep")
    total = 0.0
    for a in args:
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", a)
        if not m:
            if a == "inf" or a == "infinity":
                raise unsupported(p, "sleeping forever")
            p.error(f"invalid number '{a}'")
            return 1
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    p.world.advance_clock(total)
    return 0

