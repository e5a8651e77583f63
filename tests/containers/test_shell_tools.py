"""The model shell's text and file tools against busybox 1.35, case by case (a differential test).

Every case is a command line, its stdin and the files of the folder it runs in.
It runs (a) in the model, through :func:`sim.containers.shell.run` with a shell-form
string, which is what the model engine's ``RUN`` and ``run`` call (``/bin/sh -c`` in
``/w``), and (b) on the host through ``/bin/busybox`` run as ``/bin/sh -c`` (the shell
and applets the real backend's containers run) in a temporary folder holding the
same files.  The exit status, stdout, stderr and the resulting tree must agree.

These need no root, only ``/bin/busybox`` (``./dev`` installs busybox-static); without
it they skip, or fail when ``LAYERLAB_REQUIRE_REAL=1``.  The tables of sed and awk are in
``test_shell_tools_edit.py``, the option and "not found" checks in ``test_shell_errors.py``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

import sim
from sim.containers.shell import run
from tests.containers.test_shell import host_tree, tree

BUSYBOX = "/bin/busybox"
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root"}

Files = Mapping[str, "bytes | None"]

#: The folder every case starts in (``None`` is a directory).
FILES: dict[str, bytes | None] = {
    "f": b"one\ntwo\nthree\nfour\n",
    "n": b"3 c\n10 a\n2 b\n10 a\n-1 z\n",
    "csv": b"name,age,city\nann,31,paris\nbob,4,rome\ncid,,oslo\n",
    "nonl": b"x\ny",
    "empty": b"",
    "words": b"the quick brown fox\njumps over\n\nthe lazy dog\n",
    "tab": b"a\tb\tc\n1\t2\t3\n",
    "passwd": b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
              b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "dup": b"a\na\nb\nB\nb\nc\na\n",
    "d": None,
    "d/a.txt": b"A\n",
    "d/b.sh": b"echo b\n",
    "d/sub": None,
    "d/sub/c.txt": b"C\n",
    "d/empty": None,
}


@dataclass(frozen=True)
class Case:
    """One command line with its stdin and, unless given, :data:`FILES`."""

    cmd: str
    stdin: bytes = b""
    files: Files = field(default_factory=lambda: FILES)

    def __str__(self) -> str:
        return self.cmd if not self.stdin else f"{self.cmd} <<< {self.stdin[:20]!r}"


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: bytes
    stderr: bytes
    tree: dict[str, tuple[object, ...]]


def case_list(cmds: list[str | tuple[str, bytes]]) -> list[Case]:
    return [Case(c) if isinstance(c, str) else Case(c[0], c[1]) for c in cmds]


@functools.lru_cache(maxsize=1)
def _busybox_problem() -> str | None:
    """Why the host's busybox cannot be the reference (None: it can): missing, or not the 1.35 the model ports."""
    if not os.access(BUSYBOX, os.X_OK):
        return f"no {BUSYBOX} on this host (apt-get install busybox-static)"
    banner = subprocess.run([BUSYBOX], capture_output=True, text=True, timeout=20).stdout.split("\n", 1)[0]
    if "v1.35." not in banner:
        return f"{BUSYBOX} is {banner!r}; the model ports busybox 1.35"
    return None


def require_busybox() -> None:
    """Skip without busybox 1.35 at ``/bin/busybox``, or fail when ``LAYERLAB_REQUIRE_REAL=1`` says the host
    must have it."""
    problem = _busybox_problem()
    if problem is None:
        return
    if os.environ.get("LAYERLAB_REQUIRE_REAL") == "1":
        pytest.fail(f"LAYERLAB_REQUIRE_REAL=1 but {problem}")
    pytest.skip(problem)


def in_model(case: Case) -> Outcome:
    layer = sim.Layer()
    layer.add_dir("w")
    for path, data in case.files.items():
        if data is None:
            layer.add_dir(f"w/{path}")
        else:
            layer.add_file(f"w/{path}", data)
    fs = sim.UnionFS([layer.freeze()])
    result = run(case.cmd, fs, env=ENV, cwd="/w", stdin=case.stdin)
    return Outcome(result.exit_code, result.stdout, result.stderr, tree(fs))


