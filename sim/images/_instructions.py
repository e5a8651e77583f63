"""One logical Buildfile line to an :class:`~sim.images._records.Instruction`: the per-instruction
rules (arguments, flags, JSON forms, heredocs) and the parse-time checks of its words."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping

from sim.errors import BuildfileError
from sim.images._records import INSTRUCTIONS, SUBSTITUTED_KINDS, Flags, Form, Instruction
from sim.images._substitution import LexError, expand, expand_words, go_quote, process
from sim.images._values import check_chown, check_user, check_volume, parse_chmod, parse_port, parse_words

# Docker instructions the subset leaves out: named as such rather than "unknown".
_DOCKER_ONLY = frozenset({"HEALTHCHECK", "MAINTAINER", "ONBUILD", "SHELL", "STOPSIGNAL"})

# Flags each instruction accepts, and Docker's flags the subset leaves out.
_FLAGS: Mapping[str, tuple[str, ...]] = {"COPY": ("chown", "chmod", "from"), "ADD": ("chown", "chmod")}
_DOCKER_ONLY_FLAGS: Mapping[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"link", "parents", "exclude"}),
    "ADD": frozenset({"link", "checksum", "keep-git-dir", "exclude", "unpack"}),
    "RUN": frozenset({"mount", "network", "security", "device"}),
}

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # Docker's reWhitespace: no newline, no Unicode spaces
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_HEREDOC = re.compile(r"^\d*<<-?[\"']?[A-Za-z0-9_]")


def parse_instruction(line_text: str, line: int, filename: str) -> Instruction:
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
        words = parse_words(rest)
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
        words = parse_words(rest)
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
        if len(parse_words(rest)) != 1:
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
    names = [f"--{f}" for f in allowed]
    listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)
    accepts = f"{kind} accepts {listed}" if allowed else f"{kind} takes no flags"
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
        check_chown(flags["chown"], fail.filename, fail.line)
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



def _check_words(ins: Instruction, filename: str) -> None:
    """Catch at parse time what substitution would refuse whatever the variables hold."""
    kind = ins.kind

    def check(word: str) -> None:
        try:
            process(word, {}, check_only=True)
        except LexError as exc:
            hint = ""
            if kind in ("COPY", "ADD", "VOLUME") and ins.form == "args" and "matching" in str(exc):
                hint = f' (a path with spaces needs the JSON form: {kind} ["a b", "/dest/"])'
            raise BuildfileError(
                f"failed to process {go_quote(word)}: {exc}{hint}", filename=filename, line=ins.line
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
        check_user(expand(ins.args[0], {}, filename=filename, line=ins.line), filename, ins.line)
    elif kind == "VOLUME":
        for word in ins.args:
            if "$" not in word:
                check_volume(expand(word, {}, filename=filename, line=ins.line), filename, ins.line)
