"""``find``, as busybox 1.35 (``findutils/find.c``) does it.

The expression is parsed first (every error is reported before anything is
walked), into a tree of tests and actions joined by ``-a`` (also implied), ``-o``,
``!`` and parentheses.  The walk is pre-order (``-depth``: post-order),
never follows symlinks, and names children ``PATH/NAME`` as libbb's
``concat_path_file`` does.  ``-exec ... +`` runs once per start path's batch at the end.
"""

from __future__ import annotations

import errno
import posixpath
import re
import stat as _stat
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.containers.shell._applets._common import applet, concat_path, show_usage, unsupported
from sim.containers.shell._applets._spawn import spawn
from sim.containers.shell._pattern import pattern_regex
from sim.containers.shell._proc import Proc

_TYPES = {"f": _stat.S_IFREG, "d": _stat.S_IFDIR, "l": _stat.S_IFLNK, "b": _stat.S_IFBLK, "c": _stat.S_IFCHR,
          "p": _stat.S_IFIFO, "s": _stat.S_IFSOCK}
# what this busybox build has and the model does not (anything else is busybox's "unrecognized")
_UNSUPPORTED = {"-regex", "-perm", "-mtime", "-atime", "-ctime", "-mmin", "-amin", "-cmin", "-newer", "-inum",
                "-samefile", "-user", "-group", "-size", "-links", "-executable", "-xdev", "-follow"}


class _FindError(Exception):
    def __init__(self, msg: str, *, usage: bool = False) -> None:
        super().__init__(msg)
        self.msg = msg
        self.usage = usage


