"""The awk interpreter: records and fields, expressions and statements over a parsed :class:`Program`.

Semantics follow POSIX awk as busybox 1.35 implements it (see
:mod:`._awk_values` for the value rules).  Three busybox traits are kept on
purpose because a container shows them: ``substr`` clamps its start to 1
before counting the length; ``for (k in a)`` walks keys in insertion order
(busybox walks its hash table: an order the model does not reproduce); and
Debian's busybox-static has no math library, so ``^``, ``sqrt``, ``exp`` ... stop
with "Math support is not compiled in".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sim.containers.shell._applets._awk_builtins import Builtins, Reader
from sim.containers.shell._applets._awk_lexer import unescape
from sim.containers.shell._applets._awk_parser import Node, Program
from sim.containers.shell._applets._awk_values import (
    UNINIT,
    AwkRuntimeError,
    StrNum,
    Value,
    is_numeric,
    num_to_str,
    strnum,
    to_int,
    to_num,
    to_str,
)
from sim.containers.shell._proc import Proc

__all__ = ["Interpreter", "ExitProgram"]


class _Next(Exception):
    pass


class _NextFile(Exception):
    pass


class ExitProgram(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Return(Exception):
    def __init__(self, value: Value) -> None:
        super().__init__()
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_LVALUES = ("var", "field", "index")


class Interpreter(Builtins):
    """One awk run: ``run()`` executes BEGIN, the records of the operands, then END; returns the exit status."""

    def __init__(self, prog: Program, p: Proc, operands: list[str], assigns: list[tuple[str, str]]) -> None:
        super().__init__(p)
        self.prog = prog
        self.globals: dict[str, Value | dict[str, Value]] = {
            "FS": " ", "OFS": " ", "ORS": "\n", "RS": "\n", "SUBSEP": "\x1c", "CONVFMT": "%.6g", "OFMT": "%.6g",
            "NR": 0.0, "FNR": 0.0, "RSTART": 0.0, "RLENGTH": -1.0, "FILENAME": "",
        }
        self.globals["ENVIRON"] = {k: strnum(v) for k, v in p.env.items()}
        argv: dict[str, Value] = {"0": "awk"}
        for k, a in enumerate(operands, 1):
            argv[str(k)] = strnum(a)
        self.globals["ARGV"] = argv
        self.globals["ARGC"] = float(len(operands) + 1)
        self.frames: list[dict[str, Value | dict[str, Value]]] = []
        self.fields: list[str] = [""]
        self.record = ""
        self.split_done = True
        self.range_active = [False] * len(prog.rules)
        self.arg_index = 1
        self.main_reader: Reader | None = None
        self.used_operand = False  # no file operand at all means stdin
        self.array_param_cache: dict[str, frozenset[str]] = {}
        for name, value in assigns:
            self.globals[name] = strnum(value)

    # -- variables -----------------------------------------------------------------

    def scope(self, name: str) -> dict[str, Value | dict[str, Value]]:
        if self.frames and name in self.frames[-1]:
            return self.frames[-1]
        return self.globals

    def getvar(self, name: str) -> Value:
        if name == "NF":
            self.ensure_split()
            return float(len(self.fields) - 1)
        value = self.scope(name).get(name, UNINIT)
        # busybox reads an array used as a scalar as the empty string
        return UNINIT if isinstance(value, dict) else value

    def setvar(self, name: str, value: Value) -> None:
        if name == "NF":
            self.ensure_split()
            n = to_int(to_num(value))
            if n < 0:
                raise AwkRuntimeError("NF set to negative value")
            self.fields = (self.fields + [""] * n)[:n + 1]
            self.rebuild()
            return
        self.scope(name)[name] = value

    def array(self, name: str) -> dict[str, Value]:
        scope = self.scope(name)
        value = scope.get(name)
        if not isinstance(value, dict):
            value = {}
            scope[name] = value
        return value

    def subscript(self, subs: list[Node]) -> str:
        sep = self.str_of(self.getvar("SUBSEP"))
        return sep.join(self.str_of(self.eval(s)) for s in subs)

    def str_of(self, v: Value) -> str:
        return to_str(v, self.str_of_fmt())

    def str_of_fmt(self) -> str:
        fmt = self.globals.get("CONVFMT", "%.6g")
        return fmt if isinstance(fmt, str) else "%.6g"

    # -- records and fields --------------------------------------------------------

    def set_record(self, text: str) -> None:
        self.record = text
        self.fields = [strnum(text)]
        self.split_done = False

    def ensure_split(self) -> None:
        if self.split_done:
            return
        self.split_done = True
        parts = self.split_text(self.record, self.str_of(self.getvar("FS")), paragraph=self.getvar("RS") == "")
        self.fields = [self.fields[0], *(strnum(x) for x in parts)]

    def split_text(self, text: str, fs: str, *, paragraph: bool = False, regex: str | None = None) -> list[str]:
        if regex is None and fs == " ":
            return re.split(r"[ \t\n]+", text.strip(" \t\n")) if text.strip(" \t\n") else []
        if not text:
            return []
        if regex is None and fs == "":
            return list(text)
        if regex is None and len(fs) == 1 and fs != "\\":
            parts = text.split(fs)
        else:
            parts = self.regex(regex if regex is not None else fs).split(text)
        if paragraph:
            return [x for part in parts for x in part.split("\n")]
        return parts

    def rebuild(self) -> None:
        ofs = self.str_of(self.getvar("OFS"))
        self.record = ofs.join(self.fields[1:])
        self.fields[0] = self.record

    def get_field(self, k: int) -> Value:
        if k < 0:
            raise AwkRuntimeError("Access to negative field")
        if k == 0:
            return self.fields[0]
        self.ensure_split()
        return self.fields[k] if k < len(self.fields) else UNINIT

    def set_field(self, k: int, value: Value) -> None:
        if k < 0:
            raise AwkRuntimeError("Access to negative field")
        text = self.str_of(value)
        if k == 0:
            self.set_record(text)
            return
        self.ensure_split()
        while len(self.fields) <= k:
            self.fields.append("")
        self.fields[k] = text if not isinstance(value, StrNum) else value
        self.rebuild()

    # -- lvalues -------------------------------------------------------------------

    def load(self, lv: Node) -> Value:
        kind = lv[0]
        if kind == "var":
            return self.getvar(lv[1])
        if kind == "field":
            return self.get_field(to_int(to_num(self.eval(lv[1]))))
        arr = self.array(lv[1])
        key = self.subscript(lv[2])
        if key not in arr:
            arr[key] = UNINIT
        return arr[key]

    def store(self, lv: Node, value: Value) -> None:
        kind = lv[0]
        if kind == "var":
            self.setvar(lv[1], value)
        elif kind == "field":
            self.set_field(to_int(to_num(self.eval(lv[1]))), value)
        else:
            self.array(lv[1])[self.subscript(lv[2])] = value

    # -- expressions ---------------------------------------------------------------

    def truth(self, v: Value) -> bool:
        if isinstance(v, float):
            return v != 0
        if isinstance(v, StrNum):
            return v.num != 0
        return v != ""

    def eval(self, e: Node) -> Value:
        kind = e[0]
        if kind == "num":
            return float(e[1])
        if kind == "str":
            return str(e[1])
        if kind == "ere":
            return 1.0 if self.regex(e[1]).search(self.fields[0]) else 0.0
        if kind in _LVALUES:
            return self.load(e)
        if kind == "group":
            return self.eval(e[1])
        if kind == "assign":
            return self.assign(e[1], e[2], e[3])
        if kind == "cond":
            return self.eval(e[2]) if self.truth(self.eval(e[1])) else self.eval(e[3])
        if kind == "or":
            return 1.0 if self.truth(self.eval(e[1])) or self.truth(self.eval(e[2])) else 0.0
        if kind == "and":
            return 1.0 if self.truth(self.eval(e[1])) and self.truth(self.eval(e[2])) else 0.0
        if kind == "in":
            return 1.0 if self.subscript(e[1]) in self.array(e[2]) else 0.0
        if kind == "match":
            text = self.str_of(self.eval(e[2]))
            found = self.regex_of(e[3]).search(text) is not None
            return 1.0 if found != e[1] else 0.0
        if kind == "cmp":
            a, b = self.eval(e[2]), self.eval(e[3])
            if is_numeric(a) and is_numeric(b):
                return 1.0 if _CMP[e[1]](to_num(a), to_num(b)) else 0.0
            return 1.0 if _CMP[e[1]](self.str_of(a), self.str_of(b)) else 0.0
        if kind == "concat":
            return self.str_of(self.eval(e[1])) + self.str_of(self.eval(e[2]))
        if kind == "binop":
            return self.arith(e[1], to_num(self.eval(e[2])), to_num(self.eval(e[3])))
        if kind == "unary":
            v = self.eval(e[2])
            if e[1] == "!":
                return 0.0 if self.truth(v) else 1.0
            return -to_num(v) if e[1] == "-" else to_num(v)
        if kind == "incdec":
            old = to_num(self.load(e[3]))
            new = old + (1 if e[1] == "++" else -1)
            self.store(e[3], new)
            return new if e[2] else old
        if kind == "call":
            return self.call(e[1], e[2])
        if kind == "builtin":
            return self.builtin(e[1], e[2])
        if kind == "getline":
            return self.getline(e[1], e[2])
        if kind == "cmdgetline":
            record = self.command_reader(self.str_of(self.eval(e[1]))).next_record(self.getvar("RS"))
            if record is None:
                return 0.0
            self.globals["NR"] = to_num(self.getvar("NR")) + 1
            if e[2] is None:
                self.set_record(record)
            else:
                self.store(e[2], strnum(record))
            return 1.0
        if kind == "grouplist":
            raise AwkRuntimeError("Unexpected token")
        raise AssertionError(kind)  # pragma: no cover - the parser makes no other node

    def arith(self, op: str, a: float, b: float) -> float:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise AwkRuntimeError("Division by zero")
            return a / b
        if op == "%":
            if b == 0:
                raise AwkRuntimeError("Division by zero")
            return float(__import__("math").fmod(a, b))
        raise AwkRuntimeError("Math support is not compiled in")

    def assign(self, op: str, lv: Node, e: Node) -> Value:
        if op == "=":
            value = self.eval(e)
        else:
            # the right side first, then the variable, as busybox evaluates it
            rhs = to_num(self.eval(e))
            value = self.arith(op[:-1] if op != "**=" else "^", to_num(self.load(lv)), rhs)
        self.store(lv, value)
        return value

    def regex_of(self, e: Node) -> re.Pattern[str]:
        if e[0] == "ere":
            return self.regex(e[1])
        return self.regex(self.str_of(self.eval(e)))

    def call(self, name: str, args: list[Node]) -> Value:
        fn = self.prog.functions.get(name)
        if fn is None:
            raise AwkRuntimeError("Call to undefined function")
        frame: dict[str, Value | dict[str, Value]] = {}
        array_params = self.array_params(name)
        for k, param in enumerate(fn.params):
            if k < len(args):
                a = args[k]
                held = self.scope(a[1]).get(a[1]) if a[0] == "var" else None
                if a[0] == "var" and (isinstance(held, dict) or (held is None and param in array_params)):
                    frame[param] = self.array(a[1])  # arrays go by reference, also one the callee creates
                else:
                    frame[param] = self.eval(a)
            else:
                frame[param] = UNINIT
        if len(self.frames) > 200:
            raise AwkRuntimeError("Function recursion too deep")
        self.frames.append(frame)
        try:
            self.execute(fn.body)
        except _Return as r:
            return r.value
        finally:
            self.frames.pop()
        return UNINIT

    def array_params(self, name: str) -> frozenset[str]:
        """The parameters of function ``name`` its body uses as arrays (subscripted, ``in``, split, delete ...)."""
        cached = self.array_param_cache.get(name)
        if cached is None:
            fn = self.prog.functions[name]
            found: set[str] = set()

            def walk(node: object) -> None:
                if isinstance(node, tuple) and node:
                    tag = node[0]
                    if tag in ("index", "delete") or (tag == "forin"):
                        found.add(node[1] if tag != "forin" else node[2])
                    elif tag == "in":
                        found.add(node[2])
                    elif tag == "builtin" and node[1] == "split" and len(node[2]) > 1 and node[2][1][0] == "var":
                        found.add(node[2][1][1])
                    for item in node[1:]:
                        walk(item)
                elif isinstance(node, list):
                    for item in node:
                        walk(item)

            walk(fn.body)
            cached = self.array_param_cache[name] = frozenset(found & set(fn.params))
        return cached

    # -- statements ----------------------------------------------------------------

    def execute(self, s: Node) -> None:
        kind = s[0]
        if kind == "block":
            for stmt in s[1]:
                self.execute(stmt)
        elif kind == "expr":
            self.eval(s[1])
        elif kind in ("print", "printf"):
            self.print_statement(s)
        elif kind == "if":
            if self.truth(self.eval(s[1])):
                self.execute(s[2])
            elif s[3] is not None:
                self.execute(s[3])
        elif kind == "while":
            while self.truth(self.eval(s[1])):
                if self.loop_body(s[2]):
                    break
        elif kind == "do":
            while True:
                if self.loop_body(s[1]) or not self.truth(self.eval(s[2])):
                    break
        elif kind == "for":
            if s[1] is not None:
                self.execute(s[1])
            while s[2] is None or self.truth(self.eval(s[2])):
                if self.loop_body(s[4]):
                    break
                if s[3] is not None:
                    self.execute(s[3])
        elif kind == "forin":
            for key in list(self.array(s[2])):
                self.setvar(s[1], strnum(key))
                if self.loop_body(s[3]):
                    break
        elif kind == "next":
            raise _Next
        elif kind == "nextfile":
            raise _NextFile
        elif kind == "exit":
            raise ExitProgram(to_int(to_num(self.eval(s[1]))) & 0xFF if s[1] is not None else self.exit_code)
        elif kind == "return":
            raise _Return(self.eval(s[1]) if s[1] is not None else UNINIT)
        elif kind == "break":
            raise _Break
        elif kind == "continue":
            raise _Continue
        elif kind == "delete":
            arr = self.array(s[1])
            if s[2] is None:
                arr.clear()
            else:
                arr.pop(self.subscript(s[2]), None)

    def loop_body(self, body: Node) -> bool:
        """Run one iteration; True when ``break`` ended the loop."""
        try:
            self.execute(body)
        except _Break:
            return True
        except _Continue:
            pass
        return False

    def print_statement(self, s: Node) -> None:
        kind, args, redirect, target = s[0], s[1], s[2], s[3]
        if kind == "print":
            ofmt = self.globals.get("OFMT", "%.6g")
            fmt = ofmt if isinstance(ofmt, str) else "%.6g"
            values = [self.eval(a) for a in args] if args else [self.fields[0]]
            text = self.str_of(self.getvar("OFS")).join(
                num_to_str(v, fmt) if isinstance(v, float) else v for v in values) + self.str_of(self.getvar("ORS"))
        else:
            values = [self.eval(a) for a in args]
            text = self.sprintf(values)
        self.write(text, redirect, None if target is None else self.str_of(self.eval(target)))

    # -- the main loop ---------------------------------------------------------------

    exit_code = 0

    def run(self) -> int:
        try:
            try:
                for block in self.prog.begin:
                    self.execute(block)
                if self.prog.rules or self.prog.end:
                    self.main_loop()
            except ExitProgram as e:
                self.exit_code = e.code
            try:
                for block in self.prog.end:
                    self.execute(block)
            except ExitProgram as e:
                self.exit_code = e.code
        finally:
            self.close_all()
        return self.exit_code

    def main_loop(self) -> None:
        while (record := self.next_main_record()) is not None:
            self.set_record(record)
            try:
                for k, rule in enumerate(self.prog.rules):
                    if self.rule_matches(k):
                        if rule.action is None:
                            self.write(self.fields[0] + self.str_of(self.getvar("ORS")), None, None)
                        else:
                            self.execute(rule.action)
            except _Next:
                continue
            except _NextFile:
                self.main_reader = None

    def rule_matches(self, k: int) -> bool:
        rule = self.prog.rules[k]
        if rule.pattern is None:
            return True
        if rule.pattern2 is None:
            return self.truth(self.eval(rule.pattern))
        if not self.range_active[k]:
            if not self.truth(self.eval(rule.pattern)):
                return False
            self.range_active[k] = not self.truth(self.eval(rule.pattern2))
            return True
        if self.truth(self.eval(rule.pattern2)):
            self.range_active[k] = False
        return True

    def next_main_record(self) -> str | None:
        while True:
            if self.main_reader is None and not self.open_next_operand():
                return None
            assert self.main_reader is not None  # open_next_operand set it
            record = self.main_reader.next_record(self.getvar("RS"))
            if record is not None:
                self.globals["NR"] = to_num(self.getvar("NR")) + 1
                self.globals["FNR"] = to_num(self.getvar("FNR")) + 1
                return record
            self.main_reader = None

    def open_next_operand(self) -> bool:
        argv = self.array("ARGV")
        while self.arg_index < to_int(to_num(self.getvar("ARGC"))):
            arg = self.str_of(argv.get(str(self.arg_index), ""))
            self.arg_index += 1
            if not arg:
                continue
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", arg, re.DOTALL)
            if m:
                self.setvar(m.group(1), strnum(unescape(m.group(2))))
                continue
            self.main_reader = self.open_reader(arg)
            self.globals["FILENAME"] = arg
            self.globals["FNR"] = 0.0
            self.used_operand = True
            return True
        if not self.used_operand:
            self.used_operand = True
            self.main_reader = self.open_reader("-")
            self.globals["FNR"] = 0.0
            return True
        return False

    def getline(self, lv: Node | None, source: Node | None) -> Value:
        if source is None:
            record = self.next_main_record()
        else:
            name = self.str_of(self.eval(source))
            try:
                reader = self.file_reader(name)
            except OSError:
                return -1.0
            record = reader.next_record(self.getvar("RS"))
        if record is None:
            return 0.0
        if lv is None:
            self.set_record(record)
        else:
            self.store(lv, strnum(record))
        return 1.0

