"""``sort`` and ``uniq``, as busybox 1.35 (``coreutils/sort.c``, ``coreutils/uniq.c``) does them.

Lines compare as bytes (a container has no locale set: C collation).  ``sort``
keys follow busybox's ``get_key``: without ``-t`` a field starts at the blanks
before it; ``-n`` takes the longest ``strtod`` prefix (so ``0x10`` is 16 and a
word is 0); equal keys fall back to the whole line unless ``-s``, reversed only
by a global ``-r``; ``-u`` keeps the first of each run of equal keys.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    close_stream,
    getopt,
    open_read,
    read_input,
    show_usage,
    unsupported,
)
from sim.containers.shell._proc import Proc, encode

_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan))", re.IGNORECASE)


def strtod(data: bytes) -> float:
    """C's ``strtod`` on ``data``: the value of its longest numeric prefix, 0.0 when there is none."""
    m = _STRTOD.match(data)
    if not m:
        return 0.0
    text = m.group(1).decode("ascii").lower()
    if "0x" in text:
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")[2:]
        if "p" not in body:
            body += "p0"
        return sign * float.fromhex("0x" + body)
    return float(text)


@dataclass(frozen=True)
class _Key:
    """One ``-k START[.CHAR][OPTS][,END[.CHAR][OPTS]]``; 0 means "not given" as in busybox's ``range``."""

    start_field: int
    start_char: int
    end_field: int
    end_char: int
    flags: frozenset[str]


_KEY_FLAGS = "bdfinrgMV"


def _parse_key(spec: str) -> _Key:
    fields: list[int] = []
    flags: set[str] = set()
    for part_no, part in enumerate(spec.split(",", 1)):
        m = re.match(r"(\d+)(?:\.(\d+))?([a-zA-Z]*)$", part)
        if not m:
            raise ValueError(spec)
        field = int(m.group(1))
        char = int(m.group(2) or 0)
        if part_no == 0 and (field == 0 or (m.group(2) is not None and char == 0)):
            raise ValueError(spec)
        for c in m.group(3):
            if c not in _KEY_FLAGS:
                raise ValueError(spec)
            flags.add("B" if c == "b" and part_no == 1 else c)
        fields += [field, char]
    if len(fields) == 2:
        fields += [0, 0]
    return _Key(fields[0], fields[1], fields[2], fields[3], frozenset(flags))


def _get_key(line: bytes, key: _Key, flags: frozenset[str], sep: bytes | None) -> bytes:
    """busybox's ``get_key``: the bytes of ``line`` the key covers."""
    length = len(line)
    start = end = 0
    for j, field in enumerate((key.start_field, key.end_field)):
        if not field:
            end = length
        else:
            end = 0
            last = b""
            for _ in range(1, field + j):
                if sep is not None:
                    last = b""
                    while end < length:
                        last = line[end:end + 1]
                        end += 1
                        if last == sep:
                            break
                    else:
                        last = b""
                else:
                    while end < length and line[end:end + 1].isspace():
                        end += 1
                    while end < length and not line[end:end + 1].isspace():
                        end += 1
            if j and last:
                end -= 1
        if j == 0:
            start = end
    if "b" in flags:
        while start < length and line[start:start + 1].isspace():
            start += 1
    if "B" in flags:
        while end > start and line[end - 1:end].isspace():
            end -= 1
    if key.end_char:
        end = (end + key.end_char - 1) if key.end_field else key.end_char
        end = min(end, length)
    if key.start_char:
        start = min(start + key.start_char - 1, length)
    return line[start:max(end, start)]


def _compare_one(x: bytes, y: bytes, flags: frozenset[str]) -> int:
    if "d" in flags:
        x, y = (bytes(c for c in v if chr(c).isalnum() or c in b" \t") for v in (x, y))
    if "i" in flags:
        x, y = (bytes(c for c in v if 0x20 <= c < 0x7F) for v in (x, y))
    if "n" in flags or "g" in flags:
        dx, dy = strtod(x), strtod(y)
        if math.isnan(dx) or math.isnan(dy):
            return (not math.isnan(dx)) - (not math.isnan(dy))
        return (dx > dy) - (dx < dy)
    if "f" in flags:
        x, y = x.upper(), y.upper()
    return (x > y) - (x < y)


def _comparator(keys: list[_Key], global_flags: frozenset[str], sep: bytes | None,
                *, fallback: bool) -> Callable[[bytes, bytes], int]:
    def compare(x: bytes, y: bytes) -> int:
        retval = 0
        flags = global_flags
        if not keys:
            retval = _compare_one(x, y, global_flags)
        for key in keys:
            flags = key.flags or global_flags
            retval = _compare_one(_get_key(x, key, flags, sep), _get_key(y, key, flags, sep), flags)
            if "r" in flags:
                retval = -retval
            if retval:
                return retval
        if not keys and "r" in flags:
            retval = -retval
        if retval or not fallback:
            return retval
        retval = (x > y) - (x < y)
        return -retval if "r" in global_flags else retval
    return compare


