"""The Buildfile parser (sim.images.buildfile): each instruction and form, Docker's line rules,
variable substitution against Docker's own reference cases, and every error with its
exact text and line."""

from __future__ import annotations

import pickle
import re
import string
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.errors import BuildfileError, LayerlabError
from sim.images.buildfile import (
    INSTRUCTIONS,
    SUBSTITUTED_KINDS,
    Buildfile,
    Flags,
    Instruction,
    expand,
    expand_words,
    parse,
    parse_chmod,
    parse_port,
)


def one(text: str) -> Instruction:
    """The last instruction of ``FROM base`` + text."""
    return parse("FROM base\n" + text).instructions[-1]


def shape(ins: Instruction) -> tuple[str, tuple[str, ...], str, dict[str, str]]:
    return ins.kind, ins.args, ins.form, dict(ins.flags)


def error(text: str, *, filename: str = "Buildfile") -> str:
    with pytest.raises(BuildfileError) as info:
        parse(text, filename=filename)
    return str(info.value)


# --------------------------------------------------------------------------- each instruction, each form


@pytest.mark.parametrize(
    "line, expected",
    [
        # FROM: an image or scratch, optional AS name (lower-cased, as Docker does)
        ("FROM alpine:3.19", ("FROM", ("alpine:3.19",), "args", {})),
        ("FROM scratch", ("FROM", ("scratch",), "args", {})),
        ("FROM registry.example.com:5000/team/app@sha256:" + "a" * 64, ("FROM", ("registry.example.com:5000/team/app@sha256:" + "a" * 64,), "args", {})),
        ("FROM busybox AS Build", ("FROM", ("busybox", "build"), "args", {})),
        ("FROM busybox as build-1.x_y", ("FROM", ("busybox", "build-1.x_y"), "args", {})),
        ("FROM ${BASE:-busybox}", ("FROM", ("${BASE:-busybox}",), "args", {})),
        # COPY and ADD: whitespace words, JSON, flags
        ("COPY a /dst/", ("COPY", ("a", "/dst/"), "args", {})),
        ("COPY a b c /dst/", ("COPY", ("a", "b", "c", "/dst/"), "args", {})),
        ("COPY \t a \t  /dst/  ", ("COPY", ("a", "/dst/"), "args", {})),
        ('COPY ["a b", "c", "/d e/"]', ("COPY", ("a b", "c", "/d e/"), "exec", {})),
        ("COPY --chown=1000:1000 a /dst/", ("COPY", ("a", "/dst/"), "args", {"chown": "1000:1000"})),
        ("COPY --chown=app a /dst/", ("COPY", ("a", "/dst/"), "args", {"chown": "app"})),
        ("COPY --chmod=0755 a /dst/", ("COPY", ("a", "/dst/"), "args", {"chmod": "0755"})),
        ("COPY --chown=0:0 --chmod=644 a /dst/", ("COPY", ("a", "/dst/"), "args", {"chown": "0:0", "chmod": "644"})),
        ('COPY --chown="1:2" ["a", "/b"]', ("COPY", ("a", "/b"), "exec", {"chown": "1:2"})),
        ("COPY -- --odd-name /dst/", ("COPY", ("--odd-name", "/dst/"), "args", {})),
        ("COPY [a b] /dst/", ("COPY", ("[a", "b]", "/dst/"), "args", {})),  # invalid JSON: words
        ("ADD site.tar.gz /srv/", ("ADD", ("site.tar.gz", "/srv/"), "args", {})),
        ('ADD --chmod=700 ["x.tar", "/opt/"]', ("ADD", ("x.tar", "/opt/"), "exec", {"chmod": "700"})),
        # RUN: shell form keeps the line as one string; exec form is JSON
        ("RUN echo hello", ("RUN", ("echo hello",), "shell", {})),
        ("RUN echo $HOME   \"a  b\" # not a comment", ("RUN", ('echo $HOME   "a  b" # not a comment',), "shell", {})),
        ('RUN ["echo", "hello world"]', ("RUN", ("echo", "hello world"), "exec", {})),
        ('RUN  [ "sh" ,"-c",  "true" ]  ', ("RUN", ("sh", "-c", "true"), "exec", {})),
        ('RUN ["echo", "\\u00e9\\n"]', ("RUN", ("echo", "é\n"), "exec", {})),
        # '[' but not JSON: Docker falls back to the shell form
        ("RUN [ -f /etc/passwd ] && echo yes", ("RUN", ("[ -f /etc/passwd ] && echo yes",), "shell", {})),
        ('RUN ["echo", "unterminated]', ("RUN", ('["echo", "unterminated]',), "shell", {})),
        ('RUN ["a"] && b', ("RUN", ('["a"] && b',), "shell", {})),
        ("RUN [NaN]", ("RUN", ("[NaN]",), "shell", {})),  # not JSON for Go either
        # ENV: name=value pairs (quotes and escapes kept for substitution), and the legacy form
        ("ENV A=1", ("ENV", ("A=1",), "args", {})),
        ('ENV A=1 B="two words" C=three\\ words D=', ("ENV", ("A=1", 'B="two words"', "C=three\\ words", "D="), "args", {})),
        ("ENV A='$literal' B=$A", ("ENV", ("A='$literal'", "B=$A"), "args", {})),
        ("ENV PATH=/usr/local/bin:$PATH", ("ENV", ("PATH=/usr/local/bin:$PATH",), "args", {})),
        ("ENV NAME some value  here", ("ENV", ("NAME=some value  here",), "args", {})),
        ("ENV NAME a=b", ("ENV", ("NAME=a=b",), "args", {})),
        # ARG: names, with or without defaults, several per line as Docker allows
        ("ARG VERSION", ("ARG", ("VERSION",), "args", {})),
        ("ARG VERSION=1.0", ("ARG", ("VERSION=1.0",), "args", {})),
        ('ARG A B=2 C="x y"', ("ARG", ("A", "B=2", 'C="x y"'), "args", {})),
        # WORKDIR and USER: the rest of the line is the one argument
        ("WORKDIR /app", ("WORKDIR", ("/app",), "args", {})),
        ("WORKDIR /my  dir", ("WORKDIR", ("/my  dir",), "args", {})),
        ("WORKDIR relative/path", ("WORKDIR", ("relative/path",), "args", {})),
        ("USER app", ("USER", ("app",), "args", {})),
        ("USER 1000", ("USER", ("1000",), "args", {})),
        ("USER 1000:1000", ("USER", ("1000:1000",), "args", {})),
        ("USER app:staff", ("USER", ("app:staff",), "args", {})),
        ("USER $UID:$GID", ("USER", ("$UID:$GID",), "args", {})),
        # LABEL: pairs (and the legacy form, as Docker accepts it)
        ('LABEL org.opencontainers.image.title="my app" version=1.0', ("LABEL", ('org.opencontainers.image.title="my app"', "version=1.0"), "args", {})),
        ('LABEL "key with space"=v', ("LABEL", ('"key with space"=v',), "args", {})),
        ("LABEL maintainer someone@example.com", ("LABEL", ("maintainer=someone@example.com",), "args", {})),
        # CMD and ENTRYPOINT: shell and exec forms; an empty exec form clears the setting
        ("CMD echo hi", ("CMD", ("echo hi",), "shell", {})),
        ('CMD ["nginx", "-g", "daemon off;"]', ("CMD", ("nginx", "-g", "daemon off;"), "exec", {})),
        ("CMD []", ("CMD", (), "exec", {})),
        ("ENTRYPOINT exec top -b", ("ENTRYPOINT", ("exec top -b",), "shell", {})),
        ('ENTRYPOINT ["/entrypoint.sh"]', ("ENTRYPOINT", ("/entrypoint.sh",), "exec", {})),
        ("ENTRYPOINT []", ("ENTRYPOINT", (), "exec", {})),
        # VOLUME: words or JSON
        ("VOLUME /data", ("VOLUME", ("/data",), "args", {})),
        ("VOLUME /data /cache", ("VOLUME", ("/data", "/cache"), "args", {})),
        ('VOLUME ["/data", "/with space"]', ("VOLUME", ("/data", "/with space"), "exec", {})),
        # EXPOSE: ports, protocols, ranges
        ("EXPOSE 80", ("EXPOSE", ("80",), "args", {})),
        ("EXPOSE 80/tcp 53/udp 9/sctp", ("EXPOSE", ("80/tcp", "53/udp", "9/sctp"), "args", {})),
        ("EXPOSE 8000-8010 65535/UDP", ("EXPOSE", ("8000-8010", "65535/UDP"), "args", {})),
        ("EXPOSE $PORT", ("EXPOSE", ("$PORT",), "args", {})),
    ],
)
def test_each_instruction_and_form(line: str, expected: tuple[object, ...]) -> None:
    ins = one(line)
    assert shape(ins) == expected
    assert ins.line == 2
    assert ins.raw == line.strip()


