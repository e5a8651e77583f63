"""The parsed Buildfile: :class:`Buildfile`, its :class:`Instruction` records and their :class:`Flags`.

The records check their own fields, apply substitution (:meth:`Instruction.expanded`)
and write themselves back as Buildfile lines; :mod:`sim.images.buildfile` makes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, overload

from sim.errors import BuildfileError
from sim.images._substitution import expand, expand_words
from sim.images._values import check_chown, check_user, check_volume, parse_chmod, parse_port, parse_words, quote_flag

Form = Literal["shell", "exec", "args"]

#: Every instruction the subset knows, in the order the docs list them.
INSTRUCTIONS: tuple[str, ...] = (
    "FROM", "COPY", "ADD", "RUN", "ENV", "ARG", "WORKDIR", "USER",
    "LABEL", "CMD", "ENTRYPOINT", "VOLUME", "EXPOSE",
)

#: The instructions whose words the builder runs through :func:`expand` (Docker's
#: "environment replacement" list, restricted to the subset).  RUN, CMD and
#: ENTRYPOINT are not in it: in shell form the shell expands ``$VAR`` when the
#: command runs, and the exec (JSON) form is never expanded.
SUBSTITUTED_KINDS: frozenset[str] = frozenset(
    {"FROM", "ARG", "ENV", "LABEL", "COPY", "ADD", "WORKDIR", "USER", "VOLUME", "EXPOSE"}
)

#: A backslash at the end of a line (blanks may follow it) joins the next line.
CONTINUATION = re.compile(r"\\[ \t]*$")


class Flags(Mapping[str, str]):
    """The ``--name=value`` flags of one instruction: an immutable, hashable mapping."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        for key, value in pairs:
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"flags map str to str, not {key!r}: {value!r}")
        self._items: tuple[tuple[str, str], ...] = tuple(dict(pairs).items())

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Flags({dict(self._items)!r})"


