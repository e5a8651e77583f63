"""``test`` and ``[``: a port of coreutils/test.c."""

from __future__ import annotations

import posixpath
import re
import stat as _stat

from sim.containers.shell._applets._common import applet
from sim.containers.shell._proc import Proc, encode

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
