"""Word expansion: parameters, command substitution, arithmetic, field splitting, globbing.

A word expands in POSIX order (XCU 2.6): tilde, parameter / command /
arithmetic expansion, field splitting of the unquoted results on ``$IFS``,
pathname expansion of unquoted ``* ? [``, quote removal.  Internally a word
becomes *segments* ``(text, quoted, splittable)``; quoted text never splits
and never globs.  Globbing reads directories through the
:class:`~sim.interface.FileSystem` only.
"""

from __future__ import annotations

import re
import stat as _stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sim.containers.shell._parser import Arith, CmdList, CmdSub, Lit, Param, Word

if TYPE_CHECKING:
    from sim.interface import FileSystem

__all__ = ["ExpansionError", "Expander", "match_pattern", "pattern_regex", "glob_fields"]


class ExpansionError(Exception):
    """``${x?msg}``, a bad arithmetic expression, ``set -u`` on an unset name: ash aborts the command."""


class _Host(Protocol):  # what the expander needs from the shell
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


Segment = tuple[str, bool, bool]  # text, quoted, splittable


class _Marker(tuple):  # type: ignore[type-arg]
    """A segment that is not text: a break between "$@" words, or "$@" with no parameters."""


_FIELD_BREAK: Segment = _Marker(("", True, False))
_AT_EMPTY: Segment = _Marker(("", True, False))


# -- patterns ----------------------------------------------------------------------

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x00-\x1f\x7f", "print": r" -~", "graph": r"!-~", "word": r"\w",
}


def _bracket(text: str, i: int) -> tuple[str, int] | None:
    """Translate a ``[...]`` expression starting at ``text[i] == '['``; None when unterminated."""
    j = i + 1
    negate = False
    if j < len(text) and text[j] in "!^":
        negate = True
        j += 1
    out: list[str] = []
    first = True
    while j < len(text):
        c = text[j]
        if c == "]" and not first:
            body = "".join(out)
            return ("[^" if negate else "[") + body + "]", j + 1
        first = False
        if c == "[" and text.startswith("[:", j):
            end = text.find(":]", j + 2)
            if end > 0 and text[j + 2:end] in _CLASSES:
                out.append(_CLASSES[text[j + 2:end]])
                j = end + 2
                continue
        if c == "\\" and j + 1 < len(text):
            out.append(re.escape(text[j + 1]))
            j += 2
            continue
        if c == "-" and out and j + 1 < len(text) and text[j + 1] != "]":
            out.append("-")
            j += 1
            continue
        out.append(re.escape(c) if c not in "-" else r"\-")
        j += 1
    return None