def test_every_instruction_of_the_subset_is_covered() -> None:
    assert INSTRUCTIONS == (
        "FROM", "COPY", "ADD", "RUN", "ENV", "ARG", "WORKDIR", "USER",
        "LABEL", "CMD", "ENTRYPOINT", "VOLUME", "EXPOSE",
    )
    assert {"FROM", "ARG", "ENV", "LABEL", "COPY", "ADD", "WORKDIR", "USER", "VOLUME", "EXPOSE"} == SUBSTITUTED_KINDS
    assert not SUBSTITUTED_KINDS & {"RUN", "CMD", "ENTRYPOINT"}


def test_instruction_names_are_case_insensitive() -> None:
    bf = parse("from a\nCoPy x /y\nrun true\nEnTrYpOiNt [\"x\"]\n")
    assert [i.kind for i in bf] == ["FROM", "COPY", "RUN", "ENTRYPOINT"]
    assert bf[1].raw == "CoPy x /y"


def test_arg_may_precede_from_and_is_a_meta_arg() -> None:
    bf = parse("ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS b\nARG INNER\n")
    assert [i.kind for i in bf.meta_args] == ["ARG", "ARG"]
    assert bf[2].image == "${BASE}:${TAG:-latest}" and bf[2].stage == "b"


def test_several_froms_are_recorded() -> None:
    bf = parse("FROM a AS one\nRUN x\nFROM b\nCOPY y /z\n")
    assert [(i.kind, i.args) for i in bf if i.kind == "FROM"] == [("FROM", ("a", "one")), ("FROM", ("b",))]
    assert bf[2].stage is None


# --------------------------------------------------------------------------- typed views


def test_typed_views() -> None:
    bf = parse(
        "FROM a AS b\nCOPY --chown=1:2 --chmod=0750 x y /dst/\nADD z /w\n"
        "ENV A=1 B='2'\nARG X Y=3\nLABEL k=v\n"
    )
    copy, add, env, arg, label = bf[1], bf[2], bf[3], bf[4], bf[5]
    assert (copy.sources, copy.dest, copy.chown, copy.chmod) == (("x", "y"), "/dst/", "1:2", 0o750)
    assert (add.chown, add.chmod) == (None, None)
    assert env.pairs == (("A", "1"), ("B", "'2'"))
    assert arg.pairs == (("X", None), ("Y", "3"))
    assert label.pairs == (("k", "v"),)
    with pytest.raises(TypeError, match="pairs is for ENV and LABEL and ARG, not COPY"):
        copy.pairs
    with pytest.raises(TypeError, match="image is for FROM, not ENV"):
        env.image
    with pytest.raises(TypeError, match="dest is for COPY and ADD, not FROM"):
        bf[0].dest


def test_results_are_frozen_and_hashable() -> None:
    bf = parse("FROM a\nCOPY --chown=1 x /y\n")
    ins = bf[1]
    with pytest.raises(FrozenInstanceError):
        ins.kind = "ADD"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        bf.instructions = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        ins.flags["chown"] = "2"  # type: ignore[index]
    assert hash(ins) == hash(parse("FROM a\nCOPY --chown=1 x /y\n")[1])
    assert bf == parse("FROM a\nCOPY --chown=1 x /y\n")
    assert len({bf, parse("FROM a\nCOPY --chown=1 x /y\n")}) == 1
    assert pickle.loads(pickle.dumps(bf)) == bf


def test_instruction_constructor_checks_and_coerces() -> None:
    ins = Instruction("COPY", ["a", "/b"], 3, "args", {"chown": "1"})  # type: ignore[arg-type]
    assert ins.args == ("a", "/b") and isinstance(ins.flags, Flags) and ins.flags == {"chown": "1"}
    with pytest.raises(ValueError, match="kind must be one of"):
        Instruction("ADDD", (), 1)
    with pytest.raises(ValueError, match="form must be"):
        Instruction("RUN", ("x",), 1, "json")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Instruction("RUN", (1,), 1)  # type: ignore[arg-type]
    assert Flags({"a": "1", "b": "2"}) == Flags([("b", "2"), ("a", "1")])
    assert hash(Flags({"a": "1", "b": "2"})) == hash(Flags([("b", "2"), ("a", "1")]))
    assert list(Flags([("b", "2"), ("a", "1")])) == ["b", "a"]
    assert repr(Flags({"a": "1"})) == "Flags({'a': '1'})"


# --------------------------------------------------------------------------- lines: continuations, comments, directives


def test_continuations_join_lines_keeping_the_next_lines_blanks() -> None:
    text = "FROM a\nRUN apk add \\\n    curl \\\n\tgit\nCOPY a \\  \n /b\n"
    bf = parse(text)
    assert bf[1].args == ("apk add     curl \tgit",)
    assert bf[1].line == 2
    assert (bf[2].args, bf[2].line) == (("a", "/b"), 5)


def test_comments_and_blank_lines_inside_a_continuation_are_skipped() -> None:
    text = "FROM a\nRUN one \\\n# a comment\n   # an indented comment\n\n  two\nRUN three\n"
    bf = parse(text)
    assert bf[1].args == ("one   two",)
    assert bf[2].line == 7
    assert bf.warnings == ("Buildfile:2: empty continuation line in this instruction (Docker warns; it may become an error)",)


def test_comments_blank_lines_and_line_numbers() -> None:
    text = "# top comment\n\nFROM a\n   # indented comment\n\n\t\nRUN x # not a comment\n"
    bf = parse(text)
    assert [(i.kind, i.line) for i in bf] == [("FROM", 3), ("RUN", 7)]
    assert bf[1].args == ("x # not a comment",)
    assert bf.warnings == ()


def test_a_lone_backslash_line_continues_into_the_instruction() -> None:
    bf = parse("\\\nFROM a\n")
    assert (bf[0].kind, bf[0].line) == ("FROM", 1)


def test_crlf_bom_and_bytes() -> None:
    text = "\ufeffFROM a\r\nRUN echo \\\r\n  hi\r\n"
    bf = parse(text)
    assert [(i.kind, i.args) for i in bf] == [("FROM", ("a",)), ("RUN", ("echo   hi",))]
    assert parse(text.encode()) == bf
    assert parse(b"FROM a") == parse("FROM a")


