"""Buildfile: the Dockerfile syntax subset layerlab builds images (镜像构建, image build) from.

``parse(text)`` turns a Buildfile into a frozen :class:`Buildfile` of
:class:`Instruction` records; it never touches the file system.  ``expand``
is Dockerfile variable substitution (``$VAR``, ``${VAR:-default}`` ...), which
the builder applies per instruction with the ENV and ARG values in force at
that step (see :data:`SUBSTITUTED_KINDS` and :meth:`Instruction.expanded`).

The parser follows Docker's (moby/buildkit ``frontend/dockerfile/parser``)
rule by rule: continuation lines, comments, JSON ("exec") forms that fall back
to the shell form when the JSON is invalid, the ENV/LABEL legacy form, how
words keep their quotes until substitution.  Where layerlab is stricter, the
difference is listed in ``docs/buildfile.md``.  Every problem is a
:class:`~sim.errors.BuildfileError` whose text starts ``<file>:<line>:``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, overload

from sim.errors import BuildfileError

__all__ = [
    "INSTRUCTIONS",
    "SUBSTITUTED_KINDS",
    "Form",
    "Flags",
    "Instruction",
    "Buildfile",
    "parse",
    "expand",
    "expand_words",
    "parse_port",
    "parse_chmod",
]

Form = Literal["shell", "exec", "args"]

#: Every instruction the subset knows, in the order the docs list them.
INSTRUCTIONS: tuple[str, ...] = (
    "FROM", "COPY", "ADD", "RUN", "ENV", "ARG", "WORKDIR", "USER",
    "LABEL", "CMD", "ENTRYPOINT", "VOLUME", "EXPOSE",
)

#: The instructions whose words the builder runs through :func:`expand` (Docker's
#: "environment replacement" list, restricted to the subset).  RUN, CMD and
#: ENTRYPOINT are not in it: in shell form the shell expands ``$VAR`` when the
#: command runs, and the exec (JSON) form is never expanded.
SUBSTITUTED_KINDS: frozenset[str] = frozenset(
    {"FROM", "ARG", "ENV", "LABEL", "COPY", "ADD", "WORKDIR", "USER", "VOLUME", "EXPOSE"}
)

# Docker instructions the subset leaves out: named as such rather than "unknown".
_DOCKER_ONLY = frozenset({"HEALTHCHECK", "MAINTAINER", "ONBUILD", "SHELL", "STOPSIGNAL"})

# Flags each instruction accepts, and Docker's flags the subset leaves out.
_FLAGS: Mapping[str, tuple[str, ...]] = {"COPY": ("chown", "chmod"), "ADD": ("chown", "chmod")}
_DOCKER_ONLY_FLAGS: Mapping[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"from", "link", "parents", "exclude"}),
    "ADD": frozenset({"link", "checksum", "keep-git-dir", "exclude", "unpack"}),
    "RUN": frozenset({"mount", "network", "security", "device"}),
}

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # Docker's reWhitespace: no newline, no Unicode spaces
_CONTINUATION = re.compile(r"\\[ \t]*$")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_HEREDOC = re.compile(r"^\d*<<-?[\"']?[A-Za-z0-9_]")
_USER_SPEC = re.compile(r"^[^:\s]+(:[^:\s]+)?$")
_PORT_SPEC = re.compile(r"^(\d+)(?:-(\d+))?(?:/(.*))?$")
_PROTOCOLS = ("tcp", "udp", "sctp")
_BOM = "\ufeff"


# --------------------------------------------------------------------------- results


class Flags(Mapping[str, str]):
    """The ``--name=value`` flags of one instruction: an immutable, hashable mapping."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        for key, value in pairs:
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"flags map str to str, not {key!r}: {value!r}")
        self._items: tuple[tuple[str, str], ...] = tuple(dict(pairs).items())

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Flags({dict(self._items)!r})"


