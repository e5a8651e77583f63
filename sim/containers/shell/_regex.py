"""POSIX regular expressions (glibc's BRE and ERE, GNU extensions included) as Python ``re`` patterns.

busybox grep calls ``regcomp``; this translates the same syntax so that
``grep 'a\\(b\\)*'`` and ``grep -E 'a(b)*'`` select the same lines in the
model as in a container.  Errors carry glibc's ``regerror`` wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import AnyStr

__all__ = ["RegexError", "posix_regex"]


class RegexError(ValueError):
    """``str()`` is busybox's message; ``args[1]`` glibc's reason."""

    def __str__(self) -> str:
        return str(self.args[0])


_CLASSES = {
    b"alpha": rb"a-zA-Z", b"digit": rb"0-9", b"alnum": rb"a-zA-Z0-9", b"upper": rb"A-Z", b"lower": rb"a-z",
    b"space": rb" \t\n\r\f\v", b"blank": rb" \t", b"punct": rb"!-/:-@\[-`{-~", b"xdigit": rb"0-9A-Fa-f",
    b"cntrl": rb"\x00-\x1f\x7f", b"print": rb" -~", b"graph": rb"!-~",
}


def _bracket(pat: bytes, i: int, source: bytes) -> tuple[bytes, int]:
    """``pat[i] == '['``: a bracket expression as a Python class; returns (class, next index)."""
    j = i + 1
    out = bytearray(b"[")
    if j < len(pat) and pat[j:j + 1] == b"^":
        out += b"^"
        j += 1
    first = True
    while True:
        if j >= len(pat):
            raise RegexError(f"bad regex '{source.decode('utf-8', 'surrogateescape')}'", "Unmatched [, [^, [:, [., or [=")
        c = pat[j:j + 1]
        if c == b"]" and not first:
            out += b"]"
            return bytes(out), j + 1
        first = False
        if c == b"[" and pat[j + 1:j + 2] in (b":", b"=", b"."):
            kind = pat[j + 1:j + 2]
            end = pat.find(kind + b"]", j + 2)
            if end < 0:
                raise RegexError(f"bad regex '{source.decode('utf-8', 'surrogateescape')}'", "Unmatched [, [^, [:, [., or [=")
            name = pat[j + 2:end]
            if kind == b":":
                if name not in _CLASSES:
                    raise RegexError(f"bad regex '{source.decode('utf-8', 'surrogateescape')}'", "Invalid character class name")
                out += _CLASSES[name]
            else:
                out += re.escape(name)
            j = end + 2
            continue
        if c in (b"\\", b"[", b"]", b"^"):
            out += b"\\" + c
        elif c == b"-":
            out += b"-"
        else:
            out += re.escape(c)
        j += 1


def posix_regex(pat: bytes, *, extended: bool) -> bytes:
    """Translate a POSIX BRE (or ERE) into a Python bytes regex."""

    def err(msg: str) -> RegexError:
        # busybox grep (re_compile_pattern) prints only "bad regex 'PATTERN'"; msg is glibc's reason
        return RegexError(f"bad regex '{pat.decode('utf-8', 'surrogateescape')}'", msg)

    out: list[bytes] = []
    i = 0
    depth = 0
    groups = 0
    at_start = True  # where '*' is literal and '^' is an anchor (BRE)
    while i < len(pat):
        c = pat[i:i + 1]
        start = at_start
        at_start = False
        if c == b"\\":
            if i + 1 >= len(pat):
                raise err("Trailing backslash")
            n = pat[i + 1:i + 2]
            i += 2
            if not extended and n == b"(":
                out.append(b"(")
                depth += 1
                groups += 1
                at_start = True
            elif not extended and n == b")":
                if depth == 0:
                    raise err("Unmatched ) or \\)")
                depth -= 1
                out.append(b")")
            elif not extended and n == b"|":
                out.append(b"|")
                at_start = True
            elif not extended and n in (b"+", b"?"):
                if start:
                    out.append(re.escape(n))
                else:
                    out.append(n)
            elif not extended and n == b"{" and start:
                out.append(rb"\{")  # GNU: an interval with nothing before it is literal text
            elif not extended and n == b"{":
                end = pat.find(b"\\}", i)
                if end < 0:
                    raise err("Unmatched \\{")
                body = pat[i:end]
                m = re.fullmatch(rb"(\d*)(,(\d*))?", body)
                if not m or not (m.group(1) or m.group(3)):
                    raise err("Invalid content of \\{\\}")
                if m.group(1) and m.group(3) and int(m.group(1)) > int(m.group(3)):
                    raise err("Invalid range end")
                out.append(b"{" + (b"0" + body if body.startswith(b",") else body) + b"}")
                i = end + 2
            elif n.isdigit() and n != b"0":
                if int(n) > groups:
                    raise err("Invalid back reference")
                out.append(b"\\" + n)
            elif n == b"<":
                out.append(rb"\b(?=\w)")
            elif n == b">":
                out.append(rb"\b(?<=\w)")
            elif n in (b"b", b"B", b"w", b"W", b"s", b"S"):
                out.append(b"\\" + n)
            elif n == b"`":
                out.append(rb"\A")
            elif n == b"'":
                out.append(rb"\Z")
            else:
                out.append(re.escape(n))
            continue
        if c == b"[":
            cls, i = _bracket(pat, i, pat)
            out.append(cls)
            continue
        i += 1
        if c == b".":
            out.append(b".")
        elif c == b"*":
            if not start:
                out.append(b"*")
            elif extended:
                at_start = True
            else:
                out.append(rb"\*")
        elif c == b"^":
            if extended or start:
                out.append(b"^")
                at_start = True
            else:
                out.append(rb"\^")
        elif c == b"$":
            rest = pat[i:]
            if extended or not rest or rest.startswith(b"\\)") or rest.startswith(b"\\|"):
                out.append(b"$")
            else:
                out.append(rb"\$")
        elif extended and c == b"(":
            out.append(b"(")
            depth += 1
            groups += 1
            at_start = True
        elif extended and c == b")":
            if depth == 0:
                out.append(rb"\)")
            else:
                depth -= 1
                out.append(b")")
        elif extended and c == b"|":
            out.append(b"|")
            at_start = True
        elif extended and c in (b"+", b"?"):
            if not start:
                out.append(c)
            else:
                at_start = True  # GNU ERE ignores a leading repetition operator
        elif extended and c == b"{":
            m = re.compile(rb"(\d+)(,(\d*))?\}|,(\d+)\}").match(pat, i)
            if m and not start:
                body = m.group()[:-1]
                if m.group(1) and m.group(3) and int(m.group(1)) > int(m.group(3)):
                    raise err("Invalid range end")
                out.append(b"{" + (b"0" + body if body.startswith(b",") else body) + b"}")
                i = m.end()
            else:
                out.append(rb"\{")
        else:
            out.append(re.escape(c))
    if depth:
        raise err("Unmatched ( or \\(")
    return b"".join(out)


def successive_matches(rx: re.Pattern[AnyStr], text: AnyStr) -> Iterator[re.Match[AnyStr]]:
    """The matches a global ``s///`` or ``gsub`` replaces, left to right: each search starts where
    the last match ended (one further after an empty one), and an empty match just where the last
    one ended is not a match (``echo abc | sed 's/x*/-/g'`` gives ``-a-b-c-``), as busybox's regexec loops."""
    pos, prev_end = 0, -1
    while pos <= len(text):
        m = rx.search(text, pos)
        if m is None:
            return
        start, end = m.span()
        if start == end == prev_end:
            pos = start + 1
            continue
        yield m
        prev_end = end
        pos = end if end > start else end + 1
