"""Lexer and parser for the POSIX shell subset, producing a small AST.

The grammar is POSIX's (XCU 2.10) cut down to what build scripts use:
lists (``;``, ``&``, newline), ``&&``/``||``, pipelines with ``!``, simple
commands with assignments and redirections, ``if``/``elif``/``else``,
``for``, ``while``/``until``, ``case``, ``{ }``, ``( )`` and ``name() body``.
Words keep their quoting as *parts* (literal text, ``$param``, ``$(cmd)``,
``$((expr))``) so the expander can split and glob exactly the unquoted parts.

Syntax errors carry busybox ash's wording (``unexpected "fi"``,
``unexpected end of file (expecting "done")``, ``unterminated quoted string``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

__all__ = ["ShellSyntaxError", "parse", "Word", "Lit", "Param", "CmdSub", "Arith"]


class ShellSyntaxError(Exception):
    """A script does not parse; ``str()`` is the message after ``syntax error: ``."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# -- words -------------------------------------------------------------------------


@dataclass
class Lit:
    text: str
    quoted: bool


@dataclass
class Param:
    name: str
    quoted: bool
    op: str | None = None  # "-", ":-", "=", ":=", "+", ":+", "?", ":?", "#", "##", "%", "%%", "len", ":", "/", "//"
    arg: Word | None = None
    arg2: Word | None = None  # the replacement of ${x/pat/repl}


@dataclass
class CmdSub:
    body: CmdList
    quoted: bool


@dataclass
class Arith:
    expr: Word
    quoted: bool


Part = Union[Lit, Param, CmdSub, Arith]


