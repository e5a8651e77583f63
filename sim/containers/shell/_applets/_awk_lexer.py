"""The tokens of an awk program (POSIX awk's lexical conventions, as busybox 1.35 reads them).

A ``/`` starts a regular expression literal where an operand may begin (after
an operator, ``(``, ``,``, ``{``, ``;``, a newline or at the start) and is
division elsewhere.  Newlines are tokens (they end statements) except after
``{ && || , ; do else`` and a backslash-newline, which joins lines.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Token", "AwkSyntaxError", "tokenize", "KEYWORDS", "BUILTINS", "unescape"]


class AwkSyntaxError(Exception):
    """busybox's ``syntax_error``: printed as ``awk: cmd. line:LINE: MSG``."""

    def __init__(self, msg: str, line: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.line = line


@dataclass(frozen=True)
class Token:
    """``kind`` is ``num``, ``str``, ``ere``, ``name``, ``funcname`` (a name directly followed by ``(``),
    ``builtin``, ``keyword``, ``newline``, ``eof`` or the operator text itself."""

    kind: str
    value: str
    line: int
    num: float = 0.0


KEYWORDS = frozenset({"BEGIN", "END", "function", "func", "if", "else", "while", "for", "do", "break", "continue",
                      "next", "nextfile", "exit", "return", "delete", "in", "getline", "print", "printf"})
BUILTINS = frozenset({"length", "substr", "index", "split", "sub", "gsub", "match", "sprintf", "sin", "cos", "atan2",
                      "exp", "log", "sqrt", "int", "rand", "srand", "tolower", "toupper", "system", "close", "fflush",
                      "and", "or", "xor", "compl", "lshift", "rshift", "strftime", "systime", "mktime"})
_OPERATORS = ("+=", "-=", "*=", "/=", "%=", "^=", "**=", "**", "==", "<=", ">=", "!=", "!~", "++", "--", "&&", "||",
              ">>", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "/", "%", "^", "!", ">", "<", "|", "?",
              ":", "~", "$", "=")
# after these a "/" is division (they end an operand)
_OPERAND_END = frozenset({"num", "str", "ere", "name", "builtin", ")", "]", "++", "--"})
_JOINS_NEXT_LINE = frozenset({"{", "&&", "||", ",", ";", "do", "else", "newline"})
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "/": "/", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v"}


def unescape(text: str) -> str:
    """C escapes in awk strings and in ``-v``/``-F`` values: ``\\n``, ``\\t``, ``\\NNN`` octal ..."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in "01234567":
                j = i + 1
                while j < len(text) and j < i + 4 and text[j] in "01234567":
                    j += 1
                out.append(chr(int(text[i + 1:j], 8)))
                i = j
                continue
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _number(src: str, i: int) -> tuple[float, int]:
    j = i
    if src.startswith(("0x", "0X"), i):
        j = i + 2
        while j < len(src) and src[j] in "0123456789abcdefABCDEF":
            j += 1
        return float(int(src[i + 2:j] or "0", 16)), j
    while j < len(src) and src[j].isdigit():
        j += 1
    if j < len(src) and src[j] == ".":
        j += 1
        while j < len(src) and src[j].isdigit():
            j += 1
    if j < len(src) and src[j] in "eE":
        k = j + 1
        if k < len(src) and src[k] in "+-":
            k += 1
        if k < len(src) and src[k].isdigit():
            j = k
            while j < len(src) and src[j].isdigit():
                j += 1
    return float(src[i:j]), j


def tokenize(src: str) -> list[Token]:
    toks: list[Token] = []
    i = 0
    line = 1
    n = len(src)

    def last_kind() -> str:
        return toks[-1].kind if toks else "newline"

    while i < n:
        c = src[i]
        if c in " \t\r":
            i += 1
            continue
        if c == "\\" and src.startswith("\n", i + 1):
            i += 2
            line += 1
            continue
        if c == "#":
            while i < n and src[i] != "\n":
                i += 1
            continue
        if c == "\n":
            line += 1
            i += 1
            if last_kind() not in _JOINS_NEXT_LINE and toks and toks[-1].value not in _JOINS_NEXT_LINE:
                toks.append(Token("newline", "\n", line - 1))
            continue
        if c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            value, j = _number(src, i)
            toks.append(Token("num", src[i:j], line, value))
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in KEYWORDS:
                toks.append(Token("keyword", word, line))
            elif word in BUILTINS:
                toks.append(Token("builtin", word, line))
            elif j < n and src[j] == "(":
                toks.append(Token("funcname", word, line))
            else:
                toks.append(Token("name", word, line))
            i = j
            continue
        if c == '"':
            j = i + 1
            buf: list[str] = []
            while True:
                if j >= n or src[j] == "\n":
                    raise AwkSyntaxError("Unexpected end of string", line)
                if src[j] == "\\" and j + 1 < n:
                    if src[j + 1] == "\n":
                        j += 2
                        line += 1
                        continue
                    buf.append(src[j:j + 2])
                    j += 2
                    continue
                if src[j] == '"':
                    break
                buf.append(src[j])
                j += 1
            toks.append(Token("str", unescape("".join(buf)), line))
            i = j + 1
            continue
        if c == "/" and last_kind() not in _OPERAND_END:
            j = i + 1
            buf = []
            while True:
                if j >= n or src[j] == "\n":
                    raise AwkSyntaxError("Unexpected end of string", line)
                if src[j] == "\\" and j + 1 < n:
                    # "\/" is the slash; C escapes become their bytes; the rest is the regex's own
                    nxt = src[j + 1]
                    buf.append("/" if nxt == "/" else _ESCAPES[nxt] if nxt in "ntrfva" else src[j:j + 2])
                    j += 2
                    continue
                if src[j] == "/":
                    break
                buf.append(src[j])
                j += 1
            toks.append(Token("ere", "".join(buf), line))
            i = j + 1
            continue
        for op in _OPERATORS:
            if src.startswith(op, i):
                toks.append(Token(op, op, line))
                i += len(op)
                break
        else:
            raise AwkSyntaxError("Unexpected token", line)
    toks.append(Token("eof", "", line))
    return toks
