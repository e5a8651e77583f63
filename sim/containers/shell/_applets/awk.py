"""``awk``, as busybox 1.35 (``editors/awk.c``) runs it: options, the program, errors and exit status.

The language is in :mod:`._awk_lexer`, :mod:`._awk_parser`, :mod:`._awk_interp`
(with :mod:`._awk_builtins` and :mod:`._awk_values`): a real interpreter over a
parse tree, not a set of patterns.
"""

from __future__ import annotations

import re

from sim.containers.shell._applets._awk_builtins import AwkUnsupported
from sim.containers.shell._applets._awk_interp import Interpreter
from sim.containers.shell._applets._awk_lexer import AwkSyntaxError, unescape
from sim.containers.shell._applets._awk_parser import parse
from sim.containers.shell._applets._awk_values import AwkIOError, AwkRuntimeError
from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    close_stream,
    getopt,
    open_read,
    show_usage,
    unsupported,
)
from sim.containers.shell._proc import Proc, encode

_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


def _latin1(text: str) -> str:
    """An argument (UTF-8, surrogate-escaped) as awk's one-character-per-byte text."""
    return encode(text).decode("latin-1")


@applet("awk")
def awk(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "F:v:f:e:W:", permute=False)
    except UsageError as e:
        return show_usage(p, "awk", e.msg)
    if "W" in opts:
        raise unsupported(p, "option -W")
    assigns: list[tuple[str, str]] = []
    if "F" in opts:
        assigns.append(("FS", unescape(_latin1(opts["F"][-1]))))
    for spec in opts.get("v", []):
        m = _ASSIGN.fullmatch(_latin1(spec))
        if m is None:
            return show_usage(p, "awk")
        assigns.append((m.group(1), unescape(m.group(2))))
    sources: list[tuple[str, str]] = []
    for name in opts.get("f", []):
        try:
            stream = open_read(p, name)
            sources.append((name, stream.read().decode("latin-1")))
            close_stream(p, name, stream)
        except OSError as e:
            p.perror(f"can't open '{name}'", e)
            return 1
    sources += [("cmd. line", _latin1(text)) for text in opts.get("e", [])]
    if not sources:
        if not operands:
            return show_usage(p, "awk")
        sources.append(("cmd. line", _latin1(operands.pop(0))))
    name = sources[0][0]
    try:
        prog = parse("\n".join(text for _n, text in sources))
    except AwkSyntaxError as e:
        p.errout(f"awk: {name}:{e.line}: {e.msg}\n")
        return 1
    interp = Interpreter(prog, p, [_latin1(a) for a in operands], assigns)
    try:
        return interp.run()
    except AwkRuntimeError as e:
        # a file that cannot be opened is reported bare, a run-time error with its place
        p.errout(f"awk: {e}\n" if isinstance(e, AwkIOError) else f"awk: {name}:1: {e}\n")
        return 1
    except AwkUnsupported as e:
        raise unsupported(p, str(e)) from None
    except RecursionError:
        raise unsupported(p, "programs nested this deep") from None