@dataclass(frozen=True)
class Instruction:
    """One Buildfile instruction, as written (before substitution).

    ``kind`` is the upper-case name (``"COPY"``).  ``form`` says how ``args``
    were written:

    - ``"exec"``: a JSON array (``RUN ["a", "b"]``, ``COPY ["a b", "/x/"]``,
      ``VOLUME ["/data"]``); ``args`` are the array's strings.
    - ``"shell"``: RUN, CMD or ENTRYPOINT as one command line; ``args`` holds
      that one string, run later by ``/bin/sh -c``.
    - ``"args"``: every other case: words split by Docker's rules for that
      instruction (see :func:`parse`).

    ``args`` keep the quotes and backslashes substitution will remove
    (``ENV A="x y"`` has ``args == ('A="x y"',)``); :meth:`expanded` applies them.
    ``line`` is where the instruction starts (1-based), ``raw`` the logical line
    after continuations were joined.
    """

    kind: str
    args: tuple[str, ...]
    line: int
    form: Form = "args"
    flags: Mapping[str, str] = field(default_factory=Flags)
    raw: str = ""

    def __post_init__(self) -> None:
        if self.kind not in INSTRUCTIONS:
            raise ValueError(f"kind must be one of {', '.join(INSTRUCTIONS)}, not {self.kind!r}")
        if self.form not in ("shell", "exec", "args"):
            raise ValueError(f"form must be 'shell', 'exec' or 'args', not {self.form!r}")
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))
        if not all(isinstance(a, str) for a in self.args):
            raise TypeError("args must be strings")
        if not isinstance(self.flags, Flags):
            object.__setattr__(self, "flags", Flags(self.flags))

    # -- typed views ------------------------------------------------------------------

    def _need(self, what: str, *kinds: str) -> None:
        if self.kind not in kinds:
            raise TypeError(f"{what} is for {' and '.join(kinds)}, not {self.kind}")

    @property
    def image(self) -> str:
        """FROM: the image reference (or ``scratch``)."""
        self._need("image", "FROM")
        return self.args[0]

    @property
    def stage(self) -> str | None:
        """FROM: the ``AS name`` stage name, lower-cased as Docker does; None without one."""
        self._need("stage", "FROM")
        return self.args[1] if len(self.args) > 1 else None

    @property
    def sources(self) -> tuple[str, ...]:
        """COPY and ADD: every argument but the last."""
        self._need("sources", "COPY", "ADD")
        return self.args[:-1]

    @property
    def dest(self) -> str:
        """COPY and ADD: the last argument."""
        self._need("dest", "COPY", "ADD")
        return self.args[-1]

    @property
    def chown(self) -> str | None:
        """COPY and ADD: the ``--chown`` value as written (``uid:gid``, ``name``), or None."""
        self._need("chown", "COPY", "ADD")
        return self.flags.get("chown")

    @property
    def chmod(self) -> int | None:
        """COPY and ADD: the ``--chmod`` mode as a number (``0o755``), or None."""
        self._need("chmod", "COPY", "ADD")
        value = self.flags.get("chmod")
        return None if value is None else parse_chmod(value, line=self.line)

    @property
    def pairs(self) -> tuple[tuple[str, str | None], ...]:
        """ENV, LABEL and ARG: ``(name, value)`` per argument; an ARG without a default has value None."""
        self._need("pairs", "ENV", "LABEL", "ARG")
        out: list[tuple[str, str | None]] = []
        for arg in self.args:
            name, eq, value = arg.partition("=")
            out.append((name, value if eq else None))
        return tuple(out)

    # -- substitution -----------------------------------------------------------------

    def expanded(self, env: Mapping[str, str], *, filename: str = "Buildfile") -> Instruction:
        """This instruction with Dockerfile substitution applied, as the builder sees it.

        ``env`` holds the ENV and ARG values in force *before* this instruction
        (for FROM: only the ARGs declared before the first FROM).  Instructions
        not in :data:`SUBSTITUTED_KINDS` come back unchanged.  What is expanded,
        as in Docker: every word of COPY/ADD/VOLUME (either form) and ``--chown``
        (``--chmod`` is not); the name and the value of every ENV/LABEL/ARG pair
        (all against ``env``, so ``ENV A=1 B=$A`` sees the old ``A``); the FROM
        image; the WORKDIR and USER argument; EXPOSE words, which may split into
        several ports (``EXPOSE $PORTS``).  Results are validated again (ports,
        USER, VOLUME paths, ``--chown``) with this instruction's line.
        """
        if self.kind not in SUBSTITUTED_KINDS:
            return self

        def ex(word: str) -> str:
            return expand(word, env, filename=filename, line=self.line)

        if self.kind in ("ENV", "LABEL", "ARG"):
            args = tuple(
                ex(name) if value is None else f"{ex(name)}={ex(value)}" for name, value in self.pairs
            )
            return replace(self, args=args)
        if self.kind == "FROM":
            return replace(self, args=(ex(self.args[0]), *self.args[1:]))
        if self.kind == "EXPOSE":
            ports: list[str] = []
            for word in self.args:
                ports.extend(expand_words(word, env, filename=filename, line=self.line))
            if not ports:
                raise BuildfileError("EXPOSE requires at least one argument", filename=filename, line=self.line)
            for port in ports:
                parse_port(port, filename=filename, line=self.line)
            return replace(self, args=tuple(ports))
        args = tuple(ex(a) for a in self.args)
        flags = dict(self.flags)
        if "chown" in flags:
            flags["chown"] = ex(flags["chown"])
            _check_chown(flags["chown"], filename, self.line)
        if self.kind == "USER":
            _check_user(args[0], filename, self.line)
        if self.kind == "VOLUME":
            for vol in args:
                _check_volume(vol, filename, self.line)
        return replace(self, args=args, flags=Flags(flags))

    # -- writing back -----------------------------------------------------------------

    def render(self) -> str:
        """This instruction as one Buildfile line that :func:`parse` reads back to it.

        Raises ValueError for instructions no single line can express (a shell
        form with a newline, an ENV value with unquoted spaces beside another pair ...).
        """
        parts = [self.kind]
        for name, value in self.flags.items():
            parts.append(f"--{name}={_quote_flag(value)}")
        if self.form == "exec":
            parts.append(json.dumps(list(self.args), ensure_ascii=False))
        elif self.kind == "FROM":
            parts.append(self.args[0] if len(self.args) == 1 else f"{self.args[0]} AS {self.args[1]}")
        elif self.kind in ("ENV", "LABEL"):
            if all(_parse_words(a) == [a] for a in self.args):
                parts.append(" ".join(self.args))
            elif len(self.args) == 1:  # the legacy form: ENV name value with spaces
                name, _, value = self.args[0].partition("=")
                parts.append(f"{name} {value}")
            else:
                raise ValueError(f"{self.kind} with several pairs needs every value quoted: {self.args!r}")
        else:
            parts.append(" ".join(self.args))
        text = " ".join(p for p in parts if p)
        if "\n" in text or "\r" in text:
            raise ValueError(f"{self.kind} cannot be written on one line: {self.args!r}")
        if _CONTINUATION.search(text):
            raise ValueError(f"{self.kind} would end in \\, which continues the line: {self.args!r}")
        return text

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Buildfile:
    """A parsed Buildfile: its instructions in order, and where they came from.

    ``warnings`` lists what Docker accepts with a warning (empty continuation lines).
    """

    instructions: tuple[Instruction, ...]
    filename: str = "Buildfile"
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    def __len__(self) -> int:
        return len(self.instructions)

    @overload
    def __getitem__(self, index: int) -> Instruction: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Instruction, ...]: ...
    def __getitem__(self, index: int | slice) -> Instruction | tuple[Instruction, ...]:
        return self.instructions[index]

    @property
    def meta_args(self) -> tuple[Instruction, ...]:
        """The ARG instructions before the first FROM: the only variables FROM can use."""
        out: list[Instruction] = []
        for ins in self.instructions:
            if ins.kind == "FROM":
                break
            out.append(ins)
        return tuple(out)

    def error(self, instruction: Instruction, message: str) -> BuildfileError:
        """A BuildfileError at ``instruction``'s line (for the builder's own checks)."""
        return BuildfileError(message, filename=self.filename, line=instruction.line)

    def render(self) -> str:
        """One instruction per line (comments, blank lines and continuations are not kept)."""
        return "".join(ins.render() + "\n" for ins in self.instructions)


