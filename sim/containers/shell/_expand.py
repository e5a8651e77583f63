"""Word expansion: tilde, parameters, command substitution and arithmetic, then fields.

A word expands in POSIX order (XCU 2.6): tilde, parameter / command /
arithmetic expansion, field splitting of the unquoted results on ``$IFS``,
pathname expansion of unquoted ``* ? [``, quote removal.  Internally a word
becomes *segments* ``(text, quoted, splittable)`` (see
:mod:`sim.containers.shell._fields`); quoted text never splits and never globs.
"""

from __future__ import annotations

import re

from sim.containers.shell._arith import arith
from sim.containers.shell._ast import Arith, CmdSub, Lit, Param, Word
from sim.containers.shell._exphost import ExpansionError, ExpansionHost
from sim.containers.shell._fields import AT_EMPTY, FIELD_BREAK, Segment, glob_fields, split_fields
from sim.containers.shell._pattern import escape_quoted, replace, trim

__all__ = ["Expander"]


# -- the expander ------------------------------------------------------------------


class Expander:
    """Expands the words of one shell (its variables, options and file system)."""

    def __init__(self, host: ExpansionHost) -> None:
        self.host = host

    # public entry points ---------------------------------------------------------

    def fields(self, words: list[Word]) -> list[str]:
        """Words as a command's arguments: split on $IFS and globbed."""
        out: list[str] = []
        for word in words:
            for field in split_fields(self._segments(word, tilde=True), self.host.getvar("IFS")):
                if self.host.noglob:
                    out.append("".join(t for t, _ in field))
                else:
                    out.extend(glob_fields(self.host, field))
        return out

    def single(self, word: Word, *, tilde: bool = True) -> str:
        """One string: assignments, redirection targets, here-documents, ``case`` words."""
        return "".join(" " if seg is FIELD_BREAK else seg[0] for seg in self._segments(word, tilde=tilde))

    def pattern(self, word: Word) -> str:
        """A ``case`` or ``${x#pat}`` pattern: quoted characters escaped."""
        segs = self._segments(word, tilde=True)
        return escape_quoted([(" ", True) if s is FIELD_BREAK else (s[0], s[1]) for s in segs])

    # internals -------------------------------------------------------------------

    def _segments(self, word: Word, *, tilde: bool) -> list[Segment]:
        segs: list[Segment] = []
        parts = list(word.parts)
        if tilde and parts and isinstance(parts[0], Lit) and not parts[0].quoted and parts[0].text.startswith("~"):
            text = parts[0].text
            end = text.find("/")
            user: str | None = text[1:] if end < 0 else text[1:end]
            if end < 0 and len(parts) > 1:
                user = None  # "~$x" or "~'a'": no tilde expansion
            home = None
            if user is not None:
                home = self.host.getvar("HOME") if user == "" else self.host.home_of(user)
            if home is not None:
                segs.append((home, True, False))
                rest = "" if end < 0 else text[end:]
                parts[0] = Lit(rest, False)
        for part in parts:
            if isinstance(part, Lit):
                segs.append((part.text, part.quoted, False))
            elif isinstance(part, Param):
                segs.extend(self._param(part))
            elif isinstance(part, CmdSub):
                text = self.host.command_substitution(part.body)
                segs.append((text, part.quoted, not part.quoted))
            elif isinstance(part, Arith):
                expr = self.single(part.expr, tilde=False)
                value = str(arith(expr, self.host))
                segs.append((value, part.quoted, not part.quoted))
        return segs

    def _value(self, name: str) -> str | list[str] | None:
        if name.isdigit() or name in "@*#?-$!" and len(name) == 1:
            return self.host.special(name)
        return self.host.getvar(name)

    def _param(self, part: Param) -> list[Segment]:
        name, op = part.name, part.op
        raw = self._value(name)
        if op == "len":
            if isinstance(raw, list):  # ${#@}: the length of "$*"
                return [(str(len(" ".join(raw))), part.quoted, False)]
            if raw is None and self.host.nounset and name not in "@*":
                raise ExpansionError(f"{name}: parameter not set")
            return [(str(len(raw or "")), part.quoted, False)]
        if isinstance(raw, list) and op in (":", "/", "//"):
            raw = " ".join(raw) if raw else None
        if isinstance(raw, list):  # $@ and $*
            is_set = bool(raw)
            if op is None or op in ("#", "##", "%", "%%"):
                items = raw
                if op is not None:
                    pat = self.pattern(part.arg) if part.arg is not None else ""
                    items = [trim(x, pat, op) for x in raw]
                return self._positional(name, items, part.quoted)
            value_for_test: str | None = " ".join(raw) if is_set else None
            if value_for_test is not None and op.startswith(":") and value_for_test == "":
                value_for_test = None
            if op in ("-", ":-", "=", ":="):
                if value_for_test is not None:
                    return self._positional(name, raw, part.quoted)
                return self._word_value(part)
            if op in ("+", ":+"):
                return self._word_value(part) if value_for_test is not None else []
            if op in ("?", ":?"):
                if value_for_test is None:
                    raise ExpansionError(f"{name}: " + (self.single(part.arg) if part.arg and part.arg.parts else "parameter not set"))
                return self._positional(name, raw, part.quoted)
        assert not isinstance(raw, list)
        value: str | None = raw
        if op is None:
            if value is None:
                if self.host.nounset and name not in "@*":
                    raise ExpansionError(f"{name}: parameter not set")
                value = ""
            return [(value, part.quoted, not part.quoted)]
        unset = value is None or (op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return self._word_value(part) if unset else [(value or "", part.quoted, not part.quoted)]
        if op in ("=", ":="):
            if unset:
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise ExpansionError(f"{name}: parameter not set")
                new = self.single(part.arg) if part.arg is not None else ""
                self.host.setvar(name, new)
                return [(new, part.quoted, not part.quoted)]
            return [(value or "", part.quoted, not part.quoted)]
        if op in ("+", ":+"):
            return [] if unset else self._word_value(part)
        if op in ("?", ":?"):
            if unset:
                msg = self.single(part.arg) if part.arg is not None and part.arg.parts else "parameter not set"
                raise ExpansionError(f"{name}: {msg}")
            return [(value or "", part.quoted, not part.quoted)]
        if value is None and op in (":", "/", "//"):
            if self.host.nounset:
                raise ExpansionError(f"{name}: parameter not set")
            value = ""
        if op == ":":
            assert value is not None
            spec = self.single(part.arg) if part.arg is not None else ""
            off_text, colon, len_text = spec.partition(":")
            off = arith(off_text, self.host) if off_text.strip() else 0
            n = len(value)
            if off < 0:
                off = n + off
                if off < 0:
                    return [("", part.quoted, not part.quoted)]
            if colon:
                length = arith(len_text, self.host) if len_text.strip() else 0
                end = off + length if length >= 0 else n + length
                text = value[off:max(end, off)]
            else:
                text = value[off:]
            return [(text, part.quoted, not part.quoted)]
        if op in ("/", "//"):
            assert value is not None
            pat = self.pattern(part.arg) if part.arg is not None else ""
            repl = self.single(part.arg2) if part.arg2 is not None else ""
            return [(replace(value, pat, repl, op), part.quoted, not part.quoted)]
        # pattern removal
        if value is None:
            if self.host.nounset:
                raise ExpansionError(f"{name}: parameter not set")
            value = ""
        pat = self.pattern(part.arg) if part.arg is not None else ""
        return [(trim(value, pat, op), part.quoted, not part.quoted)]

    def _word_value(self, part: Param) -> list[Segment]:
        if part.arg is None:
            return []
        segs = self._segments(part.arg, tilde=True)
        if part.quoted:
            return [(" ", True, False) if s is FIELD_BREAK else (s[0], True, False) for s in segs] or [("", True, False)]
        return segs

    def _positional(self, name: str, items: list[str], quoted: bool) -> list[Segment]:
        if not quoted:
            out: list[Segment] = []
            for i, item in enumerate(items):
                if i:
                    out.append((" ", False, True))
                out.append((item, False, True))
            return out
        if name == "*":
            ifs = self.host.getvar("IFS")
            sep = " " if ifs is None else ifs[:1]
            return [(sep.join(items), True, False)]
        if not items:
            return [AT_EMPTY]
        out = []
        for i, item in enumerate(items):
            if i:
                out.append(FIELD_BREAK)
            out.append((item, True, False))
        return out
