"""The words and values of one Buildfile instruction: Docker's word splitter and the checks
of USER, ``--chown``, ``--chmod``, VOLUME paths and EXPOSE ports (at parse and at build time)."""

from __future__ import annotations

import re

from sim.errors import BuildfileError
from sim.images._substitution import go_quote

_USER_SPEC = re.compile(r"^[^:\s]+(:[^:\s]+)?$")
_PORT_SPEC = re.compile(r"^(\d+)(?:-(\d+))?(?:/(.*))?$")
_PROTOCOLS = ("tcp", "udp", "sctp")


def parse_words(rest: str) -> list[str]:
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


def check_user(user: str, filename: str, line: int) -> None:
    if not _USER_SPEC.match(user):
        raise BuildfileError(
            f"invalid USER {go_quote(user)}: use USER name, USER uid, USER name:group or USER uid:gid",
            filename=filename,
            line=line,
        )


def check_chown(value: str, filename: str, line: int) -> None:
    if not _USER_SPEC.match(value):
        raise BuildfileError(
            f"invalid --chown value {go_quote(value)}: use --chown=user, --chown=user:group or --chown=uid:gid",
            filename=filename,
            line=line,
        )


def check_volume(path: str, filename: str, line: int) -> None:
    if not path.strip():
        raise BuildfileError("VOLUME specified can not be an empty string", filename=filename, line=line)
    if not path.startswith("/"):
        raise BuildfileError(
            f"VOLUME path {go_quote(path)} must be absolute (start with /)", filename=filename, line=line
        )


def parse_port(spec: str, *, filename: str = "Buildfile", line: int | None = None) -> tuple[int, int, str]:
    """An EXPOSE word as ``(first, last, protocol)``: ``"80"`` is ``(80, 80, "tcp")``,
    ``"8000-8010/udp"`` is ``(8000, 8010, "udp")``.  Ports are 1-65535; the
    protocol tcp (the default), udp or sctp, in any case as in Docker."""
    example = "a port is a number such as 80, 80/tcp, 53/udp or 8000-8010"

    def fail(why: str) -> BuildfileError:
        return BuildfileError(f"invalid EXPOSE port {go_quote(spec)}: {why}", filename=filename, line=line)

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
            f"invalid --chmod value {go_quote(value)}: an octal mode such as 755 or 0644 is needed",
            filename=filename,
            line=line,
        )
    return int(value, 8)


def quote_flag(value: str) -> str:
    if value and not any(ch.isspace() or ch in "'\"\\" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
