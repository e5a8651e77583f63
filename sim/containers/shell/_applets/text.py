"""The applets that read text: ``cat``, ``head``, ``wc`` and ``grep``."""

from __future__ import annotations

import errno
import posixpath
import re

from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    close_stream,
    getopt,
    open_read,
    show_usage,
    unsupported,
)
from sim.containers.shell._proc import Proc, decode, encode
from sim.containers.shell._regex import RegexError, posix_regex


@applet("cat")
def cat(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "nbvteAu")
    except UsageError as e:
        return show_usage(p, "cat", e.msg)
    for o in "vteA":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    number = "n" in opts or "b" in opts
    nonblank = "b" in opts
    status = 0
    lineno = 0
    at_line_start = True
    for name in files or ["-"]:
        try:
            stream = open_read(p, name)
        except OSError as e:
            p.perror(f"can't open '{name}'", e)
            status = 1
            continue
        try:
            data = stream.read()
        except OSError as e:
            p.perror("read error", e)
            status = 1
            close_stream(p, name, stream)
            continue
        close_stream(p, name, stream)
        if not number:
            p.out(data)
            continue
        out = bytearray()
        for line in data.splitlines(keepends=True):
            if at_line_start and not (nonblank and line == b"\n"):
                lineno += 1
                out += b"%6d\t" % lineno
            out += line
            at_line_start = line.endswith(b"\n")
        p.out(bytes(out))
    return status


def _scaled(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)(b|k|m|kB|KB|K|MB|M|GB|G|kD|KD|MD)?", text)
    if not m:
        return None
    mult = {None: 1, "b": 512, "k": 1024, "m": 1024 * 1024, "kB": 1000, "KB": 1000, "K": 1024, "MB": 1000000,
            "M": 1048576, "GB": 1000000000, "G": 1073741824, "kD": 1000, "KD": 1000, "MD": 1000000}[m.group(2)]
    return int(m.group(1)) * mult


@applet("head")
def head(p: Proc) -> int:
    args = list(p.argv[1:])
    if args and re.fullmatch(r"-\d+", args[0]):
        args[0] = "-n" + args[0][1:]
    try:
        if any(a.startswith("--") and a != "--" for a in args):
            raise UsageError("invalid option -- '-'")  # busybox's head has no long options
        opts, files = getopt(p, args, "n:c:qv")
    except UsageError as e:
        return show_usage(p, "head", e.msg)
    count = 10
    by_bytes = False
    all_but = False
    spec = None
    if "n" in opts:
        spec = opts["n"][-1]
    if "c" in opts:
        spec = opts["c"][-1]
        by_bytes = True
    if spec is not None:
        text = spec
        if text.startswith("-"):
            all_but = True
            text = text[1:]
        value = _scaled(text)  # busybox's head takes no "+N"
        if value is None:
            p.error(f"invalid number '{spec}'")
            return 1
        count = value
    files = files or ["-"]
    threshold = 1
    if "q" in opts:
        threshold = 1 << 30
    if "v" in opts:
        threshold = 0
    show_header = len(files) > threshold
    first = True
    status = 0
    for name in files:
        try:
            stream = open_read(p, name)
        except OSError as e:
            p.perror(name, e)
            status = 1
            first = False  # busybox separates headers by argument, printed or not
            continue
        if show_header:
            p.out(("" if first else "\n") + f"==> {'standard input' if name == '-' else name} <==\n")
        first = False
        try:
            data = stream.read()
        except OSError:
            close_stream(p, name, stream)
            p.perror(name, errno.EIO)
            status = 1
            continue
        close_stream(p, name, stream)
        if by_bytes:
            out = data[:max(len(data) - count, 0)] if all_but else data[:count]
        else:
            lines = data.splitlines(keepends=True)
            out = b"".join(lines[:max(len(lines) - count, 0)] if all_but else lines[:count])
        p.out(out)
    return status


@applet("wc")
def wc(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "cmlwL")
    except UsageError as e:
        return show_usage(p, "wc", e.msg)
    order = "lwmcL"
    wanted = [o for o in order if o in opts] or ["l", "w", "c"]
    names: list[str | None] = list(files) or [None]
    one = len(names) == 1 and len(wanted) == 1
    totals = dict.fromkeys(order, 0)
    status = 0
    for name in names:
        label = "-" if name is None else name
        try:
            stream = open_read(p, label)
        except OSError as e:
            p.perror(label, e)
            status = 1
            continue
        try:
            data = stream.read()
        except OSError as e:
            p.perror(label, e)
            data = b""
            status = 1
        close_stream(p, label, stream)
        counts = _wc_counts(data)
        for k in order:
            totals[k] += counts[k]
        p.out(_wc_line(counts, wanted, one) + ("\n" if name is None else f" {name}\n"))
    if len(names) > 1:
        p.out(_wc_line(totals, wanted, False) + " total\n")
    return status