def _read_all(p: Proc, files: list[str]) -> bytes | None:
    """Every input's bytes, each ended by a newline; ``None`` after a message when one cannot be read."""
    chunks = []
    for name in files or ["-"]:
        data = read_input(p, name)
        if data is None:
            return None
        if data and not data.endswith(b"\n"):
            data += b"\n"
        chunks.append(data)
    return b"".join(chunks)


@applet("sort")
def sort(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "nrugMcszbdfiVSTo:k:t:")
    except UsageError as e:
        return show_usage(p, "sort", e.msg) and 2  # busybox's sort fails with 2, as GNU's does
    for o in "MVz":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    keys: list[_Key] = []
    for spec in opts.get("k", []):
        try:
            keys.append(_parse_key(spec))
        except ValueError:
            p.error("bad field specification")
            return 2
    sep: bytes | None = None
    if "t" in opts:
        raw = encode(opts["t"][-1])
        if len(raw) != 1:
            p.error("bad -t parameter")
            return 2
        sep = raw
    global_flags = frozenset(o for o in "bdfinrg" if o in opts) | ({"B"} if "b" in opts else set())
    data = _read_all(p, files)
    if data is None:
        return 2
    lines = data.split(b"\n")[:-1]
    compare = _comparator(keys, global_flags, sep, fallback="s" not in opts)
    if "c" in opts:
        for n in range(1, len(lines)):
            order = compare(lines[n - 1], lines[n])
            if order > 0 or (order == 0 and "u" in opts):
                p.errout(f"Check line {n}\n")
                return 1
        return 0
    lines.sort(key=functools.cmp_to_key(compare))
    if "u" in opts:
        same = _comparator(keys, global_flags, sep, fallback=False)
        kept: list[bytes] = []
        for line in lines:
            if not kept or same(kept[-1], line) != 0:
                kept.append(line)
        lines = kept
    out = b"".join(line + b"\n" for line in lines)
    if "o" in opts:
        try:
            stream = p.world.open_stream(p.cwd, opts["o"][-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, p.fds)
        except OSError as e:
            p.perror(f"can't open '{opts['o'][-1]}'", e)
            return 2
        stream.write(out)
        stream.close()
        return 0
    p.out(out)
    return 0


def _skip(line: bytes, fields: int, chars: int) -> bytes:
    """uniq's -f then -s: skip ``fields`` blank-separated fields, then ``chars`` bytes."""
    pos = 0
    for _ in range(fields):
        while pos < len(line) and line[pos] in b" \t":
            pos += 1
        while pos < len(line) and line[pos] not in b" \t":
            pos += 1
    return line[pos + chars:] if pos + chars <= len(line) else b""


@applet("uniq")
def uniq(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "cduizf:s:w:")
        numbers = {}
        for o in "fsw":
            if o in opts:
                text = opts[o][-1]
                if not re.fullmatch(r"[0-9]+", text):
                    p.error(f"invalid number '{text}'")
                    return 1
                numbers[o] = int(text)
    except UsageError as e:
        return show_usage(p, "uniq", e.msg)
    if "z" in opts:
        raise unsupported(p, "option -z")
    name = operands[0] if operands else "-"
    try:
        stream = open_read(p, name)
        data = stream.read()
    except OSError as e:
        p.perror(f"can't open '{name}'", e)
        return 1
    close_stream(p, name, stream)
    if len(operands) > 2:  # busybox opens the input before it counts the operands
        return show_usage(p, "uniq")
    out_stream = None
    if len(operands) == 2 and operands[1] != "-":
        try:
            out_stream = p.world.open_stream(p.cwd, operands[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, p.fds)
        except OSError as e:
            p.perror(f"can't open '{operands[1]}'", e)
            return 1
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    width = numbers.get("w")

    def cmp_key(line: bytes) -> bytes:
        k = _skip(line, numbers.get("f", 0), numbers.get("s", 0))
        if width is not None:
            k = k[:width]
        return k.lower() if "i" in opts else k

    out = bytearray()
    i = 0
    while i < len(lines):
        j = i + 1
        key = cmp_key(lines[i])
        while j < len(lines) and cmp_key(lines[j]) == key:
            j += 1
        count = j - i
        if not (("d" in opts and count == 1) or ("u" in opts and count > 1)):
            if "c" in opts:
                out += b"%7d " % count
            out += lines[i] + b"\n"
        i = j
    if out_stream is not None:
        out_stream.write(bytes(out))
        out_stream.close()
    else:
        p.out(bytes(out))
    return 0
