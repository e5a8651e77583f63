"""``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1), as a registry sends them on a 401.

A header may hold several challenges, each a scheme and then comma-separated
``key=value`` parameters whose values may be quoted strings; a quoted string
may hold commas, spaces and backslash-escaped quotes
(``Bearer realm="https://h/token",scope="repository:a:pull,push"``).  A
challenge may instead carry one ``token68`` blob (``Negotiate abc==``), kept
under the key ``""``.  Splitting on commas would cut ``pull,push`` in two,
so this reads the header one token at a time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sim.errors import AuthenticationError

__all__ = ["Challenge", "parse_challenges"]

# RFC 9110 "token" characters, and token68 (base64-ish, trailing '=' allowed).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_BARE = re.compile(r"[^,\s\"]+")


@dataclass(frozen=True)
class Challenge:
    """One challenge: ``scheme`` lower-cased (``"basic"``, ``"bearer"``) and its parameters, keys
    lower-cased (parameter names are case-insensitive), values unquoted and unescaped."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.params.get(key.lower())


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.pos = 0
        self.source = source

    def fail(self, why: str) -> AuthenticationError:
        return AuthenticationError(f"{self.source} sent a malformed WWW-Authenticate header: {why} at character {self.pos}",
                                   code="UNAUTHORIZED", status=401)

    def skip_space(self) -> None:
        self.pos = _skip_space(self.text, self.pos)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str | None:
        match = _TOKEN.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def quoted(self) -> str:
        """A quoted string starting at the current ``"``: its value with escapes removed."""
        assert self.peek() == '"'
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                if self.pos + 1 >= len(self.text):
                    break
                out.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == '"':
                self.pos += 1
                return "".join(out)
            else:
                out.append(char)
                self.pos += 1
        raise self.fail("an unterminated quoted string")

    def skip_commas(self) -> int:
        """Skip ``,`` and blanks between list elements; how many commas were passed."""
        count = 0
        while True:
            self.skip_space()
            if self.peek() != ",":
                return count
            self.pos += 1
            count += 1


def parse_challenges(header: str, *, source: str = "the registry") -> list[Challenge]:
    """Every challenge in ``header``, in order; ``[]`` for an empty header.

    Raises :class:`~sim.errors.AuthenticationError` (naming ``source``) when the
    header does not parse: an unterminated quote, a parameter without a value.
    """
    reader = _Reader(header, source)
    challenges: list[Challenge] = []
    reader.skip_commas()
    while not reader.at_end():
        scheme = reader.token()
        if scheme is None:
            raise reader.fail("expected an authentication scheme")
        params: dict[str, str] = {}
        # After the scheme: a token68 (alone up to a comma or the end), a parameter list, or nothing.
        reader.skip_space()
        start = reader.pos
        blob = _TOKEN68.match(header, start)
        after = _skip_space(header, blob.end()) if blob is not None else start
        if blob is not None and (after >= len(header) or header[after] == ","):
            params[""] = blob.group()
            reader.pos = after
        elif reader.token() is not None:
            reader.pos = start
            _read_params(reader, params)
        reader.skip_commas()
        challenges.append(Challenge(scheme.lower(), params))
    return challenges


def _read_params(reader: _Reader, params: dict[str, str]) -> None:
    """``key=value`` pairs up to the next challenge (a token not followed by ``=``) or the end."""
    while not reader.at_end():
        start = reader.pos
        name = reader.token()
        if name is None:
            raise reader.fail("expected a parameter name")
        reader.skip_space()
        if reader.peek() != "=":
            reader.pos = start  # a new challenge's scheme
            return
        reader.pos += 1
        reader.skip_space()
        if reader.peek() == '"':
            value = reader.quoted()
        else:
            # RFC 9110 wants a token here; servers also send bare URLs, so take anything up to a
            # comma or a blank.
            bare = _BARE.match(reader.text, reader.pos)
            if bare is None:
                raise reader.fail(f"parameter {name!r} has no value")
            reader.pos = bare.end()
            value = bare.group()
        params[name.lower()] = value
        if reader.skip_commas() == 0 and not reader.at_end():
            # Parameters are comma-separated; a blank alone starts the next challenge's scheme.
            return