def pattern_regex(pattern: str) -> str:
    """A shell pattern (``\\`` escapes the next character) as a Python regex body."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "*":
            out.append(".*")
            i += 1
        elif c == "?":
            out.append(".")
            i += 1
        elif c == "[":
            br = _bracket(pattern, i)
            if br is None:
                out.append(r"\[")
                i += 1
            else:
                out.append(br[0])
                i = br[1]
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def match_pattern(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern_regex(pattern), text, re.DOTALL) is not None


def _escape_quoted(segments: list[tuple[str, bool]]) -> str:
    """Segments as one pattern string: quoted characters escaped, unquoted ones active."""
    out: list[str] = []
    for text, quoted in segments:
        if quoted:
            out.append("".join("\\" + c if c in "*?[]\\" else c for c in text))
        else:
            out.append(text)
    return "".join(out)


def _has_magic(segments: list[tuple[str, bool]]) -> bool:
    return any(not quoted and any(c in text for c in "*?[") for text, quoted in segments)


def _unescape(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern, flags=re.DOTALL)


# -- globbing ----------------------------------------------------------------------


def glob_fields(host: _Host, segments: list[tuple[str, bool]]) -> list[str]:
    """Pathname expansion of one field: sorted matches, or the field itself when none match."""
    text = "".join(t for t, _ in segments)
    if not _has_magic(segments):
        return [text]
    pattern = _escape_quoted(segments)
    comps = pattern.split("/")
    if pattern.startswith("/"):
        results = _glob_walk(host, "/", comps[1:])
    else:
        results = _glob_walk(host, "", comps)
    if not results:
        return [_unescape(pattern)]
    return sorted(results, key=lambda s: s.encode("utf-8", "surrogateescape"))


def _glob_walk(host: _Host, prefix: str, comps: list[str]) -> list[str]:
    if not comps:
        return [prefix]
    comp, rest = comps[0], comps[1:]
    if comp == "" and rest:  # "a//b"
        return _glob_walk(host, prefix + "/" if not prefix.endswith("/") else prefix, rest)
    if comp == "":
        return [prefix] if prefix else []
    if not _has_magic([(comp, False)]) or pattern_regex(comp) == re.escape(_unescape(comp)):
        name = _unescape(comp)
        path = prefix + name
        if rest:
            return _glob_walk(host, path + "/", rest)
        try:
            host.fs.lstat(host.fs_path(path))
        except OSError:
            return []
        return [path]
    directory = host.fs_path(prefix or ".")
    try:
        names = host.fs.listdir(directory)
    except OSError:
        return []
    regex = re.compile(pattern_regex(comp), re.DOTALL)
    if comp.startswith(".") or comp.startswith("\\."):
        names = [".", "..", *names]
    out: list[str] = []
    for name in names:
        if name.startswith(".") and not (comp.startswith(".") or comp.startswith("\\.")):
            continue
        if not regex.fullmatch(name):
            continue
        path = prefix + name
        if rest:
            try:
                st = host.fs.stat(host.fs_path(path))
            except OSError:
                continue
            if not _stat.S_ISDIR(st.st_mode):
                continue
            out.extend(_glob_walk(host, path + "/", rest))
        else:
            out.append(path)
    return out


# -- arithmetic --------------------------------------------------------------------

_ARITH_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|"
    r"(<<=|>>=|\*\*|&&|\|\||<<|>>|<=|>=|==|!=|\+=|-=|\*=|/=|%=|&=|\^=|\|=|\+\+|--|[-+*/%<>=!~&^|?:(),]))"
)
_BINARY = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10, "**": 11,
}
_ASSIGN_OPS = {"=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "^=", "|="}


class _Arith:
    """``$(( ))`` with C ``long`` semantics (64-bit, truncating division), as ash evaluates it."""

    def __init__(self, text: str, host: _Host) -> None:
        self.host = host
        self.toks: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _ARITH_TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ExpansionError("arithmetic syntax error")
            pos = m.end()
            if m.group(1):
                self.toks.append(("num", m.group(1)))
            elif m.group(2):
                self.toks.append(("name", m.group(2)))
            elif m.group(3):
                self.toks.append(("op", m.group(3)))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def evaluate(self) -> int:
        if not self.toks:
            return 0
        value = self.expr()
        while self.peek() == ("op", ","):
            self.i += 1
            value = self.expr()
        if self.peek() is not None:
            raise ExpansionError("arithmetic syntax error")
        return value

    @staticmethod
    def wrap(v: int) -> int:
        v &= (1 << 64) - 1
        return v - (1 << 64) if v >= 1 << 63 else v

    def number(self, text: str) -> int:
        text = text.strip()
        if not text:
            return 0
        try:
            if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", text):
                return int(text, 16)
            if re.fullmatch(r"[-+]?0[0-7]+", text):
                return int(text, 8)
            return int(text, 10)
        except ValueError:
            raise ExpansionError("arithmetic syntax error") from None

    def var(self, name: str) -> int:
        value = self.host.getvar(name)
        if value is None:
            if self.host.nounset:
                raise ExpansionError(f"{name}: parameter not set")
            return 0
        return self.number(value)

    def expr(self) -> int:
        tok = self.peek()
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if tok and tok[0] == "name" and nxt and nxt[0] == "op" and nxt[1] in _ASSIGN_OPS:
            self.i += 2
            value = self.expr()
            name = tok[1]
            if nxt[1] != "=":
                value = self.apply(nxt[1][:-1], self.var(name), value)
            self.host.setvar(name, str(value))
            return value
        return self.ternary()

    def ternary(self) -> int:
        cond = self.binary(1)
        if self.peek() == ("op", "?"):
            self.i += 1
            a = self.expr()
            if self.peek() != ("op", ":"):
                raise ExpansionError("arithmetic syntax error")
            self.i += 1
            b = self.ternary()
            return a if cond else b
        return cond

    def apply(self, op: str, a: int, b: int) -> int:
        if op in ("/", "%"):
            if b == 0:
                raise ExpansionError("divide by zero")
            q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
            return self.wrap(q if op == "/" else a - b * q)
        table: dict[str, Callable[[], int]] = {
            "||": lambda: int(bool(a) or bool(b)), "&&": lambda: int(bool(a) and bool(b)),
            "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b,
            "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
            "<=": lambda: int(a <= b), ">": lambda: int(a > b), ">=": lambda: int(a >= b),
            "<<": lambda: a << (b & 63), ">>": lambda: a >> (b & 63), "+": lambda: a + b, "-": lambda: a - b,
            "*": lambda: a * b, "**": lambda: a ** b if b >= 0 else 0,
        }
        return self.wrap(table[op]())

    def binary(self, level: int) -> int:
        left = self.unary()
        while True:
            tok = self.peek()
            if not tok or tok[0] != "op" or tok[1] not in _BINARY or _BINARY[tok[1]] < level:
                return left
            op = tok[1]
            self.i += 1
            right = self.binary(_BINARY[op] + (0 if op == "**" else 1))
            left = self.apply(op, left, right)

    def unary(self) -> int:
        tok = self.peek()
        if tok is None:
            raise ExpansionError("arithmetic syntax error")
        if tok[0] == "op" and tok[1] in ("-", "+", "!", "~"):
            self.i += 1
            v = self.unary()
            return self.wrap({"-": -v, "+": v, "!": int(not v), "~": ~v}[tok[1]])
        if tok[0] == "op" and tok[1] in ("++", "--"):
            self.i += 1
            name = self.peek()
            if not name or name[0] != "name":
                raise ExpansionError("arithmetic syntax error")
            self.i += 1
            v = self.var(name[1]) + (1 if tok[1] == "++" else -1)
            self.host.setvar(name[1], str(v))
            return v
        if tok == ("op", "("):
            self.i += 1
            v = self.expr()
            if self.peek() != ("op", ")"):
                raise ExpansionError("arithmetic syntax error")
            self.i += 1
            return v
        self.i += 1
        if tok[0] == "num":
            return self.wrap(self.number(tok[1]))
        if tok[0] == "name":
            post = self.peek()
            if post is not None and post[0] == "op" and post[1] in ("++", "--"):
                self.i += 1
                v = self.var(tok[1])
                self.host.setvar(tok[1], str(v + (1 if post[1] == "++" else -1)))
                return v
            return self.var(tok[1])
        raise ExpansionError("arithmetic syntax error")


# -- the expander ------------------------------------------------------------------


class Expander:
    def __init__(self, host: _Host) -> None:
        self.host = host

    # public entry points ---------------------------------------------------------

    def fields(self, words: list[Word]) -> list[str]:
        """Words as a command's arguments: split on $IFS and globbed."""
        out: list[str] = []
        for word in words:
            for field in self._split(self._segments(word, tilde=True)):
                if self.host.noglob:
                    out.append("".join(t for t, _ in field))
                else:
                    out.extend(glob_fields(self.host, field))
        return out

    def single(self, word: Word, *, tilde: bool = True) -> str:
        """One string: assignments, redirection targets, here-documents, ``case`` words."""
        return "".join(" " if seg is _FIELD_BREAK else seg[0] for seg in self._segments(word, tilde=tilde))

    def pattern(self, word: Word) -> str:
        """A ``case`` or ``${x#pat}`` pattern: quoted characters escaped."""
        segs = self._segments(word, tilde=True)
        return _escape_quoted([(" ", True) if s is _FIELD_BREAK else (s[0], s[1]) for s in segs])

    # internals -------------------------------------------------------------------

    def _segments(self, word: Word, *, tilde: bool) -> list[Segment]:
        segs: list[Segment] = []
        parts = list(word.parts)
        if tilde and parts and isinstance(parts[0], Lit) and not parts[0].quoted and parts[0].text.startswith("~"):
            text = parts[0].text
            end = text.find("/")
            user: str | None = text[1:] if end < 0 else text[1:end]
            if end < 0 and len(parts) > 1:
                user = None  # "~$x" or "~'a'": no tilde expansion
            home = None
            if user is not None:
                home = self.host.getvar("HOME") if user == "" else self.host.home_of(user)
            if home is not None:
                segs.append((home, True, False))
                rest = "" if end < 0 else text[end:]
                parts[0] = Lit(rest, False)
        for part in parts:
            if isinstance(part, Lit):
                segs.append((part.text, part.quoted, False))
            elif isinstance(part, Param):
                segs.extend(self._param(part))
            elif isinstance(part, CmdSub):
                text = self.host.command_substitution(part.body)
                segs.append((text, part.quoted, not part.quoted))
            elif isinstance(part, Arith):
                expr = self.single(part.expr, tilde=False)
                value = str(_Arith(expr, self.host).evaluate())
                segs.append((value, part.quoted, not part.quoted))
        return segs

    def _value(self, name: str) -> str | list[str] | None:
        if name.isdigit() or name in "@*#?-$!" and len(name) == 1:
            return self.host.special(name)
        return self.host.getvar(name)

    def _param(self, part: Param) -> list[Segment]:
        name, op = part.name, part.op
        raw = self._value(name)
        if op == "len":
            if isinstance(raw, list):  # ${#@}: the length of "$*"
                return [(str(len(" ".join(raw))), part.quoted, False)]
            if raw is None and self.host.nounset and name not in "@*":
                raise ExpansionError(f"{name}: parameter not set")
            return [(str(len(raw or "")), part.quoted, False)]
        if isinstance(raw, list) and op in (":", "/", "//"):
            raw = " ".join(raw) if raw else None
        if isinstance(raw, list):  # $@ and $*
            is_set = bool(raw)
            if op is None or op in ("#", "##", "%", "%%"):
                items = raw
                if op is not None:
                    pat = self.pattern(part.arg) if part.arg is not None else ""
                    items = [_trim(x, pat, op) for x in raw]
                return self._positional(name, items, part.quoted)
            value_for_test: str | None = " ".join(raw) if is_set else None
            if value_for_test is not None and op.startswith(":") and value_for_test == "":
                value_for_test = None
            if op in ("-", ":-", "=", ":="):
                if value_for_test is not None:
                    return self._positional(name, raw, part.quoted)
                return self._word_value(part)
            if op in ("+", ":+"):
                return self._word_value(part) if value_for_test is not None else []
            if op in ("?", ":?"):
                if value_for_test is None:
                    raise ExpansionError(f"{name}: " + (self.single(part.arg) if part.arg and part.arg.parts else "parameter not set"))
                return self._positional(name, raw, part.quoted)
        assert not isinstance(raw, list)
        value: str | None = raw
        if op is None:
            if value is None:
                if self.host.nounset and name not in "@*":
                    raise ExpansionError(f"{name}: parameter not set")
                value = ""
            return [(value, part.quoted, not part.quoted)]
        unset = value is None or (op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return self._word_value(part) if unset else [(value or "", part.quoted, not part.quoted)]
        if op in ("=", ":="):
            if unset:
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise ExpansionError(f"{name}: parameter not set")
                new = self.single(part.arg) if part.arg is not None else ""
                self.host.setvar(name, new)
                return [(new, part.quoted, not part.quoted)]
            return [(value or "", part.quoted, not part.quoted)]
        if op in ("+", ":+"):
            return [] if unset else self._word_value(part)
        if op in ("?", ":?"):
            if unset:
                msg = self.single(part.arg) if part.arg is not None and part.arg.parts else "parameter not set"
                raise ExpansionError(f"{name}: {msg}")
            return [(value or "", part.quoted, not part.quoted)]
        if value is None and op in (":", "/", "//"):
            if self.host.nounset:
                raise ExpansionError(f"{name}: parameter not set")
            value = ""
        if op == ":":
            assert value is not None
            spec = self.single(part.arg) if part.arg is not None else ""
            off_text, colon, len_text = spec.partition(":")
            off = _Arith(off_text, self.host).evaluate() if off_text.strip() else 0
            n = len(value)
            if off < 0:
                off = n + off
                if off < 0:
                    return [("", part.quoted, not part.quoted)]
            if colon:
                length = _Arith(len_text, self.host).evaluate() if len_text.strip() else 0
                end = off + length if length >= 0 else n + length
                text = value[off:max(end, off)]
            else:
                text = value[off:]
            return [(text, part.quoted, not part.quoted)]
        if op in ("/", "//"):
            assert value is not None
            pat = self.pattern(part.arg) if part.arg is not None else ""
            repl = self.single(part.arg2) if part.arg2 is not None else ""
            return [(_replace(value, pat, repl, op), part.quoted, not part.quoted)]
        # pattern removal
        if value is None:
            if self.host.nounset:
                raise ExpansionError(f"{name}: parameter not set")
            value = ""
        pat = self.pattern(part.arg) if part.arg is not None else ""
        return [(_trim(value, pat, op), part.quoted, not part.quoted)]

    def _word_value(self, part: Param) -> list[Segment]:
        if part.arg is None:
            return []
        segs = self._segments(part.arg, tilde=True)
        if part.quoted:
            return [(" ", True, False) if s is _FIELD_BREAK else (s[0], True, False) for s in segs] or [("", True, False)]
        return segs

    def _positional(self, name: str, items: list[str], quoted: bool) -> list[Segment]:
        if not quoted:
            out: list[Segment] = []
            for i, item in enumerate(items):
                if i:
                    out.append((" ", False, True))
                out.append((item, False, True))
            return out
        if name == "*":
            ifs = self.host.getvar("IFS")
            sep = " " if ifs is None else ifs[:1]
            return [(sep.join(items), True, False)]
        if not items:
            return [_AT_EMPTY]
        out = []
        for i, item in enumerate(items):
            if i:
                out.append(_FIELD_BREAK)
            out.append((item, True, False))
        return out

    def _split(self, segs: list[Segment]) -> list[list[tuple[str, bool]]]:
        ifs = self.host.getvar("IFS")
        if ifs is None:
            ifs = " \t\n"
        ws = {c for c in ifs if c in " \t\n"}
        nws = {c for c in ifs if c not in " \t\n"}
        fields: list[list[tuple[str, bool]]] = []
        cur: list[tuple[str, bool]] = []
        has = False
        ws_emitted = False
        only_at_empty = True
        for seg in segs:
            if seg is _AT_EMPTY:
                continue
            only_at_empty = False
            if seg is _FIELD_BREAK:
                fields.append(cur)
                cur, has = [], False
                continue
            text, quoted, splittable = seg
            if not splittable or not ifs:
                cur.append((text, quoted))
                if quoted or text:
                    has = True
                    ws_emitted = False
                continue
            buf: list[str] = []
            for ch in text:
                if ch in ws:
                    if buf:
                        cur.append(("".join(buf), False))
                        buf = []
                        has = True
                    if has:
                        fields.append(cur)
                        cur, has = [], False
                        ws_emitted = True
                elif ch in nws:
                    if buf:
                        cur.append(("".join(buf), False))
                        buf = []
                        has = True
                    if has or not ws_emitted:
                        fields.append(cur)
                    cur, has = [], False
                    ws_emitted = False
                else:
                    buf.append(ch)
                    ws_emitted = False
            if buf:
                cur.append(("".join(buf), False))
                has = True
        if has:
            fields.append(cur)
        if only_at_empty and not fields:
            return []
        return fields



def _trim(value: str, pattern: str, op: str) -> str:
    regex = re.compile(pattern_regex(pattern), re.DOTALL)
    n = len(value)
    if op == "#":
        for i in range(0, n + 1):
            if regex.fullmatch(value[:i]):
                return value[i:]
    elif op == "##":
        for i in range(n, -1, -1):
            if regex.fullmatch(value[:i]):
                return value[i:]
    elif op == "%":
        for i in range(n, -1, -1):
            if regex.fullmatch(value[i:]):
                return value[:i]
    elif op == "%%":
        for i in range(0, n + 1):
            if regex.fullmatch(value[i:]):
                return value[:i]
    return value


def _replace(value: str, pattern: str, repl: str, op: str) -> str:
    if not pattern:
        return value
    regex = re.compile(pattern_regex(pattern), re.DOTALL)
    n = len(value)
    out: list[str] = []
    i = 0
    while i <= n:
        for end in range(n, i - 1, -1):
            if regex.fullmatch(value, i, end):
                out.append(repl)
                if op == "/":
                    out.append(value[end:])
                    return "".join(out)
                if end == i:
                    if i < n:
                        out.append(value[i])
                    i += 1
                else:
                    i = end
                break
        else:
            if i < n:
                out.append(value[i])
            i += 1
    return "".join(out)


def arith(text: str, host: _Host) -> int:
    return _Arith(text, host).evaluate()

