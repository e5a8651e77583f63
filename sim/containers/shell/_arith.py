"""Arithmetic expansion: ``$(( ))`` as ash evaluates it."""

from __future__ import annotations

import re
from collections.abc import Callable

from sim.containers.shell._exphost import ExpansionError, ExpansionHost

__all__ = ["arith"]

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

    def __init__(self, text: str, host: ExpansionHost) -> None:
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


def arith(text: str, host: ExpansionHost) -> int:
    """The value of an arithmetic expression (``$((text))``, a ``${x:off:len}`` bound)."""
    return _Arith(text, host).evaluate()

