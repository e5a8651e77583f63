"""The shell's lexer: tokens, words and their quoting, here-documents.

A word is read into the parts of :class:`~sim.containers.shell._ast.Word`;
``$(...)`` and backquotes hold whole command lists, so the lexer hands those
to the grammar (:class:`~sim.containers.shell._parser.Parser`, a subclass).

Syntax errors carry busybox ash's wording (``unexpected "fi"``,
``unexpected end of file (expecting "done")``, ``unterminated quoted string``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from sim.containers.shell._ast import Arith, CmdList, CmdSub, Lit, Param, Part, Redir, Word

__all__ = ["ShellSyntaxError", "Lexer", "Token", "RESERVED", "NAME"]


class ShellSyntaxError(Exception):
    """A script does not parse; ``str()`` is the message after ``syntax error: ``."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "{", "}", "!", "in"})
_OPERATORS = ("&&", "||", ";;", "<<-", "<<", "<>", "<&", ">>", ">&", ">|", ";", "&", "|", "(", ")", "<", ">")
_META = set(" \t\n;&|<>()")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMS = set("@*#?-$!0123456789")


@dataclass
class Token:
    kind: str  # "word", "op", "newline", "eof"
    value: str
    line: int
    word: Word | None = None
    io_fd: int | None = None


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "newline":
        return "newline"
    if tok.kind == "word" and tok.value not in RESERVED:
        return "word"
    if tok.kind == "op" and tok.value in ("<", ">", ">>", "<<", "<<-", "<>", "<&", ">&", ">|"):
        return "redirection"
    return f'"{tok.value}"'