def _wc_line(counts: dict[str, int], wanted: list[str], unpadded: bool) -> str:
    parts = []
    for k, o in enumerate(wanted):
        if k == 0 and unpadded:
            parts.append(str(counts[o]))
        else:
            parts.append(("%9d" if k == 0 else " %9d") % counts[o])
    return "".join(parts)


def _wc_counts(data: bytes) -> dict[str, int]:
    lines = words = 0
    longest = linepos = 0
    in_word = False
    for c in data:
        if 0x20 <= c < 0x7F:
            linepos += 1
            if c != 0x20:
                in_word = True
                continue
        elif 9 <= c <= 13:
            if c == 9:
                linepos = (linepos | 7) + 1
            else:
                longest = max(longest, linepos)
                if c == 10:
                    lines += 1
                if c != 11:
                    linepos = 0
        else:
            continue
        words += in_word
        in_word = False
    longest = max(longest, linepos)
    words += in_word
    # -m counts characters of the locale; a container has none set (C), where a character is a byte
    return {"l": lines, "w": words, "m": len(data), "c": len(data), "L": longest}


@applet("grep", "egrep", "fgrep")
def grep(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "HhnlLocqvsrRiwFExzm:A:B:C:e:f:")
    except UsageError as e:
        # egrep and fgrep have no help text of their own in this build ("No help available")
        return show_usage(p, posixpath.basename(p.argv[0]) if p.argv else "grep", e.msg) and 2
    for o in "rRzABC":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    invoked = posixpath.basename(p.argv[0])
    patterns: list[str] = []
    for expr in opts.get("e", []):
        patterns.extend(expr.split("\n"))
    for f in opts.get("f", []):
        try:
            stream = open_read(p, f)
            data = stream.read()
            close_stream(p, f, stream)
        except OSError as e:
            p.perror(f"can't open '{f}'", e)
            return 2
        patterns.extend(decode(data).split("\n")[:-1] if data.endswith(b"\n") else decode(data).split("\n"))
    if "e" not in opts and "f" not in opts:
        if not operands:
            return show_usage(p, invoked) and 2
        patterns.extend(operands[0].split("\n"))
        operands = operands[1:]
    fixed = "F" in opts or invoked == "fgrep"
    extended = "E" in opts or invoked == "egrep"
    icase = "i" in opts
    try:
        regexes = [re.compile(re.escape(pat) if fixed else posix_regex(pat, extended=extended), re.IGNORECASE if icase else 0)
                   for pat in (encode(x) for x in patterns)]
    except RegexError as e:
        p.error(str(e))
        return 2
    invert = "v" in opts
    whole_line = "x" in opts
    whole_word = "w" in opts
    max_count = None
    if "m" in opts:
        try:
            max_count = int(opts["m"][-1])
        except ValueError:
            p.error(f"invalid number '{opts['m'][-1]}'")
            return 2
    files = operands or ["-"]
    prefix = ("H" in opts or len(files) > 1) and "h" not in opts
    quiet = "q" in opts
    matched_any = False
    open_errors = False

    def line_matches(line: bytes) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for rx in regexes:
            if whole_line:
                if rx.fullmatch(line):
                    spans.append((0, len(line)))
                continue
            pos = 0
            while pos <= len(line):
                m = rx.search(line, pos)
                if not m:
                    break
                s, e = m.span()
                if whole_word:
                    before = line[s - 1:s] if s > 0 else b""
                    after = line[e:e + 1]
                    if (before and (before.isalnum() or before == b"_")) or (after and (after.isalnum() or after == b"_")):
                        pos = s + 1
                        continue
                spans.append((s, e))
                pos = e if e > s else e + 1
                if "o" not in opts:
                    break
        return sorted(spans)

    for name in files:
        label = "(standard input)" if name == "-" else name
        try:
            stream = open_read(p, name)
        except OSError as e:
            if "s" not in opts:
                p.perror(name, e)
            open_errors = True
            continue
        try:
            data = stream.read()
        except OSError:
            data = b""
        close_stream(p, name, stream)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        count = 0
        out = bytearray()
        for n, line in enumerate(lines, 1):
            spans = line_matches(line)
            selected = bool(spans) != invert
            if not selected:
                continue
            count += 1
            matched_any = True
            if quiet:
                p.out(bytes(out))
                return 0
            if "l" in opts or "L" in opts:
                break
            if "c" not in opts:
                pre = (encode(label) + b":" if prefix else b"") + (b"%d:" % n if "n" in opts else b"")
                if "o" in opts and not invert:
                    for lo, hi in spans:
                        if hi > lo:
                            out += pre + line[lo:hi] + b"\n"
                elif "o" not in opts:
                    out += pre + line + b"\n"
            if max_count is not None and count >= max_count:
                break
        if "c" in opts:
            out += (encode(label) + b":" if prefix else b"") + b"%d\n" % count
        if "l" in opts and count:
            out += encode(label) + b"\n"
        if "L" in opts and not count:
            out += encode(label) + b"\n"
        p.out(bytes(out))
    if open_errors and not (quiet and matched_any):
        return 2
    return 0 if matched_any else 1