def test_parser_directives_are_recognised_and_ignored() -> None:
    text = "# syntax=docker/dockerfile:1\n# escape=\\\n# check=skip=all\nFROM a\nRUN x \\\n y\n"
    bf = parse(text)
    assert [(i.kind, i.line) for i in bf] == [("FROM", 4), ("RUN", 5)]
    assert bf[1].args == ("x  y",)
    # After the first non-directive line, directive-like lines are comments.
    bf = parse("# a comment\n# escape=`\nFROM a\n")
    assert bf[0].line == 3
    bf = parse("# unknown=directive\n# escape=`\nFROM a\n")
    assert len(bf) == 1
    bf = parse("FROM a\n# escape=`\n")
    assert len(bf) == 1


def test_no_final_newline_and_trailing_blank_lines() -> None:
    assert parse("FROM a") == parse("FROM a\n") == parse("FROM a\n\n\n")


def test_filename_is_kept_and_used() -> None:
    bf = parse("FROM a\n", filename="app/Buildfile")
    assert bf.filename == "app/Buildfile"
    assert str(bf.error(bf[0], "custom")) == "app/Buildfile:1: custom"
    assert error("FROM a\nRUNN x\n", filename="Dockerfile") == "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"


# --------------------------------------------------------------------------- errors: exact text, line numbers


