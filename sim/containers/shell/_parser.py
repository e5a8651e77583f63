"""The shell's grammar: POSIX's (XCU 2.10) cut down to what build scripts use.

Lists (``;``, ``&``, newline), ``&&``/``||``, pipelines with ``!``, simple
commands with assignments and redirections, ``if``/``elif``/``else``,
``for``, ``while``/``until``, ``case``, ``{ }``, ``( )`` and ``name() body``.
"""

from __future__ import annotations

import re

from sim.containers.shell._ast import (
    AndOr,
    Case,
    CmdList,
    Command,
    For,
    FuncDef,
    Group,
    If,
    ListItem,
    Lit,
    Part,
    Pipeline,
    Redir,
    Simple,
    While,
    Word,
)
from sim.containers.shell._lexer import NAME, RESERVED, Lexer, ShellSyntaxError, Token

__all__ = ["Parser", "parse"]

_SPECIAL_BUILTIN_NAMES = frozenset({":", ".", "break", "continue", "eval", "exec", "exit", "export", "readonly",
                                    "return", "set", "shift", "unset", "source", "times", "trap"})
_CLOSERS = frozenset({"then", "else", "elif", "fi", "do", "done", "esac", "}"})
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")


class Parser(Lexer):
    """The grammar over the lexer's tokens: :meth:`parse_next` for ash's command-at-a-time runs."""

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

    def _expect_word(self, word: str) -> Token:
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
                if name is None or not NAME.fullmatch(name) or name in _SPECIAL_BUILTIN_NAMES:
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
        if name is None or not NAME.fullmatch(name):
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
    return Parser(src, first_line).parse_program()
