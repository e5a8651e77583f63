"""``tail``, ``tee`` and ``xargs``, as busybox 1.35 (``coreutils/tail.c``, ``coreutils/tee.c``,
``findutils/xargs.c``) does them."""

from __future__ import annotations

import errno
import os
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
from sim.containers.shell._applets._spawn import spawn
from sim.containers.shell._proc import Proc, Stream, decode


def _scaled(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)(b|k|m)?", text)
    if not m:
        return None
    return int(m.group(1)) * {None: 1, "b": 512, "k": 1024, "m": 1048576}[m.group(2)]


@applet("tail")
def tail(p: Proc) -> int:
    args = list(p.argv[1:])
    # the obsolete forms "tail -5 FILE" and "tail +5 FILE" (busybox rewrites them to -n)
    if args and re.fullmatch(r"[-+]\d+", args[0]):
        args[0:1] = ["-n", args[0] if args[0].startswith("+") else args[0][1:]]
    try:
        opts, files = getopt(p, args, "fFqvn:c:s:")
    except UsageError as e:
        return show_usage(p, "tail", e.msg)
    for o in "fFs":
        if o in opts:
            raise unsupported(p, f"option -{o} (the model's files never grow while it reads)")
    # busybox: any -c counts bytes, and a -n's number wins over -c's (tail -n 1 -c 5 prints 1 byte)
    by_bytes = "c" in opts
    spec = opts["n"][-1] if "n" in opts else opts["c"][-1] if "c" in opts else "10"
    from_start = spec.startswith("+")
    count = _scaled(spec.lstrip("+-") if spec[:1] in "+-" else spec)
    if count is None:
        p.error(f"invalid number '{spec}'")
        return 1
    status = 0
    opened: list[tuple[str, Stream]] = []
    for name in files or ["-"]:
        try:
            opened.append((name, open_read(p, name)))
        except OSError as e:
            p.perror(f"can't open '{name}'", e)
            status = 1
    if not opened:
        p.error("no files")
        return 1
    header = ("v" in opts or len(opened) > 1) and "q" not in opts
    for k, (name, stream) in enumerate(opened):
        try:
            data = stream.read()
        except OSError as e:
            p.perror("read error", e)
            data = b""
            status = 1
        close_stream(p, name, stream)
        if header:
            p.out(("\n" if k else "") + f"==> {'standard input' if name == '-' else name} <==\n")
        if by_bytes:
            p.out(data[max(count - 1, 0):] if from_start else (data[-count:] if count else b""))
            continue
        lines = data.splitlines(keepends=True)
        if from_start:
            p.out(b"".join(lines[max(count - 1, 0):]))
        else:
            p.out(b"".join(lines[-count:]) if count else b"")
    return status


@applet("tee")
def tee(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "ai")
    except UsageError as e:
        return show_usage(p, "tee", e.msg)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in opts else os.O_TRUNC)
    status = 0
    outputs: list[Stream | None] = []
    for name in files:
        if name == "-":
            outputs.append(None)  # busybox's tee writes "-" to stdout again
            continue
        try:
            outputs.append(p.world.open_stream(p.cwd, name, flags, p.fds))
        except OSError as e:
            p.perror(name, e)
            status = 1
    try:
        data = p.read_stdin()
    except OSError as e:
        p.perror("read error", e)
        data = b""
        status = 1
    p.out(data)
    for stream in outputs:
        if stream is None:
            p.out(data)
            continue
        try:
            stream.write(data)
        except OSError as e:
            p.perror(getattr(stream, "path", ""), e)
            status = 1
        stream.close()
    return status


class _QuoteError(Exception):
    pass


def _split_args(data: bytes) -> list[str]:
    """busybox's ``process_stdin``: blanks separate, ``'``/``"`` quote, a backslash escapes one byte."""
    args: list[str] = []
    cur = bytearray()
    have = False
    quote = 0
    i = 0
    while i < len(data):
        c = data[i]
        i += 1
        if quote:
            if c == quote:
                quote = 0
            elif c == 0x0A:
                raise _QuoteError("unmatched double quote" if quote == 0x22 else "unmatched single quote")
            else:
                cur.append(c)
            continue
        if c in (0x22, 0x27):
            quote = c
            have = True
        elif c == 0x5C and i < len(data):
            cur.append(data[i])
            have = True
            i += 1
        elif c in b" \t\n":
            if have:
                args.append(decode(bytes(cur)))
                cur.clear()
                have = False
        else:
            cur.append(c)
            have = True
    if quote:
        raise _QuoteError("unmatched double quote" if quote == 0x22 else "unmatched single quote")
    if have:
        args.append(decode(bytes(cur)))
    return args


@applet("xargs")
def xargs(p: Proc) -> int:
    try:
        opts, command = getopt(p, p.argv[1:], "0a:rtpxeE:I:n:s:P:", permute=False)
    except UsageError as e:
        return show_usage(p, "xargs", e.msg)
    for o in "apxeEsP":
        if o in opts:
            raise unsupported(p, f"option -{o}")
    per_call: int | None = None
    if "n" in opts:
        text = opts["n"][-1]
        if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            p.error(f"invalid number '{text}'")
            return 1
        per_call = int(text)
        if not 1 <= per_call <= 2147483647:
            p.error(f"number {per_call} is not in 1..2147483647 range")
            return 1
    command = command or ["echo"]
    try:
        data = p.read_stdin()
    except OSError as e:
        p.perror("read error", e)
        return 1
    calls: list[list[str]]
    if "I" in opts:
        marker = opts["I"][-1]
        lines = [decode(line.lstrip(b" \t")) for line in data.split(b"\n")]
        calls = [[a.replace(marker, line) for a in command] for line in lines if line]
    else:
        try:
            items = [decode(x) for x in data.split(b"\0") if x] if "0" in opts else _split_args(data)
        except _QuoteError as e:
            p.error(str(e))
            return 1
        if not items:
            calls = [] if "r" in opts else [list(command)]
        else:
            size = per_call or len(items)
            calls = [command + items[k:k + size] for k in range(0, len(items), size)]
    status = 0
    for argv in calls:
        if "t" in opts:
            p.errout(" ".join(argv) + "\n")
        try:
            child = spawn(p, argv)
        except OSError as e:
            p.perror(argv[0], e)
            return 127 if e.errno == errno.ENOENT else 126
        if child == 255:
            p.error(f"{argv[0]}: exited with status 255; aborting")
            return 124
        if 1 <= child <= 125:
            status = 123
    return status

