"""Dockerfile variable substitution (``$VAR``, ``${VAR:-word}`` ...): Docker's shell lexer, word by word.

:func:`expand` and :func:`expand_words` are the public entry points (re-exported by
:mod:`sim.images.buildfile`); :func:`process` with ``check_only`` lets the parser refuse
at parse time what no variable values could make valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sim.errors import BuildfileError


def go_quote(text: str) -> str:
    """``text`` quoted as Go's ``%q`` does, so messages read like Docker's."""
    return json.dumps(text, ensure_ascii=False)


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
        return process(word, env)[0]
    except LexError as exc:
        raise BuildfileError(f"failed to process {go_quote(word)}: {exc}", filename=filename, line=line) from None


def expand_words(
    word: str, env: Mapping[str, str], *, filename: str = "Buildfile", line: int | None = None
) -> tuple[str, ...]:
    """Like :func:`expand`, then split into words on unquoted blanks, as Docker's
    ProcessWords (used for EXPOSE): a variable holding ``"80 443"`` gives two words."""
    try:
        return tuple(process(word, env)[1])
    except LexError as exc:
        raise BuildfileError(f"failed to process {go_quote(word)}: {exc}", filename=filename, line=line) from None


class LexError(Exception):
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
            raise LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.done()

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise LexError("unexpected end of statement while looking for matching double-quote")
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
            raise LexError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        if not ch:
            raise LexError("syntax error: missing '}'")
        modifier, null_is_unset = ch, False
        if ch == ":":
            null_is_unset = True
            modifier = self.next()
            if not modifier:
                raise LexError("syntax error: missing '}'")
        if modifier not in "+-?":
            shown = (":" if null_is_unset else "") + modifier
            raise LexError(
                f"unsupported modifier ({shown}) in substitution"
                " (the Buildfile subset has ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg}, ${VAR?msg})"
            )
        try:
            word, _ = self.stop_on("}")
        except LexError:
            if not self.peek():
                raise LexError("syntax error: missing '}'") from None
            raise  # pragma: no cover - stop_on only fails at the end of the text
        value, is_set = self.lookup(name)
        empty = not is_set or (null_is_unset and value == "")
        if modifier == "-":
            return word if empty else value
        if modifier == "+":
            return "" if empty else word
        if empty and not self.check_only:  # "?"
            default = "is not allowed to be unset" if not is_set else "is not allowed to be empty"
            raise LexError(f"{name}: {word or default}")
        return value


def process(word: str, env: Mapping[str, str], *, check_only: bool = False) -> tuple[str, list[str]]:
    return _Lexer(word, env, check_only).stop_on("")