@dataclass(frozen=True)
class Instruction:
    """One Buildfile instruction, as written (before substitution).

    ``kind`` is the upper-case name (``"COPY"``).  ``form`` says how ``args``
    were written:

    - ``"exec"``: a JSON array (``RUN ["a", "b"]``, ``COPY ["a b", "/x/"]``,
      ``VOLUME ["/data"]``); ``args`` are the array's strings.
    - ``"shell"``: RUN, CMD or ENTRYPOINT as one command line; ``args`` holds
      that one string, run later by ``/bin/sh -c``.
    - ``"args"``: every other case: words split by Docker's rules for that
      instruction (see :func:`parse`).

    ``args`` keep the quotes and backslashes substitution will remove
    (``ENV A="x y"`` has ``args == ('A="x y"',)``); :meth:`expanded` applies them.
    ``line`` is where the instruction starts (1-based), ``raw`` the logical line
    after continuations were joined.
    """

    kind: str
    args: tuple[str, ...]
    line: int
    form: Form = "args"
    flags: Mapping[str, str] = field(default_factory=Flags)
    raw: str = ""

    def __post_init__(self) -> None:
        if self.kind not in INSTRUCTIONS:
            raise ValueError(f"kind must be one of {', '.join(INSTRUCTIONS)}, not {self.kind!r}")
        if self.form not in ("shell", "exec", "args"):
            raise ValueError(f"form must be 'shell', 'exec' or 'args', not {self.form!r}")
        args: Iterable[str] = self.args  # typed as what it holds after this; callers may pass a list
        if not isinstance(args, tuple):
            object.__setattr__(self, "args", tuple(args))
        if not all(isinstance(a, str) for a in self.args):
            raise TypeError("args must be strings")
        if not isinstance(self.flags, Flags):
            object.__setattr__(self, "flags", Flags(self.flags))

    # -- typed views ------------------------------------------------------------------

    def _need(self, what: str, *kinds: str) -> None:
        if self.kind not in kinds:
            raise TypeError(f"{what} is for {' and '.join(kinds)}, not {self.kind}")

    @property
    def image(self) -> str:
        """FROM: the image reference (or ``scratch``)."""
        self._need("image", "FROM")
        return self.args[0]

    @property
    def stage(self) -> str | None:
        """FROM: the ``AS name`` stage name, lower-cased as Docker does; None without one."""
        self._need("stage", "FROM")
        return self.args[1] if len(self.args) > 1 else None

    @property
    def sources(self) -> tuple[str, ...]:
        """COPY and ADD: every argument but the last."""
        self._need("sources", "COPY", "ADD")
        return self.args[:-1]

    @property
    def dest(self) -> str:
        """COPY and ADD: the last argument."""
        self._need("dest", "COPY", "ADD")
        return self.args[-1]

    @property
    def chown(self) -> str | None:
        """COPY and ADD: the ``--chown`` value as written (``uid:gid``, ``name``), or None."""
        self._need("chown", "COPY", "ADD")
        return self.flags.get("chown")

    @property
    def chmod(self) -> int | None:
        """COPY and ADD: the ``--chmod`` mode as a number (``0o755``), or None."""
        self._need("chmod", "COPY", "ADD")
        value = self.flags.get("chmod")
        return None if value is None else parse_chmod(value, line=self.line)

    @property
    def pairs(self) -> tuple[tuple[str, str | None], ...]:
        """ENV, LABEL and ARG: ``(name, value)`` per argument; an ARG without a default has value None."""
        self._need("pairs", "ENV", "LABEL", "ARG")
        out: list[tuple[str, str | None]] = []
        for arg in self.args:
            name, eq, value = arg.partition("=")
            out.append((name, value if eq else None))
        return tuple(out)

    # -- substitution -----------------------------------------------------------------

    def expanded(self, env: Mapping[str, str], *, filename: str = "Buildfile") -> Instruction:
        """This instruction with Dockerfile substitution applied, as the builder sees it.

        ``env`` holds the ENV and ARG values in force *before* this instruction
        (for FROM: only the ARGs declared before the first FROM).  Instructions
        not in :data:`SUBSTITUTED_KINDS` come back unchanged.  What is expanded,
        as in Docker: every word of COPY/ADD/VOLUME (either form) and ``--chown``
        (``--chmod`` is not); the name and the value of every ENV/LABEL/ARG pair
        (all against ``env``, so ``ENV A=1 B=$A`` sees the old ``A``); the FROM
        image; the WORKDIR and USER argument; EXPOSE words, which may split into
        several ports (``EXPOSE $PORTS``).  Results are validated again (ports,
        USER, VOLUME paths, ``--chown``) with this instruction's line.
        """
        if self.kind not in SUBSTITUTED_KINDS:
            return self

        def ex(word: str) -> str:
            return expand(word, env, filename=filename, line=self.line)

        if self.kind in ("ENV", "LABEL", "ARG"):
            args = tuple(
                ex(name) if value is None else f"{ex(name)}={ex(value)}" for name, value in self.pairs
            )
            return replace(self, args=args)
        if self.kind == "FROM":
            return replace(self, args=(ex(self.args[0]), *self.args[1:]))
        if self.kind == "EXPOSE":
            ports: list[str] = []
            for word in self.args:
                ports.extend(expand_words(word, env, filename=filename, line=self.line))
            if not ports:
                raise BuildfileError("EXPOSE requires at least one argument", filename=filename, line=self.line)
            for port in ports:
                parse_port(port, filename=filename, line=self.line)
            return replace(self, args=tuple(ports))
        args = tuple(ex(a) for a in self.args)
        flags = dict(self.flags)
        if "chown" in flags:
            flags["chown"] = ex(flags["chown"])
            check_chown(flags["chown"], filename, self.line)
        if self.kind == "USER":
            check_user(args[0], filename, self.line)
        if self.kind == "VOLUME":
            for vol in args:
                check_volume(vol, filename, self.line)
        return replace(self, args=args, flags=Flags(flags))

    # -- writing back -----------------------------------------------------------------

    def render(self) -> str:
        """This instruction as one Buildfile line that :func:`parse` reads back to it.

        Raises ValueError for instructions no single line can express (a shell
        form with a newline, an ENV value with unquoted spaces beside another pair ...).
        """
        parts = [self.kind]
        for name, value in self.flags.items():
            parts.append(f"--{name}={quote_flag(value)}")
        if self.form == "exec":
            parts.append(json.dumps(list(self.args), ensure_ascii=False))
        elif self.kind == "FROM":
            parts.append(self.args[0] if len(self.args) == 1 else f"{self.args[0]} AS {self.args[1]}")
        elif self.kind in ("ENV", "LABEL"):
            if all(parse_words(a) == [a] for a in self.args):
                parts.append(" ".join(self.args))
            elif len(self.args) == 1:  # the legacy form: ENV name value with spaces
                name, _, value = self.args[0].partition("=")
                parts.append(f"{name} {value}")
            else:
                raise ValueError(f"{self.kind} with several pairs needs every value quoted: {self.args!r}")
        else:
            parts.append(" ".join(self.args))
        text = " ".join(p for p in parts if p)
        if "\n" in text or "\r" in text:
            raise ValueError(f"{self.kind} cannot be written on one line: {self.args!r}")
        if CONTINUATION.search(text):
            raise ValueError(f"{self.kind} would end in \\, which continues the line: {self.args!r}")
        return text

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Buildfile:
    """A parsed Buildfile: its instructions in order, and where they came from.

    ``warnings`` lists what Docker accepts with a warning (empty continuation lines).
    """

    instructions: tuple[Instruction, ...]
    filename: str = "Buildfile"
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self.instructions)

    def __len__(self) -> int:
        return len(self.instructions)

    @overload
    def __getitem__(self, index: int) -> Instruction: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Instruction, ...]: ...
    def __getitem__(self, index: int | slice) -> Instruction | tuple[Instruction, ...]:
        return self.instructions[index]

    @property
    def meta_args(self) -> tuple[Instruction, ...]:
        """The ARG instructions before the first FROM: the only variables FROM can use."""
        out: list[Instruction] = []
        for ins in self.instructions:
            if ins.kind == "FROM":
                break
            out.append(ins)
        return tuple(out)

    def error(self, instruction: Instruction, message: str) -> BuildfileError:
        """A BuildfileError at ``instruction``'s line (for the builder's own checks)."""
        return BuildfileError(message, filename=self.filename, line=instruction.line)

    def render(self) -> str:
        """One instruction per line (comments, blank lines and continuations are not kept)."""
        return "".join(ins.render() + "\n" for ins in self.instructions)