def on_busybox(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="layerlab-shell-") as folder:
        for path, data in case.files.items():
            full = os.path.join(folder, path)
            if data is None:
                os.mkdir(full, 0o755)
                os.chmod(full, 0o755)
            else:
                with open(full, "wb") as fh:
                    fh.write(data)
                os.chmod(full, 0o644)
        done = subprocess.run(["/bin/sh", "-c", case.cmd], executable=BUSYBOX, cwd=folder, env=ENV, input=case.stdin,
                              capture_output=True, umask=0o022, timeout=20)
        return Outcome(done.returncode, done.stdout, done.stderr, host_tree(folder))


def check(case: Case) -> None:
    require_busybox()
    expected = on_busybox(case)
    got = in_model(case)
    assert (got.status, got.stdout, got.stderr) == (expected.status, expected.stdout, expected.stderr), case.cmd
    assert got.tree == expected.tree, case.cmd


# -- the tables ----------------------------------------------------------------------------------------

SORT = case_list([
    "sort f", "sort -r f", "sort n", "sort -n n", "sort -nr n", "sort -u n", "sort -n -u n", "sort -k2 n",
    "sort -k2,2 -r n", "sort -k1,1n n", "sort -t, -k2n csv", "sort -t, -k3 csv", "sort -t, -k2,2nr csv",
    "sort -f dup", "sort -fu dup", "sort -u dup", "sort -ru dup", "sort empty", "sort nonl", "sort f nonl",
    "sort nosuch", "sort f nosuch", "sort -k 0 f", "sort -t ab f", "sort -s -k1,1 dup", "sort -b -k2 n",
    "sort -t: -k3,3n passwd", "sort -t: -k7 -k1,1r passwd", "sort -o out f; cat out", "sort -c f", "sort -c dup",
    "sort -k2.2 words", "sort -n -k1.2 n", "sort words | uniq",
    ("sort", b"b\na\nc"), ("sort -n", b"0x10\n2\n1e3\n5\n-0.5\n.5\n"), ("sort -n", b"1,5\n1.5\n abc\n"),
    ("sort -u", b""), ("sort -r", b"\n\na\n"), ("sort -k2", b"a\nb x\n"), ("sort -nk2 -t' '", b"x 10\ny 9\nz\n"),
])

UNIQ = case_list([
    "uniq dup", "uniq -c dup", "uniq -d dup", "uniq -u dup", "uniq -i dup", "uniq -ic dup", "uniq -cd dup",
    "sort dup | uniq -c", "uniq empty", "uniq nonl", "uniq nosuch", "uniq dup out; cat out", "uniq -f1 n",
    "uniq -s1 dup", "uniq -w1 f", "uniq -f 1 -c n", "uniq -x dup", "uniq a b c",
    ("uniq", b"a\na"), ("uniq -c", b"x\nx\nx\n"), ("uniq -u", b"1\n2\n2\n3\n"), ("uniq", b"\n\n\n"),
    ("uniq -f1", b"a x\nb x\nc y\n"), ("uniq -c -u", b"a\na\nb\n"), ("uniq - out; cat out", b"a\na\n"),
    ("uniq -d -c -i", b"A\na\nb\n"), ("uniq -f 5", b"a\nb\n"), ("uniq -s 2", b"aab\nxxb\nyyc\n"), ("uniq -w 2", b"abc\nabd\nacd\n"),
])

CUT = case_list([
    "cut -d: -f1 passwd", "cut -d: -f1,7 passwd", "cut -d: -f3- passwd", "cut -d: -f-2 passwd", "cut -d, -f2 csv",
    "cut -d, -f2,3 csv", "cut -d, -f1 -s csv", "cut -f2 tab", "cut -f1,3 tab", "cut -c1-3 f", "cut -c2 f",
    "cut -c-2,4- f", "cut -b1,3 f", "cut -c3- nonl", "cut -d' ' -f2 words", "cut -d' ' -f2 -s words",
    "cut -f1 f", "cut -s -f1 f", "cut f", "cut -d: f", "cut -f1 -c1 f", "cut -d: -f 2-1 passwd", "cut -d: -f x passwd",
    "cut -c1 nosuch f", "cut -d, -f5 csv", "cut -c 10- f", "cut -d ab -f1 csv", "cut -c1,1,1 f", "cut empty",
    "cut -c1 empty", "cut -d: -f1 passwd csv", "cut -f , f", "cut -f '' f", "cut -f 1,,2 tab", "cut --help", ("cut -c2-3", b"abcdef"), ("cut -d. -f2", b"a.b.c\nno dot\n"),
    ("cut -d- -f1,3", b"a-b-c-d\n"), ("cut -f2", b"x\ty\n\nz\n"),
])

