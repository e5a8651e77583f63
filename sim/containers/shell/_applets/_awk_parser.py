"""A recursive-descent parser for POSIX awk (the grammar of XCU ``awk``), producing tuple trees.

Expression nodes are tuples whose first item names them: ``("num", x)``,
``("str", s)``, ``("ere", pattern)``, ``("var", name)``, ``("field", e)``,
``("index", name, [subscripts])``, ``("assign", op, lvalue, e)``,
``("cond", c, a, b)``, ``("or"|"and", a, b)``, ``("in", [subscripts], name)``,
``("match", negated, e, regex)``, ``("cmp", op, a, b)``, ``("concat", a, b)``,
``("binop", op, a, b)``, ``("unary", op, e)``, ``("incdec", op, prefix, lvalue)``,
``("call", name, args)``, ``("builtin", name, args)``, ``("getline", lvalue, file)``,
``("cmdgetline", command, lvalue)``,
``("group", e)``.  Statements are ``("print"|"printf", args, redirect, target)``,
``("expr", e)``, ``("if", c, then, else)``, ``("while", c, body)``, ``("do", body, c)``,
``("for", init, cond, step, body)``, ``("forin", var, array, body)``, ``("block", stmts)``,
``("next",)``, ``("nextfile",)``, ``("exit", e)``, ``("return", e)``, ``("break",)``,
``("continue",)``, ``("delete", name, subscripts)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from sim.containers.shell._applets._awk_lexer import AwkSyntaxError, Token, tokenize

__all__ = ["Program", "Function", "Rule", "parse", "Node"]

Node = tuple[Any, ...]


@dataclass(frozen=True)
class Function:
    params: tuple[str, ...]
    body: Node


@dataclass(frozen=True)
class Rule:
    """``pattern`` (None: every record), ``pattern2`` for a range, ``action`` (None: print)."""

    pattern: Node | None
    pattern2: Node | None
    action: Node | None


@dataclass
class Program:
    begin: list[Node] = field(default_factory=list)
    end: list[Node] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)


_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=", "^=", "**=")
_CMP_OPS = ("<", "<=", "!=", "==", ">", ">=")
_OPERAND_START = frozenset({"num", "str", "ere", "name", "funcname", "builtin", "$", "(", "!", "-", "+", "++", "--"})
_CONCAT_START = frozenset({"num", "str", "ere", "name", "funcname", "builtin", "$", "(", "++", "--"})


class _Parser:
    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.i = 0
        self.no_gt = False  # inside print's expression list, ">" is a redirection
        self.no_in = False  # in "for (x in a)" heads

    # -- tokens --------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def at(self, *values: str) -> bool:
        """The current token is one of ``values``: a kind (``name``, ``newline`` ...), an operator or a keyword."""
        t = self.tok
        return t.kind in values or (t.kind == "keyword" and t.value in values)

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, value: str) -> Token:
        if not self.at(value):
            self.error()
        return self.take()

    def error(self, msg: str = "Unexpected token") -> NoReturn:
        raise AwkSyntaxError(msg, self.tok.line)

    def newlines(self) -> None:
        while self.at("newline"):
            self.take()

    def terminators(self) -> None:
        while self.at("newline", ";"):
            self.take()

    # -- program -------------------------------------------------------------------

    def program(self) -> Program:
        prog = Program()
        self.terminators()
        while not self.at("eof"):
            if self.at("BEGIN"):
                self.take()
                self.newlines()
                prog.begin.append(self.block())
            elif self.at("END"):
                self.take()
                self.newlines()
                prog.end.append(self.block())
            elif self.at("function", "func"):
                self.take()
                if not self.at("name", "funcname"):
                    self.error()
                name = self.take().value
                self.expect("(")
                params: list[str] = []
                while not self.at(")"):
                    if not self.at("name"):
                        self.error()
                    params.append(self.take().value)
                    if self.at(","):
                        self.take()
                        self.newlines()
                self.take()
                self.newlines()
                prog.functions[name] = Function(tuple(params), self.block())
            elif self.at("{"):
                prog.rules.append(Rule(None, None, self.block()))
            else:
                pattern = self.expr()
                pattern2 = None
                if self.at(","):
                    self.take()
                    self.newlines()
                    pattern2 = self.expr()
                action = self.block() if self.at("{") else None
                prog.rules.append(Rule(pattern, pattern2, action))
            self.terminators()
        return prog

    def block(self) -> Node:
        self.expect("{")
        stmts: list[Node] = []
        self.terminators()
        while not self.at("}"):
            if self.at("eof"):
                self.error()
            stmts.append(self.statement())
            self.terminators()
        self.take()
        return ("block", stmts)

    # -- statements ----------------------------------------------------------------

    def simple_end(self) -> None:
        if self.at(";", "newline"):
            self.take()
        elif not self.at("}", "eof"):
            self.error()

    def body(self) -> Node:
        self.newlines()
        if self.at(";"):
            self.take()
            return ("block", [])
        return self.statement()

    def statement(self) -> Node:
        t = self.tok
        if self.at("{"):
            return self.block()
        if self.at("if"):
            self.take()
            self.expect("(")
            cond = self.expr()
            self.expect(")")
            then = self.body()
            save = self.i
            self.terminators()
            if self.at("else"):
                self.take()
                return ("if", cond, then, self.body())
            self.i = save
            return ("if", cond, then, None)
        if self.at("while"):
            self.take()
            self.expect("(")
            cond = self.expr()
            self.expect(")")
            if self.at(";"):
                self.take()
                return ("while", cond, ("block", []))
            return ("while", cond, self.body())
        if self.at("do"):
            self.take()
            body = self.body()
            self.terminators()
            self.expect("while")
            self.expect("(")
            cond = self.expr()
            self.expect(")")
            self.simple_end()
            return ("do", body, cond)
        if self.at("for"):
            return self.for_statement()
        if self.at(";"):
            self.take()
            return ("block", [])
        if t.kind == "keyword" and t.value in ("next", "nextfile", "break", "continue"):
            self.take()
            self.simple_end()
            return (t.value,)
        if t.kind == "keyword" and t.value in ("exit", "return"):
            self.take()
            value = None if self.at(";", "newline", "}", "eof") else self.expr()
            self.simple_end()
            return (t.value, value)
        if self.at("delete"):
            self.take()
            if not self.at("name"):
                self.error()
            name = self.take().value
            subs = None
            if self.at("["):
                self.take()
                subs = self.expr_list()
                self.expect("]")
            self.simple_end()
            return ("delete", name, subs)
        if self.at("print", "printf"):
            stmt = self.print_statement()
            self.simple_end()
            return stmt
        e = self.expr()
        self.simple_end()
        return ("expr", e)

    def for_statement(self) -> Node:
        self.take()
        self.expect("(")
        if self.at("name") and self.toks[self.i + 1].value == "in" and self.toks[self.i + 2].kind == "name" \
                and self.toks[self.i + 3].value == ")":
            var = self.take().value
            self.take()
            array = self.take().value
            self.take()
            return ("forin", var, array, self.body())
        init = None if self.at(";") else self.simple_expr_statement()
        self.expect(";")
        self.newlines()
        cond = None if self.at(";") else self.expr()
        self.expect(";")
        self.newlines()
        step = None if self.at(")") else self.simple_expr_statement()
        self.expect(")")
        if self.at(";"):
            self.take()
            return ("for", init, cond, step, ("block", []))
        return ("for", init, cond, step, self.body())

    def simple_expr_statement(self) -> Node:
        return ("expr", self.expr())

    def print_statement(self) -> Node:
        kind = self.take().value
        args: list[Node] = []
        saved = self.no_gt
        self.no_gt = True
        try:
            if not self.at(";", "newline", "}", ">", ">>", "|", "eof"):
                if self.at("("):
                    save = self.i
                    self.take()
                    self.no_gt = False
                    items = self.expr_list()
                    self.no_gt = True
                    if self.at(")") and self.toks[self.i + 1].kind in (";", "newline", "}", ">", ">>", "|", "eof"):
                        self.take()
                        args = items
                    else:
                        self.i = save
                        args = self.expr_list()
                else:
                    args = self.expr_list()
        finally:
            self.no_gt = saved
        redirect = target = None
        if self.at(">", ">>", "|"):
            redirect = self.take().value
            target = self.concat()
        return (kind, args, redirect, target)

    # -- expressions ---------------------------------------------------------------

    def expr_list(self) -> list[Node]:
        items = [self.expr()]
        while self.at(","):
            self.take()
            self.newlines()
            items.append(self.expr())
        return items

    def expr(self) -> Node:
        left = self.ternary()
        if self.at(*_ASSIGN_OPS):
            if left[0] not in ("var", "field", "index"):
                self.error()
            op = self.take().value
            self.newlines()
            return ("assign", op, left, self.expr())
        return left

    def ternary(self) -> Node:
        cond = self.or_expr()
        if self.at("?"):
            self.take()
            self.newlines()
            a = self.ternary()
            self.newlines()
            self.expect(":")
            self.newlines()
            b = self.ternary()
            return ("cond", cond, a, b)
        return cond

    def or_expr(self) -> Node:
        left = self.and_expr()
        while self.at("||"):
            self.take()
            self.newlines()
            left = ("or", left, self.and_expr())
        return left

    def and_expr(self) -> Node:
        left = self.in_expr()
        while self.at("&&"):
            self.take()
            self.newlines()
            left = ("and", left, self.in_expr())
        return left

    def in_expr(self) -> Node:
        left = self.match_expr()
        while self.at("in") and not self.no_in:
            self.take()
            if not self.at("name"):
                self.error()
            subs = list(left[1]) if left[0] == "grouplist" else [left]
            left = ("in", subs, self.take().value)
        return left

    def match_expr(self) -> Node:
        left = self.cmp_expr()
        while self.at("~", "!~"):
            negated = self.take().value == "!~"
            left = ("match", negated, left, self.cmp_expr())
        return left

    def cmp_expr(self) -> Node:
        left = self.pipe_getline()
        if self.at(*_CMP_OPS) and not (self.no_gt and self.at(">")):
            op = self.take().value
            left = ("cmp", op, left, self.pipe_getline())
        return left

    def pipe_getline(self) -> Node:
        """``CMD | getline [VAR]``: the command's output, one record per call."""
        left = self.concat()
        while self.at("|") and self.toks[self.i + 1].kind == "keyword" and self.toks[self.i + 1].value == "getline":
            self.i += 2
            lv: Node | None = None
            if self.at("$", "name"):
                lv = self.primary()
            left = ("cmdgetline", left, lv)
        return left

    def concat(self) -> Node:
        left = self.additive()
        while self.tok.kind in _CONCAT_START:
            left = ("concat", left, self.additive())
        return left

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.at("+", "-"):
            op = self.take().value
            left = ("binop", op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Node:
        left = self.unary()
        while self.at("*", "/", "%"):
            op = self.take().value
            left = ("binop", op, left, self.unary())
        return left

    def unary(self) -> Node:
        if self.at("!", "-", "+"):
            op = self.take().value
            return ("unary", op, self.unary())
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.at("^", "**"):
            self.take()
            return ("binop", "^", base, self.power_operand())
        return base

    def power_operand(self) -> Node:
        if self.at("-", "+", "!"):
            op = self.take().value
            return ("unary", op, self.power_operand())
        return self.power()

    def postfix(self) -> Node:
        e = self.primary()
        if self.at("++", "--") and e[0] in ("var", "field", "index"):
            return ("incdec", self.take().value, False, e)
        return e

    def primary(self) -> Node:
        t = self.tok
        if self.at("++", "--"):
            op = self.take().value
            target = self.primary()
            if target[0] not in ("var", "field", "index"):
                self.error()
            return ("incdec", op, True, target)
        if t.kind == "num":
            self.take()
            return ("num", t.num)
        if t.kind == "str":
            self.take()
            return ("str", t.value)
        if t.kind == "ere":
            self.take()
            return ("ere", t.value)
        if self.at("$"):
            self.take()
            if self.at("-"):
                self.take()
                return ("field", ("unary", "-", self.primary()))
            return ("field", self.primary())
        if self.at("("):
            self.take()
            saved_gt, saved_in = self.no_gt, self.no_in
            self.no_gt = self.no_in = False
            items = self.expr_list()
            self.no_gt, self.no_in = saved_gt, saved_in
            self.expect(")")
            if len(items) > 1:
                if not self.at("in"):
                    self.error()
                return ("grouplist", items)
            return ("group", items[0])
        if t.kind == "name":
            self.take()
            if self.at("["):
                self.take()
                subs = self.expr_list()
                self.expect("]")
                return ("index", t.value, subs)
            return ("var", t.value)
        if t.kind == "funcname":
            self.take()
            self.expect("(")
            args = [] if self.at(")") else self.expr_list()
            self.expect(")")
            return ("call", t.value, args)
        if t.kind == "builtin":
            self.take()
            args = []
            if self.at("("):
                self.take()
                args = [] if self.at(")") else self.expr_list()
                self.expect(")")
            elif t.value != "length":
                self.error()
            return ("builtin", t.value, args)
        if self.at("getline"):
            self.take()
            lv: Node | None = None
            if self.at("$", "name"):
                lv = self.primary()
            source = None
            if self.at("<"):
                self.take()
                source = self.primary()
            return ("getline", lv, source)
        self.error()


def parse(src: str) -> Program:
    """Parse a whole awk program; raises :class:`AwkSyntaxError` with busybox's wording and line."""
    return _Parser(tokenize(src)).program()