# --------------------------------------------------------------------------- parsing


def parse(text: str | bytes, *, filename: str = "Buildfile") -> Buildfile:
    """Parse a Buildfile.  ``text`` may be bytes (UTF-8, an initial BOM is dropped).

    Lines: ``#`` after optional blanks starts a comment, also between continued
    lines; a backslash at the end of a line (trailing blanks allowed) joins the
    next line, whose leading blanks are kept; blank lines inside a continuation
    are skipped (Docker warns; see ``Buildfile.warnings``); parser directives
    (``# syntax=...``, ``# escape=\\``, ``# check=...``) at the very top are
    recognised and otherwise ignored.  Instruction names are case-insensitive.
    """
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise BuildfileError("not UTF-8 text", filename=filename, line=line) from None
    if not isinstance(text, str):
        raise TypeError(f"parse() takes str or bytes, not {type(text).__name__}")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][len(_BOM):]
    if lines and lines[-1] == "":
        lines.pop()  # the text's final newline ends the last line; it does not start another

    instructions: list[Instruction] = []
    warnings: list[str] = []
    directives_open = True
    seen_directives: set[str] = set()
    i = 0
    while i < len(lines):
        physical = lines[i]
        i += 1
        start = i
        stripped = physical.lstrip()
        if directives_open:
            directives_open = _directive(stripped, seen_directives, filename, start)
        if stripped.startswith("#"):
            continue
        body, more = _trim_continuation(stripped)
        if not more and body == "":
            continue
        backslash_line = start
        empty_continuation = False
        while more:
            if i >= len(lines):
                raise BuildfileError(
                    "the file ends after a line continuation (\\): "
                    f"the instruction starting on line {start} is unfinished",
                    filename=filename,
                    line=backslash_line,
                )
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            if nxt.strip() == "":
                empty_continuation = True
                continue
            piece, more = _trim_continuation(nxt)
            if more:
                backslash_line = i
            body += piece
        if empty_continuation:
            warnings.append(
                f"{filename}:{start}: empty continuation line in this instruction (Docker warns; it may become an error)"
            )
        instructions.append(_parse_instruction(body.strip(), start, filename))

    if not instructions:
        raise BuildfileError("file with no instructions", filename=filename, line=None)
    for ins in instructions:
        if ins.kind == "FROM":
            break
        if ins.kind != "ARG":
            raise BuildfileError(
                f"the first instruction must be FROM (only ARG may come before it), not {ins.kind}",
                filename=filename,
                line=ins.line,
            )
    else:
        raise BuildfileError(
            "no FROM instruction: ARG may come before FROM, but a FROM must follow",
            filename=filename,
            line=instructions[-1].line,
        )
    return Buildfile(tuple(instructions), filename=filename, warnings=tuple(warnings))