TR = case_list([
    ("tr a-z A-Z", b"hello World\n"), ("tr -d l", b"hello\n"), ("tr -s l", b"heLLo hello\n"), ("tr -s a-c x", b"aabbcc\n"),
    ("tr el x", b"hello\n"), ("tr '[:lower:]' '[:upper:]'", b"hello 1\n"), ("tr -d '[:digit:]'", b"a1b2c3\n"),
    ("tr -c a x", b"abc\n"), ("tr -cd b", b"abcb\n"), ("tr '\\t' ' '", b"a\tb\n"), ("tr", b"abc\n"), ("tr a", b"abc\n"),
    ("tr -d", b"abc\n"), ("tr . '\\n'", b"a.b.c\n"), ("tr a-c '\\101-\\103'", b"abcd\n"), ("tr '[a*]' x", b"a*b[]\n"),
    ("tr -s a", b"aaabaaa\n"), ("tr -ds l o", b"hello  oo\n"), ("tr c-a x", b"abc\n"), ("tr a- xy", b"a-b\n"),
    ("tr '[=X=]' y", b"aXb\n"), ("tr -s ' ' '\\n'", b"a  b   c\n"), ("tr ab '[x*]'", b"abc\n"), ("tr -d '\\n'", b"a\nb\n"),
    ("tr '[:space:]' _", b"a b\tc\n"), ("tr -d '[:punct:]'", b"a,b.c!d?\n"), ("tr '[:alpha:]' '*'", b"ab12\n"),
    ("tr -s '[:blank:]'", b"a  \t b\n"), ("tr '\\\\' /", b"a\\b\n"), ("tr abc xy", b"aabbcc\n"), ("tr a xyz", b"aaa\n"),
    ("tr -d ''", b"abc\n"), ("tr -cs '[:alnum:]' '\\n'", b"one, two;three\n"), ("tr '0-9' 'a-j'", b"2026\n"),
    ("tr -x a b", b"a\n"), ("tr '[:upper:]' '[:lower:]' < f", b""), ("tr a b", b""), ("tr o 0", b"foo"),
])

HEAD = case_list([
    "head -n 2 f", "head -2 f", "head -c 5 f", "head -n 0 f", "head -n 10 f", "head nosuch", "head -n x f",
    "head f nonl", "head -q -n1 f nonl", "head -n -1 f", "head -c -3 f", "head -n 1 empty", "head -c 1 nonl",
    "head -v -n 1 f", "head -n 1 nosuch f", "head -c 2k f", "head -n 1b f", "head -n +2 f", "head d", "head --bogus f",
    ("head", b"".join(b"%d\n" % i for i in range(15))), ("head -n 1", b""), ("head -n 1 -", b"x\ny\n"),
    ("head -n 2", b"a\nb"), ("head -c 3", b"ab"), ("head -n -2", b"1\n2\n3"),
])

TAIL = case_list([
    "tail -n 2 f", "tail -n +2 f", "tail -2 f", "tail +3 f", "tail -c 4 f", "tail -c +8 f", "tail -n 1 nonl",
    "tail -n 2 f f", "tail nosuch", "tail -n x f", "tail -n 0 f", "tail -n +0 f", "tail -n 3 empty", "tail -q -n1 f nonl",
    "tail -v -n1 f", "tail -n 1 nosuch f", "tail -n 100 f", "tail -n +100 f", "tail -c 0 f", "tail -c 100 nonl",
    "tail -n 1 -c 2 f", "tail -c 2 -n 1 f", "tail -n 1k f", "tail d",
    ("tail -n 1", b"a\nb"), ("tail", b"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"), ("tail -n +2", b"h\n1\n2\n"),
    ("tail -c 2", b"abc"), ("tail -n 2 -", b"a\nb\nc\n"), ("tail -3", b"1\n2"),
])