@dataclass
class _Ctx:
    p: Proc
    status: int = 0
    quit: bool = False
    batches: dict[int, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    path: str
    mode: int
    depth: int


# an expression node: called with the entry and the walk's state; True when it holds
_Node = Callable[[_Entry, _Ctx], bool]


@dataclass
class _Parsed:
    node: _Node
    has_action: bool = False
    maxdepth: int | None = None
    mindepth: int = 0
    depth_first: bool = False
    prune_paths: set[str] = field(default_factory=set)
    plus_execs: list[list[str]] = field(default_factory=list)


class _Parser:
    """Recursive descent over the argument list: or-expr := and-expr (-o and-expr)*."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.i = 0
        self.result = _Parsed(lambda e, c: True)

    def peek(self) -> str | None:
        return self.args[self.i] if self.i < len(self.args) else None

    def take(self) -> str:
        a = self.args[self.i]
        self.i += 1
        return a

    def argument(self, opt: str) -> str:
        if self.peek() is None:
            raise _FindError(f"{opt} requires an argument")
        return self.take()

    def parse(self) -> _Parsed:
        if self.peek() is not None:
            self.result.node = self.or_expr()
            if self.peek() is not None:
                raise _FindError(f"unrecognized: {self.peek()}", usage=True)
        return self.result

    def or_expr(self) -> _Node:
        left = self.and_expr()
        while self.peek() in ("-o", "-or"):
            self.take()
            if self.peek() is None:
                break  # busybox ignores a trailing operator
            right = self.and_expr()
            left = (lambda a, b: lambda e, c: a(e, c) or b(e, c))(left, right)
        return left

    def and_expr(self) -> _Node:
        while self.peek() in ("-a", "-and"):
            self.take()  # busybox skips an "-a" with nothing on its left
        if self.peek() is None:
            return lambda e, c: True
        left = self.unary()
        while self.peek() is not None and self.peek() not in ("-o", "-or", ")"):
            if self.peek() in ("-a", "-and"):
                self.take()
                if self.peek() is None:
                    break
            right = self.unary()
            left = (lambda a, b: lambda e, c: a(e, c) and b(e, c))(left, right)
        return left

    def unary(self) -> _Node:
        tok = self.peek()
        if tok in ("!", "-not"):
            self.take()
            if self.peek() is None:
                return lambda e, c: True  # busybox: a trailing "!" negates nothing
            inner = self.unary()
            return lambda e, c: not inner(e, c)
        if tok == "(":
            self.take()
            inner = self.or_expr()
            if self.peek() != ")":
                raise _FindError("unrecognized: (", usage=True) if self.peek() is None else _FindError(
                    f"unrecognized: {self.peek()}", usage=True)
            self.take()
            return inner
        if tok is None:
            raise _FindError("expression expected", usage=True)
        return self.primary(self.take())

    def primary(self, tok: str) -> _Node:
        r = self.result
        if tok in ("-name", "-iname", "-path", "-ipath", "-wholename"):
            pattern = self.argument(tok)
            rx = re.compile(pattern_regex(pattern), re.DOTALL | (re.IGNORECASE if tok.startswith("-i") else 0))
            if tok in ("-name", "-iname"):
                return lambda e, c: rx.fullmatch(_basename(e.path)) is not None
            return lambda e, c: rx.fullmatch(e.path) is not None
        if tok == "-type":
            kind = self.argument(tok)
            if kind not in _TYPES:
                raise _FindError(f"invalid argument '{kind}' to '-type'")
            want = _TYPES[kind]
            return lambda e, c: _stat.S_IFMT(e.mode) == want
        if tok in ("-maxdepth", "-mindepth"):
            value = self.argument(tok)
            if not re.fullmatch(r"[0-9]+", value):
                raise _FindError(f"invalid number '{value}'")
            if tok == "-maxdepth":
                r.maxdepth = int(value)
            else:
                r.mindepth = int(value)
            return lambda e, c: True
        if tok == "-depth":
            r.depth_first = True
            return lambda e, c: True
        if tok in ("-print", "-print0"):
            r.has_action = True
            end = "\n" if tok == "-print" else "\0"

            def print_(e: _Entry, c: _Ctx) -> bool:
                c.p.out(e.path + end)
                return True
            return print_
        if tok == "-quit":
            r.has_action = True

            def quit_(e: _Entry, c: _Ctx) -> bool:
                c.quit = True
                return True
            return quit_
        if tok == "-prune":
            def prune(e: _Entry, c: _Ctx) -> bool:
                r.prune_paths.add(e.path)
                return True
            return prune
        if tok == "-empty":
            return _empty
        if tok == "-exec":
            return self.exec_action()
        if tok in _UNSUPPORTED:
            raise _Unsupported(tok)
        raise _FindError(f"unrecognized: {tok}", usage=True)

    def exec_action(self) -> _Node:
        r = self.result
        r.has_action = True
        command: list[str] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise _FindError("-exec requires an argument")
            self.take()
            if tok == ";":
                break
            if tok == "+" and command and command[-1] == "{}":
                template = command[:-1]
                index = len(r.plus_execs)
                r.plus_execs.append(template)

                def batch(e: _Entry, c: _Ctx, index: int = index) -> bool:
                    c.batches.setdefault(index, []).append(e.path)
                    return True
                return batch
            command.append(tok)
        if not command:
            raise _FindError("-exec requires an argument")

        def run(e: _Entry, c: _Ctx) -> bool:
            argv = [a.replace("{}", e.path) for a in command]
            return _run(c, argv) == 0
        return run


class _Unsupported(Exception):
    pass


def _basename(path: str) -> str:
    stripped = path.rstrip("/")
    return posixpath.basename(stripped) if stripped else "/"


def _empty(e: _Entry, c: _Ctx) -> bool:
    fs = c.p.fs
    if _stat.S_ISDIR(e.mode):
        try:
            return not fs.listdir(c.p.path(e.path))
        except OSError:
            return False
    if _stat.S_ISREG(e.mode):
        try:
            return fs.lstat(c.p.path(e.path)).st_size == 0
        except OSError:
            return False
    return False


def _run(c: _Ctx, argv: list[str]) -> int:
    try:
        return spawn(c.p, argv)
    except OSError as e:
        c.p.perror(argv[0], e)
        return 127 if e.errno == errno.ENOENT else 126


@applet("find")
def find(p: Proc) -> int:
    args = list(p.argv[1:])
    if args and args[0] in ("-H", "-L"):
        raise unsupported(p, f"option {args[0]} (following symlinks)")
    if args and args[0] == "--":
        args.pop(0)  # busybox's getopt32 takes a leading "--" away
    paths: list[str] = []
    while args and not args[0].startswith("-") and args[0] not in ("(", "!"):
        paths.append(args.pop(0))
    try:
        parsed = _Parser(args).parse()
    except _FindError as e:
        p.error(e.msg)
        if e.usage:
            show_usage(p, "find")
        return 1
    except _Unsupported as e:
        raise unsupported(p, f"the test {e.args[0]}") from None
    ctx = _Ctx(p)
    for start in paths or ["."]:
        if ctx.quit:
            break
        _walk(ctx, parsed, start, 0)
    for index, template in enumerate(parsed.plus_execs):
        names = ctx.batches.get(index)
        if names and _run(ctx, [*template, *names]) != 0:
            ctx.status = 1
    return ctx.status


def _walk(ctx: _Ctx, parsed: _Parsed, path: str, depth: int) -> None:
    p = ctx.p
    try:
        mode = p.fs.lstat(p.path(path)).st_mode
    except OSError as e:
        p.perror(path, e)
        ctx.status = 1
        return
    entry = _Entry(path, mode, depth)
    act = depth >= parsed.mindepth
    if act and not parsed.depth_first:
        _apply(ctx, parsed, entry)
    if _stat.S_ISDIR(mode) and (parsed.maxdepth is None or depth < parsed.maxdepth) and path not in parsed.prune_paths \
            and not ctx.quit:
        try:
            names = p.fs.listdir(p.path(path))
        except OSError as e:
            p.perror(path, e)
            ctx.status = 1
            names = []
        for name in names:
            if _stopped(ctx):
                return
            _walk(ctx, parsed, concat_path(path, name), depth + 1)
    if act and parsed.depth_first and not ctx.quit:
        _apply(ctx, parsed, entry)


def _stopped(ctx: _Ctx) -> bool:
    """-quit ran (a call, so that type narrowing of ``ctx.quit`` does not outlive the walk below)."""
    return ctx.quit


def _apply(ctx: _Ctx, parsed: _Parsed, entry: _Entry) -> None:
    if parsed.maxdepth is not None and entry.depth > parsed.maxdepth:
        return
    if parsed.node(entry, ctx) and not parsed.has_action:
        ctx.p.out(entry.path + "\n")

