"""awk's built-in functions, its input readers and its output files; the base of the interpreter."""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from typing import Any

from sim.containers.shell._applets._awk_parser import Node
from sim.containers.shell._applets._awk_values import (
    AwkIOError,
    AwkRuntimeError,
    Value,
    format_printf,
    strnum,
    to_int,
    to_num,
)
from sim.containers.shell._applets._common import close_stream, open_read
from sim.containers.shell._applets._spawn import spawn
from sim.containers.shell._proc import BufferOut, BytesIn, Proc, Stream
from sim.containers.shell._regex import RegexError, posix_regex, successive_matches

__all__ = ["Builtins", "Reader", "AwkUnsupported", "latin1"]

_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NO_MATH = frozenset({"sin", "cos", "atan2", "exp", "log", "sqrt"})
_UNSUPPORTED = frozenset({"strftime", "systime", "mktime"})


class AwkUnsupported(Exception):
    """Something busybox awk does that the model does not (time functions, its random numbers)."""


def latin1(data: bytes) -> str:
    return data.decode("latin-1")


class Reader:
    """Records of one input: split at ``RS`` (a newline, one character, or "" for paragraphs)."""

    def __init__(self, data: str) -> None:
        self.data = data
        self.pos = 0

    def next_record(self, rs: Value) -> str | None:
        data = self.data
        if self.pos >= len(data):
            return None
        sep = rs if isinstance(rs, str) else "%d" % int(rs)
        if sep == "":
            while self.pos < len(data) and data[self.pos] == "\n":
                self.pos += 1
            if self.pos >= len(data):
                return None
            m = re.compile(r"\n\n+").search(data, self.pos)
            end, nxt = (m.start(), m.end()) if m else (len(data.rstrip("\n")), len(data))
        else:
            end = data.find(sep[0], self.pos)
            end, nxt = (len(data), len(data)) if end < 0 else (end, end + 1)
        record = data[self.pos:end]
        self.pos = nxt
        return record