WC = case_list([
    "wc f", "wc -l f", "wc -w words", "wc -c f", "wc -l f n", "wc f n csv", "wc -lw words f", "wc -l nonl",
    "wc empty", "wc -l empty nosuch", "wc nosuch", "wc -L words", "wc -m f", "wc -l < f", "cat f | wc -l",
    "wc -c nonl f", "wc -lwc words", "wc -x f", "wc d", ("wc", b""), ("wc -w", b"  a  b\n\tc"), ("wc -l", b"a\nb"),
    ("wc -c", b"abc"), ("wc", b"one two\nthree\n"), ("wc -L", b"ab\tc\nxyz\n"), ("wc -w", b"a\x00b c\n"), ("wc -l -", b"1\n2\n"), ("wc - f", b"x\n"),
])

XARGS = case_list([
    ("xargs", b"a b\nc\n"), ("xargs -n 1", b"a b\nc\n"), ("xargs -n 3 echo X", b"a b\nc d\n"),
    ("xargs -I {} echo '<{}>'", b"a\nb\n"), ("xargs echo E", b""), ("xargs -r echo E", b""), ("xargs nosuch", b"a\n"),
    ("xargs false", b"a\n"), ("xargs sh -c 'exit 255'", b"a\n"), ("xargs -n1", b"a\\ b \"c d\" 'e f'\n"),
    ("xargs -t echo", b"a b\n"), ("xargs -I", b"a\n"), ("xargs -I X echo X-X", b"x y\n"), ("xargs -n 0 echo", b"a\n"),
    ("xargs -n x echo", b"a\n"), ("xargs -n2", b"a b c d e\n"), ("xargs", b"a \"b\n"), ("xargs", b"a 'b\n"),
    ("xargs -I X echo '[X]'", b"  a b  \n\n c\n"), ("xargs -0 -n1 echo", b"a\0b c\0"), ("xargs -0", b""),
    ("xargs cat", b"f nonl\n"), ("xargs wc -l", b"f\nn\n"), ("xargs -n1 sh -c 'echo $0-$#'", b"x y\n"),
    ("xargs rm; ls", b"f n csv\n"), ("xargs mkdir -p; ls d", b"d/x d/y\n"), ("xargs -I % sh -c 'echo % > %.out'; cat a.out", b"a\n"),
    ("xargs echo", b"   \n\n"), ("xargs -r", b" \n"), ("xargs sh -c 'exit 3'; echo $?", b"a\n"),
])

TEE = case_list([
    ("tee a", b"hi\n"), ("tee a b; cat a b", b"hi\n"), ("tee -a f", b"five\n"), ("tee nodir/x a", b"y\n"),
    ("tee", b"z\n"), ("tee -", b"hi\n"), ("tee - -", b"hi\n"), ("tee d", b"x\n"), ("tee f > /dev/null; cat f", b"new\n"),
    ("tee -a f n", b""), ("tee empty", b"no newline"), ("tee -x a", b"x\n"), ("echo hi | tee -a a a; cat a", b""),
    ("tee a | wc -c", b"abc\n"), ("tee -i a", b"i\n"), ("tee a nodir/b c; echo $?", b"q\n"), ("tee a", b""),
    ("tee sp\\ ace", b"s\n"), ("tee a && tee -a a < f && cat a", b"0\n"), ("tee d/sub/new", b"deep\n"),
    ("tee a b c | tee d/x; cat a b c d/x", b"many\n"), ("tee --bogus", b""), ("tee a -a b; cat a b", b"mixed\n"),
    ("tee -- -a; cat ./-a", b"dash\n"), ("tee a > b; cat a b", b"x\n"), ("tee /dev/null", b"null\n"),
    ("tee a a; cat a", b"twice\n"), ("tee f < nonl; cat f", b""),
])

