"""``cut`` and ``tr``, as busybox 1.35 (``coreutils/cut.c``, ``coreutils/tr.c``) does them.

Characters are bytes: a container has no locale set, so ``cut -c`` and ``-b``
agree and ``tr``'s classes are the C locale's.
"""

from __future__ import annotations

import re

from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    getopt,
    read_input,
    show_usage,
    unsupported,
)
from sim.containers.shell._proc import Proc, encode

# -- cut ---------------------------------------------------------------------------------------------

_INF = 1 << 62


def _parse_list(p: Proc, text: str) -> list[tuple[int, int]] | None:
    """``1,3-5,-2,7-`` as sorted zero-based inclusive ranges; ``None`` after busybox's message."""
    ranges: list[tuple[int, int]] = []
    for item in text.split(","):
        if not item:
            continue  # busybox skips an empty item ("1,,2")
        start_text, dash, end_text = item.partition("-")
        for part in (start_text, end_text):
            if part and not re.fullmatch(r"[0-9]+", part):
                p.error(f"invalid number '{part}'")
                return None
        if not dash:
            if not start_text:
                p.error("invalid number ''")
                return None
            start = end = int(start_text)
        else:
            start = int(start_text) if start_text else 1
            end = int(end_text) if end_text else _INF
        # busybox decrements positions to zero-based without checking for 0 (cut -f0 acts as -f1)
        ranges.append((max(start - 1, 0), max(end - 1, 0) if end != _INF else _INF))
    if not ranges:
        p.error("missing list of positions")
        return None
    ranges.sort()
    return ranges


def _selected(ranges: list[tuple[int, int]], index: int) -> bool:
    return any(lo <= index <= hi for lo, hi in ranges)


@applet("cut")
def cut(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "b:c:f:d:O:sDnF:")
    except UsageError as e:
        return show_usage(p, "cut", e.msg)
    for o in "FOD":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    kinds = [o for o in "bcf" if o in opts]
    if not kinds:
        p.error("expected a list of bytes, characters, or fields")
        return 1
    if len(kinds) > 1:
        return show_usage(p, "cut")
    kind = kinds[0]
    if "d" in opts and kind != "f":
        p.error("-d DELIM makes sense only with -f or -F")
        return 1
    if "s" in opts and kind != "f":
        p.error("-s makes sense only with -f or -F")
        return 1
    ranges = _parse_list(p, opts[kind][-1])
    if ranges is None:
        return 1
    delim = encode(opts["d"][-1])[:1] if "d" in opts else b"\t"
    if not delim:
        delim = b"\0"  # busybox takes the string's first byte: the NUL that ends ""
    status = 0
    for name in files or ["-"]:
        data = read_input(p, name)
        if data is None:
            status = 1
            continue
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        out = bytearray()
        for line in lines:
            if kind != "f":
                out += bytes(c for i, c in enumerate(line) if _selected(ranges, i)) + b"\n"
                continue
            if delim not in line:
                if "s" not in opts or not line:  # busybox prints an empty line even with -s
                    out += line + b"\n"
                continue
            fields = line.split(delim)
            out += delim.join(f for i, f in enumerate(fields) if _selected(ranges, i)) + b"\n"
        p.out(bytes(out))
    return status


# -- tr ------------------------------------------------------------------------------------------------

_CLASSES: dict[bytes, bytes] = {
    b"alpha": bytes(range(65, 91)) + bytes(range(97, 123)),
    b"alnum": bytes(range(48, 58)) + bytes(range(65, 91)) + bytes(range(97, 123)),
    b"digit": bytes(range(48, 58)),
    b"lower": bytes(range(97, 123)),
    b"upper": bytes(range(65, 91)),
    b"space": b"\t\n\v\f\r ",
    b"blank": b"\t ",
    b"punct": bytes(c for c in range(33, 127) if not chr(c).isalnum()),
    b"cntrl": bytes(range(0, 32)) + b"\x7f",
    b"xdigit": b"0123456789ABCDEFabcdef",
    b"graph": bytes(range(33, 127)),
    b"print": bytes(range(32, 127)),
}
_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("v"): 11,
            ord("\\"): 92}


def _unescape(arg: bytes) -> list[tuple[int, bool]]:
    """``arg`` as bytes, each marked True when it came from an escape (an escaped ``-`` is no range)."""
    out: list[tuple[int, bool]] = []
    i = 0
    while i < len(arg):
        c = arg[i]
        if c == 0x5C and i + 1 < len(arg):
            nxt = arg[i + 1]
            if 0x30 <= nxt <= 0x37:
                j = i + 1
                value = 0
                while j < len(arg) and j < i + 4 and 0x30 <= arg[j] <= 0x37:
                    value = value * 8 + arg[j] - 0x30
                    j += 1
                out.append((value & 0xFF, True))
                i = j
                continue
            out.append((_ESCAPES.get(nxt, nxt), True))
            i += 2
            continue
        out.append((c, False))
        i += 1
    return out


def _expand(arg: bytes) -> bytes:
    """busybox's ``expand``: escapes, ``a-z`` ranges, ``[:class:]`` and ``[=c=]``."""
    chars = _unescape(arg)
    out = bytearray()
    i = 0
    while i < len(chars):
        c, escaped = chars[i]
        if not escaped and c == ord("[") and i + 1 < len(chars) and chars[i + 1][0] in (ord(":"), ord("=")):
            kind = chars[i + 1][0]
            rest = bytes(ch for ch, _ in chars[i + 2:])
            end = rest.find(bytes([kind, ord("]")]))
            if end >= 0:
                name = rest[:end]
                if kind == ord(":") and name in _CLASSES:
                    out += _CLASSES[name]
                    i += 2 + end + 2
                    continue
                if kind == ord("=") and len(name) == 1:
                    out += name
                    i += 2 + end + 2
                    continue
        if i + 2 < len(chars) and chars[i + 1] == (ord("-"), False):
            hi = chars[i + 2][0]
            out += bytes(range(c, hi + 1))
            i += 3
            continue
        out.append(c)
        i += 1
    return bytes(out)


@applet("tr")
def tr(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "cdsC")
    except UsageError as e:
        return show_usage(p, "tr", e.msg)
    delete = "d" in opts
    squeeze = "s" in opts
    if not operands:
        return show_usage(p, "tr")
    set1 = _expand(encode(operands[0]))
    set2 = _expand(encode(operands[1])) if len(operands) > 1 else b""
    if "c" in opts or "C" in opts:
        members = set(set1)
        set1 = bytes(c for c in range(256) if c not in members)
    table = list(range(256))
    translating = not delete and len(operands) > 1
    if translating and set2:
        for i, c in enumerate(set1):
            table[c] = set2[min(i, len(set2) - 1)]
    deleted = set(set1) if delete else set()
    squeezed = set(set2) if (squeeze and (delete or translating)) else (set(set1) if squeeze else set())
    try:
        data = p.read_stdin()
    except OSError as e:
        p.perror("read error", e)
        return 1
    out = bytearray()
    last = -1
    for c in data:
        if c in deleted:
            continue
        c = table[c]
        if c == last and c in squeezed:
            continue
        out.append(c)
        last = c
    p.out(bytes(out))
    return 0