class Builtins(ABC):
    """What the interpreter's expressions call: the built-in functions, printf, I/O."""

    def __init__(self, p: Proc) -> None:
        self.p = p
        self.regexes: dict[str, re.Pattern[str]] = {}
        self.outputs: dict[str, Stream] = {}
        self.inputs: dict[str, Reader] = {}
        self.pipes: dict[str, BufferOut] = {}  # print | "cmd": what the command will read, run at close()

    @abstractmethod
    def eval(self, e: Node) -> Value: ...

    @abstractmethod
    def str_of(self, v: Value) -> str: ...

    @abstractmethod
    def load(self, lv: Node) -> Value: ...

    @abstractmethod
    def store(self, lv: Node, value: Value) -> None: ...

    @abstractmethod
    def array(self, name: str) -> dict[str, Value]: ...

    @abstractmethod
    def getvar(self, name: str) -> Value: ...

    @abstractmethod
    def setvar(self, name: str, value: Value) -> None: ...

    @abstractmethod
    def split_text(self, text: str, fs: str, *, paragraph: bool = False, regex: str | None = None) -> list[str]: ...

    @abstractmethod
    def regex_of(self, e: Node) -> re.Pattern[str]: ...

    # -- regular expressions -------------------------------------------------------

    def regex(self, pattern: str) -> re.Pattern[str]:
        rx = self.regexes.get(pattern)
        if rx is None:
            try:
                rx = re.compile(latin1(posix_regex(pattern.encode("latin-1", "replace"), extended=True)))
            except (RegexError, re.error) as e:
                reason = e.args[1] if isinstance(e, RegexError) and len(e.args) > 1 else "Invalid regular expression"
                raise AwkIOError(f"bad regex '{pattern}': {reason}") from None
            self.regexes[pattern] = rx
        return rx

    def sprintf(self, values: list[Value]) -> str:
        if not values:
            return ""  # busybox's "printf" with nothing to print prints nothing
        return format_printf(self.str_of(values[0]), values[1:], self.str_of(self.getvar("CONVFMT")))

    # -- the functions -------------------------------------------------------------

    def builtin(self, name: str, args: list[Node]) -> Value:
        if name in _NO_MATH:
            raise AwkRuntimeError("Math support is not compiled in")
        if name in _UNSUPPORTED:
            raise AwkUnsupported(f"the function {name}()")
        if name == "length":
            if not args:
                return float(len(self.str_of(self.load(("field", ("num", 0.0))))))
            a = args[0]
            if a[0] == "var" and isinstance(self._raw(a[1]), dict):
                return float(len(self.array(a[1])))
            return float(len(self.str_of(self.eval(a))))
        if name == "substr":
            self._arity(args, 2, 3)
            text = self.str_of(self.eval(args[0]))
            # busybox: the start is truncated and clamped to the string before the length counts
            start = min(max(to_int(to_num(self.eval(args[1])) - 1), 0), len(text))
            count = to_int(to_num(self.eval(args[2]))) if len(args) > 2 else len(text) - start
            return text[start:start + max(count, 0)]
        if name == "index":
            self._arity(args, 2, 2)
            text, sought = self.str_of(self.eval(args[0])), self.str_of(self.eval(args[1]))
            return float(text.find(sought) + 1) if sought else 0.0  # busybox: an empty string is never found
        if name == "split":
            return self._split(args)
        if name in ("sub", "gsub"):
            return self._sub(args, name == "gsub")
        if name == "match":
            self._arity(args, 2, 2)
            m = self.regex_of(args[1]).search(self.str_of(self.eval(args[0])))
            self.setvar("RSTART", float(m.start() + 1) if m else 0.0)
            self.setvar("RLENGTH", float(m.end() - m.start()) if m else -1.0)
            return float(m.start() + 1) if m else 0.0
        if name == "sprintf":
            return self.sprintf([self.eval(a) for a in args])
        if name in ("tolower", "toupper"):
            self._arity(args, 1, 1)
            return self.str_of(self.eval(args[0])).translate(_LOWER if name == "tolower" else _UPPER)
        if name == "int":
            self._arity(args, 1, 1)
            return float(to_int(to_num(self.eval(args[0]))))
        if name in ("rand", "srand"):
            raise AwkUnsupported(f"the function {name}() (busybox's random numbers)")
        if name == "system":
            self._arity(args, 1, 1)
            command = self.str_of(self.eval(args[0]))
            try:
                return float(spawn(self.p, ["sh", "-c", command]))
            except OSError:
                return 127.0
        if name == "close":
            self._arity(args, 1, 1)
            return self._close(self.str_of(self.eval(args[0])))
        if name == "fflush":
            return 0.0
        values = [to_int(to_num(self.eval(a))) for a in args]
        self._arity(args, 1 if name == "compl" else 2, 1 if name == "compl" else 2)
        bits: dict[str, Any] = {"and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b,
                                "lshift": lambda a, b: a << b, "rshift": lambda a, b: a >> b,
                                "compl": lambda a: ~a & ((1 << 53) - 1)}
        return float(bits[name](*values))

    def _raw(self, name: str) -> object:
        frames = getattr(self, "frames", [])
        if frames and name in frames[-1]:
            return frames[-1][name]
        return getattr(self, "globals", {}).get(name)

    def _arity(self, args: list[Node], lo: int, hi: int) -> None:
        # busybox checks only the lower bound: extra arguments are evaluated and ignored
        if len(args) < lo:
            raise AwkRuntimeError("Too few arguments")

    def _split(self, args: list[Node]) -> Value:
        self._arity(args, 2, 3)
        text = self.str_of(self.eval(args[0]))
        if args[1][0] != "var":
            raise AwkRuntimeError("Unexpected token")
        if len(args) > 2 and args[2][0] == "ere":
            parts = self.split_text(text, "", regex=args[2][1])
        else:
            fs = self.str_of(self.eval(args[2])) if len(args) > 2 else self.str_of(self.getvar("FS"))
            parts = self.split_text(text, fs)
        arr = self.array(args[1][1])
        arr.clear()
        for k, part in enumerate(parts, 1):
            arr[str(k)] = strnum(part)
        return float(len(parts))

    def _sub(self, args: list[Node], global_: bool) -> Value:
        self._arity(args, 2, 3)
        rx = self.regex_of(args[0])
        repl = self.str_of(self.eval(args[1]))
        target: Node = args[2] if len(args) > 2 else ("field", ("num", 0.0))
        text = self.str_of(self.load(target)) if target[0] in ("var", "field", "index") else self.str_of(self.eval(target))
        out: list[str] = []
        copied = count = 0
        for count, m in enumerate(successive_matches(rx, text), start=1):  # noqa: B007 (the count is read after the loop)
            s, e = m.span()
            out.append(text[copied:s])
            out.append(_replacement(repl, m.group()))
            copied = e
            if not global_:
                break
        if count:
            out.append(text[copied:])
            if target[0] in ("var", "field", "index"):
                self.store(target, "".join(out))
        return float(count)

    # -- input and output ----------------------------------------------------------

    def open_reader(self, name: str) -> Reader:
        try:
            stream = open_read(self.p, name)
            data = stream.read()
        except OSError as e:
            raise AwkIOError(f"{name}: {os.strerror(e.errno or 5)}") from None
        close_stream(self.p, name, stream)
        return Reader(latin1(data))

    def file_reader(self, name: str) -> Reader:
        reader = self.inputs.get(name)
        if reader is None:
            stream = open_read(self.p, name)
            data = stream.read()
            close_stream(self.p, name, stream)
            reader = self.inputs[name] = Reader(latin1(data))
        return reader

    def command_reader(self, command: str) -> Reader:
        """``CMD | getline``: run ``sh -c CMD`` once (pipelines in the model run to the end) and read its output."""
        reader = self.inputs.get(command)
        if reader is None:
            out = BufferOut()
            self._run_command(command, {0: BytesIn(b""), 1: out, 2: self.p.fds.get(2, BufferOut())})
            reader = self.inputs[command] = Reader(latin1(out.getvalue()))
        return reader

    def _run_command(self, command: str, fds: dict[int, Stream]) -> float:
        try:
            return float(spawn(self.p, ["sh", "-c", command], fds))
        except OSError:
            return 127.0

    def write(self, text: str, redirect: str | None, target: str | None) -> None:
        data = text.encode("latin-1", "replace")
        if redirect is None or target is None:
            self.p.out(data)
            return
        if redirect == "|":
            self.pipes.setdefault(target, BufferOut()).write(data)
            return
        stream = self.outputs.get(target)
        if stream is None:
            if target in ("/dev/stdout", "-"):
                self.p.out(data)
                return
            if target == "/dev/stderr":
                self.p.errout(data)
                return
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if redirect == ">>" else os.O_TRUNC)
            try:
                stream = self.p.world.open_stream(self.p.cwd, target, flags, self.p.fds)
            except OSError as e:
                raise AwkIOError(f"can't open '{target}': {os.strerror(e.errno or 5)}") from None
            self.outputs[target] = stream
        stream.write(data)

    def _close(self, name: str) -> float:
        piped = self.pipes.pop(name, None)
        if piped is not None:
            return self._run_command(name, {0: BytesIn(piped.getvalue()), 1: self.p.fds.get(1, BufferOut()),
                                            2: self.p.fds.get(2, BufferOut())})
        found = False
        stream = self.outputs.pop(name, None)
        if stream is not None:
            stream.close()
            found = True
        if self.inputs.pop(name, None) is not None:
            found = True
        return 0.0 if found else -1.0

    def close_all(self) -> None:
        for stream in self.outputs.values():
            stream.close()
        self.outputs.clear()
        for command in list(self.pipes):
            self._close(command)


def _replacement(repl: str, matched: str) -> str:
    """sub/gsub's replacement: ``&`` is the match, ``\\&`` a literal ``&``, ``\\\\`` a backslash."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "\\" and i + 1 < len(repl) and repl[i + 1] in "&\\":
            out.append(repl[i + 1])
            i += 2
            continue
        out.append(matched if c == "&" else c)
        i += 1
    return "".join(out)