FIND = case_list([
    "find . | sort", "find d -name '*.txt' | sort", "find . -type d | sort", "find . -type f -name '*.sh'",
    "find . -maxdepth 1 -type f | sort", "find . -mindepth 2 | sort", "find d -exec echo X {} \\; | sort",
    "find d -type f -exec echo {} + | tr ' ' '\\n' | sort", "find nosuch", "find . -name '*.sh' -print", "find . -bogus",
    "find . -type q", "find d f -type f | sort", "find . -name a.txt -o -name c.txt | sort", "find d ! -name '*.txt' -type f",
    "find . -iname 'A.TXT'", "find . -path './d/*' -type f | sort", "find -maxdepth", "find d -exec echo {}",
    "find . -type f -name '*.txt' -exec sh -c 'exit 1' \\; ; echo $?", "find d -empty", "find d/ -maxdepth 1 | sort",
    "find d -type f -exec false {} +; echo $?", "find d -maxdepth 0", "find d -mindepth 1 -maxdepth 1 -type d | sort",
    "find . -name 'sub' -type d", "find d \\( -name '*.sh' -o -name c.txt \\) -print | sort", "find d -not -type d | sort",
    "find d -name '*.txt' -exec cat {} \\; | sort", "find d -name '*.txt' -exec rm {} \\;; find d | sort",
    "find d nosuch -type d | sort", "find d -type f -print0 | tr '\\0' '\\n' | sort", "find . -name 'f*' | sort",
    "find d -depth | head -n 1 | wc -l", "find d -name '*.sh' -exec sh {} \\;", "find d -type f -exec wc -c {} + | sort",
    "find d -maxdepth x", "find d -type", "find d -quit; echo $?", "find d -exec nosuchprog {} \\; 2>&1 | head -n 1",
    "find d -name", "find d -prune", "find d -maxdepth 0 -o", "find d -a -maxdepth 0", "find d -maxdepth 0 !",
    "find -- d -maxdepth 0", "find d -maxdepth 0 -true", "find d -maxdepth 0 -delete", "find d -maxdepth 0 -wholename d", "find d -type f -name 'b*' -exec sh -c 'echo \"[$1]\"' sh {} \\;",
])

TABLES = {"sort": SORT, "uniq": UNIQ, "cut": CUT, "tr": TR, "head": HEAD, "tail": TAIL, "wc": WC, "xargs": XARGS, "tee": TEE,
          "find": FIND}
ALL_CASES = [(tool, case) for tool, cases in TABLES.items() for case in cases]


@pytest.mark.parametrize("tool,case", ALL_CASES, ids=[f"{tool}:{i}:{c.cmd[:50]}" for i, (tool, c) in enumerate(ALL_CASES)])
def test_tool_matches_busybox(tool: str, case: Case) -> None:
    check(case)


def test_the_tables_are_large_enough() -> None:
    """Dozens of cases for every tool (sed and awk in test_shell_tools_edit.py)."""
    assert all(len(cases) >= 20 for cases in TABLES.values()), {t: len(c) for t, c in TABLES.items()}


BUILD_STEP = ("sed -i -e 's/^#\\(port\\)/\\1/' -e '/^$/d' conf.txt"
              " && awk -F= '{printf \"%s -> %s\\n\", toupper($1), $2}' conf.txt | sort -r > summary"
              " && find . -type f -name '*.txt' | sort | xargs wc -l > counts && cut -d' ' -f3 summary | tr -d '\\n' | tee last")
CONF = b"host=example\n\n#port=8080\nuser = app\n"


def test_a_build_step_with_the_tools_gives_what_busybox_gives(tmp_path: os.PathLike[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The model engine's RUN (its own entry to the shell) against the same step under busybox."""
    require_busybox()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    context = os.path.join(tmp_path, "ctx")
    os.mkdir(context)
    with open(os.path.join(context, "conf.txt"), "wb") as fh:
        fh.write(CONF)
    with open(os.path.join(context, "Buildfile"), "w") as fh:
        fh.write(f"FROM busybox\nWORKDIR /app\nCOPY conf.txt ./\nRUN {BUILD_STEP}\n")
    engine = sim.connect("sim")
    try:
        engine.build(context, tag="tools:1")  # type: ignore[attr-defined]
        built = engine.run("tools:1", ["cat", "conf.txt", "summary", "counts", "last"], remove=True)  # type: ignore[attr-defined]
    finally:
        engine.close()  # type: ignore[attr-defined]
    expected = on_busybox(Case(f"{BUILD_STEP} >/dev/null && cat conf.txt summary counts last", files={"conf.txt": CONF}))
    assert (built.exit_code, built.stdout) == (expected.status, expected.stdout)
    assert b"PORT -> 8080" in built.stdout