def _directive(stripped: str, seen: set[str], filename: str, line: int) -> bool:
    """Handle a possible parser directive; return whether more directives may follow."""
    match = _DIRECTIVE.match(stripped)
    if match is None:
        return False
    name, value = match.group(1).lower(), match.group(2)
    if name not in _KNOWN_DIRECTIVES:
        return False  # an unknown directive is a comment, and ends the directives
    if name in seen:
        raise BuildfileError(f"only one {name} parser directive can be used", filename=filename, line=line)
    seen.add(name)
    if name == "escape":
        if value == "`":
            raise BuildfileError(
                "the escape=` parser directive is not supported: a Buildfile always escapes with \\",
                filename=filename,
                line=line,
            )
        if value != "\\":
            raise BuildfileError(
                f"invalid escape token '{value}' does not match ` or \\", filename=filename, line=line
            )
    return True


def _trim_continuation(text: str) -> tuple[str, bool]:
    match = _CONTINUATION.search(text)
    if match is None:
        return text, False
    return text[: match.start()], True


def _parse_instruction(line_text: str, line: int, filename: str) -> Instruction:
    fail = _Fail(filename, line)
    head, *tail = _WHITESPACE.split(line_text, maxsplit=1)
    kind = head.upper()
    if kind not in INSTRUCTIONS:
        if kind in _DOCKER_ONLY:
            raise fail(f"unsupported instruction: {kind} (Docker has it; the Buildfile subset does not)")
        close = difflib.get_close_matches(kind, INSTRUCTIONS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise fail(f"unknown instruction: {kind}{hint}")

    rest, raw_flags = _extract_flags(tail[0] if tail else "")
    rest = rest.strip()
    flags = _check_flags(kind, raw_flags, fail)

    form: Form = "args"
    args: tuple[str, ...]
    if kind == "FROM":
        words = _WHITESPACE.split(rest) if rest else []
        if len(words) == 3 and words[1].lower() == "as":
            stage = words[2].lower()
            if not _STAGE_NAME.match(stage):
                raise fail(
                    f'invalid name for build stage: "{words[2]}", name can\'t start with a number or contain symbols'
                )
            args = (words[0], stage)
        elif len(words) == 1:
            args = (words[0],)
        else:
            raise fail("FROM requires either one or three arguments (FROM image [AS name])")
    elif kind in ("COPY", "ADD", "VOLUME"):
        json_args = _maybe_json(rest, fail)
        if json_args is not None:
            args, form = json_args, "exec"
        else:
            args = tuple(_WHITESPACE.split(rest)) if rest else ()
        if kind == "VOLUME":
            if not args:
                raise fail("VOLUME requires at least one argument")
            for vol in args:
                if not vol.strip():
                    raise fail("VOLUME specified can not be an empty string")
        elif not args:
            raise fail(f"{kind} requires at least two arguments (source... destination)")
        elif len(args) == 1:
            raise fail(f"{kind} requires at least two arguments, but only one was provided: the destination is missing")
        if form == "args" and kind != "VOLUME":
            _check_heredoc(kind, args, fail)
    elif kind in ("RUN", "CMD", "ENTRYPOINT"):
        json_args = _maybe_json(rest, fail)
        if json_args is not None:
            args, form = json_args, "exec"
            if kind == "RUN" and not args:
                raise fail("RUN requires at least one argument")
        elif rest:
            args, form = (rest,), "shell"
            if kind == "RUN":
                _check_heredoc(kind, tuple(_WHITESPACE.split(rest)), fail)
        else:
            raise fail(f"{kind} requires at least one argument")
    elif kind in ("ENV", "LABEL"):
        words = _parse_words(rest)
        if not words:
            raise fail(f"{kind} requires at least one argument")
        if "=" not in words[0]:  # legacy form: ENV name value (the rest of the line)
            parts = _WHITESPACE.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise fail(f"{kind} must have two arguments ({kind} name=value, or {kind} name value)")
            args = (f"{parts[0]}={parts[1]}",)
        else:
            for word in words:
                if "=" not in word:
                    raise fail(f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value')
                if word.startswith("="):
                    raise fail(f"{kind} names can not be blank")
            args = tuple(words)
    elif kind == "ARG":
        words = _parse_words(rest)
        if not words:
            raise fail("ARG requires at least one argument")
        for word in words:
            if word.startswith("="):
                raise fail("ARG names can not be blank")
        args = tuple(words)
    elif kind == "WORKDIR":
        if not rest:
            raise fail("WORKDIR requires exactly one argument")
        args = (rest,)  # as in Docker, the rest of the line: WORKDIR /my dir is "/my dir"
    elif kind == "USER":
        if len(_parse_words(rest)) != 1:
            raise fail("USER requires exactly one argument (USER name, USER uid or USER uid:gid)")
        args = (rest,)
    else:  # EXPOSE
        if not rest:
            raise fail("EXPOSE requires at least one argument")
        args = tuple(_WHITESPACE.split(rest))

    ins = Instruction(kind, args, line, form, Flags(flags), line_text)
    if kind in SUBSTITUTED_KINDS:
        _check_words(ins, filename)
    return ins


def _extract_flags(text: str) -> tuple[str, list[str]]:
    """Docker's extractBuilderFlags: leading ``--words`` (quotes removed), then the rest.

    A lone ``--`` ends the flags.
    """
    words: list[str] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n or not text.startswith("--", pos):
            return text[pos:], words
        word: list[str] = []
        quote = ""
        while pos < n:
            ch = text[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and pos + 1 < n:
                    pos += 1
                    word.append(text[pos])
                elif ch != "\\":
                    word.append(ch)
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote = ch
            elif ch == "\\":
                if pos + 1 < n:
                    pos += 1
                    word.append(text[pos])
            else:
                word.append(ch)
            pos += 1
        token = "".join(word)
        if token == "--":
            return text[pos:].lstrip(), words
        words.append(token)


def _check_flags(kind: str, raw: list[str], fail: _Fail) -> dict[str, str]:
    allowed = _FLAGS.get(kind, ())
    accepts = f"{kind} accepts " + " and ".join(f"--{f}" for f in allowed) if allowed else f"{kind} takes no flags"
    flags: dict[str, str] = {}
    for token in raw:
        name, eq, value = token[2:].partition("=")
        if name not in allowed:
            if name in _DOCKER_ONLY_FLAGS.get(kind, frozenset()):
                raise fail(f"flag --{name} is not supported by the Buildfile subset ({accepts})")
            raise fail(f"unknown flag: --{name} ({accepts})")
        if name in flags:
            raise fail(f"duplicate flag specified: --{name}")
        if not eq or value == "":
            raise fail(f"missing a value on flag: --{name} (write --{name}=value)")
        flags[name] = value
    if "chmod" in flags:
        parse_chmod(flags["chmod"], filename=fail.filename, line=fail.line)
    if "chown" in flags and "$" not in flags["chown"]:
        _check_chown(flags["chown"], fail.filename, fail.line)
    return flags


class _Fail:
    """Makes BuildfileErrors for one line (a small callable so helpers share it)."""

    def __init__(self, filename: str, line: int) -> None:
        self.filename = filename
        self.line = line

    def __call__(self, message: str) -> BuildfileError:
        return BuildfileError(message, filename=self.filename, line=self.line)


def _maybe_json(rest: str, fail: _Fail) -> tuple[str, ...] | None:
    """Docker's parseJSON: a JSON array of strings, or None to fall back to the other form.

    Only text starting with ``[`` is tried; text that is not valid JSON falls
    back (``RUN [ -f x ] && y`` is a shell command).  Valid JSON holding
    anything but strings is an error, as in Docker.
    """
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):  # pragma: no cover - JSON starting with "[" is a list
        return None
    if not all(isinstance(v, str) for v in value):
        raise fail("when using JSON array syntax, arrays must be comprised of strings only")
    return tuple(_fix_surrogates(v) for v in value)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # Go's encoding/json refuses NaN and Infinity


def _fix_surrogates(text: str) -> str:
    # Go decodes a lone "\ud800" escape to U+FFFD; Python would keep an unencodable surrogate.
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _check_heredoc(kind: str, words: tuple[str, ...], fail: _Fail) -> None:
    for word in words:
        if _HEREDOC.match(word):
            raise fail(f"heredocs ({word}) are not supported in the Buildfile subset; {kind} must fit on its lines")


def _parse_words(rest: str) -> list[str]:
    """Docker's parseWords: split on blanks outside quotes, keeping quotes and backslashes."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    blank_ok = False
    pos, n = 0, len(rest)
    while pos < n:
        ch = rest[pos]
        if not in_word:
            if ch.isspace():
                pos += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or word:
                    words.append("".join(word))
                word, in_word, blank_ok = [], False, False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue  # a backslash at the very end is dropped
                word.append(ch)
                pos += 1
                ch = rest[pos]
            word.append(ch)
            pos += 1
            continue
        if ch == quote:
            quote = ""
        elif ch == "\\" and quote != "'":
            if pos + 1 == n:
                pos += 1
                continue
            word.append(ch)
            pos += 1
            ch = rest[pos]
        word.append(ch)
        pos += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def _check_words(ins: Instruction, filename: str) -> None:
    """Catch at parse time what substitution would refuse whatever the variables hold."""
    kind = ins.kind

    def check(word: str) -> None:
        try:
            _process(word, {}, check_only=True)
        except _LexError as exc:
            hint = ""
            if kind in ("COPY", "ADD", "VOLUME") and ins.form == "args" and "matching" in str(exc):
                hint = f' (a path with spaces needs the JSON form: {kind} ["a b", "/dest/"])'
            raise BuildfileError(
                f"failed to process {_go_quote(word)}: {exc}{hint}", filename=filename, line=ins.line
            ) from None

    if kind in ("ENV", "LABEL", "ARG"):
        for name, value in ins.pairs:
            check(name)
            if value is not None:
                check(value)
        return
    words = ins.args[:1] if kind == "FROM" else ins.args
    for word in words:
        check(word)
    if "chown" in ins.flags:
        check(ins.flags["chown"])
    # Values without "$" are fixed now: validate them now, not at build time.
    if kind == "EXPOSE":
        for word in ins.args:
            if "$" not in word:
                for port in expand_words(word, {}, filename=filename, line=ins.line):
                    parse_port(port, filename=filename, line=ins.line)
    elif kind == "USER" and "$" not in ins.args[0]:
        _check_user(expand(ins.args[0], {}, filename=filename, line=ins.line), filename, ins.line)
    elif kind == "VOLUME":
        for word in ins.args:
            if "$" not in word:
                _check_volume(expand(word, {}, filename=filename, line=ins.line), filename, ins.line)


def _check_user(user: str, filename: str, line: int) -> None:
    if not _USER_SPEC.match(user):
        raise BuildfileError(
            f"invalid USER {_go_quote(user)}: use USER name, USER uid, USER name:group or USER uid:gid",
            filename=filename,
            line=line,
        )


def _check_chown(value: str, filename: str, line: int) -> None:
    if not _USER_SPEC.match(value):
        raise BuildfileError(
            f"invalid --chown value {_go_quote(value)}: use --chown=user, --chown=user:group or --chown=uid:gid",
            filename=filename,
            line=line,
        )


def _check_volume(path: str, filename: str, line: int) -> None:
    if not path.strip():
        raise BuildfileError("VOLUME specified can not be an empty string", filename=filename, line=line)
    if not path.startswith("/"):
        raise BuildfileError(
            f"VOLUME path {_go_quote(path)} must be absolute (start with /)", filename=filename, line=line
        )


def parse_port(spec: str, *, filename: str = "Buildfile", line: int | None = None) -> tuple[int, int, str]:
    """An EXPOSE word as ``(first, last, protocol)``: ``"80"`` is ``(80, 80, "tcp")``,
    ``"8000-8010/udp"`` is ``(8000, 8010, "udp")``.  Ports are 1-65535; the
    protocol tcp (the default), udp or sctp, in any case as in Docker."""
    example = "a port is a number such as 80, 80/tcp, 53/udp or 8000-8010"

    def fail(why: str) -> BuildfileError:
        return BuildfileError(f"invalid EXPOSE port {_go_quote(spec)}: {why}", filename=filename, line=line)

    if ":" in spec:
        raise fail("EXPOSE takes container ports only; host ports are chosen when the container runs")
    match = _PORT_SPEC.match(spec)
    if match is None:
        raise fail(example)
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    proto = match.group(3)
    protocol = "tcp" if proto is None else proto.lower()
    if protocol not in _PROTOCOLS:
        raise fail("the protocol must be tcp, udp or sctp")
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise fail("ports are 1 to 65535")
    if last < first:
        raise fail("the range ends before it starts")
    return first, last, protocol


def parse_chmod(value: str, *, filename: str = "Buildfile", line: int | None = None) -> int:
    """A ``--chmod`` value as a mode: octal digits only, at most ``7777`` (``"755"`` is ``0o755``)."""
    if not re.fullmatch(r"[0-7]+", value) or int(value, 8) > 0o7777:
        raise BuildfileError(
            f"invalid --chmod value {_go_quote(value)}: an octal mode such as 755 or 0644 is needed",
            filename=filename,
            line=line,
        )
    return int(value, 8)


def _quote_flag(value: str) -> str:
    if value and not any(ch.isspace() or ch in "'\"\\" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# --------------------------------------------------------------------------- substitution


def expand(
    word: str, env: Mapping[str, str], *, filename: str = "Buildfile", line: int | None = None
) -> str:
    """Dockerfile variable substitution of one word, as Docker's ProcessWord does it.

    - ``$VAR`` and ``${VAR}``: the value, or empty when unset.
    - ``${VAR:-word}`` / ``${VAR-word}``: ``word`` when VAR is unset or empty / unset.
    - ``${VAR:+word}`` / ``${VAR+word}``: ``word`` when VAR is set and not empty / set, else empty.
    - ``${VAR:?msg}`` / ``${VAR?msg}``: an error when VAR is unset or empty / unset.
    - ``word`` is itself expanded (``${A:-$B}``) and may quote or escape ``}``.
    - Quotes are removed: nothing is expanded inside ``'...'``; ``"..."`` expands
      ``$`` and lets ``\\`` escape only ``"``, ``$`` and ``\\``.  Outside quotes
      ``\\x`` is ``x``, so ``\\$VAR`` is the literal ``$VAR``.
    - ``$`` not followed by a name is kept.  Blanks are kept (one word in, one out).

    Not supported (a BuildfileError): the pattern forms ``${VAR#p}``, ``${VAR%p}``,
    ``${VAR/p/r}``.  Errors read like Docker's: ``failed to process "...": ...``.
    """
    try:
        return _process(word, env)[0]
    except _LexError as exc:
        raise BuildfileError(f"failed to process {_go_quote(word)}: {exc}", filename=filename, line=line) from None


def expand_words(
    word: str, env: Mapping[str, str], *, filename: str = "Buildfile", line: int | None = None
) -> tuple[str, ...]:
    """Like :func:`expand`, then split into words on unquoted blanks, as Docker's
    ProcessWords (used for EXPOSE): a variable holding ``"80 443"`` gives two words."""
    try:
        return tuple(_process(word, env)[1])
    except _LexError as exc:
        raise BuildfileError(f"failed to process {_go_quote(word)}: {exc}", filename=filename, line=line) from None


class _LexError(Exception):
    pass


class _Words:
    """Docker's wordsStruct: splits the result on blanks that came from unquoted text."""

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def done(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], check_only: bool) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.check_only = check_only

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def stop_on(self, stop: str) -> tuple[str, list[str]]:
        """Process until ``stop`` (consumed) or, with ``stop == ""``, the end."""
        result: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.done()
            if ch == "$":
                value = self.dollar()
                result.append(value)
                words.add_string(value)
            elif ch == "'":
                value = self.single_quote()
                result.append(value)
                words.add_raw(value)
            elif ch == '"':
                value = self.double_quote()
                result.append(value)
                words.add_raw(value)
            else:
                ch = self.next()
                if ch == "\\":
                    ch = self.next()
                    if not ch:
                        break  # a backslash at the end is dropped
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.done()

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise _LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == "\\":
                following = self.peek()
                if not following:
                    continue  # a backslash at the end is dropped (then the quote is unterminated)
                if following in '"$\\':
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if not out and ch.isdecimal():
                while self.peek() and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.lookup(name)[0] if name else "$"
        self.next()
        if not self.peek():
            raise _LexError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        if not ch:
            raise _LexError("syntax error: missing '}'")
        modifier, null_is_unset = ch, False
        if ch == ":":
            null_is_unset = True
            modifier = self.next()
            if not modifier:
                raise _LexError("syntax error: missing '}'")
        if modifier not in "+-?":
            shown = (":" if null_is_unset else "") + modifier
            raise _LexError(
                f"unsupported modifier ({shown}) in substitution"
                " (the Buildfile subset has ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg}, ${VAR?msg})"
            )
        try:
            word, _ = self.stop_on("}")
        except _LexError:
            if not self.peek():
                raise _LexError("syntax error: missing '}'") from None
            raise  # pragma: no cover - stop_on only fails at the end of the text
        value, is_set = self.lookup(name)
        empty = not is_set or (null_is_unset and value == "")
        if modifier == "-":
            return word if empty else value
        if modifier == "+":
            return "" if empty else word
        if empty and not self.check_only:  # "?"
            default = "is not allowed to be unset" if not is_set else "is not allowed to be empty"
            raise _LexError(f"{name}: {word or default}")
        return value


def _process(word: str, env: Mapping[str, str], *, check_only: bool = False) -> tuple[str, list[str]]:
    return _Lexer(word, env, check_only).stop_on("")
