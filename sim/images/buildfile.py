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

import re

from sim.errors import BuildfileError
from sim.images._instructions import parse_instruction
from sim.images._records import CONTINUATION, INSTRUCTIONS, SUBSTITUTED_KINDS, Buildfile, Flags, Form, Instruction
from sim.images._stages import Stage, split_stages
from sim.images._substitution import expand, expand_words
from sim.images._values import parse_chmod, parse_port

__all__ = [
    "INSTRUCTIONS",
    "SUBSTITUTED_KINDS",
    "Form",
    "Flags",
    "Instruction",
    "Buildfile",
    "Stage",
    "parse",
    "split_stages",
    "expand",
    "expand_words",
    "parse_port",
    "parse_chmod",
]

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_BOM = "\ufeff"


def parse(text: str | bytes, *, filename: str = "Buildfile") -> Buildfile:
    """Parse a Buildfile.  ``text`` may be bytes (UTF-8, an initial BOM is dropped).

    Lines: ``#`` after optional blanks starts a comment, also between continued
    lines; a backslash at the end of a line (trailing blanks allowed) joins the
    next line, whose leading blanks are kept; blank lines inside a continuation
    are skipped (Docker warns; see ``Buildfile.warnings``); parser directives
    (``# syntax=...``, ``# escape=\\``, ``# check=...``) at the very top are
    recognised and otherwise ignored.  Instruction names are case-insensitive.
    Stages are checked as :func:`split_stages` does (two stages with one name, a literal
    ``COPY --from`` naming its own stage, a later one or a stage index the file lacks).
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
        instructions.append(parse_instruction(body.strip(), start, filename))

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
    parsed = Buildfile(tuple(instructions), filename=filename, warnings=tuple(warnings))
    split_stages(parsed)  # duplicate stage names, COPY --from naming a later stage: errors now, not mid-build
    return parsed


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
    match = CONTINUATION.search(text)
    if match is None:
        return text, False
    return text[: match.start()], True