class Lexer(ABC):
    """Tokens on demand (``peek``/``take``); the grammar above asks for them one at a time."""

    def __init__(self, src: str, line: int = 0) -> None:
        self.src = src
        self.pos = 0
        self.line = line
        self.peeked: Token | None = None
        self.heredocs: list[tuple[Redir, str, bool, bool]] = []  # (redir, delimiter, strip_tabs, expand)

    # -- errors ------------------------------------------------------------------

    def unexpected(self, tok: Token, expecting: str | None = None) -> ShellSyntaxError:
        msg = f"unexpected {_describe(tok)}"
        if expecting is not None:
            msg += f' (expecting "{expecting}")'
        return ShellSyntaxError(msg, tok.line)

    # -- the grammar, for $(...) and backquotes ---------------------------------------

    @abstractmethod
    def parse_program(self) -> CmdList:
        """A whole script up to the end of input."""

    @abstractmethod
    def _parse_list(self, stop_ops: set[str], stop_words: set[str]) -> CmdList:
        """A command list up to a token that closes a construct."""

    # -- lexer -------------------------------------------------------------------

    def peek(self) -> Token:
        if self.peeked is None:
            self.peeked = self._lex()
        return self.peeked

    def take(self) -> Token:
        tok = self.peek()
        self.peeked = None
        return tok

    def _lex(self) -> Token:
        src = self.src
        while True:
            while self.pos < len(src) and src[self.pos] in " \t":
                self.pos += 1
            if src.startswith("\\\n", self.pos):
                self.pos += 2
                self.line += 1
                continue
            break
        if self.pos >= len(src):
            if self.heredocs:
                self._read_heredocs()
            return Token("eof", "", self.line)
        c = src[self.pos]
        if c == "#":
            while self.pos < len(src) and src[self.pos] != "\n":
                self.pos += 1
            return self._lex()
        if c == "\n":
            line = self.line
            self.pos += 1
            self.line += 1
            if self.heredocs:
                self._read_heredocs()
            return Token("newline", "\n", line)
        m = re.compile(r"\d+(?=[<>])").match(src, self.pos)
        if m:
            self.pos = m.end()
            op_tok = self._lex_op()
            assert op_tok is not None
            op_tok.io_fd = int(m.group())
            return op_tok
        op = self._lex_op()
        if op is not None:
            return op
        line = self.line
        word = self._read_word()
        return Token("word", word.raw, line, word)

    def _lex_op(self) -> Token | None:
        for op in _OPERATORS:
            if self.src.startswith(op, self.pos):
                self.pos += len(op)
                return Token("op", op, self.line)
        return None

    def _read_word(self) -> Word:
        start = self.pos
        parts: list[Part] = []
        buf: list[str] = []
        src = self.src

        def flush() -> None:
            if buf:
                parts.append(Lit("".join(buf), False))
                buf.clear()

        while self.pos < len(src):
            c = src[self.pos]
            if c in _META:
                break
            if c == "\\":
                if self.pos + 1 >= len(src):
                    buf.append("\\")
                    self.pos += 1
                    continue
                nxt = src[self.pos + 1]
                self.pos += 2
                if nxt == "\n":
                    self.line += 1
                    continue
                flush()
                parts.append(Lit(nxt, True))
                continue
            if c == "'":
                end = src.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated quoted string", self.line)
                flush()
                text = src[self.pos + 1:end]
                self.line += text.count("\n")
                parts.append(Lit(text, True))
                self.pos = end + 1
                continue
            if c == '"':
                flush()
                self.pos += 1
                dq = self._read_dquoted()
                parts.extend(dq if dq else [Lit("", True)])
                continue
            if c == "$":
                part = self._read_dollar(quoted=False)
                if part is None:
                    buf.append("$")
                else:
                    flush()
                    parts.append(part)
                continue
            if c == "`":
                flush()
                parts.append(self._read_backtick(quoted=False))
                continue
            buf.append(c)
            self.pos += 1
        flush()
        return Word(parts, src[start:self.pos])

    def _read_dquoted(self, *, heredoc: bool = False) -> list[Part]:
        """Parts up to the closing quote (or to the end, for a here-document body)."""
        parts: list[Part] = []
        buf: list[str] = []
        src = self.src

        def flush() -> None:
            if buf:
                parts.append(Lit("".join(buf), True))
                buf.clear()

        while True:
            if self.pos >= len(src):
                if heredoc:
                    break
                raise ShellSyntaxError("unterminated quoted string", self.line)
            c = src[self.pos]
            if c == '"' and not heredoc:
                self.pos += 1
                break
            if c == "\\" and self.pos + 1 < len(src):
                nxt = src[self.pos + 1]
                if nxt == "\n":
                    self.pos += 2
                    self.line += 1
                    continue
                if nxt in "$`\\" or (nxt == '"' and not heredoc):
                    buf.append(nxt)
                    self.pos += 2
                    continue
                buf.append("\\")
                self.pos += 1
                continue
            if c == "$":
                part = self._read_dollar(quoted=True)
                if part is None:
                    buf.append("$")
                else:
                    flush()
                    parts.append(part)
                continue
            if c == "`":
                flush()
                parts.append(self._read_backtick(quoted=True))
                continue
            if c == "\n":
                self.line += 1
            buf.append(c)
            self.pos += 1
        flush()
        return parts

    def _read_dollar(self, *, quoted: bool) -> Part | None:
        src = self.src
        p = self.pos + 1
        if p >= len(src):
            self.pos = p
            return None
        c = src[p]
        if src.startswith("((", p):
            return self._read_arith(quoted)
        if c == "(":
            self.pos = p + 1
            saved = self.peeked
            self.peeked = None
            body = self._parse_list(stop_ops={")"}, stop_words=set())
            tok = self.take()
            if tok.kind != "op" or tok.value != ")":
                if tok.kind == "eof":
                    raise ShellSyntaxError("unexpected end of file (expecting \")\")", tok.line)
                raise self.unexpected(tok, ")")
            self.peeked = saved
            return CmdSub(body, quoted)
        if c == "{":
            return self._read_braced(quoted)
        m = NAME.match(src, p)
        if m:
            self.pos = m.end()
            return Param(m.group(), quoted)
        if c in _SPECIAL_PARAMS:
            self.pos = p + 1
            return Param(c, quoted)
        self.pos = p
        return None

    def _read_braced(self, quoted: bool) -> Part:
        src = self.src
        close = src.find("}", self.pos + 2)
        if close < 0:
            raise ShellSyntaxError("missing '}'", self.line)
        p = self.pos + 2
        if src.startswith("#", p) and p + 1 < len(src) and src[p + 1] != "}":
            m = NAME.match(src, p + 1)
            name = m.group() if m else (src[p + 1] if src[p + 1] in _SPECIAL_PARAMS else None)
            end = p + 1 + len(name) if name else p + 1
            if name is None or not src.startswith("}", end):
                raise ShellSyntaxError("bad substitution", self.line)
            self.pos = end + 1
            return Param(name, quoted, "len")
        m = NAME.match(src, p)
        if m:
            name = m.group()
            p = m.end()
        elif p < len(src) and src[p] in _SPECIAL_PARAMS:
            name = src[p]
            p += 1
        else:
            raise ShellSyntaxError("bad substitution", self.line)
        if src.startswith("}", p):
            self.pos = p + 1
            return Param(name, quoted)
        for op in (":-", ":=", ":+", ":?", "##", "%%", "//", "-", "=", "+", "?", "#", "%", "/", ":"):
            if src.startswith(op, p):
                self.pos = p + len(op)
                if op in ("/", "//"):  # busybox ash has no "/#" and "/%" anchors
                    pattern = self._read_brace_arg(quoted, pattern=True, stop="/")
                    if self.src[self.pos - 1] == "/":
                        repl = self._read_brace_arg(quoted, pattern=False)
                    else:
                        repl = Word([], "")
                    return Param(name, quoted, op, pattern, repl)
                if op == ":" and src.startswith("}", self.pos):
                    raise ShellSyntaxError("missing '}'", self.line)
                arg = self._read_brace_arg(quoted, pattern=op in ("#", "##", "%", "%%"))
                return Param(name, quoted, op, arg)
        raise ShellSyntaxError("bad substitution", self.line)

    def _read_brace_arg(self, quoted: bool, pattern: bool, stop: str = "") -> Word:
        """The word inside ``${name<op>word}`` up to the matching ``}`` (or ``stop``)."""
        parts: list[Part] = []
        buf: list[str] = []
        src = self.src
        start = self.pos
        dq = False

        def flush() -> None:
            if buf:
                parts.append(Lit("".join(buf), quoted or dq))
                buf.clear()

        while True:
            if self.pos >= len(src):
                raise ShellSyntaxError("unterminated quoted string" if dq else "bad substitution", self.line)
            c = src[self.pos]
            if (c == "}" or (stop and c == stop)) and not dq:
                self.pos += 1
                break
            if c == "\\" and self.pos + 1 < len(src):
                nxt = src[self.pos + 1]
                self.pos += 2
                if (quoted or dq) and nxt not in "$`\\\"}" + stop:
                    buf.append("\\" + nxt)
                    continue
                flush()
                parts.append(Lit(nxt, True))
                continue
            if c == "'" and not quoted and not dq:
                end = src.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated quoted string", self.line)
                flush()
                parts.append(Lit(src[self.pos + 1:end], True))
                self.pos = end + 1
                continue
            if c == '"':
                flush()
                dq = not dq
                if not dq and not parts:
                    parts.append(Lit("", True))
                self.pos += 1
                continue
            if c == "$":
                part = self._read_dollar(quoted=quoted or dq)
                if part is None:
                    buf.append("$")
                else:
                    flush()
                    parts.append(part)
                continue
            if c == "`":
                flush()
                parts.append(self._read_backtick(quoted=quoted or dq))
                continue
            if c == "\n":
                self.line += 1
            buf.append(c)
            self.pos += 1
        flush()
        return Word(parts, src[start:self.pos - 1])

    def _read_arith(self, quoted: bool) -> Part:
        src = self.src
        p = self.pos + 3
        depth = 0
        i = p
        while i < len(src):
            ch = src[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    if src.startswith("))", i):
                        break
                    raise ShellSyntaxError("unexpected \")\"", self.line)
                depth -= 1
            i += 1
        else:
            raise ShellSyntaxError('unexpected end of file (expecting "))")', self.line)
        inner = type(self)(src[p:i], self.line)
        parts = inner._read_dquoted(heredoc=True)
        self.pos = i + 2
        return Arith(Word(parts, src[p:i]), quoted)

    def _read_backtick(self, quoted: bool) -> Part:
        src = self.src
        i = self.pos + 1
        out: list[str] = []
        while True:
            if i >= len(src):
                raise ShellSyntaxError("unterminated quoted string", self.line)
            ch = src[i]
            if ch == "`":
                break
            if ch == "\\" and i + 1 < len(src) and src[i + 1] in "$`\\" + ('"' if quoted else ""):
                out.append(src[i + 1])
                i += 2
                continue
            out.append(ch)
            i += 1
        self.pos = i + 1
        text = "".join(out)
        inner = type(self)(text, self.line)
        body = inner.parse_program()
        self.line += text.count("\n")
        return CmdSub(body, quoted)

    def _read_heredocs(self) -> None:
        pending, self.heredocs = self.heredocs, []
        for redir, delim, strip_tabs, expand in pending:
            lines: list[str] = []
            src = self.src
            while self.pos < len(src):
                end = src.find("\n", self.pos)
                line = src[self.pos:] if end < 0 else src[self.pos:end]
                self.pos = len(src) if end < 0 else end + 1
                self.line += 1
                if strip_tabs:
                    line = line.lstrip("\t")
                if line == delim:
                    break
                lines.append(line + "\n")
            body = "".join(lines)
            if expand:
                inner = type(self)(body, self.line)
                redir.heredoc = Word(inner._read_dquoted(heredoc=True), body)
            else:
                redir.heredoc = Word([Lit(body, True)], body)

