"""``true``, ``false``, ``echo`` and ``printf`` (coreutils/echo.c, coreutils/printf.c)."""

from __future__ import annotations

import re

from sim.containers.shell._applets._common import applet, show_usage
from sim.containers.shell._proc import Proc, decode, encode


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