@dataclass
class Word:
    parts: list[Part]
    raw: str = ""

    @property
    def plain(self) -> str | None:
        """The word's text when it is one unquoted literal (reserved words, names), else None."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Lit) and not self.parts[0].quoted:
            return self.parts[0].text
        return None

    @property
    def has_quotes(self) -> bool:
        return any(getattr(p, "quoted", False) for p in self.parts)


# -- commands ----------------------------------------------------------------------


@dataclass
class Redir:
    fd: int
    op: str  # "<", ">", ">>", ">|", "<>", "<&", ">&", "<<", "<<-"
    target: Word
    heredoc: Word | None = None  # the body, for "<<" (already split into parts when expanding)


@dataclass
class Simple:
    assigns: list[tuple[str, Word]]
    words: list[Word]
    redirs: list[Redir]
    line: int


@dataclass
class Pipeline:
    cmds: list[Command]
    negate: bool
    line: int


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]]


@dataclass
class ListItem:
    andor: AndOr
    background: bool


@dataclass
class CmdList:
    items: list[ListItem] = field(default_factory=list)


@dataclass
class If:
    clauses: list[tuple[CmdList, CmdList]]
    else_: CmdList | None
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class For:
    var: str
    words: list[Word] | None  # None: "for x; do" iterates "$@"
    body: CmdList
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class While:
    cond: CmdList
    body: CmdList
    until: bool
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Case:
    word: Word
    arms: list[tuple[list[Word], CmdList]]
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Group:
    body: CmdList
    subshell: bool
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class FuncDef:
    name: str
    body: Command
    line: int


Command = Union[Simple, If, For, While, Case, Group, FuncDef]

_SPECIAL_BUILTIN_NAMES = frozenset({":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly",
                                    "return", "set", "shift", "unset", "source", "times", "trap"})
_CLOSERS = frozenset({"then", "else", "elif", "fi", "do", "done", "esac", "}"})
RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "{", "}", "!", "in"})
_OPERATORS = ("&&", "||", ";;", "<<-", "<<", "<>", "<&", ">>", ">&", ">|", ";", "&", "|", "(", ")", "<", ">")
_META = set(" \t\n;&|<>()")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_SPECIAL_PARAMS = set("@*#?-$!0123456789")


@dataclass
class _Tok:
    kind: str  # "word", "op", "newline", "eof"
    value: str
    line: int
    word: Word | None = None
    io_fd: int | None = None


def _describe(tok: _Tok) -> str:
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "newline":
        return "newline"
    if tok.kind == "word" and tok.value not in RESERVED:
        return "word"
    if tok.kind == "op" and tok.value in ("<", ">", ">>", "<<", "<<-", "<>", "<&", ">&", ">|"):
        return "redirection"
    return f'"{tok.value}"'


class _Parser:
    def __init__(self, src: str, line: int = 0) -> None:
        self.src = src
        self.pos = 0
        self.line = line
        self.peeked: _Tok | None = None
        self.heredocs: list[tuple[Redir, str, bool, bool]] = []  # (redir, delimiter, strip_tabs, expand)

    # -- errors ------------------------------------------------------------------

    def unexpected(self, tok: _Tok, expecting: str | None = None) -> ShellSyntaxError:
        msg = f"unexpected {_describe(tok)}"
        if expecting is not None:
            msg += f' (expecting "{expecting}")'
        return ShellSyntaxError(msg, tok.line)

    # -- lexer -------------------------------------------------------------------

    def peek(self) -> _Tok:
        if self.peeked is None:
            self.peeked = self._lex()
        return self.peeked

    def take(self) -> _Tok:
        tok = self.peek()
        self.peeked = None
        return tok

    def _lex(self) -> _Tok:
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
            return _Tok("eof", "", self.line)
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
            return _Tok("newline", "\n", line)
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
        return _Tok("word", word.raw, line, word)

    def _lex_op(self) -> _Tok | None:
        for op in _OPERATORS:
            if self.src.startswith(op, self.pos):
                self.pos += len(op)
                return _Tok("op", op, self.line)
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
        m = _NAME.match(src, p)
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
            m = _NAME.match(src, p + 1)
            name = m.group() if m else (src[p + 1] if src[p + 1] in _SPECIAL_PARAMS else None)
            end = p + 1 + len(name) if name else p + 1
            if name is None or not src.startswith("}", end):
                raise ShellSyntaxError("bad substitution", self.line)
            self.pos = end + 1
            return Param(name, quoted, "len")
        m = _NAME.match(src, p)
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
        inner = _Parser(src[p:i], self.line)
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
        inner = _Parser(text, self.line)
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
                inner = _Parser(body, self.line)
                redir.heredoc = Word(inner._read_dquoted(heredoc=True), body)
            else:
                redir.heredoc = Word([Lit(body, True)], body)

    # -- grammar -----------------------------------------------------------------

    def parse_next(self) -> CmdList | None:
        """The next complete command (up to a newline at the top level), or None at the end.

        ash parses and runs one such command at a time, so a syntax error on a
        later line comes after the earlier lines ran.
        """
        self._skip_newlines()
        if self.peek().kind == "eof":
            return None
        items: list[ListItem] = []
        while True:
            andor = self._parse_andor()
            tok = self.peek()
            if tok.kind == "op" and tok.value in (";", "&"):
                self.take()
                items.append(ListItem(andor, tok.value == "&"))
                if self.peek().kind in ("newline", "eof"):
                    break
                continue
            items.append(ListItem(andor, False))
            if tok.kind in ("newline", "eof"):
                break
            raise self.unexpected(tok)
        return CmdList(items)

    def parse_program(self) -> CmdList:
        body = self._parse_list(stop_ops=set(), stop_words=set())
        tok = self.peek()
        if tok.kind != "eof":
            raise self.unexpected(tok)
        return body

    def _skip_newlines(self) -> None:
        while self.peek().kind == "newline":
            self.take()

    def _at_stop(self, stop_ops: set[str], stop_words: set[str]) -> bool:
        """A list ends at the end of input or at any token that closes a construct (ash's ``tokendlist``)."""
        tok = self.peek()
        if tok.kind == "eof":
            return True
        if tok.kind == "op" and tok.value in (")", ";;"):
            return True
        return tok.kind == "word" and tok.word is not None and tok.word.plain in _CLOSERS

    def _parse_list(self, stop_ops: set[str], stop_words: set[str]) -> CmdList:
        items: list[ListItem] = []
        self._skip_newlines()
        while not self._at_stop(stop_ops, stop_words):
            andor = self._parse_andor()
            tok = self.peek()
            background = False
            if tok.kind == "op" and tok.value in (";", "&"):
                self.take()
                background = tok.value == "&"
            elif tok.kind == "newline":
                pass
            elif not self._at_stop(stop_ops, stop_words):
                raise self.unexpected(tok)
            items.append(ListItem(andor, background))
            self._skip_newlines()
        return CmdList(items)

    def _parse_andor(self) -> AndOr:
        first = self._parse_pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while self.peek().kind == "op" and self.peek().value in ("&&", "||"):
            op = self.take().value
            self._skip_newlines()
            rest.append((op, self._parse_pipeline()))
        return AndOr(first, rest)

    def _parse_pipeline(self) -> Pipeline:
        negate = False
        tok = self.peek()
        line = tok.line
        if tok.kind == "word" and tok.word is not None and tok.word.plain == "!":
            self.take()
            negate = True
        cmds = [self._parse_command()]
        while self.peek().kind == "op" and self.peek().value == "|":
            self.take()
            self._skip_newlines()
            cmds.append(self._parse_command())
        return Pipeline(cmds, negate, line)

    def _expect_word(self, word: str) -> _Tok:
        tok = self.take()
        if not (tok.kind == "word" and tok.word is not None and tok.word.plain == word):
            raise self.unexpected(tok, word)
        return tok

    def _nonempty(self, body: CmdList, closing: str) -> CmdList:
        if not body.items:
            raise self.unexpected(self.peek(), None if self.peek().kind != "eof" else closing)
        return body

    def _parse_command(self) -> Command:
        tok = self.peek()
        if tok.kind == "word" and tok.word is not None:
            w = tok.word.plain
            if w == "if":
                return self._with_redirs(self._parse_if())
            if w == "for":
                return self._with_redirs(self._parse_for())
            if w in ("while", "until"):
                return self._with_redirs(self._parse_while(w == "until"))
            if w == "case":
                return self._with_redirs(self._parse_case())
            if w == "{":
                self.take()
                body = self._nonempty(self._parse_list(set(), {"}"}), "}")
                self._expect_word("}")
                return self._with_redirs(Group(body, subshell=False))
            if w in RESERVED and w != "in":
                raise self.unexpected(tok)
        if tok.kind == "op" and tok.value == "(":
            self.take()
            body = self._nonempty(self._parse_list({")"}, set()), ")")
            close = self.take()
            if close.kind != "op" or close.value != ")":
                raise self.unexpected(close, ")")
            return self._with_redirs(Group(body, subshell=True))
        return self._parse_simple()

    def _with_redirs(self, cmd: Command) -> Command:
        redirs: list[Redir] = cmd.redirs  # type: ignore[union-attr]
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value in ("<", ">", ">>", "<<", "<<-", "<>", "<&", ">&", ">|"):
                redirs.append(self._parse_redir())
            else:
                return cmd

    def _parse_redir(self) -> Redir:
        tok = self.take()
        op = tok.value
        fd = tok.io_fd if tok.io_fd is not None else (0 if op[0] == "<" and op != "<>" else 1)
        if op == "<>":
            fd = tok.io_fd if tok.io_fd is not None else 0
        target = self.take()
        if target.kind != "word" or target.word is None:
            raise self.unexpected(target)
        redir = Redir(fd, op, target.word)
        if op in ("<<", "<<-"):
            delim = "".join(p.text if isinstance(p, Lit) else "" for p in target.word.parts)
            if not target.word.parts or not all(isinstance(p, Lit) for p in target.word.parts):
                delim = target.word.raw.replace('"', "").replace("'", "").replace("\\", "")
            expand = not target.word.has_quotes
            self.heredocs.append((redir, delim, op == "<<-", expand))
        return redir

    def _parse_simple(self) -> Command:
        assigns: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirs: list[Redir] = []
        line = self.peek().line
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value in ("<", ">", ">>", "<<", "<<-", "<>", "<&", ">&", ">|"):
                redirs.append(self._parse_redir())
                continue
            if tok.kind == "op" and tok.value == "(" and len(words) == 1 and not assigns and not redirs:
                # "name ( )": a function definition (ash tries this for any first word)
                self.take()
                close = self.take()
                if close.kind != "op" or close.value != ")":
                    raise self.unexpected(close, ")")
                name = words[0].plain
                if name is None or not _NAME.fullmatch(name) or name in _SPECIAL_BUILTIN_NAMES:
                    raise ShellSyntaxError("bad function name", line)
                self._skip_newlines()
                return FuncDef(name, self._parse_command(), line)
            if tok.kind != "word" or tok.word is None:
                break
            self.take()
            if not words:
                split = _split_assignment(tok.word)
                if split is not None:
                    assigns.append(split)
                    continue
            words.append(tok.word)
        if not assigns and not words and not redirs:
            raise self.unexpected(self.peek())
        return Simple(assigns, words, redirs, line)

    def _parse_if(self) -> If:
        self.take()
        clauses: list[tuple[CmdList, CmdList]] = []
        else_: CmdList | None = None
        while True:
            cond = self._nonempty(self._parse_list(set(), {"then"}), "then")
            self._expect_word("then")
            body = self._nonempty(self._parse_list(set(), {"elif", "else", "fi"}), "fi")
            clauses.append((cond, body))
            tok = self.take()
            w = tok.word.plain if tok.kind == "word" and tok.word is not None else None
            if w == "elif":
                continue
            if w == "else":
                else_ = self._nonempty(self._parse_list(set(), {"fi"}), "fi")
                self._expect_word("fi")
            elif w != "fi":
                raise self.unexpected(tok, "fi")
            return If(clauses, else_)

    def _parse_for(self) -> For:
        self.take()
        name_tok = self.take()
        name = name_tok.word.plain if name_tok.kind == "word" and name_tok.word is not None else None
        if name is None or not _NAME.fullmatch(name):
            raise ShellSyntaxError("bad for loop variable", name_tok.line)
        words: list[Word] | None = None
        tok = self.peek()
        if tok.kind == "newline":
            self._skip_newlines()
            tok = self.peek()
        if tok.kind == "word" and tok.word is not None and tok.word.plain == "in":
            self.take()
            words = []
            while True:
                tok = self.peek()
                if tok.kind != "word" or tok.word is None:
                    break
                words.append(self.take().word)  # type: ignore[arg-type]
            tok = self.take()
            if not (tok.kind == "newline" or (tok.kind == "op" and tok.value == ";")):
                raise self.unexpected(tok, "do")
        elif tok.kind == "op" and tok.value == ";":
            self.take()
        self._skip_newlines()
        self._expect_word("do")
        body = self._nonempty(self._parse_list(set(), {"done"}), "done")
        self._expect_word("done")
        return For(name, words, body)

    def _parse_while(self, until: bool) -> While:
        self.take()
        cond = self._nonempty(self._parse_list(set(), {"do"}), "do")
        self._expect_word("do")
        body = self._nonempty(self._parse_list(set(), {"done"}), "done")
        self._expect_word("done")
        return While(cond, body, until)

    def _parse_case(self) -> Case:
        self.take()
        tok = self.take()
        if tok.kind != "word" or tok.word is None:
            raise self.unexpected(tok)
        word = tok.word
        self._skip_newlines()
        self._expect_word("in")
        arms: list[tuple[list[Word], CmdList]] = []
        while True:
            self._skip_newlines()
            tok = self.peek()
            if tok.kind == "word" and tok.word is not None and tok.word.plain == "esac":
                self.take()
                return Case(word, arms)
            if tok.kind == "op" and tok.value == "(":
                self.take()
            patterns: list[Word] = []
            while True:
                tok = self.take()
                if tok.kind != "word" or tok.word is None:
                    raise self.unexpected(tok, ")" if patterns or tok.kind == "eof" else None)
                patterns.append(tok.word)
                sep = self.take()
                if sep.kind == "op" and sep.value == "|":
                    continue
                if sep.kind == "op" and sep.value == ")":
                    break
                raise self.unexpected(sep, ")")
            body = self._parse_list({";;"}, {"esac"})
            arms.append((patterns, body))
            tok = self.peek()
            if tok.kind == "op" and tok.value == ";;":
                self.take()
                continue
            self._skip_newlines()
            if not (tok.kind == "word" and tok.word is not None and tok.word.plain == "esac"):
                raise self.unexpected(self.peek(), "esac")


def _split_assignment(word: Word) -> tuple[str, Word] | None:
    if not word.parts:
        return None
    first = word.parts[0]
    if not isinstance(first, Lit) or first.quoted:
        return None
    m = _ASSIGN.match(first.text)
    if not m:
        return None
    rest = first.text[m.end():]
    parts: list[Part] = ([Lit(rest, False)] if rest else []) + list(word.parts[1:])
    return m.group(1), Word(parts, word.raw[m.end():])


def parse(src: str, first_line: int = 0) -> CmdList:
    """Parse a whole script; raises :class:`ShellSyntaxError`."""
    return _Parser(src, first_line).parse_program()
