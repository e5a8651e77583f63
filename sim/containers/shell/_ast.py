"""The shell's syntax tree: words (with their quoting kept as parts) and commands.

A word keeps its quoting as *parts* (literal text, ``$param``, ``$(cmd)``,
``$((expr))``) so the expander can split and glob exactly the unquoted parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Lit", "Param", "CmdSub", "Arith", "Part", "Word",
    "Redir", "Simple", "Pipeline", "AndOr", "ListItem", "CmdList", "If", "For", "While", "Case", "Group", "FuncDef",
    "Command",
]

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


Part = Lit | Param | CmdSub | Arith


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


Command = Simple | If | For | While | Case | Group | FuncDef
