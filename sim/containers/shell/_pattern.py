"""Shell patterns (``* ? [...]``, XCU 2.13) as Python regexes, and the pattern operations of ``${...}``."""

from __future__ import annotations

import re

__all__ = ["pattern_regex", "match_pattern", "escape_quoted", "has_magic", "unescape", "trim", "replace"]

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


def escape_quoted(segments: list[tuple[str, bool]]) -> str:
    """Segments as one pattern string: quoted characters escaped, unquoted ones active."""
    out: list[str] = []
    for text, quoted in segments:
        if quoted:
            out.append("".join("\\" + c if c in "*?[]\\" else c for c in text))
        else:
            out.append(text)
    return "".join(out)


def has_magic(segments: list[tuple[str, bool]]) -> bool:
    return any(not quoted and any(c in text for c in "*?[") for text, quoted in segments)


def unescape(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern, flags=re.DOTALL)


def trim(value: str, pattern: str, op: str) -> str:
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


def replace(value: str, pattern: str, repl: str, op: str) -> str:
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