@pytest.mark.parametrize(
    "text, message",
    [
        # unknown instructions, with the closest suggestion
        ("FROM a\nRUN x\nADDD y /z\n", "Buildfile:3: unknown instruction: ADDD (did you mean ADD?)"),
        ("FROM a\ncpy y /z\n", "Buildfile:2: unknown instruction: CPY (did you mean COPY?)"),
        ("FORM a\n", "Buildfile:1: unknown instruction: FORM (did you mean FROM?)"),
        ("FROM a\nENTRYPIONT x\n", "Buildfile:2: unknown instruction: ENTRYPIONT (did you mean ENTRYPOINT?)"),
        ("FROM a\nWORKDIRR /x\n", "Buildfile:2: unknown instruction: WORKDIRR (did you mean WORKDIR?)"),
        ("FROM a\nEXPOSED 80\n", "Buildfile:2: unknown instruction: EXPOSED (did you mean EXPOSE?)"),
        ("FROM a\necho hi\n", "Buildfile:2: unknown instruction: ECHO"),
        ("FROM a\nRUN apt-get update\n    && apt-get install x\n", "Buildfile:3: unknown instruction: &&"),
        # Docker instructions the subset leaves out
        ("FROM a\nHEALTHCHECK NONE\n", "Buildfile:2: unsupported instruction: HEALTHCHECK (Docker has it; the Buildfile subset does not)"),
        ("FROM a\nSHELL [\"bash\", \"-c\"]\n", "Buildfile:2: unsupported instruction: SHELL (Docker has it; the Buildfile subset does not)"),
        ("FROM a\nonbuild RUN x\n", "Buildfile:2: unsupported instruction: ONBUILD (Docker has it; the Buildfile subset does not)"),
        ("FROM a\nSTOPSIGNAL SIGTERM\n", "Buildfile:2: unsupported instruction: STOPSIGNAL (Docker has it; the Buildfile subset does not)"),
        ("FROM a\nMAINTAINER me\n", "Buildfile:2: unsupported instruction: MAINTAINER (Docker has it; the Buildfile subset does not)"),
        # argument counts
        ("FROM\n", "Buildfile:1: FROM requires either one or three arguments (FROM image [AS name])"),
        ("FROM a b\n", "Buildfile:1: FROM requires either one or three arguments (FROM image [AS name])"),
        ("FROM a FOR b\n", "Buildfile:1: FROM requires either one or three arguments (FROM image [AS name])"),
        ("FROM a AS b c\n", "Buildfile:1: FROM requires either one or three arguments (FROM image [AS name])"),
        ("FROM a AS 1st\n", 'Buildfile:1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols'),
        ("FROM a AS my/stage\n", 'Buildfile:1: invalid name for build stage: "my/stage", name can\'t start with a number or contain symbols'),
        ("FROM a\nCOPY\n", "Buildfile:2: COPY requires at least two arguments (source... destination)"),
        ("FROM a\nCOPY onlyone\n", "Buildfile:2: COPY requires at least two arguments, but only one was provided: the destination is missing"),
        ("FROM a\nADD x\n", "Buildfile:2: ADD requires at least two arguments, but only one was provided: the destination is missing"),
        ('FROM a\nCOPY ["x"]\n', "Buildfile:2: COPY requires at least two arguments, but only one was provided: the destination is missing"),
        ("FROM a\nCOPY --chown=1 x\n", "Buildfile:2: COPY requires at least two arguments, but only one was provided: the destination is missing"),
        ("FROM a\nRUN\n", "Buildfile:2: RUN requires at least one argument"),
        ("FROM a\nRUN []\n", "Buildfile:2: RUN requires at least one argument"),
        ("FROM a\nCMD\n", "Buildfile:2: CMD requires at least one argument"),
        ("FROM a\nENTRYPOINT\n", "Buildfile:2: ENTRYPOINT requires at least one argument"),
        ("FROM a\nENV\n", "Buildfile:2: ENV requires at least one argument"),
        ("FROM a\nENV ONLYNAME\n", "Buildfile:2: ENV must have two arguments (ENV name=value, or ENV name value)"),
        ("FROM a\nENV A=1 B\n", 'Buildfile:2: Syntax error - can\'t find = in "B". Must be of the form: name=value'),
        ("FROM a\nENV =value\n", "Buildfile:2: ENV names can not be blank"),
        ("FROM a\nLABEL\n", "Buildfile:2: LABEL requires at least one argument"),
        ("FROM a\nLABEL onlykey\n", "Buildfile:2: LABEL must have two arguments (LABEL name=value, or LABEL name value)"),
        ("FROM a\nLABEL a=1 =2\n", "Buildfile:2: LABEL names can not be blank"),
        ("FROM a\nARG\n", "Buildfile:2: ARG requires at least one argument"),
        ("ARG =x\nFROM a\n", "Buildfile:1: ARG names can not be blank"),
        ("FROM a\nWORKDIR\n", "Buildfile:2: WORKDIR requires exactly one argument"),
        ("FROM a\nUSER\n", "Buildfile:2: USER requires exactly one argument (USER name, USER uid or USER uid:gid)"),
        ("FROM a\nUSER a b\n", "Buildfile:2: USER requires exactly one argument (USER name, USER uid or USER uid:gid)"),
        ("FROM a\nVOLUME\n", "Buildfile:2: VOLUME requires at least one argument"),
        ("FROM a\nVOLUME []\n", "Buildfile:2: VOLUME requires at least one argument"),
        ('FROM a\nVOLUME ["/a", " "]\n', "Buildfile:2: VOLUME specified can not be an empty string"),
        ("FROM a\nEXPOSE\n", "Buildfile:2: EXPOSE requires at least one argument"),
        # FROM first (ARG may precede it)
        ("RUN x\nFROM a\n", "Buildfile:1: the first instruction must be FROM (only ARG may come before it), not RUN"),
        ("# c\nARG A\n\nENV B=1\nFROM a\n", "Buildfile:4: the first instruction must be FROM (only ARG may come before it), not ENV"),
        ("ARG A\nARG B\n", "Buildfile:2: no FROM instruction: ARG may come before FROM, but a FROM must follow"),
        # empty files
        ("", "Buildfile: file with no instructions"),
        ("\n\n   \n", "Buildfile: file with no instructions"),
        ("# only\n# comments\n", "Buildfile: file with no instructions"),
        # a continuation the file never finishes
        ("FROM a\nRUN x \\", "Buildfile:2: the file ends after a line continuation (\\): the instruction starting on line 2 is unfinished"),
        ("FROM a\nRUN x \\\n  y \\\n# comment\n\n", "Buildfile:3: the file ends after a line continuation (\\): the instruction starting on line 2 is unfinished"),
        ("FROM a \\\n", "Buildfile:1: the file ends after a line continuation (\\): the instruction starting on line 1 is unfinished"),
        # JSON that is JSON but not an array of strings
        ('FROM a\nRUN ["echo", 1]\n', "Buildfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
        ('FROM a\nCMD [["nested"]]\n', "Buildfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
        ('FROM a\nCOPY ["a", null]\n', "Buildfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
        ('FROM a\nVOLUME [true]\n', "Buildfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
        # flags
        ("FROM a\nCOPY --foo a b\n", "Buildfile:2: unknown flag: --foo (COPY accepts --chown, --chmod and --from)"),
        ("FROM a\nADD --foo=1 a b\n", "Buildfile:2: unknown flag: --foo (ADD accepts --chown and --chmod)"),
        ("FROM a\nADD --from=builder a b\n", "Buildfile:2: unknown flag: --from (ADD accepts --chown and --chmod)"),
        ("FROM a\nCOPY --link a b\n", "Buildfile:2: flag --link is not supported by the Buildfile subset (COPY accepts --chown, --chmod and --from)"),
        ("FROM a\nADD --checksum=sha256:00 a b\n", "Buildfile:2: flag --checksum is not supported by the Buildfile subset (ADD accepts --chown and --chmod)"),
        ("FROM a\nRUN --mount=type=cache,target=/c make\n", "Buildfile:2: flag --mount is not supported by the Buildfile subset (RUN takes no flags)"),
        ("FROM a\nRUN --network=none make\n", "Buildfile:2: flag --network is not supported by the Buildfile subset (RUN takes no flags)"),
        ("FROM --platform=linux/arm64 a\n", "Buildfile:1: flag --platform is not supported by the Buildfile subset (FROM takes no flags)"),
        ("FROM a\nENV --x=1 A=1\n", "Buildfile:2: unknown flag: --x (ENV takes no flags)"),
        ("FROM a\nCMD --help\n", "Buildfile:2: unknown flag: --help (CMD takes no flags)"),
        ("FROM a\nCOPY --chown a b\n", "Buildfile:2: missing a value on flag: --chown (write --chown=value)"),
        ("FROM a\nCOPY --chmod= a b\n", "Buildfile:2: missing a value on flag: --chmod (write --chmod=value)"),
        ("FROM a\nCOPY --chown=1 --chown=2 a b\n", "Buildfile:2: duplicate flag specified: --chown"),
        ("FROM a\nCOPY --chmod=abc a b\n", 'Buildfile:2: invalid --chmod value "abc": an octal mode such as 755 or 0644 is needed'),
        ("FROM a\nCOPY --chmod=0799 a b\n", 'Buildfile:2: invalid --chmod value "0799": an octal mode such as 755 or 0644 is needed'),
        ("FROM a\nCOPY --chmod=17777 a b\n", 'Buildfile:2: invalid --chmod value "17777": an octal mode such as 755 or 0644 is needed'),
        ("FROM a\nCOPY --chmod=u+x a b\n", 'Buildfile:2: invalid --chmod value "u+x": an octal mode such as 755 or 0644 is needed'),
        ("FROM a\nCOPY --chmod=$MODE a b\n", 'Buildfile:2: invalid --chmod value "$MODE": an octal mode such as 755 or 0644 is needed'),
        ("FROM a\nCOPY --chown=1:2:3 a b\n", 'Buildfile:2: invalid --chown value "1:2:3": use --chown=user, --chown=user:group or --chown=uid:gid'),
        ("FROM a\nCOPY --chown=:1 a b\n", 'Buildfile:2: invalid --chown value ":1": use --chown=user, --chown=user:group or --chown=uid:gid'),
        # EXPOSE ports
        ("FROM a\nEXPOSE 0\n", 'Buildfile:2: invalid EXPOSE port "0": ports are 1 to 65535'),
        ("FROM a\nEXPOSE 65536\n", 'Buildfile:2: invalid EXPOSE port "65536": ports are 1 to 65535'),
        ("FROM a\nEXPOSE 80 99999/udp\n", 'Buildfile:2: invalid EXPOSE port "99999/udp": ports are 1 to 65535'),
        ("FROM a\nEXPOSE 53/icmp\n", 'Buildfile:2: invalid EXPOSE port "53/icmp": the protocol must be tcp, udp or sctp'),
        ("FROM a\nEXPOSE 80/\n", 'Buildfile:2: invalid EXPOSE port "80/": the protocol must be tcp, udp or sctp'),
        ("FROM a\nEXPOSE http\n", 'Buildfile:2: invalid EXPOSE port "http": a port is a number such as 80, 80/tcp, 53/udp or 8000-8010'),
        ("FROM a\nEXPOSE -1\n", 'Buildfile:2: invalid EXPOSE port "-1": a port is a number such as 80, 80/tcp, 53/udp or 8000-8010'),
        ("FROM a\nEXPOSE 90-80\n", 'Buildfile:2: invalid EXPOSE port "90-80": the range ends before it starts'),
        ("FROM a\nEXPOSE 8080:80\n", 'Buildfile:2: invalid EXPOSE port "8080:80": EXPOSE takes container ports only; host ports are chosen when the container runs'),
        ('FROM a\nEXPOSE "0"\n', 'Buildfile:2: invalid EXPOSE port "0": ports are 1 to 65535'),
        # USER and VOLUME values fixed at parse time
        ("FROM a\nUSER a:b:c\n", 'Buildfile:2: invalid USER "a:b:c": use USER name, USER uid, USER name:group or USER uid:gid'),
        ("FROM a\nUSER 1000:\n", 'Buildfile:2: invalid USER "1000:": use USER name, USER uid, USER name:group or USER uid:gid'),
        ('FROM a\nUSER ""\n', 'Buildfile:2: invalid USER "": use USER name, USER uid, USER name:group or USER uid:gid'),
        ("FROM a\nVOLUME data\n", 'Buildfile:2: VOLUME path "data" must be absolute (start with /)'),
        ('FROM a\nVOLUME ["/ok", "rel"]\n', 'Buildfile:2: VOLUME path "rel" must be absolute (start with /)'),
        # substitution syntax that no variable value can fix
        ("FROM a\nENV A=${B\n", 'Buildfile:2: failed to process "${B": syntax error: missing \'}\''),
        ('FROM a\nENV A="x\n', 'Buildfile:2: failed to process "\\"x": unexpected end of statement while looking for matching double-quote'),
        ("FROM a\nLABEL k='v\n", "Buildfile:2: failed to process \"'v\": unexpected end of statement while looking for matching single-quote"),
        ("FROM a\nWORKDIR ${}\n", 'Buildfile:2: failed to process "${}": syntax error: bad substitution'),
        ("FROM ${BASE:=x}\n", 'Buildfile:1: failed to process "${BASE:=x}": unsupported modifier (:=) in substitution (the Buildfile subset has ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg}, ${VAR?msg})'),
        ("FROM a\nCOPY ${SRC#./} /x\n", 'Buildfile:2: failed to process "${SRC#./}": unsupported modifier (#) in substitution (the Buildfile subset has ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?msg}, ${VAR?msg})'),
        ('FROM a\nCOPY "my file" /x\n', 'Buildfile:2: failed to process "\\"my": unexpected end of statement while looking for matching double-quote (a path with spaces needs the JSON form: COPY ["a b", "/dest/"])'),
        ("FROM a\nCOPY --chown=${U a /b\n", 'Buildfile:2: failed to process "${U": syntax error: missing \'}\''),
        ("FROM a\nARG V=${X:-\n", 'Buildfile:2: failed to process "${X:-": syntax error: missing \'}\''),
        # heredocs are not in the subset
        ("FROM a\nRUN cat <<EOF > /x\n", "Buildfile:2: heredocs (<<EOF) are not supported in the Buildfile subset; RUN must fit on its lines"),
        ("FROM a\nRUN <<-'EOT' sh\n", "Buildfile:2: heredocs (<<-'EOT') are not supported in the Buildfile subset; RUN must fit on its lines"),
        ("FROM a\nCOPY <<EOF /x\n", "Buildfile:2: heredocs (<<EOF) are not supported in the Buildfile subset; COPY must fit on its lines"),
        # parser directives
        ("# escape=`\nFROM a\n", "Buildfile:1: the escape=` parser directive is not supported: a Buildfile always escapes with \\"),
        ("# escape=x\nFROM a\n", "Buildfile:1: invalid escape token 'x' does not match ` or \\"),
        ("# syntax=a\n# syntax=b\nFROM a\n", "Buildfile:2: only one syntax parser directive can be used"),
    ],
)
def test_errors_name_the_file_and_line(text: str, message: str) -> None:
    assert error(text) == message


def test_errors_are_typed_and_carry_their_parts() -> None:
    with pytest.raises(BuildfileError) as info:
        parse("FROM a\n\nADDD x y\n", filename="ctx/Buildfile")
    exc = info.value
    assert isinstance(exc, ValueError) and isinstance(exc, LayerlabError)
    assert (exc.filename, exc.line, exc.message) == ("ctx/Buildfile", 3, "unknown instruction: ADDD (did you mean ADD?)")
    again = pickle.loads(pickle.dumps(exc))
    assert (str(again), again.line) == (str(exc), 3)


def test_invalid_utf8_and_wrong_types() -> None:
    assert error_bytes(b"FROM a\nRUN \xff\n") == "Buildfile:2: not UTF-8 text"
    with pytest.raises(TypeError, match="takes str or bytes"):
        parse(None)  # type: ignore[arg-type]


def error_bytes(data: bytes) -> str:
    with pytest.raises(BuildfileError) as info:
        parse(data)
    return str(info.value)


def test_unset_variables_are_not_a_parse_error() -> None:
    # ${VAR?msg} depends on the build's variables: checked when the builder expands, not now.
    ins = one("ENV A=${REQUIRED?required}")
    assert ins.args == ("A=${REQUIRED?required}",)
    with pytest.raises(BuildfileError) as info:
        ins.expanded({})
    assert str(info.value) == 'Buildfile:2: failed to process "${REQUIRED?required}": REQUIRED: required'
    assert ins.expanded({"REQUIRED": "x"}).args == ("A=x",)
    # Docker splits ENV words before it looks at ${...}: a blank inside one needs quotes.
    assert error("FROM a\nENV A=${R?set R}\n") == 'Buildfile:2: Syntax error - can\'t find = in "R}". Must be of the form: name=value'
    assert one('ENV A="${R?set R}"').args == ('A="${R?set R}"',)


# --------------------------------------------------------------------------- substitution, as Docker does it

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}

# The cases of moby/buildkit frontend/dockerfile/shell/envVarTest (platform "A" and "U").
DOCKER_CASES = [
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo", None),
    ("he\\'llo", "he'llo"),
    ("he\\\\'llo", None),
    ("abc\\tdef", "abctdef"),
    ('"abc\\tdef"', "abc\\tdef"),
    ('"abc\\\\tdef"', "abc\\tdef"),
    ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"),
    ("hello\\\\", "hello\\"),
    ('"hello', None),
    ('"hello\\"', None),
    ('"hel\'lo"', "hel'lo"),
    ("'hello", None),
    ("'hello\\'", "hello\\"),
    ("'hello\\there'", "hello\\there"),
    ("'hello\\\\there'", "hello\\\\there"),
    ('"\'\'"', "''"),
    ("$.", "$."),
    ("he$1x", "hex"),
    ("he$.x", "he$.x"),
    ("he$pwd.", "he."),
    ("he$PWD", "he/home"),
    ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"),
    ('"he\\$PWD"', "he$PWD"),
    ('"he\\\\$PWD"', "he\\/home"),
    ("\\${}", "${}"),
    ("\\${}aaa", "${}aaa"),
    ("he\\${}", "he${}"),
    ("he\\${}xx", "he${}xx"),
    ("${}", None),
    ("${}aaa", None),
    ("he${}", None),
    ("he${}xx", None),
    ("he${hi}", "he"),
    ("he${hi}xx", "hexx"),
    ("he${PWD}", "he/home"),
    ("he${.}", None),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${XXX:YYY}", None),
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", "he/home"),
    ("he${PWD:?}", "he/home"),
    ("he${NULL?}", "he"),
    ("he${NULL:?}", None),
    ("he${XXX:+${PWD}}xx", "hexx"),
    ("he${PWD:+${XXX}}xx", "hexx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("'he${XX}'", "he${XX}"),
    ('"he${PWD}"', "he/home"),
    ('"he\'$PWD\'"', "he'/home'"),
    ('"$PWD"', "/home"),
    ("'$PWD'", "$PWD"),
    ("'\\$PWD'", "\\$PWD"),
    ("'\"hello\"'", '"hello"'),
    ("'he\\$PWD'", "he\\$PWD"),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
    ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
    ("안녕하세요", "안녕하세요"),
    ("안'녕'하세요", "안녕하세요"),
    ("안'녕하세요", None),
    ("안녕\\'하세요", "안녕'하세요"),
    ("안\\\\'녕하세요", None),
    ('"안녕하세요', None),
    ("'안녕하세요'", "안녕하세요"),
    ("'안녕하세요\\'", "안녕하세요\\"),
    ("$KOREAN", "한국어"),
    ("안녕$KOREAN", "안녕한국어"),
    ("${{aaa}", None),
    ("${aaa}}", "}"),
    ("${aaa", None),
    ("${{aaa", None),
    ("${{aaa}}", None),
    ("${aaa}}}", "}}"),
]


@pytest.mark.parametrize("word, expected", DOCKER_CASES)
def test_expand_matches_docker(word: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(BuildfileError):
            expand(word, ENV)
    else:
        assert expand(word, ENV) == expected


# moby/buildkit shell/lex_test.go TestProcessWithMatches and TestShellParserMandatoryEnvVars
@pytest.mark.parametrize(
    "word, env, expected",
    [
        ("x ${UNUSED}", {"DUMMY": "dummy"}, "x "),
        ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
        ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
        ("${FOO:-}", {"FOO": "xxx"}, "xxx"),
        ("${FOO:-}", {}, ""),
        ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
        ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
        ("${FOO?aaa}", {"FOO": "xxx"}, "xxx"),
        ("${BAR?bbb}", {"BAR": ""}, ""),
        ("${FOO:?aaa}", {"FOO": "xxx"}, "xxx"),
        ("${VAR:?message here$ARG}", {"VAR": "plain", "ARG": "x"}, "plain"),
        ("${VAR?message here$ARG}", {"VAR": "", "ARG": "x"}, ""),
        ("something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
         {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
         "something-v1.2.3.linux-arm-v7.tar.gz"),
        ("something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
         {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "amd64"},
         "something-v1.2.3.linux-amd64.tar.gz"),
        ("${X:-a b}  c", {}, "a b  c"),  # one word in, one word out: blanks kept
        ("${X:-\\}}", {}, "}"),
        ("${X:-'}'}", {}, "}"),
        ('${X:-"a b"}', {}, "a b"),
        ("$", {}, "$"),
        ("a$", {}, "a$"),
        ("$ a", {}, "$ a"),
        ("$$", {}, ""),
        ("$é", {"é": "accent"}, "accent"),
        ("${1}", {}, ""),
        ("$12x", {"12": "y"}, "yx"),
    ],
)
def test_expand_more_docker_cases(word: str, env: dict[str, str], expected: str) -> None:
    assert expand(word, env) == expected


@pytest.mark.parametrize(
    "word, env, message",
    [
        ("${BAZ?ccc}", {}, 'failed to process "${BAZ?ccc}": BAZ: ccc'),
        ("${BAR:?bbb}", {"BAR": ""}, 'failed to process "${BAR:?bbb}": BAR: bbb'),
        ("${BAZ:?}", {}, 'failed to process "${BAZ:?}": BAZ: is not allowed to be unset'),
        ("${BAR:?}", {"BAR": ""}, 'failed to process "${BAR:?}": BAR: is not allowed to be empty'),
        ("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"}, 'failed to process "${VAR:?message here$ARG}": VAR: message herex'),
        ("${FOO=aaa}", {"FOO": "x"}, 'failed to process "${FOO=aaa}": unsupported modifier (=) in substitution'),
        ("${FOO%x}", {"FOO": "x"}, 'failed to process "${FOO%x}": unsupported modifier (%) in substitution'),
        ("${FOO/a/b}", {"FOO": "x"}, 'failed to process "${FOO/a/b}": unsupported modifier (/) in substitution'),
        ("${", {}, "failed to process \"${\": syntax error: missing '}'"),
        ("${A", {}, "failed to process \"${A\": syntax error: missing '}'"),
        ("${A:", {}, "failed to process \"${A:\": syntax error: missing '}'"),
        ("${A:-x", {}, "failed to process \"${A:-x\": syntax error: missing '}'"),
        ("${:}", {}, 'failed to process "${:}": syntax error: bad substitution'),
        ("'a", {}, "failed to process \"'a\": unexpected end of statement while looking for matching single-quote"),
        ('"a', {}, 'failed to process "\\"a": unexpected end of statement while looking for matching double-quote'),
    ],
)
def test_expand_errors(word: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(BuildfileError) as info:
        expand(word, env, filename="Buildfile", line=7)
    assert str(info.value).startswith(f"Buildfile:7: {message}")
    assert info.value.line == 7


# moby/buildkit frontend/dockerfile/shell/wordsTest
@pytest.mark.parametrize(
    "word, expected",
    [
        ("hello", ["hello"]),
        ("hello${hi}bye", ["hellohibye"]),
        ("hello${space}bye", ["helloabc", "defbye"]),
        ('hello"${space}"bye', ["helloabc  defbye"]),
        ('hello "${space}"bye', ["hello", "abc  defbye"]),
        ("hello${leading}def", ["hello", "ab", "cdef"]),
        ('hello"${leading}" def', ["hello  ab c", "def"]),
        ('hello"${leading}"', ["hello  ab c"]),
        ("hello${leading}", ["hello", "ab", "c"]),
        ("hello${trailing}", ["helloab", "c"]),
        ("hello${trailing}d", ["helloab", "c", "d"]),
        ('hello"${trailing}"d', ["helloab c   d"]),
        ('hel"lo${trailing}"', ["helloab c   "]),
        ('hello" there  "', ["hello there  "]),
        ("hello there     ", ["hello", "there"]),
        ("hello\\ there", ["hello there"]),
        ('hello\\" there', ['hello"', "there"]),
        ('hello"\\\\there"', ["hello\\there"]),
        ('hello"\\there"', ["hello\\there"]),
        ("hello'\\\\there'", ["hello\\\\there"]),
        ("hello'\\there'", ["hello\\there"]),
        ("hello'$there'", ["hello$there"]),
        ('""', []),
    ],
)
def test_expand_words_matches_docker(word: str, expected: list[str]) -> None:
    env = {"PWD": "/home", "hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}
    assert list(expand_words(word, env)) == expected
    with pytest.raises(BuildfileError, match="matching double-quote"):
        expand_words('hello" there', env)


def test_dockerfile_reference_env_example() -> None:
    # docs.docker.com "Environment replacement": def is hello (the old abc), ghi is bye.
    bf = parse("FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n")
    env: dict[str, str] = {}
    for ins in bf[1:]:
        for name, value in ins.expanded(env).pairs:
            assert value is not None
            env[name] = value
    assert env == {"abc": "bye", "def": "hello", "ghi": "bye"}


def test_dockerfile_reference_escapes() -> None:
    bf = parse(
        "FROM busybox\n"
        'ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy\n'
        "ENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\n"
    )
    assert dict(bf[1].expanded({}).pairs) == {"MY_NAME": "John Doe", "MY_DOG": "Rex The Dog", "MY_CAT": "fluffy"}
    env = {"FOO": "/bar"}
    assert bf[3].expanded(env).args == ("/bar",)
    assert bf[4].expanded(env).args == (".", "/bar")
    assert bf[5].expanded(env).args == ("$FOO", "/quux")


def test_expanded_per_instruction() -> None:
    env = {"BASE": "busybox", "D": "/data", "U": "1000", "P": "80 443/udp", "V": "1.2", "N": "name", "E": ""}
    bf = parse(
        "ARG BASE\n"
        "FROM ${BASE}:latest AS b\n"                     # 2
        "COPY --chown=$U:$U --chmod=755 ${N}.txt \"$D\"/ \n"  # 3
        'ADD ["$N file", "${D}/"]\n'                     # 4
        "ENV $N=${V} OTHER='$V'\n"                        # 5
        "ARG A=${V:-x} B\n"                               # 6
        "LABEL version=$V\n"                              # 7
        "WORKDIR $D/app\n"                                # 8
        "USER $U:$U\n"                                    # 9
        'VOLUME ["$D", "/x"]\n'                           # 10
        "EXPOSE $P 22\n"                                  # 11
        "RUN echo $D\n"                                   # 12
        'CMD ["echo", "$D"]\n'                            # 13
        "ENTRYPOINT echo $D\n"                            # 14
    )
    got = [ins.expanded(env) for ins in bf]
    assert got[1].args == ("busybox:latest", "b")
    assert got[2].args == ("name.txt", "/data/") and dict(got[2].flags) == {"chown": "1000:1000", "chmod": "755"}
    assert got[3].args == ("name file", "/data/") and got[3].form == "exec"
    assert got[4].args == ("name=1.2", "OTHER=$V")
    assert got[5].args == ("A=1.2", "B")
    assert got[6].args == ("version=1.2",)
    assert got[7].args == ("/data/app",)
    assert got[8].args == ("1000:1000",)
    assert got[9].args == ("/data", "/x")
    assert got[10].args == ("80", "443/udp", "22")
    for i in (11, 12, 13):  # RUN, CMD, ENTRYPOINT: the shell (or nobody) expands them
        assert got[i] is bf[i]
    assert all(g.line == b.line for g, b in zip(got, bf))


@pytest.mark.parametrize(
    "text, env, message",
    [
        ("EXPOSE $P", {"P": "0"}, 'Buildfile:2: invalid EXPOSE port "0": ports are 1 to 65535'),
        ("EXPOSE $P", {"P": "80/xyz"}, 'Buildfile:2: invalid EXPOSE port "80/xyz": the protocol must be tcp, udp or sctp'),
        ("EXPOSE $P", {}, "Buildfile:2: EXPOSE requires at least one argument"),
        ("USER $U", {"U": "a:b:c"}, 'Buildfile:2: invalid USER "a:b:c": use USER name, USER uid, USER name:group or USER uid:gid'),
        ("VOLUME $V", {"V": "rel"}, 'Buildfile:2: VOLUME path "rel" must be absolute (start with /)'),
        ("VOLUME $V", {}, "Buildfile:2: VOLUME specified can not be an empty string"),
        ("COPY --chown=$U a /b", {"U": "1:2:3"}, 'Buildfile:2: invalid --chown value "1:2:3": use --chown=user, --chown=user:group or --chown=uid:gid'),
        ("WORKDIR ${D:?set D}", {}, 'Buildfile:2: failed to process "${D:?set D}": D: set D'),
    ],
)
def test_expanded_validates_the_values(text: str, env: dict[str, str], message: str) -> None:
    ins = one(text)
    with pytest.raises(BuildfileError) as info:
        ins.expanded(env)
    assert str(info.value) == message


def test_expanded_uses_the_given_filename() -> None:
    bf = parse("FROM a\nWORKDIR ${D:?}\n", filename="x/Buildfile")
    with pytest.raises(BuildfileError, match=r"^x/Buildfile:2: "):
        bf[1].expanded({}, filename=bf.filename)


# --------------------------------------------------------------------------- ports and modes


@pytest.mark.parametrize(
    "spec, expected",
    [("80", (80, 80, "tcp")), ("80/tcp", (80, 80, "tcp")), ("53/udp", (53, 53, "udp")), ("9/SCTP", (9, 9, "sctp")),
     ("1", (1, 1, "tcp")), ("65535", (65535, 65535, "tcp")), ("8000-8010/udp", (8000, 8010, "udp")), ("7-7", (7, 7, "tcp")),
     ("080", (80, 80, "tcp"))],
)
def test_parse_port(spec: str, expected: tuple[int, int, str]) -> None:
    assert parse_port(spec) == expected


def test_parse_chmod() -> None:
    assert [parse_chmod(v) for v in ("755", "0755", "644", "7777", "0", "4755")] == [0o755, 0o755, 0o644, 0o7777, 0, 0o4755]
    with pytest.raises(BuildfileError, match=r'^Buildfile:4: invalid --chmod value "8"'):
        parse_chmod("8", line=4)


# --------------------------------------------------------------------------- rendering


def test_render_round_trips_the_forms() -> None:
    text = (
        "ARG BASE=busybox\n"
        "FROM ${BASE} AS build\n"
        "COPY --chown=1:1 --chmod=0644 a b /dst/\n"
        'ADD ["a b.tar", "/opt/"]\n'
        'RUN echo "hi there" && [ -d / ]\n'
        'RUN ["sh", "-c", "echo \\"q\\""]\n'
        'ENV A=1 B="two words" C=three\\ words\n'
        "ENV LEGACY some  value\n"
        "LABEL k=v\n"
        "WORKDIR /my dir\n"
        "USER 1:2\n"
        "CMD []\n"
        "ENTRYPOINT exec top\n"
        "VOLUME /a /b\n"
        'VOLUME ["/c d"]\n'
        "EXPOSE 80 53/udp\n"
    )
    bf = parse(text)
    assert bf.render() == text
    assert [str(i) for i in bf] == text.splitlines()


def test_render_refuses_what_one_line_cannot_hold() -> None:
    with pytest.raises(ValueError, match="cannot be written on one line"):
        Instruction("RUN", ("echo a\necho b",), 1, "shell").render()
    with pytest.raises(ValueError, match="needs every value quoted"):
        Instruction("ENV", ("A=x y", "B=1"), 1).render()
    with pytest.raises(ValueError, match="continues the line"):
        Instruction("WORKDIR", ("a\\\\",), 1).render()


# --------------------------------------------------------------------------- properties

NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
PLAIN = st.text(alphabet=string.ascii_letters + string.digits + "._-+,:@%=~^", min_size=1, max_size=8)
PATH = st.lists(st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=6), min_size=1, max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)
SPACED = st.text(alphabet=string.ascii_letters + string.digits + " ._-/", min_size=1, max_size=10)


def _piece(spaces: bool) -> st.SearchStrategy[str]:
    """A piece of a word that substitution accepts whatever the variables hold."""
    inner = string.ascii_letters + string.digits + "._-/" + (" " if spaces else "")
    pieces = [
        PLAIN,
        NAME.map(lambda n: "${" + n + "}"),
        st.tuples(NAME, PLAIN).map(lambda t: "${%s:-%s}" % t),
        st.tuples(NAME, PLAIN).map(lambda t: "${%s:+%s}" % t),
        st.text(alphabet=inner + "$'", max_size=6).map(lambda s: "'" + s.replace("'", "") + "'"),
        st.text(alphabet=inner + "'", max_size=6).map(lambda s: '"' + s + '"'),
        st.sampled_from(["\\$", "\\'", '\\"', "\\\\"] + (["\\ "] if spaces else [])),
    ]
    return st.one_of(*pieces)


def word(spaces: bool = False) -> st.SearchStrategy[str]:
    return (
        st.lists(_piece(spaces), min_size=1, max_size=3)
        .map("".join)
        .filter(lambda w: not w.startswith("-") and not re.search(r"\\[ \t]*$", w))  # a final \ continues the line
    )


SHELL_LINE = (
    st.text(alphabet=string.printable.replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", "") + "镜像é", min_size=1, max_size=30)
    .map(str.strip)
    .filter(lambda s: s != "" and not s.startswith(("[", "--")) and not re.search(r"\\[ \t]*$", s) and "<<" not in s)
)
JSON_STRINGS = st.lists(st.text(max_size=8), max_size=4)
USER = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_-]{0,7}", fullmatch=True),
    st.integers(0, 65535).map(str),
    st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(lambda t: f"{t[0]}:{t[1]}"),
)
PORT = st.one_of(
    st.integers(1, 65535).map(str),
    st.tuples(st.integers(1, 65535), st.sampled_from(["tcp", "udp", "sctp"])).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.integers(1, 65535), st.integers(0, 100)).filter(lambda t: t[0] + t[1] <= 65535).map(lambda t: f"{t[0]}-{t[0] + t[1]}"),
)
FLAGS = st.fixed_dictionaries(
    {},
    optional={"chown": USER, "chmod": st.integers(0, 0o7777).map(lambda m: st.sampled_from([f"{m:o}", f"0{m:o}"])).flatmap(lambda s: s)},
)


@st.composite
def instruction(draw: st.DrawFn, kind: str | None = None) -> tuple[str, tuple[str, ...], str, dict[str, str]]:
    kind = kind or draw(st.sampled_from(INSTRUCTIONS))
    flags: dict[str, str] = {}
    form = "args"
    if kind == "FROM":
        image = draw(st.one_of(st.just("scratch"), st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)*(:[A-Za-z0-9_.-]{1,8})?", fullmatch=True),
                               st.just("${BASE}")))
        stage = draw(st.none() | st.from_regex(r"[a-z][a-z0-9_.-]{0,6}", fullmatch=True))
        args: tuple[str, ...] = (image,) if stage is None else (image, stage)
    elif kind in ("COPY", "ADD"):
        flags = draw(FLAGS)
        if draw(st.booleans()):
            form = "exec"
            args = tuple(draw(st.lists(word(spaces=True), min_size=2, max_size=4)))
        else:
            args = tuple(draw(st.lists(word(), min_size=2, max_size=4)))
    elif kind in ("RUN", "CMD", "ENTRYPOINT"):
        if draw(st.booleans()):
            form = "exec"
            args = tuple(draw(JSON_STRINGS.filter(lambda a: kind != "RUN" or a)))
        else:
            form = "shell"
            args = (draw(SHELL_LINE),)
    elif kind in ("ENV", "LABEL"):
        if draw(st.booleans()):  # legacy: ENV name value with unquoted blanks
            value = draw(st.lists(st.text(alphabet=string.ascii_letters + "=./", min_size=1, max_size=5), min_size=2, max_size=3)
                         .flatmap(lambda ws: st.sampled_from([" ", "  "]).map(lambda sep: sep.join(ws))))
            args = (f"{draw(NAME)}={value}",)
        else:
            key = NAME if kind == "ENV" else st.one_of(NAME, st.just('"my key"'), st.just("org.example.k"))
            args = tuple(draw(st.lists(st.tuples(key, st.one_of(st.just(""), word(spaces=True))).map(lambda kv: f"{kv[0]}={kv[1]}"),
                                       min_size=1, max_size=3)))
    elif kind == "ARG":
        args = tuple(draw(st.lists(st.tuples(NAME, st.none() | word(spaces=True)).map(lambda kv: kv[0] if kv[1] is None else f"{kv[0]}={kv[1]}"),
                                   min_size=1, max_size=3)))
    elif kind == "WORKDIR":
        args = (draw(st.one_of(PATH, SPACED.map(lambda s: "/" + s.strip()), word())),)
    elif kind == "USER":
        args = (draw(USER),)
    elif kind == "VOLUME":
        if draw(st.booleans()):
            form = "exec"
            args = tuple(draw(st.lists(SPACED.map(lambda s: "/" + s), min_size=1, max_size=3)))
        else:
            args = tuple(draw(st.lists(PATH, min_size=1, max_size=3)))
    else:
        args = tuple(draw(st.lists(PORT, min_size=1, max_size=3)))
    return kind, args, form, flags


@st.composite
def buildfile(draw: st.DrawFn) -> list[tuple[str, tuple[str, ...], str, dict[str, str]]]:
    head = draw(st.lists(instruction("ARG"), max_size=2))
    spec = [*head, draw(instruction("FROM")), *draw(st.lists(instruction(), max_size=8))]
    names: set[str] = set()
    for i, (kind, args, form, flags) in enumerate(spec):  # two stages may not share a name
        if kind == "FROM" and len(args) == 2:
            if args[1] in names:
                spec[i] = (kind, args[:1], form, flags)
            names.add(args[1])
    return spec


def build(spec: list[tuple[str, tuple[str, ...], str, dict[str, str]]]) -> list[Instruction]:
    return [Instruction(kind, args, n, form, flags) for n, (kind, args, form, flags) in enumerate(spec, 1)]  # type: ignore[arg-type]


@given(buildfile())
def test_parse_of_render_gives_the_instructions_back(spec: list[tuple[str, tuple[str, ...], str, dict[str, str]]]) -> None:
    originals = build(spec)
    lines = [ins.render() for ins in originals]
    bf = parse("\n".join(lines) + "\n")
    assert [shape(i) for i in bf] == [shape(i) for i in originals]
    assert [i.line for i in bf] == list(range(1, len(originals) + 1))
    assert [i.raw for i in bf] == lines
    assert bf.render() == "\n".join(lines) + "\n"


@given(buildfile(), st.data())
def test_comments_blank_lines_case_and_continuations_change_nothing(
    spec: list[tuple[str, tuple[str, ...], str, dict[str, str]]], data: st.DataObject
) -> None:
    originals = build(spec)
    out: list[str] = []
    if data.draw(st.booleans(), "directive"):
        out.append("# syntax=docker/dockerfile:1")
    starts: list[int] = []
    for ins in originals:
        for _ in range(data.draw(st.integers(0, 2), "noise")):
            out.append(data.draw(st.sampled_from(["", "   ", "# a comment", "  \t# indented comment", "#"]), "noise line"))
        keyword, _, rest = ins.render().partition(" ")
        keyword = data.draw(st.sampled_from([keyword, keyword.lower(), keyword.title()]), "case")
        starts.append(len(out) + 1)
        if rest and not rest.startswith("#") and data.draw(st.booleans(), "split"):
            out.append(keyword + " \\")
            if data.draw(st.booleans(), "comment inside"):
                out.append("# inside a continuation")
            out.append("   " + rest)
        else:
            out.append(" " * data.draw(st.integers(0, 2), "indent") + f"{keyword} {rest}")
    bf = parse("\n".join(out) + data.draw(st.sampled_from(["", "\n", "\n\n"]), "end"))
    assert [shape(i) for i in bf] == [shape(i) for i in originals]
    assert [i.line for i in bf] == starts


@given(st.dictionaries(NAME, st.text(max_size=6), max_size=4), st.data())
def test_expand_pieces_expand_independently(env: dict[str, str], data: st.DataObject) -> None:
    names = st.sampled_from(sorted(env) + ["UNSET_X"])
    plain = st.text(alphabet=string.ascii_letters + string.digits + " ./-", min_size=1, max_size=5)
    source: list[str] = []
    expected: list[str] = []

    def add(src: str, out: str) -> None:
        source.append(src)
        expected.append(out)

    for _ in range(data.draw(st.integers(0, 6))):
        choice = data.draw(st.integers(0, 6))
        if choice == 0:
            text = data.draw(plain)
            add(text, text)
        elif choice == 1:
            n = data.draw(names)
            add("${%s}" % n, env.get(n, ""))
        elif choice == 2:
            n, w = data.draw(names), data.draw(plain)
            add("${%s:-%s}" % (n, w), env.get(n) or w)
        elif choice == 3:
            n, w = data.draw(names), data.draw(plain)
            add("${%s-%s}" % (n, w), env[n] if n in env else w)
        elif choice == 4:
            n, w = data.draw(names), data.draw(plain)
            add("${%s:+%s}" % (n, w), w if env.get(n) else "")
        elif choice == 5:
            text = data.draw(st.text(alphabet=string.ascii_letters + " $\"\\{}", max_size=5)).replace("'", "")
            add("'" + text + "'", text)
        else:
            ch = data.draw(st.sampled_from(list("$'\"\\ {}a")))
            add("\\" + ch, ch)
    assert expand("".join(source), env) == "".join(expected)


@given(st.text(max_size=40))
def test_parse_either_succeeds_or_raises_a_buildfile_error(text: str) -> None:
    try:
        bf = parse("FROM a\n" + text)
    except BuildfileError as exc:
        assert re.match(r"^Buildfile(:\d+)?: ", str(exc))
        assert exc.line is None or 1 <= exc.line <= text.count("\n") + 2
    else:
        assert bf[0].kind == "FROM" and all(1 <= i.line <= text.count("\n") + 2 for i in bf)


@given(st.text(max_size=30), st.dictionaries(NAME, st.text(max_size=5), max_size=3))
def test_expand_either_succeeds_or_raises_a_buildfile_error(word_: str, env: dict[str, str]) -> None:
    try:
        out = expand(word_, env)
    except BuildfileError as exc:
        assert str(exc).startswith("Buildfile: failed to process ")
    else:
        assert isinstance(out, str)
        if not any(ch in word_ for ch in "$'\"\\"):
            assert out == word_


def test_buildfile_sequence_protocol() -> None:
    bf = parse("FROM a\nRUN b\nRUN c\n")
    assert isinstance(bf, Buildfile) and len(bf) == 3
    assert [i.args[0] for i in bf[1:]] == ["b", "c"]
    assert bf[-1].line == 3
