"""awk's values and their conversions, as busybox 1.35's ``getvar_i``/``fmt_num``/``awk_printf`` make them.

A value is a ``float`` (a number), a ``str`` (a string) or a :class:`StrNum`
(input that looks like a number: a field, ``getline``'s variable, a ``split``
element, ``-v`` and command-line assignments), which compares as a number with
numbers and strnums.  :data:`UNINIT` is both ``""`` and 0.  Strings are bytes
decoded as latin-1, one character per byte, as in a C locale.
"""

from __future__ import annotations

import re

__all__ = ["StrNum", "UNINIT", "Value", "to_num", "to_str", "strnum", "is_numeric", "format_printf", "AwkRuntimeError",
           "AwkIOError", "num_to_str", "to_int"]


class AwkRuntimeError(Exception):
    """A run-time error (``awk: cmd. line:N: MSG``, status 1)."""


class AwkIOError(AwkRuntimeError):
    """A file awk cannot open: reported without the program's place (``awk: NAME: strerror``)."""


class StrNum(str):
    """A string from input that is also a number (``num``)."""

    num: float

    def __new__(cls, text: str, num: float) -> StrNum:
        self = super().__new__(cls, text)
        self.num = num
        return self


UNINIT = StrNum("", 0.0)
Value = float | str

_STRTOD = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)",
                     re.IGNORECASE)


def _my_strtod(s: str) -> tuple[float, int]:
    """busybox's ``my_strtod``: ``0x1F`` is hex and ``017`` octal (unless a ``.`` or a digit 8-9 follows), else strtod."""
    if s[:1] == "0" and len(s) > 1 and (s[1] in "xX" or s[1].isdigit()):
        if s[1] in "xX":
            m = re.match(r"0[xX]([0-9a-fA-F]*)", s)
            assert m
            if not m.group(1):
                return 0.0, 1
            return float(int(m.group(1), 16)), m.end()
        m = re.match(r"[0-7]*", s)
        assert m
        end = m.end()
        if not (end < len(s) and (s[end].isdigit() or s[end] == ".")):
            return float(int(m.group() or "0", 8)), end
    m = _STRTOD.match(s)
    if not m:
        return 0.0, 0
    return float(m.group().strip()), m.end()


def to_num(v: Value) -> float:
    if isinstance(v, float):
        return v
    if isinstance(v, StrNum):
        return v.num
    return _my_strtod(v)[0] if v else 0.0


def strnum(text: str) -> str:
    """``text`` as input gives it: a :class:`StrNum` when all of it (but blanks) is a number, or empty
    (busybox compares an empty field with a number numerically: ``"" == 0`` holds)."""
    if not text:
        return StrNum("", 0.0)
    value, end = _my_strtod(text)
    if end and not text[end:].strip(" \t\n\v\f\r"):
        return StrNum(text, value)
    return text


def is_numeric(v: Value) -> bool:
    return isinstance(v, (float, StrNum))


def num_to_str(x: float, fmt: str) -> str:
    if x != x:
        return "nan" if str(x)[0] != "-" else "-nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and -(2 ** 63) <= x < 2 ** 63:
        return "%d" % int(x)
    try:
        return fmt % x
    except (TypeError, ValueError):
        return "%.6g" % x


def to_str(v: Value, fmt: str = "%.6g") -> str:
    if isinstance(v, float):
        return num_to_str(v, fmt)
    return v


_SPEC = re.compile(r"%([-+ #0]*)(\*|[0-9]+)?(?:\.(\*|[0-9]*))?([a-zA-Z%])")


def format_printf(fmt: str, args: list[Value], convfmt: str) -> str:
    """``printf``/``sprintf``: C conversions over awk values (missing arguments are "" / 0)."""
    out: list[str] = []
    pos = 0
    k = 0

    def next_arg() -> Value:
        nonlocal k
        if k < len(args):
            k += 1
            return args[k - 1]
        return UNINIT

    for m in _SPEC.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, precision, conv = m.groups()
        if conv == "%":
            out.append(m.group() if m.group() != "%%" else "%")  # busybox keeps "%5%" as it stands
            continue
        if conv not in "diouxXeEfFgGcs":
            raise AwkRuntimeError("Invalid format specifier")
        if width == "*" or precision == "*":
            raise AwkRuntimeError("%*x formats are not supported")
        spec = "%" + flags + (width or "") + ("." + precision if precision is not None else "")
        arg = next_arg()
        if conv in "di":
            out.append((spec + "d") % _c_int(to_num(arg)))
        elif conv in "oxXu":
            n = _c_int(to_num(arg))
            if n < 0 and conv != "u":
                n &= (1 << 64) - 1
            out.append((spec + ("d" if conv == "u" else conv)) % n)
        elif conv in "eEfFgG":
            out.append((spec + conv) % to_num(arg))
        elif conv == "c":
            if isinstance(arg, float):
                ch = chr(int(arg) & 0xFF) if int(arg) & 0xFF else ""
            else:
                ch = arg[:1]
            out.append((spec.split(".")[0] + "s") % ch)
        else:
            out.append((spec + "s") % to_str(arg, convfmt))
    out.append(fmt[pos:])
    return "".join(out)


def to_int(x: float) -> int:
    """C's ``(long long)x``: truncation, and the x86 "integer indefinite" for NaN and the infinities."""
    if x != x or x in (float("inf"), float("-inf")):
        return -(1 << 63)
    return int(x)


def _c_int(x: float) -> int:
    """``%d``'s argument: busybox passes an ``int``, so values outside 32 bits become INT_MIN."""
    n = to_int(x)
    return n if -(1 << 31) <= n < (1 << 31) else -(1 << 31)
