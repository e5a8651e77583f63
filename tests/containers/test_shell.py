"""The model's shell (:mod:`sim.containers.shell`) against busybox 1.35.

``BUSYBOX_CASES`` were recorded from Debian's busybox-static 1.35.0 running
``/bin/sh -c SCRIPT`` (argv[0] ``/bin/sh``, as a container's RUN does) in a
folder holding ``FILES``, with ``PATH=/usr/bin:/bin HOME=/root`` and umask
022; the model ran the same script with ``FILES`` under ``/w`` and gave the
same exit code, stdout, stderr and changes to the tree.  Each row is
``(script, exit_code, stdout, stderr, changes)`` where ``changes`` maps a
path (relative to the folder) to its new state: ``("f", mode, bytes)``,
``("d", mode)``, ``("l", target)`` or ``None`` when removed.  When the host has
busybox, ``test_against_host_busybox`` replays every row against it.

The other tests cover what a folder on the host cannot show: absolute paths,
the union's upper layer after typical RUN lines, program lookup in an image,
:class:`~sim.errors.UnsupportedCommandError`, ``id``, ``env`` order, ``ls -l``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping

import pytest

import sim
from sim.containers.shell import DEFAULT_PATH, IMPLEMENTED, ShellResult, run
from sim.layers.trace import EventKind

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root"}

FILES: dict[str, object] = {
    "f": b"a\nb c\n", "d": None, "d/x": b"x\n", "e": None, "l": ("link", "f"), "dl": ("link", "d"),
    "bad": ("link", "nope"), "s.sh": (b"echo hi $1\n", 0o755), "g1.txt": b"", "g2.txt": b"", ".hid": b"",
    "sp ace": b"s\n",
    "m.sh": (b"echo start\nfoo\ncd nope\nif true; then\n  bar\nfi\nexport 1x\necho after\n", 0o755),
    "n.sh": (b"echo one\n\nif true; then\n", 0o644), "e.sh": (b"#!/bin/sh\necho $0 $#\nexit 7\n", 0o755),
}


def files_layer(prefix: str = "w") -> sim.Layer:
    layer = sim.Layer()
    layer.add_dir(prefix)
    for path, spec in FILES.items():
        name = f"{prefix}/{path}"
        if spec is None:
            layer.add_dir(name)
        elif isinstance(spec, tuple) and spec[0] == "link":
            layer.add_symlink(name, spec[1])
        elif isinstance(spec, tuple):
            layer.add_file(name, spec[0], mode=spec[1])
        else:
            assert isinstance(spec, bytes)
            layer.add_file(name, spec)
    return layer.freeze()


def tree(fs: sim.FileSystem, root: str = "/w") -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}

    def walk(directory: str, rel: str) -> None:
        for name in fs.listdir(directory):
            path, r = f"{directory}/{name}", f"{rel}/{name}" if rel else name
            st = fs.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[r] = ("l", fs.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[r] = ("d", oct(st.st_mode & 0o7777))
                walk(path, r)
            else:
                out[r] = ("f", oct(st.st_mode & 0o7777), fs.read_bytes(path))

    walk(root, "")
    return out


def host_tree(root: str) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", oct(st.st_mode & 0o7777))
            else:
                with open(path, "rb") as fh:
                    out[rel] = ("f", oct(st.st_mode & 0o7777), fh.read())
    return out


def changes_of(before: Mapping[str, object], after: Mapping[str, object]) -> dict[str, object]:
    changes: dict[str, object] = {k: v for k, v in after.items() if before.get(k) != v}
    changes.update({k: None for k in before if k not in after})
    return changes


BUSYBOX_CASES = [
    ('cat x', 1, b'', b"cat: can't open 'x': No such file or directory\n", {}),
    ('cat f', 0, b'a\nb c\n', b'', {}),
    ('cat f x f', 1, b'a\nb c\na\nb c\n', b"cat: can't open 'x': No such file or directory\n", {}),
    ('cat d', 1, b'', b'cat: read error: Is a directory\n', {}),
    ('cat < f', 0, b'a\nb c\n', b'', {}),
    ('cat -n f', 0, b'     1\ta\n     2\tb c\n', b'', {}),
    ('ls', 0, b'bad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {}),
    ('ls -a', 0, b'.\n..\n.hid\nbad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {}),
    ('ls -1 d e', 0, b'd:\nx\n\ne:\n', b'', {}),
    ('ls x', 1, b'', b'ls: x: No such file or directory\n', {}),
    ('ls d', 0, b'x\n', b'', {}),
    ('ls dl', 0, b'x\n', b'', {}),
    ('ls bad', 1, b'', b'ls: bad: No such file or directory\n', {}),
    ('ls -d d', 0, b'd\n', b'', {}),
    ('ls f d', 0, b'f\n\nd:\nx\n', b'', {}),
    ('ls -R', 0, b'.:\nbad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n\n./d:\nx\n\n./e:\n', b'', {}),
    ('ls -p', 0, b'bad\nd/\ndl\ne/\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {}),
    ('ls -F', 0, b'bad@\nd/\ndl@\ne/\ne.sh*\nf\ng1.txt\ng2.txt\nl@\nm.sh*\nn.sh\ns.sh*\nsp ace\n', b'', {}),
    ('ls -A', 0, b'.hid\nbad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {}),
    ('mkdir d', 1, b'', b"mkdir: can't create directory 'd': File exists\n", {}),
    ('mkdir -p d/y/z && ls d', 0, b'x\ny\n', b'', {'d/y': ('d', '0o755'), 'd/y/z': ('d', '0o755')}),
    ('mkdir a b; ls', 0, b'a\nb\nbad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'b': ('d', '0o755'), 'a': ('d', '0o755')}),
    ('mkdir -p f/g', 1, b'', b"mkdir: can't create directory 'f/': Not a directory\n", {}),
    ('mkdir -p d/x/g', 1, b'', b"mkdir: can't create directory 'd/x/': Not a directory\n", {}),
    ('mkdir n/m', 1, b'', b"mkdir: can't create directory 'n/m': No such file or directory\n", {}),
    ('rm x', 1, b'', b"rm: can't remove 'x': No such file or directory\n", {}),
    ('rm -f x', 0, b'', b'', {}),
    ('rm d', 1, b'', b"rm: 'd' is a directory\n", {}),
    ('rm -r d; ls', 0, b'bad\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'d': None, 'd/x': None}),
    ('rm -rf d e f; ls', 0, b'bad\ndl\ne.sh\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'e': None, 'd': None, 'f': None, 'd/x': None}),
    ('rm .', 1, b'', b"rm: can't remove '.' or '..'\n", {}),
    ('rm -r dl', 0, b'', b'', {'dl': None}),
    ('rm', 1, b'', b'BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: rm [-irf] FILE...\n\nRemove (unlink) FILEs\n\n\t-i\tAlways prompt before removing\n\t-f\tNever prompt\n\t-R,-r\tRecurse\n', {}),
    ('rmdir d', 1, b'', b"rmdir: 'd': Directory not empty\n", {}),
    ('rmdir e', 0, b'', b'', {'e': None}),
    ('rmdir x', 1, b'', b"rmdir: 'x': No such file or directory\n", {}),
    ('rmdir -p e', 0, b'', b'', {'e': None}),
    ('touch f; touch new; ls', 0, b'bad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\nnew\ns.sh\nsp ace\n', b'', {'new': ('f', '0o644', b'')}),
    ('touch nd/x', 1, b'', b'touch: nd/x: No such file or directory\n', {}),
    ('touch -c zz; ls', 0, b'bad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {}),
    ('cp f g; cat g', 0, b'a\nb c\n', b'', {'g': ('f', '0o644', b'a\nb c\n')}),
    ('cp d e', 1, b'', b"cp: omitting directory 'd'\n", {}),
    ('cp -r d e; ls e e/d', 0, b'e:\nd\n\ne/d:\nx\n', b'', {'e/d': ('d', '0o755'), 'e/d/x': ('f', '0o644', b'x\n')}),
    ('cp f d/', 0, b'', b'', {'d/f': ('f', '0o644', b'a\nb c\n')}),
    ('cp x y', 1, b'', b"cp: can't stat 'x': No such file or directory\n", {}),
    ('cp f nod/x', 1, b'', b"cp: can't create 'nod/x': No such file or directory\n", {}),
    ('cp -r d newd; ls newd', 0, b'x\n', b'', {'newd': ('d', '0o755'), 'newd/x': ('f', '0o644', b'x\n')}),
    ('cp f f', 1, b'', b"cp: 'f' and 'f' are the same file\n", {}),
    ('cp', 1, b'', b"BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: cp [-arPLHpfinlsTu] SOURCE DEST\nor: cp [-arPLHpfinlsu] SOURCE... { -t DIRECTORY | DIRECTORY }\n\nCopy SOURCEs to DEST\n\n\t-a\tSame as -dpR\n\t-R,-r\tRecurse\n\t-d,-P\tPreserve symlinks (default if -R)\n\t-L\tFollow all symlinks\n\t-H\tFollow symlinks on command line\n\t-p\tPreserve file attributes if possible\n\t-f\tOverwrite\n\t-i\tPrompt before overwrite\n\t-n\tDon't overwrite\n\t-l,-s\tCreate (sym)links\n\t-T\tRefuse to copy if DEST is a directory\n\t-t DIR\tCopy all SOURCEs into DIR\n\t-u\tCopy only newer files\n", {}),
    ('cp f', 1, b'', b"BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: cp [-arPLHpfinlsTu] SOURCE DEST\nor: cp [-arPLHpfinlsu] SOURCE... { -t DIRECTORY | DIRECTORY }\n\nCopy SOURCEs to DEST\n\n\t-a\tSame as -dpR\n\t-R,-r\tRecurse\n\t-d,-P\tPreserve symlinks (default if -R)\n\t-L\tFollow all symlinks\n\t-H\tFollow symlinks on command line\n\t-p\tPreserve file attributes if possible\n\t-f\tOverwrite\n\t-i\tPrompt before overwrite\n\t-n\tDon't overwrite\n\t-l,-s\tCreate (sym)links\n\t-T\tRefuse to copy if DEST is a directory\n\t-t DIR\tCopy all SOURCEs into DIR\n\t-u\tCopy only newer files\n", {}),
    ('cp -r d f', 1, b'', b"cp: can't stat 'f/d': Not a directory\n", {}),
    ('mv f g; ls', 0, b'bad\nd\ndl\ne\ne.sh\ng\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'g': ('f', '0o644', b'a\nb c\n'), 'f': None}),
    ('mv x y', 1, b'', b"mv: can't rename 'x': No such file or directory\n", {}),
    ('mv d e; ls e', 0, b'd\n', b'', {'e/d': ('d', '0o755'), 'e/d/x': ('f', '0o644', b'x\n'), 'd': None, 'd/x': None}),
    ('mv f d; ls d', 0, b'f\nx\n', b'', {'d/f': ('f', '0o644', b'a\nb c\n'), 'f': None}),
    ('mv e d', 0, b'', b'', {'d/e': ('d', '0o755'), 'e': None}),
    ('mv', 1, b'', b"BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: mv [-finT] SOURCE DEST\nor: mv [-fin] SOURCE... { -t DIRECTORY | DIRECTORY }\n\nRename SOURCE to DEST, or move SOURCEs to DIRECTORY\n\n\t-f\tDon't prompt before overwriting\n\t-i\tInteractive, prompt before overwrite\n\t-n\tDon't overwrite an existing file\n\t-T\tRefuse to move if DEST is a directory\n\t-t DIR\tMove all SOURCEs into DIR\n", {}),
    ('ln f hl; ls', 0, b'bad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nhl\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'hl': ('f', '0o644', b'a\nb c\n')}),
    ('ln -s f l', 1, b'', b'ln: l: File exists\n', {}),
    ('ln x y', 1, b'', b'ln: x: No such file or directory\n', {}),
    ('ln f', 1, b'', b'ln: f: File exists\n', {}),
    ('chmod zz f', 1, b'', b"chmod: invalid mode 'zz'\n", {}),
    ('chmod 777 x', 1, b'', b'chmod: x: No such file or directory\n', {}),
    ('chmod', 1, b'', b'BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: chmod [-Rcvf] MODE[,MODE]... FILE...\n\nMODE is octal number (bit pattern sstrwxrwxrwx) or [ugoa]{+|-|=}[rwxXst]\n\n\t-R\tRecurse\n\t-c\tList changed files\n\t-v\tVerbose\n\t-f\tHide errors\n', {}),
    ('echo a b   c', 0, b'a b c\n', b'', {}),
    ('echo -n x; echo y', 0, b'xy\n', b'', {}),
    ('echo -e "a\\tb\\n"', 0, b'a\tb\n\n', b'', {}),
    ('echo -e "\\x41\\0101\\c" zz', 0, b'AA', b'', {}),
    ('echo -', 0, b'-\n', b'', {}),
    ('echo -neE x', 0, b'x', b'', {}),
    ('echo -x', 0, b'-x\n', b'', {}),
    ('echo \'a  b\' "c  d"', 0, b'a  b c  d\n', b'', {}),
    ('echo \\a\\b', 0, b'ab\n', b'', {}),
    ('printf "%s-%d-%%\\n" a 5 b 6', 0, b'a-5-%\nb-6-%\n', b'', {}),
    ('printf "%d\\n" x', 1, b'0\n', b"sh: invalid number 'x'\n", {}),
    ('printf "%5s|%-3d|\\n" a 1', 0, b'    a|1  |\n', b'', {}),
    ('printf', 2, b'', b'sh: usage: printf FORMAT [ARGUMENT...]\n', {}),
    ('printf "%x %o %X %u\\n" 255 8 255 -1', 0, b'ff 10 FF 18446744073709551615\n', b'', {}),
    ('printf "%b\\n" "a\\tb"', 0, b'a\tb\n', b'', {}),
    ('printf "%c%c\\n" hello w', 0, b'hw\n', b'', {}),
    ('printf "%.2f %e\\n" 3.14159 2', 0, b'3.14 2.000000e+00\n', b'', {}),
    ('printf "%d\\n" 12abc', 1, b'0\n', b"sh: invalid number '12abc'\n", {}),
    ('printf "%d %d\\n" 1', 1, b'1 0\n', b"sh: invalid number ''\n", {}),
    ('printf "%z\\n"', 1, b'', b'sh: %\\n: invalid format\n', {}),
    ('printf \'%d\\n\' "\'A"', 0, b'65\n', b'', {}),
    ('printf "%#o %#x\\n" 8 255', 0, b'010 0xff\n', b'', {}),
    ('printf "%05d|%+d|% d\\n" 42 5 5', 0, b'00042|+5| 5\n', b'', {}),
    ('printf "a\\qb\\n"', 0, b'a\\qb\n', b'', {}),
    ('true; echo $?', 0, b'0\n', b'', {}),
    ('false; echo $?', 0, b'1\n', b'', {}),
    ('! true; echo $?', 0, b'1\n', b'', {}),
    ('[ 1 -eq 1 ]; echo $?', 0, b'0\n', b'', {}),
    ('[ 1 -eq 1; echo $?', 0, b'2\n', b'sh: missing ]\n', {}),
    ('[ a -eq 1 ]; echo $?', 0, b'2\n', b'sh: a: bad number\n', {}),
    ('[ 1 -eq ]', 2, b'', b'sh: -eq: argument expected\n', {}),
    ('[ a -foo b ]; echo $?', 0, b'2\n', b'sh: -foo: unknown operand\n', {}),
    ('[ -z "" ]; echo $?', 0, b'0\n', b'', {}),
    ('[ -n "" ]; echo $?', 0, b'1\n', b'', {}),
    ('[ -e f ] && echo y', 0, b'y\n', b'', {}),
    ('[ -f d ] || echo n', 0, b'n\n', b'', {}),
    ('[ -d d ] && echo y', 0, b'y\n', b'', {}),
    ('[ -L l ] && echo y', 0, b'y\n', b'', {}),
    ('[ -s f ] && echo y', 0, b'y\n', b'', {}),
    ('[ a = a ] && echo y', 0, b'y\n', b'', {}),
    ('[ a != a ] || echo n', 0, b'n\n', b'', {}),
    ('[ 2 -lt 3 -a 3 -gt 2 ]; echo $?', 0, b'0\n', b'', {}),
    ('[ ! -e x ]; echo $?', 0, b'0\n', b'', {}),
    ('test; echo $?', 0, b'1\n', b'', {}),
    ('test -z; echo $?', 0, b'0\n', b'', {}),
    ('[ 1 -eq 1 -a ]; echo $?', 0, b'2\n', b'sh: argument expected\n', {}),
    ('[ "(" a ")" ]; echo $?', 0, b'0\n', b'', {}),
    ('test 3 -lt 5 6; echo $?', 0, b'2\n', b'sh: 6: unknown operand\n', {}),
    ('cd nope', 2, b'', b"/bin/sh: cd: line 0: can't cd to nope: No such file or directory\n", {}),
    ('cd f', 2, b'', b"/bin/sh: cd: line 0: can't cd to f: Not a directory\n", {}),
    ('hostname >/dev/null; echo $?', 0, b'0\n', b'', {}),
    ('sh -c "echo in; exit 3"; echo $?', 0, b'in\n3\n', b'', {}),
    ('sh -c', 2, b'', b'sh: -c requires an argument\n', {}),
    ('sh s.sh arg', 0, b'hi arg\n', b'', {}),
    ('sh nope', 2, b'', b"sh: can't open 'nope': No such file or directory\n", {}),
    ('./s.sh x', 0, b'hi x\n', b'', {}),
    ('sleep x', 1, b'', b"sleep: invalid number 'x'\n", {}),
    ('sleep 0.1 0; echo $?', 0, b'0\n', b'', {}),
    ('sleep', 1, b'', b'BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: sleep [N]...\n\nPause for a time equal to the total of the args given, where each arg can\nhave an optional suffix of (s)econds, (m)inutes, (h)ours, or (d)ays\n', {}),
    ('wc f', 0, b'        2         3         6 f\n', b'', {}),
    ('wc -l f', 0, b'2 f\n', b'', {}),
    ('wc -c < f', 0, b'6\n', b'', {}),
    ('wc -w f f', 0, b'        3 f\n        3 f\n        6 total\n', b'', {}),
    ('cat f | wc', 0, b'        2         3         6\n', b'', {}),
    ('wc x', 1, b'', b'wc: x: No such file or directory\n', {}),
    ('wc d', 1, b'        0         0         0 d\n', b'wc: d: Is a directory\n', {}),
    ('wc -L f', 0, b'3 f\n', b'', {}),
    ('wc -m f', 0, b'6 f\n', b'', {}),
    ('head -n 1 f', 0, b'a\n', b'', {}),
    ('head -1 f', 0, b'a\n', b'', {}),
    ('head -n 0 f', 0, b'', b'', {}),
    ('echo x | head', 0, b'x\n', b'', {}),
    ('head -n x f', 1, b'', b"head: invalid number 'x'\n", {}),
    ('head f d/x', 0, b'==> f <==\na\nb c\n\n==> d/x <==\nx\n', b'', {}),
    ('head x', 1, b'', b'head: x: No such file or directory\n', {}),
    ('head -c 3 f', 0, b'a\nb', b'', {}),
    ('head -n -1 f', 0, b'a\n', b'', {}),
    ('head -q f f', 0, b'a\nb c\na\nb c\n', b'', {}),
    ('head -v f', 0, b'==> f <==\na\nb c\n', b'', {}),
    ('grep -c b f', 0, b'1\n', b'', {}),
    ('grep -q b f; echo $?', 0, b'0\n', b'', {}),
    ('grep -v b f', 0, b'a\n', b'', {}),
    ('grep -i B f', 0, b'b c\n', b'', {}),
    ('grep "b.c" f', 0, b'b c\n', b'', {}),
    ('grep z f; echo $?', 0, b'1\n', b'', {}),
    ('grep a x; echo $?', 0, b'2\n', b'grep: x: No such file or directory\n', {}),
    ('grep x d; echo $?', 0, b'1\n', b'', {}),
    ('grep b f d/x', 0, b'f:b c\n', b'', {}),
    ('grep -n b f', 0, b'2:b c\n', b'', {}),
    ('grep -l a f d/x', 0, b'f\n', b'', {}),
    ('grep -e a -e x f d/x', 0, b'f:a\nd/x:x\n', b'', {}),
    ('grep -E "a|b" f', 0, b'a\nb c\n', b'', {}),
    ('grep "a\\|b" f', 0, b'a\nb c\n', b'', {}),
    ('grep -w b f', 0, b'b c\n', b'', {}),
    ('grep -x a f', 0, b'a\n', b'', {}),
    ('grep -o "b" f', 0, b'b\n', b'', {}),
    ('grep', 2, b'', b"BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: grep [-HhnlLoqvsrRiwFEz] [-m N] [-A|B|C N] { PATTERN | -e PATTERN... | -f FILE... } [FILE]...\n\nSearch for PATTERN in FILEs (or stdin)\n\n\t-H\tAdd 'filename:' prefix\n\t-h\tDo not add 'filename:' prefix\n\t-n\tAdd 'line_no:' prefix\n\t-l\tShow only names of files that match\n\t-L\tShow only names of files that don't match\n\t-c\tShow only count of matching lines\n\t-o\tShow only the matching part of line\n\t-q\tQuiet. Return 0 if PATTERN is found, 1 otherwise\n\t-v\tSelect non-matching lines\n\t-s\tSuppress open and read errors\n\t-r\tRecurse\n\t-R\tRecurse and dereference symlinks\n\t-i\tIgnore case\n\t-w\tMatch whole words only\n\t-x\tMatch whole lines only\n\t-F\tPATTERN is a literal (not regexp)\n\t-E\tPATTERN is an extended regexp\n\t-z\tNUL terminated input\n\t-m N\tMatch up to N times per file\n\t-A N\tPrint N lines of trailing context\n\t-B N\tPrint N lines of leading context\n\t-C N\tSame as '-A N -B N'\n\t-e PTRN\tPattern to match\n\t-f FILE\tRead pattern from file\n", {}),
    ('grep -F . f; echo $?', 0, b'1\n', b'', {}),
    ('grep "\\(" f', 2, b'', b"grep: bad regex '\\('\n", {}),
    ('grep "^b" f', 0, b'b c\n', b'', {}),
    ('grep "c$" f', 0, b'b c\n', b'', {}),
    ('foo', 127, b'', b'/bin/sh: foo: not found\n', {}),
    ('foo; echo $?', 0, b'127\n', b'/bin/sh: foo: not found\n', {}),
    ('x/y', 127, b'', b'/bin/sh: x/y: not found\n', {}),
    ('./nofile', 127, b'', b'/bin/sh: ./nofile: not found\n', {}),
    ('./d', 126, b'', b'/bin/sh: ./d: Permission denied\n', {}),
    ('env nope', 127, b'', b"env: can't execute 'nope': No such file or directory\n", {}),
    ('exit 300', 44, b'', b'', {}),
    ('exit -1', 2, b'', b'/bin/sh: exit: line 0: Illegal number: -1\n', {}),
    ('exit foo', 2, b'', b'/bin/sh: exit: line 0: Illegal number: foo\n', {}),
    ('echo \'a  b\' "c  d" e\\ f', 0, b'a  b c  d e f\n', b'', {}),
    ('x="a  b"; echo $x "$x"', 0, b'a b a  b\n', b'', {}),
    ('echo "$HOME" \'$HOME\' \\$HOME', 0, b'/root $HOME $HOME\n', b'', {}),
    ('echo ${HOME} ${NOPE:-def} ${NOPE-x} ${HOME:+set} ${#HOME}', 0, b'/root def x set 5\n', b'', {}),
    ('A=b; echo ${A}c $Ac', 0, b'bc\n', b'', {}),
    ('x=1 y=$x; echo $y', 0, b'1\n', b'', {}),
    ('A=1 sh -c "echo \\$A"; echo "[$A]"', 0, b'1\n[]\n', b'', {}),
    ('export A=2; sh -c "echo \\$A"', 0, b'2\n', b'', {}),
    ('A=3; sh -c "echo [\\$A]"', 0, b'[]\n', b'', {}),
    ('A=1; A=2 true; echo $A', 0, b'1\n', b'', {}),
    ('false; echo $?; true; echo $?', 0, b'1\n0\n', b'', {}),
    ('false || echo or; true && echo and; false && echo no; true || echo no2', 0, b'or\nand\n', b'', {}),
    ('true && false || echo x', 0, b'x\n', b'', {}),
    ('echo a > o; cat o; echo b >> o; cat o', 0, b'a\na\nb\n', b'', {'o': ('f', '0o644', b'a\nb\n')}),
    ('echo err >&2', 0, b'', b'err\n', {}),
    ('ls nope 2>/dev/null; echo $?', 0, b'1\n', b'', {}),
    ('ls nope 2>&1 | cat', 0, b'ls: nope: No such file or directory\n', b'', {}),
    ('ls nope > o 2>&1; cat o', 0, b'ls: nope: No such file or directory\n', b'', {'o': ('f', '0o644', b'ls: nope: No such file or directory\n')}),
    ('echo a 2>&1 >/dev/null', 0, b'', b'', {}),
    ('cat < f > o; cat o', 0, b'a\nb c\n', b'', {'o': ('f', '0o644', b'a\nb c\n')}),
    ('cat < nofile', 1, b'', b"/bin/sh: can't open nofile: no such file\n", {}),
    ('echo a > nd/o', 1, b'', b"/bin/sh: can't create nd/o: nonexistent directory\n", {}),
    ('echo a > d', 1, b'', b"/bin/sh: can't create d: Is a directory\n", {}),
    ('echo a >&5', 1, b'', b'/bin/sh: 5: Bad file descriptor\n', {}),
    ('echo one | cat | cat', 0, b'one\n', b'', {}),
    ('echo abc | wc -c', 0, b'4\n', b'', {}),
    ('cat f | grep b | wc -l', 0, b'1\n', b'', {}),
    ('false | true; echo $?', 0, b'0\n', b'', {}),
    ('true | false; echo $?', 0, b'1\n', b'', {}),
    ('! false | false; echo $?', 0, b'0\n', b'', {}),
    ('x=1 | true; echo "[$x]"', 0, b'[]\n', b'', {}),
    ('if true; then echo y; fi', 0, b'y\n', b'', {}),
    ('if false; then echo y; else echo n; fi', 0, b'n\n', b'', {}),
    ('if false; then echo 1; elif true; then echo 2; fi', 0, b'2\n', b'', {}),
    ('if [ -d d ]; then echo dir; fi', 0, b'dir\n', b'', {}),
    ('for x in a b c; do echo $x; done', 0, b'a\nb\nc\n', b'', {}),
    ('for x in *.txt; do echo $x; done', 0, b'g1.txt\ng2.txt\n', b'', {}),
    ('for x in; do echo $x; done; echo end', 0, b'end\n', b'', {}),
    ('for f in d/*; do echo $f; done', 0, b'd/x\n', b'', {}),
    ('for x in 1 2 3; do if [ $x = 2 ]; then continue; fi; echo $x; done', 0, b'1\n3\n', b'', {}),
    ('for x in 1 2 3; do [ $x = 2 ] && break; echo $x; done', 0, b'1\n', b'', {}),
    ('i=0; while [ $i -lt 3 ]; do echo $i; i=$((i+1)); done', 0, b'0\n1\n2\n', b'', {}),
    ('until true; do echo no; done; echo out', 0, b'out\n', b'', {}),
    ('echo $((1+2*3)) $((10/3)) $((10%3)) $((-7/2)) $((2**10)) $(( (1+2)*3 ))', 0, b'7 3 1 -3 1024 9\n', b'', {}),
    ('echo $((1/0)); echo after', 2, b'', b'/bin/sh: divide by zero\n', {}),
    ('x=5; echo $((x*2)) $((x+=1)) $x', 0, b'10 6 6\n', b'', {}),
    ('case abc in a*) echo A;; *) echo other;; esac', 0, b'A\n', b'', {}),
    ('case x in a|x) echo hit;; esac', 0, b'hit\n', b'', {}),
    ('case "" in "") echo empty;; esac', 0, b'empty\n', b'', {}),
    ('x=foo.tar.gz; echo ${x%.gz} ${x%%.*} ${x#*.} ${x##*.}', 0, b'foo.tar foo tar.gz gz\n', b'', {}),
    ('f() { echo in f $1 $#; return 3; }; f a b; echo $?', 0, b'in f a 2\n3\n', b'', {}),
    ('f() { local x=1; echo $x; }; x=0; f; echo $x', 0, b'1\n0\n', b'', {}),
    ('g() { echo $0; }; g', 0, b'/bin/sh\n', b'', {}),
    ('echo *.txt', 0, b'g1.txt g2.txt\n', b'', {}),
    ('echo d/*', 0, b'd/x\n', b'', {}),
    ('echo d/.*', 0, b'd/. d/..\n', b'', {}),
    ('echo .*', 0, b'. .. .hid\n', b'', {}),
    ('echo nomatch*', 0, b'nomatch*\n', b'', {}),
    ('echo "*.txt"', 0, b'*.txt\n', b'', {}),
    ("echo '*'", 0, b'*\n', b'', {}),
    ('echo [gx]1.txt', 0, b'g1.txt\n', b'', {}),
    ('echo ?1.txt', 0, b'g1.txt\n', b'', {}),
    ('rm -rf d/*; ls -a d', 0, b'.\n..\n', b'', {'d/x': None}),
    ('rm -f *.txt; ls', 0, b'bad\nd\ndl\ne\ne.sh\nf\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'g1.txt': None, 'g2.txt': None}),
    ('echo $(echo a b) "$(echo c  d)"', 0, b'a b c d\n', b'', {}),
    ('echo `echo hi`', 0, b'hi\n', b'', {}),
    ('x=$(false); echo $?', 0, b'1\n', b'', {}),
    ('echo $(printf "a\\n\\n\\n")x', 0, b'ax\n', b'', {}),
    ('cat <<EOF\nhello $HOME\nEOF', 0, b'hello /root\n', b'', {}),
    ("cat <<'EOF'\nhello $HOME\nEOF", 0, b'hello $HOME\n', b'', {}),
    ('cat <<-EOF\n\thello\n\tEOF', 0, b'hello\n', b'', {}),
    ('{ echo a; echo b; } > o; cat o', 0, b'a\nb\n', b'', {'o': ('f', '0o644', b'a\nb\n')}),
    ('(exit 3); echo $?', 0, b'3\n', b'', {}),
    ('( echo sub )', 0, b'sub\n', b'', {}),
    ('set -e; false; echo no', 1, b'', b'', {}),
    ('set -e; false || true; echo yes; if false; then :; fi; echo yes2', 0, b'yes\nyes2\n', b'', {}),
    ('set -e; ! true; echo still', 0, b'still\n', b'', {}),
    ('set -u; echo $nope; echo after', 2, b'', b'/bin/sh: nope: parameter not set\n', {}),
    ('set -- a "b c"; for i in "$@"; do echo "[$i]"; done; echo "$*" $#', 0, b'[a]\n[b c]\na b c 2\n', b'', {}),
    ('set -- a b c; shift; echo $@; shift 5; echo $?', 0, b'b c\n1\n', b'', {}),
    ('a="x  y"; for i in $a; do echo "[$i]"; done', 0, b'[x]\n[y]\n', b'', {}),
    ('IFS=:; a="a::b:"; for i in $a; do echo "[$i]"; done', 0, b'[a]\n[]\n[b]\n', b'', {}),
    ('echo "${NOPE:=dflt}" $NOPE', 0, b'dflt dflt\n', b'', {}),
    ('echo ${x?}; echo after', 2, b'', b'/bin/sh: x: parameter not set\n', {}),
    ('echo ${x?custom msg}', 2, b'', b'/bin/sh: x: custom msg\n', {}),
    ('x=1; readonly x; x=2; echo after', 2, b'', b'/bin/sh: x: is read only\n', {}),
    ('export 1a=b; echo $?', 2, b'', b'/bin/sh: export: line 0: 1a: bad variable name\n', {}),
    ('exit 1 2', 1, b'', b'', {}),
    ('unset HOME; echo "[$HOME]"', 0, b'[]\n', b'', {}),
    ('read a b <<EOF\none two three\nEOF\necho "$a|$b"', 0, b'one|two three\n', b'', {}),
    ('printf "l1\\nl2\\n" | while read l; do echo "got $l"; done', 0, b'got l1\ngot l2\n', b'', {}),
    ('echo "a b" | { read x; echo $x; }', 0, b'a b\n', b'', {}),
    ('if true; then', 2, b'', b'/bin/sh: syntax error: unexpected end of file (expecting "fi")\n', {}),
    ('echo "abc', 2, b'', b'/bin/sh: syntax error: unterminated quoted string\n', {}),
    ('fi', 2, b'', b'/bin/sh: syntax error: unexpected "fi"\n', {}),
    ('echo a | | b', 2, b'', b'/bin/sh: syntax error: unexpected "|"\n', {}),
    (';', 2, b'', b'/bin/sh: syntax error: unexpected ";"\n', {}),
    ('echo a &&', 2, b'', b'/bin/sh: syntax error: unexpected end of file\n', {}),
    ('echo a\nif', 2, b'a\n', b'/bin/sh: syntax error: unexpected end of file (expecting "then")\n', {}),
    ('for x in a b do echo; done', 2, b'', b'/bin/sh: syntax error: unexpected "done" (expecting "do")\n', {}),
    ('case x in', 2, b'', b'/bin/sh: syntax error: unexpected end of file (expecting ")")\n', {}),
    ('{ echo a', 2, b'', b'/bin/sh: syntax error: unexpected end of file (expecting "}")\n', {}),
    ('( echo a', 2, b'', b'/bin/sh: syntax error: unexpected end of file (expecting ")")\n', {}),
    ('echo $((1+))', 2, b'', b'/bin/sh: arithmetic syntax error\n', {}),
    ('f() { echo', 2, b'', b'/bin/sh: syntax error: unexpected end of file (expecting "}")\n', {}),
    ('if true; fi', 2, b'', b'/bin/sh: syntax error: unexpected "fi" (expecting "then")\n', {}),
    ('while true; done', 2, b'', b'/bin/sh: syntax error: unexpected "done" (expecting "do")\n', {}),
    ('true\ncd nope', 2, b'', b"/bin/sh: cd: line 1: can't cd to nope: No such file or directory\n", {}),
    ('cd nope; cd nope\ncd nope', 2, b'', b"/bin/sh: cd: line 0: can't cd to nope: No such file or directory\n/bin/sh: cd: line 0: can't cd to nope: No such file or directory\n/bin/sh: cd: line 1: can't cd to nope: No such file or directory\n", {}),
    ('foo\nbar', 127, b'', b'/bin/sh: foo: not found\n/bin/sh: bar: not found\n', {}),
    ('echo a; exit 4; echo b', 4, b'a\n', b'', {}),
    ('eval "echo a; echo b"', 0, b'a\nb\n', b'', {}),
    ('eval exit 5', 5, b'', b'', {}),
    ('. ./s.sh', 0, b'hi\n', b'', {}),
    ('command -v echo cd ls foo; echo $?', 0, b'echo\n0\n', b'', {}),
    ('type echo ls', 0, b'echo is a shell builtin\nls is ls\n', b'', {}),
    ('x=y; export x; env | grep -c x=y', 0, b'1\n', b'', {}),
    ('echo a \\\n b', 0, b'a b\n', b'', {}),
    ("echo 'a\nb'", 0, b'a\nb\n', b'', {}),
    ('echo "a\\"b"', 0, b'a"b\n', b'', {}),
    ('echo "it\'s"', 0, b"it's\n", b'', {}),
    ('echo a#b #c', 0, b'a#b\n', b'', {}),
    ('echo ~ ~/x', 0, b'/root /root/x\n', b'', {}),
    ('echo ${#}', 0, b'0\n', b'', {}),
    ('echo "${@}"', 0, b'\n', b'', {}),
    ('echo $1', 0, b'\n', b'', {}),
    ("sh -c 'echo $0 $1' zero one", 0, b'zero one\n', b'', {}),
    ('sh -c "exit 7"; echo $?', 0, b'7\n', b'', {}),
    ('exec echo replaced; echo no', 0, b'replaced\n', b'', {}),
    ('exec >o; echo hidden; exec >/dev/null; cat o >&2', 0, b'', b'hidden\n', {'o': ('f', '0o644', b'hidden\n')}),
    ('echo x >/dev/null; echo $?', 0, b'0\n', b'', {}),
    ('cat /dev/null; echo $?', 0, b'0\n', b'', {}),
    ('true &\necho after', 0, b'after\n', b'', {}),
    ('x=hello; echo ${x/l/L} ${x//l/L} ${x/#h/H} ${x/%o/O} ${x:1} ${x:1:3} ${x: -2} ${x:0:-1}', 0, b'heLlo heLLo hello hello ello ell lo hell\n', b'', {}),
    ('x=a.b.c; echo ${x//./_}', 0, b'a_b_c\n', b'', {}),
    ('set -- 1 2 3; echo ${#@} ${#*}', 0, b'5 5\n', b'', {}),
    ('echo "$(echo "inner \\"q\\"")"', 0, b'inner "q"\n', b'', {}),
    ('echo "$(echo \'a  b\')"', 0, b'a  b\n', b'', {}),
    ('x="$(cat <<EOF\nheredoc body\nEOF\n)"; echo "$x"', 0, b'heredoc body\n', b'', {}),
    ('echo $(echo $(echo nest))', 0, b'nest\n', b'', {}),
    ('echo "`echo \\`echo bq\\``"', 0, b'bq\n', b'', {}),
    ('set -- ; for a in "$@"; do echo "[$a]"; done; echo "[$@]" "[$*]"', 0, b'[] []\n', b'', {}),
    ('set -- "" ""; echo $#; for a in "$@"; do echo "[$a]"; done; for a in $@; do echo "<$a>"; done', 0, b'2\n[]\n[]\n', b'', {}),
    ('IFS=,; set -- a b; echo "$*"', 0, b'a,b\n', b'', {}),
    ('f() { [ $1 -le 0 ] && return 0; echo $1; f $(($1-1)); }; f 3', 0, b'3\n2\n1\n', b'', {}),
    ('return 2; echo after', 2, b'', b'', {}),
    ('f() { return; }; false; f; echo $?', 0, b'1\n', b'', {}),
    ('set -x; echo a "b c"; x=1', 0, b'a b c\n', b"+ echo a 'b c'\n+ x=1\n", {}),
    ('set -x; cd d; true', 0, b'', b'+ cd d\n+ true\n', {}),
    ('x=1; set -x; echo $x >/dev/null', 0, b'', b'+ echo 1\n', {}),
    ('case abc in [ab]*) echo br;; esac', 0, b'br\n', b'', {}),
    ('case "a*" in "a*") echo lit;; esac', 0, b'lit\n', b'', {}),
    ('case ab in a?) echo q;; esac', 0, b'q\n', b'', {}),
    ('p="a*"; case abc in $p) echo pat;; esac', 0, b'pat\n', b'', {}),
    ('case x in (x|y) echo paren;; esac', 0, b'paren\n', b'', {}),
    ('cat "sp ace"', 0, b's\n', b'', {}),
    ('for f in *; do echo "[$f]"; done', 0, b'[bad]\n[d]\n[dl]\n[e]\n[e.sh]\n[f]\n[g1.txt]\n[g2.txt]\n[l]\n[m.sh]\n[n.sh]\n[s.sh]\n[sp ace]\n', b'', {}),
    ('ls sp*', 0, b'sp ace\n', b'', {}),
    ('x="*"; echo $x; echo "$x"', 0, b'bad d dl e e.sh f g1.txt g2.txt l m.sh n.sh s.sh sp ace\n*\n', b'', {}),
    ('set -f; echo *; set +f; echo f*', 0, b'*\nf\n', b'', {}),
    ('echo a; echo b >&2; echo c', 0, b'a\nc\n', b'b\n', {}),
    ('printf "%s\\n" a b c | head -n 2', 0, b'a\nb\n', b'', {}),
    ('echo "a\\nb"', 0, b'a\\nb\n', b'', {}),
    ("echo 'a\\nb'", 0, b'a\\nb\n', b'', {}),
    ('echo -e a\\\\nb', 0, b'a\nb\n', b'', {}),
    ('x=; [ -z "$x" ] && echo empty', 0, b'empty\n', b'', {}),
    ('unset x; echo ${x-unset} ${x:-empty}; x=; echo ${x-unset} ${x:-empty}', 0, b'unset empty\nempty\n', b'', {}),
    ('while read a b; do echo "$b/$a"; done < f', 0, b'/a\nc/b\n', b'', {}),
    ('read x < nofile; echo $?', 0, b'1\n', b"/bin/sh: can't open nofile: no such file\n", {}),
    ('echo "a\\b" | read -r x; echo $x', 0, b'\n', b'', {}),
    ('printf "a\\\\\\nb\\n" | { read x; echo "$x"; }', 0, b'anb\n', b'', {}),
    ('printf "no newline" | { read x; echo "$? $x"; }', 0, b'1 no newline\n', b'', {}),
    ('i=0; while true; do i=$((i+1)); [ $i -ge 3 ] && break; done; echo $i', 0, b'3\n', b'', {}),
    ('for i in 1 2; do for j in a b; do [ $j = b ] && continue 2; echo $i$j; done; done', 0, b'1a\n2a\n', b'', {}),
    ('for i in 1 2; do for j in a b; do break 2; done; echo no; done; echo out', 0, b'out\n', b'', {}),
    ('echo ${HOME:?}', 0, b'/root\n', b'', {}),
    ('echo ${NOPE:?is missing}; echo after', 2, b'', b'/bin/sh: NOPE: is missing\n', {}),
    (': ${X:=default}; echo $X', 0, b'default\n', b'', {}),
    ('echo $((0x10 + 010)) $((1<<4)) $((5>3)) $((!0)) $((~0)) $((3?4:5)) $((i++)) $i $((--i))', 0, b'24 16 1 1 -1 4 0 1 0\n', b'', {}),
    ('echo $(( 7 & 3 | 8 ^ 1 ))', 0, b'11\n', b'', {}),
    ('echo $((a=3, a+1))', 0, b'4\n', b'', {}),
    ('exit', 0, b'', b'', {}),
    ('false; exit', 1, b'', b'', {}),
    ('true; exit 3', 3, b'', b'', {}),
    ('(exit 4) || echo "st $?"', 0, b'st 4\n', b'', {}),
    ('sh -c "exit 5" || echo "st $?"', 0, b'st 5\n', b'', {}),
    ('echo $(( 1 + ))', 2, b'', b'/bin/sh: arithmetic syntax error\n', {}),
    ('echo ${', 2, b'', b"/bin/sh: syntax error: missing '}'\n", {}),
    ('echo ${x', 2, b'', b"/bin/sh: syntax error: missing '}'\n", {}),
    ('echo ${#x:-a}', 2, b'', b'/bin/sh: syntax error: bad substitution\n', {}),
    ('A=1 B=2 env | grep -c "^[AB]="', 0, b'2\n', b'', {}),
    ('export A; env | grep -c "^A="', 1, b'0\n', b'', {}),
    ('export -p | grep -c HOME', 0, b'1\n', b'', {}),
    ('readonly R=1; readonly -p | grep R', 0, b"readonly R='1'\n", b'', {}),
    ('umask', 0, b'0022\n', b'', {}),
    ('type cd', 0, b'cd is a shell builtin\n', b'', {}),
    ('command -V echo', 0, b'echo is a shell builtin\n', b'', {}),
    ('hash; echo $?', 0, b'0\n', b'', {}),
    ('wait; echo $?', 0, b'0\n', b'', {}),
    ('echo a > o1 > o2; cat o1 o2', 0, b'a\n', b'', {'o2': ('f', '0o644', b'a\n'), 'o1': ('f', '0o644', b'')}),
    ('echo a 1>o; cat o', 0, b'a\n', b'', {'o': ('f', '0o644', b'a\n')}),
    ('ls f nope > o 2>&1; cat o', 0, b'ls: nope: No such file or directory\nf\n', b'', {'o': ('f', '0o644', b'ls: nope: No such file or directory\nf\n')}),
    ('exec 3>o; echo three >&3; cat o', 0, b'three\n', b'', {'o': ('f', '0o644', b'three\n')}),
    ('cat <> f', 0, b'a\nb c\n', b'', {}),
    ('echo x >| o; cat o', 0, b'x\n', b'', {'o': ('f', '0o644', b'x\n')}),
    ('cat 0<f', 0, b'a\nb c\n', b'', {}),
    ('touch -d "2001-02-03 04:05:06" t; ls -l --full-time t | grep -o "2001.*"', 0, b'2001-02-03 04:05:06 +0000 t\n', b'', {'t': ('f', '0o644', b'')}),
    ('touch -t 200102030405 t; ls --full-time -l t | grep -o "2001.*"', 0, b'2001-02-03 04:05:00 +0000 t\n', b'', {'t': ('f', '0o644', b'')}),
    ('touch -d @0 t; ls -l --full-time t | grep -o "1970.*"', 0, b'1970-01-01 00:00:00 +0000 t\n', b'', {'t': ('f', '0o644', b'')}),
    ('touch -r f t; [ t -nt f ] || echo same', 0, b'same\n', b'', {'t': ('f', '0o644', b'')}),
    ('cp -p f g; [ g -ot f ] || [ g -nt f ] || echo same-time', 0, b'same-time\n', b'', {'g': ('f', '0o644', b'a\nb c\n')}),
    ('cp -a d d2; ls d2', 0, b'x\n', b'', {'d2': ('d', '0o755'), 'd2/x': ('f', '0o644', b'x\n')}),
    ('cp -rv d d3', 0, b"'d/x' -> 'd3/x'\n'd' -> 'd3'\n", b'', {'d3': ('d', '0o755'), 'd3/x': ('f', '0o644', b'x\n')}),
    ('cp -n f d/x; cat d/x', 0, b'x\n', b'', {}),
    ('cp -u f g; cat g', 0, b'a\nb c\n', b'', {'g': ('f', '0o644', b'a\nb c\n')}),
    ('mv -v f g', 0, b"'f' -> 'g'\n", b'', {'g': ('f', '0o644', b'a\nb c\n'), 'f': None}),
    ('ln -sv f l', 1, b"'l' -> 'f'\n", b'ln: l: File exists\n', {}),
    ('chmod -v 600 f', 0, b"mode of 'f' changed to 0600 (rw-------)\n", b'', {'f': ('f', '0o600', b'a\nb c\n')}),
    ('chmod -c 644 f', 0, b'', b'', {}),
    ('rmdir -p d/x', 1, b'', b"rmdir: 'd/x': Not a directory\n", {}),
    ('mkdir -p a/b/c && rmdir -p a/b/c && ls', 0, b'bad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {}),
    ('mkdir -p a/ && ls', 0, b'a\nbad\nd\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'a': ('d', '0o755')}),
    ('mkdir -pm 750 z/y; ls -ld z z/y | grep -o "^d........."', 0, b'drwxr-xr-x\ndrwxr-x---\n', b'', {'z': ('d', '0o755'), 'z/y': ('d', '0o750')}),
    ('rm -r d/', 0, b'', b'', {'d': None, 'd/x': None}),
    ('rm -rf .', 1, b'', b"rm: can't remove '.' or '..'\n", {}),
    ('rm -rf ../x', 0, b'', b'', {}),
    ('rm -f d', 1, b'', b"rm: 'd' is a directory\n", {}),
    ('rm -rf nope d; ls', 0, b'bad\ndl\ne\ne.sh\nf\ng1.txt\ng2.txt\nl\nm.sh\nn.sh\ns.sh\nsp ace\n', b'', {'d': None, 'd/x': None}),
    ('grep -n "" f', 0, b'1:a\n2:b c\n', b'', {}),
    ('grep -c "" f nope', 2, b'f:2\n', b'grep: nope: No such file or directory\n', {}),
    ('grep -s x nope; echo $?', 0, b'2\n', b'', {}),
    ('grep -q a nope f; echo $?', 0, b'0\n', b'grep: nope: No such file or directory\n', {}),
    ('grep -m1 . f', 0, b'a\n', b'', {}),
    ('grep -L a f d/x', 0, b'd/x\n', b'', {}),
    ('grep -h a f f', 0, b'a\na\n', b'', {}),
    ('grep -H a f', 0, b'f:a\n', b'', {}),
    ('grep -ow "b" f', 0, b'b\n', b'', {}),
    ('grep -e "" -v f; echo $?', 0, b'1\n', b'', {}),
    ('echo abc | grep -o "b*"', 0, b'b\n', b'', {}),
    ('echo aXbXc | grep -o X', 0, b'X\nX\n', b'', {}),
    ('grep -f f f', 0, b'a\nb c\n', b'', {}),
    ('echo "a.c" | grep -F "."', 0, b'a.c\n', b'', {}),
    ('echo ABC | grep -i abc', 0, b'ABC\n', b'', {}),
    ('echo "foo bar" | grep -E "o{2} b"', 0, b'foo bar\n', b'', {}),
    ('echo "xaaay" | grep "a\\{2,\\}"', 0, b'xaaay\n', b'', {}),
    ('echo "ab" | grep "\\(a\\)\\1"; echo $?', 0, b'1\n', b'', {}),
    ('echo aa | grep "\\(a\\)\\1"', 0, b'aa\n', b'', {}),
    ('echo "a+b" | grep "a+b"', 0, b'a+b\n', b'', {}),
    ('echo "a+b" | grep -E "a\\+b"', 0, b'a+b\n', b'', {}),
    ('echo "word1 word2" | grep -o "\\<w[a-z]*"', 0, b'word\nword\n', b'', {}),
    ('echo "tab\tx" | grep "[[:space:]]x"', 0, b'tab\tx\n', b'', {}),
    ('echo "]" | grep "[]]"', 0, b']\n', b'', {}),
    ('echo "a-b" | grep "[a-]-"', 0, b'a-b\n', b'', {}),
    ('wc -lwc f d/x', 0, b'        2         3         6 f\n        1         1         2 d/x\n        3         4         8 total\n', b'', {}),
    ('printf "a b\\tc\\n\\nd" | wc', 0, b'        2         4         8\n', b'', {}),
    ('printf "\\xc3\\xa9t\\xc3\\xa9\\n" | wc -m', 0, b'6\n', b'', {}),
    ('printf "12345678901234567890\\n" | wc -L', 0, b'20\n', b'', {}),
    ('wc < nofile', 1, b'', b"/bin/sh: can't open nofile: no such file\n", {}),
    ('head -n 1 f d/x', 0, b'==> f <==\na\n\n==> d/x <==\nx\n', b'', {}),
    ('head -c 2 f; echo', 0, b'a\n\n', b'', {}),
    ('printf "1\\n2\\n3\\n" | head -n -1', 0, b'1\n2\n', b'', {}),
    ('printf "1\\n2\\n3" | head -n 2', 0, b'1\n2\n', b'', {}),
    ('head -n 3k f | wc -l', 0, b'2\n', b'', {}),
    ('echo "%d"; printf "%s %s\\n" a', 0, b'%d\na \n', b'', {}),
    ('printf "%5.2s|\\n" abc', 0, b'   ab|\n', b'', {}),
    ('printf "%-5s|%5s|\\n" ab cd', 0, b'ab   |   cd|\n', b'', {}),
    ('printf "%i\\n" 0x1f', 0, b'31\n', b'', {}),
    ('printf "%d\\n" 010', 0, b'8\n', b'', {}),
    ('printf "%.3d\\n" 5', 0, b'005\n', b'', {}),
    ('printf "%e\\n" x', 1, b'0.000000e+00\n', b"sh: invalid number 'x'\n", {}),
    ('printf "%s\\n"', 0, b'\n', b'', {}),
    ('printf "\\101\\0101\\x41\\n"', 0, b'A\x081A\n', b'', {}),
    ('printf "a\\cb"', 0, b'a', b'', {}),
    ('printf "%b" "x\\cy"; echo', 0, b'x\n', b'', {}),
    ('printf -- "-%s\\n" a', 0, b'-a\n', b'', {}),
    ('printf "%%%s%%\\n" x', 0, b'%x%\n', b'', {}),
    ('echo -e "\\0"| wc -c', 0, b'2\n', b'', {}),
    ('echo -e "a\\0b" | wc -c', 0, b'4\n', b'', {}),
    ('echo -e "\\x4g"', 0, b'\x04g\n', b'', {}),
    ('echo -e "\\xZ"', 0, b'\\xZ\n', b'', {}),
    ('echo -e "\\e" | wc -c', 0, b'2\n', b'', {}),
    ('echo -e "\\777"', 0, b'?7\n', b'', {}),
    ('echo -E "a\\tb"', 0, b'a\\tb\n', b'', {}),
    ('echo -en "x\\n"', 0, b'x\n', b'', {}),
    ('[ ! a = b ]; echo $?', 0, b'0\n', b'', {}),
    ('[ a = b -o c = c ]; echo $?', 0, b'0\n', b'', {}),
    ('[ \\( a = a \\) -a b ]; echo $?', 0, b'0\n', b'', {}),
    ('[ -n ]; echo $?', 0, b'0\n', b'', {}),
    ('[ = ]; echo $?', 0, b'0\n', b'', {}),
    ('[ a -lt b ]; echo $?', 0, b'2\n', b'sh: a: bad number\n', {}),
    ('[ 1 -lt 99999999999999999999 ]; echo $?', 0, b'2\n', b'sh: 99999999999999999999: out of range\n', {}),
    ('[ " 12 " -eq 12 ]; echo $?', 0, b'0\n', b'', {}),
    ('[ f -ef f ]; echo $?', 0, b'0\n', b'', {}),
    ('[ -x d ]; echo $?', 0, b'0\n', b'', {}),
    ('[ -x f ]; echo $?', 0, b'1\n', b'', {}),
    ('[ -r f -a -w f ]; echo $?', 0, b'0\n', b'', {}),
    ('[ "" ]; echo $?', 0, b'1\n', b'', {}),
    ('[ -e "" ]; echo $?', 0, b'1\n', b'', {}),
    ('test a \\< b; echo $?', 0, b'0\n', b'', {}),
    ('[ -t 0 ]; echo $?', 0, b'1\n', b'', {}),
    ('[ a ] ]; echo $?', 0, b'2\n', b'sh: ]: unknown operand\n', {}),
    ('[ ( ]; echo $?', 2, b'', b'/bin/sh: syntax error: unexpected word (expecting ")")\n', {}),
    ('[ 1 -eq 1 ] && [ 2 -ne 3 ] && echo both', 0, b'both\n', b'', {}),
    ('sh m.sh', 2, b'start\n', b"m.sh: line 2: foo: not found\nm.sh: cd: line 3: can't cd to nope: No such file or directory\nm.sh: line 5: bar: not found\nm.sh: export: line 7: 1x: bad variable name\n", {}),
    ('sh n.sh', 2, b'one\n', b'n.sh: line 4: syntax error: unexpected end of file (expecting "fi")\n', {}),
    ('./e.sh a b; echo $?', 0, b'./e.sh 2\n7\n', b'', {}),
    ("sh -c 'foo' myname", 127, b'', b'myname: line 0: foo: not found\n', {}),
    ("sh -c 'echo $0 $1' a b", 0, b'a b\n', b'', {}),
    ("echo 'foo\nbar' | sh", 127, b'', b'sh: foo: not found\nsh: bar: not found\n', {}),
    ('sh < m.sh', 2, b'start\n', b"sh: foo: not found\nsh: cd: line 3: can't cd to nope: No such file or directory\nsh: bar: not found\nsh: export: line 7: 1x: bad variable name\n", {}),
    ("sh -e -c 'false; echo no'; echo $?", 0, b'1\n', b'', {}),
    ("sh -x -c 'echo a'", 0, b'a\n', b'+ echo a\n', {}),
    ('sh -z', 2, b'', b'sh: illegal option -z\n', {}),
    ('. ./n.sh', 2, b'one\n', b'/bin/sh: ./n.sh: line 4: syntax error: unexpected end of file (expecting "fi")\n', {}),
    ('x\ny\n  z', 127, b'', b'/bin/sh: x: not found\n/bin/sh: y: not found\n/bin/sh: z: not found\n', {}),
    ('echo a\nfoo\necho b\n  bar', 127, b'a\nb\n', b'/bin/sh: foo: not found\n/bin/sh: bar: not found\n', {}),
    ('cat <<EOF\n$(foo)\nEOF', 0, b'\n', b'/bin/sh: foo: not found\n', {}),
    ('f() {\n  foo\n}\nf', 127, b'', b'/bin/sh: foo: not found\n', {}),
    ('set -z; echo after', 2, b'', b'/bin/sh: set: line 0: illegal option -z\n', {}),
    ('set -o bogus; echo after', 0, b'after\n', b'/bin/sh: set: line 0: illegal option -o bogus\n', {}),
    ('set +o bogus', 1, b'', b'/bin/sh: set: line 0: illegal option +o bogus\n', {}),
    ('shift x', 2, b'', b'/bin/sh: shift: line 0: Illegal number: x\n', {}),
    ('exit 1x', 2, b'', b'/bin/sh: exit: line 0: Illegal number: 1x\n', {}),
    ('break x', 2, b'', b'/bin/sh: break: line 0: Illegal number: x\n', {}),
    ('break 0', 2, b'', b'/bin/sh: break: line 0: Illegal number: 0\n', {}),
    ('unset -z a', 2, b'', b'/bin/sh: unset: line 0: illegal option -z\n', {}),
    ('readonly 1x', 2, b'', b'/bin/sh: readonly: line 0: 1x: bad variable name\n', {}),
    ('local x', 2, b'', b'/bin/sh: local: line 0: not in a function\n', {}),
    ('return; echo after', 0, b'', b'', {}),
    ('read; echo $?', 0, b'1\n', b'', {}),
    ('read -x a', 2, b'', b'/bin/sh: read: line 0: illegal option -x\n', {}),
    ('. /nonexist', 2, b'', b"/bin/sh: .: line 0: can't open '/nonexist': No such file or directory\n", {}),
    ('.', 2, b'', b'', {}),
    ('eval "foo("', 2, b'', b'/bin/sh: eval: line 0: syntax error: unexpected end of file (expecting ")")\n', {}),
    ('printf "%d\\n" 1 x 3', 1, b'1\n0\n3\n', b"sh: invalid number 'x'\n", {}),
    ('for i in 1; do break 3; done; echo ok', 0, b'ok\n', b'', {}),
    ('f() { local 1x; }; f', 2, b'', b'/bin/sh: local: line 0: 1x: bad variable name\n', {}),
    ('x=$(exit 3) y=2; echo $?', 0, b'3\n', b'', {}),
    ('echo ${1a}', 2, b'', b'/bin/sh: syntax error: bad substitution\n', {}),
    ('sh -o bogus -c true; echo $?', 0, b'0\n', b'sh: illegal option -o bogus\n', {}),
    ('sh -z; echo $?', 0, b'2\n', b'sh: illegal option -z\n', {}),
    ('sh -c foo myname', 127, b'', b'myname: line 0: foo: not found\n', {}),
]


@pytest.mark.parametrize("script,code,out,err,changes", BUSYBOX_CASES, ids=[f"{i}:{c[0][:40]}" for i, c in enumerate(BUSYBOX_CASES)])
def test_busybox_behaviour(script: str, code: int, out: bytes, err: bytes, changes: dict[str, object]) -> None:
    fs = sim.UnionFS([files_layer()])
    before = tree(fs)
    result = run(script, fs, env=ENV, cwd="/w")
    assert (result.exit_code, result.stdout, result.stderr) == (code, out, err)
    assert changes_of(before, tree(fs)) == changes


HOST_BUSYBOX = shutil.which("busybox")


@pytest.mark.skipif(HOST_BUSYBOX is None, reason="no busybox on this host (apt-get install busybox-static)")
def test_against_host_busybox(tmp_path: os.PathLike[str]) -> None:
    """Every recorded row, replayed against the host's busybox in a real folder."""
    assert HOST_BUSYBOX is not None
    version = subprocess.run([HOST_BUSYBOX], capture_output=True, text=True).stdout.split("\n", 1)[0]
    if "v1.35" not in version and "v1.36" not in version:
        pytest.skip(f"host busybox is {version!r}; the rows were recorded from 1.35")
    failures = []
    for i, (script, code, out, err, changes) in enumerate(BUSYBOX_CASES):
        folder = os.path.join(tmp_path, str(i))
        os.mkdir(folder)
        for path, spec in FILES.items():
            full = os.path.join(folder, path)
            if spec is None:
                os.mkdir(full, 0o755)
            elif isinstance(spec, tuple) and spec[0] == "link":
                os.symlink(spec[1], full)
            else:
                data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
                with open(full, "wb") as fh:
                    fh.write(data)  # type: ignore[arg-type]
                os.chmod(full, mode)  # type: ignore[arg-type]
        before = host_tree(folder)
        real = subprocess.run(["/bin/sh", "-c", script], executable=HOST_BUSYBOX, cwd=folder, env=ENV,
                              capture_output=True, stdin=subprocess.DEVNULL, umask=0o022, timeout=30)
        got = (real.returncode, real.stdout, real.stderr, changes_of(before, host_tree(folder)))
        if got != (code, out, err, changes):
            failures.append((script, got))
    assert not failures, failures[:5]


# -- the API -----------------------------------------------------------------------------


def test_result_is_a_frozen_dataclass_with_env_and_cwd() -> None:
    result = run("cd /w/d && export GREETING=hi", sim.UnionFS([files_layer()]), env={"PATH": "/bin"})
    assert isinstance(result, ShellResult) and result.ok
    assert result.cwd == "/w/d"
    assert dict(result.env) == {"SHLVL": "1", "GREETING": "hi", "OLDPWD": "/", "PATH": "/bin", "PWD": "/w/d"}
    with pytest.raises(AttributeError):
        result.exit_code = 1  # type: ignore[misc]


def test_default_environment_is_dockers_path() -> None:
    result = run("echo $PATH", sim.UnionFS([]))
    assert result.stdout == (DEFAULT_PATH + "\n").encode()


def test_a_container_shell_names_itself_bin_sh() -> None:
    # docker runs ["/bin/sh", "-c", CMD]: ash's $0 and message prefix are argv[0]
    result = run("echo $0; foo", sim.UnionFS([]))
    assert (result.exit_code, result.stdout, result.stderr) == (127, b"/bin/sh\n", b"/bin/sh: foo: not found\n")
    nested = run("sh -c foo; echo $?", sim.UnionFS([]))
    assert (nested.stdout, nested.stderr) == (b"127\n", b"sh: foo: not found\n")


def test_stdin_feeds_the_first_command() -> None:
    result = run("wc -l; cat", sim.UnionFS([]), stdin=b"one\ntwo\n")
    assert result.stdout == b"2\n"
    assert run("cat | grep t", sim.UnionFS([]), stdin=b"one\ntwo\n").stdout == b"two\n"


def test_pid_and_background_jobs_are_fake_and_synchronous() -> None:
    result = run("echo $$; echo bg > /o & echo $!; wait; cat /o", sim.UnionFS([]))
    assert result.stdout == b"1\n3\nbg\n"


def test_sleep_does_not_wait() -> None:
    start = time.monotonic()
    result = run("sleep 3600 1d; echo $?", sim.UnionFS([]))
    assert result.stdout == b"0\n" and time.monotonic() - start < 5


def test_cd_and_pwd_logical_and_physical() -> None:
    fs = sim.UnionFS([files_layer()])
    result = run("cd /w/dl; pwd; pwd -P; /bin/pwd; /bin/pwd -L; cd ..; pwd; cd -; cd /nope; echo $?", fs, env=ENV)
    assert result.stdout == b"/w/dl\n/w/d\n/w/d\n/w/dl\n/w\n/w/dl\n2\n"
    assert result.stderr == b"/bin/sh: cd: line 0: can't cd to /nope: No such file or directory\n"
    assert run("cd; pwd", fs, env={"HOME": "/w/e"}).stdout == b"/w/e\n"
    assert run("pwd", fs, cwd="/w/d").stdout == b"/w/d\n"


def test_subshells_and_pipeline_stages_keep_their_changes() -> None:
    result = run("cd /w/d | true; (cd /w/e; X=1); echo $PWD [$X]", sim.UnionFS([files_layer()]), env=ENV)
    assert result.stdout == b"/ []\n"


# -- env, id, hostname, ls -l -----------------------------------------------------------------


def test_env_lists_variables_in_ashs_hash_order() -> None:
    # recorded from busybox: ash lists exported variables bucket by bucket of its 39-slot hash table
    env = {"PATH": "/bin", "HOME": "/root", "HOSTNAME": "abc", "B": "1", "A": "2", "Z": "3"}
    result = run("env", sim.UnionFS([]), env=env)
    assert result.stdout == b"HOSTNAME=abc\nSHLVL=1\nHOME=/root\nZ=3\nA=2\nPATH=/bin\nB=1\nPWD=/\n"
    result = run("export Z=1 IFS; Q=3 env; echo ---; env -i C=1 D=2 env", sim.UnionFS([]), env={"PATH": "/bin", "HOME": "/root"})
    assert result.stdout == b"SHLVL=1\nHOME=/root\nZ=1\nQ=3\nPATH=/bin\nIFS= \t\n\nPWD=/\n---\nC=1\nD=2\n"


def test_exec_form_env_is_the_runtimes_order() -> None:
    result = run(["env"], sim.UnionFS([]), env={"Z": "1", "A": "2"})
    assert result.stdout == b"Z=1\nA=2\n"
    assert run(["pwd"], sim.UnionFS([files_layer()]), cwd="/w/d").stdout == b"/w/d\n"


def image() -> sim.Layer:
    """A small busybox image: /bin/busybox (not a real ELF: the model never runs it) and applet links."""
    layer = sim.Layer()
    for d in ("bin", "etc", "root", "tmp", "usr", "usr/bin", "usr/local", "usr/local/bin", "var", "var/cache",
              "var/cache/sub"):
        layer.add_dir(d, mode=0o700 if d == "root" else 0o755)
    layer.add_file("bin/busybox", b"\x7fELF\x02\x01\x01", mode=0o755)
    for applet in ("sh", "ls", "cat", "echo", "env", "mkdir"):
        layer.add_symlink(f"bin/{applet}", "busybox")
    layer.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                                 b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.add_file("etc/group", b"root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nnogroup:x:65534:\n")
    layer.add_file("etc/motd", b"hello\n")
    layer.add_file("tmp/junk1", b"1")
    layer.add_file("tmp/junk2", b"2")
    layer.add_file("var/cache/a", b"a")
    layer.add_file("var/cache/sub/b", b"b")
    layer.add_file("usr/bin/python3", b"\x7fELF\x02\x01\x01\x00", mode=0o755)
    layer.add_file("usr/local/bin/hello.sh", b"#!/bin/sh\necho hello from $0 \"$@\"\nexit 3\n", mode=0o755)
    layer.add_file("usr/local/bin/plain", b"echo plain $1\n", mode=0o755)
    layer.add_file("usr/local/bin/noexec", b"echo no\n", mode=0o644)
    layer.add_file("usr/local/bin/perlish", b"#!/usr/bin/perl\nprint 1;\n", mode=0o755)
    return layer.freeze()


def test_id_reads_passwd_and_group_of_the_image() -> None:
    fs = sim.UnionFS([image()])
    assert run("id", fs).stdout == b"uid=0(root) gid=0(root) groups=0(root),10(wheel)\n"
    assert run("id", sim.UnionFS([])).stdout == b"uid=0 gid=0 groups=0\n"
    result = run("id; id -u; id -un; id -g; id -gn; id -G; id -Gn; id nobody; id nosuch", fs, uid=1000, gid=1000)
    assert result.stdout == (b"uid=1000(app) gid=1000(app) groups=1000(app),10(wheel)\n1000\napp\n1000\napp\n1000 10\napp wheel\n"
                             b"uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n")
    assert (result.exit_code, result.stderr) == (1, b"id: unknown user nosuch\n")
    assert run("id -un", fs, uid=4242).stderr == b"id: unknown ID 4242\n"


def test_hostname() -> None:
    fs = sim.UnionFS([])
    result = run("hostname; hostname -s; hostname -d", fs, hostname="web.example.com")
    assert result.stdout == b"web.example.com\nweb\nexample.com\n"
    assert run("hostname", fs).stdout == b"localhost\n"
    # a container has no CAP_SYS_ADMIN: even root cannot rename it
    denied = run("hostname x; echo $?; hostname", fs)
    assert (denied.stdout, denied.stderr) == (b"1\nlocalhost\n", b"hostname: sethostname: Operation not permitted\n")


def test_ls_long_format() -> None:
    layer = sim.Layer()
    layer.add_dir("etc")
    layer.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    layer.add_file("etc/group", b"root:x:0:\n")
    layer.add_dir("w", mtime_ns=0)
    layer.add_file("w/f", b"hello\n", mode=0o4755, mtime_ns=1_000_000_000 * 10**9)
    layer.add_file("w/big", b"x" * 5000, uid=1000, gid=50, mtime_ns=0)
    layer.add_symlink("w/l", "f", mtime_ns=0)
    layer.add_dir("w/d", mode=0o750, mtime_ns=0)
    fs = sim.UnionFS([layer.freeze()])
    result = run("ls -l /w; ls -ln /w/big; ls --full-time -l /w/f; ls -ld /w/d", fs)
    assert result.stdout.decode() == (
        "total 16\n"
        "-rw-r--r--    1 1000     50            5000 Jan  1  1970 big\n"
        "drwxr-x---    2 root     root          4096 Jan  1  1970 d\n"
        "-rwsr-xr-x    1 root     root             6 Sep  9  2001 f\n"
        "lrwxrwxrwx    1 root     root             1 Jan  1  1970 l -> f\n"
        "-rw-r--r--    1 1000     50            5000 Jan  1  1970 /w/big\n"
        "-rwsr-xr-x    1 root     root             6 2001-09-09 01:46:40 +0000 /w/f\n"
        "drwxr-x---    2 root     root          4096 Jan  1  1970 /w/d\n"
    )
    # a file from this run is recent: busybox shows the time of day instead of the year
    fresh = run("touch /w/new; ls -l /w/new", fs).stdout.decode()
    assert fresh.startswith("-rw-r--r--    1 root     root             0 ") and fresh[51:52] != " " and ":" in fresh


# -- the union: what typical RUN lines leave in the upper layer --------------------------------


def upper(fs: sim.UnionFS) -> dict[str, str]:
    return {path: repr(entry) for path, entry in fs.upper.items()}


def test_typical_run_line_on_a_union() -> None:
    fs = sim.UnionFS([image()])
    result = run("mkdir -p /app && echo hi > /app/x && rm -rf /tmp/*", fs)
    assert result.ok and result.stderr == b""
    assert sorted(fs.upper.paths()) == ["app", "app/x", "tmp", "tmp/junk1", "tmp/junk2"]
    assert isinstance(fs.upper["tmp/junk1"], sim.Whiteout) and isinstance(fs.upper["tmp/junk2"], sim.Whiteout)
    assert fs.upper["app/x"].data == b"hi\n" and fs.upper["app/x"].mode == 0o644  # 0666 & ~umask
    assert fs.upper["app"].mode == 0o755
    # the glob matched nothing the second time: rm -f of the literal pattern is silent
    again = run("rm -rf /tmp/*; ls -a /tmp", fs)
    assert again.ok and again.stdout == b".\n..\n"


def test_reading_copies_nothing_up() -> None:
    fs = sim.UnionFS([image()])
    result = run("cat /etc/motd; ls -l /etc > /dev/null; grep -q hello /etc/motd; wc -c < /etc/motd; test -f /etc/motd", fs)
    assert result.ok and result.stdout == b"hello\n6\n"
    assert len(fs.upper) == 0 and not fs.events


def test_touch_append_chmod_copy_up() -> None:
    for script, data, mode in (("touch /etc/motd", b"hello\n", 0o644), ("echo more >> /etc/motd", b"hello\nmore\n", 0o644),
                               ("chmod 600 /etc/motd", b"hello\n", 0o600), ("echo new > /etc/motd", b"new\n", 0o644)):
        fs = sim.UnionFS([image()])
        assert run(script, fs).ok
        assert sorted(fs.upper.paths()) == ["etc", "etc/motd"], script
        assert fs.upper["etc/motd"].data == data and fs.upper["etc/motd"].mode == mode, script
        assert [e.kind for e in fs.events][:2] == [EventKind.COPY_UP, EventKind.COPY_UP], script


def test_rm_rf_unlinks_children_then_the_directory() -> None:
    fs = sim.UnionFS([image()])
    assert run("rm -rf /var/cache", fs).ok
    assert sorted(fs.upper.paths()) == ["var", "var/cache"] and isinstance(fs.upper["var/cache"], sim.Whiteout)
    whiteouts = [e.path for e in fs.events if e.kind is EventKind.WHITEOUT]
    assert whiteouts[-1] == "var/cache" and set(whiteouts[:-1]) == {"var/cache/a", "var/cache/sub/b", "var/cache/sub"}


def test_mv_of_a_lower_directory_copies_when_rename_says_exdev() -> None:
    fs = sim.UnionFS([image()])
    assert run("mv /var/cache /var/kept && ls -R /var", fs).stdout == b"/var:\nkept\n\n/var/kept:\na\nsub\n\n/var/kept/sub:\nb\n"
    assert isinstance(fs.upper["var/cache"], sim.Whiteout)
    assert fs.upper["var/kept/sub/b"].data == b"b"
    with_redirects = sim.UnionFS([image()], redirect_dir=True)
    assert run("mv /var/cache /var/kept", with_redirects).ok
    assert sorted(with_redirects.upper.paths()) == ["var", "var/cache", "var/kept"]  # one redirect, no copies


def test_dev_null_and_stdio_devices_never_touch_the_union() -> None:
    fs = sim.UnionFS([image()])
    result = run("echo x > /dev/null; cat /dev/null; echo y > /dev/stderr; ls /nope 2>/dev/null; echo $?", fs)
    assert (result.stdout, result.stderr) == (b"1\n", b"y\n") and len(fs.upper) == 0


def test_new_files_and_links_land_in_the_upper_layer() -> None:
    fs = sim.UnionFS([image()])
    assert run("ln -s /etc/motd /m && cp /etc/motd /c && cp -p /etc/motd /p && mkdir -m 700 /priv", fs).ok
    assert fs.upper["m"] == sim.Symlink("/etc/motd", mtime_ns=fs.upper["m"].mtime_ns)
    assert fs.upper["c"].data == b"hello\n" and fs.upper["p"].mtime_ns == 0 and fs.upper["priv"].mode == 0o700
    assert "etc/motd" not in fs.upper


# -- program lookup -----------------------------------------------------------------------


def test_strict_lookup_runs_applets_through_links_to_busybox() -> None:
    fs = sim.UnionFS([image()])
    result = run("echo hi; ls /bin | cat; busybox echo multi; /bin/busybox ls /root; mkdir /x; echo $?", fs, builtin_applets=False)
    assert result.stdout == b"hi\nbusybox\ncat\necho\nenv\nls\nmkdir\nsh\nmulti\n0\n"
    result = run("wc /etc/motd; env wc", fs, builtin_applets=False)
    assert result.exit_code == 127
    assert result.stderr == b"/bin/sh: wc: not found\nenv: can't execute 'wc': No such file or directory\n"


def test_strict_shell_form_needs_bin_sh() -> None:
    result = run("echo hi", sim.UnionFS([]), builtin_applets=False)
    assert (result.exit_code, result.stderr) == (127, b'exec: "/bin/sh": stat /bin/sh: no such file or directory\n')


def test_builtin_applets_run_on_a_scratch_file_system() -> None:
    fs = sim.UnionFS([])
    result = run("mkdir -p /a/b && touch /a/b/c && ls -R /a && /bin/ls /a", fs)
    assert result.ok and result.stdout == b"/a:\nb\n\n/a/b:\nc\nb\n"
    assert run(["/bin/sh", "-c", "echo $0"], fs).stdout == b"/bin/sh\n"


def test_unknown_program_raises_unsupported_naming_it() -> None:
    fs = sim.UnionFS([image()])
    with pytest.raises(sim.UnsupportedCommandError, match=r"cannot run 'python3' \(/usr/bin/python3\); run it with BACKEND='real'"):
        run("python3 -c 'print(1)'", fs)
    with pytest.raises(NotImplementedError):  # the error is also a NotImplementedError
        run(["python3"], fs)
    with pytest.raises(sim.UnsupportedCommandError, match=r"cannot run 'od': a busybox applet the model does not implement"):
        run("echo a | od -c", fs)
    with pytest.raises(sim.UnsupportedCommandError, match=r"the model's ls does not implement option -C"):
        run("ls -C /", fs)
    with pytest.raises(sim.UnsupportedCommandError, match=r"builtin 'trap'"):
        run("trap 'echo bye' EXIT", fs)


def test_missing_programs_exit_127() -> None:
    fs = sim.UnionFS([image()])
    result = run("nope; /usr/bin/nope; ./nope; perlish; echo $?", fs)
    assert result.stderr == (b"/bin/sh: nope: not found\n/bin/sh: /usr/bin/nope: not found\n/bin/sh: ./nope: not found\n"
                             b"/bin/sh: perlish: not found\n")  # a missing #! interpreter is "not found" too
    assert result.stdout == b"127\n"
    exec_form = run(["nope"], fs)
    assert (exec_form.exit_code, exec_form.stderr) == (127, b'exec: "nope": executable file not found in $PATH\n')
    assert run(["/nope"], fs).stderr == b'exec: "/nope": stat /nope: no such file or directory\n'


def test_scripts_run_through_their_interpreter() -> None:
    fs = sim.UnionFS([image()])
    result = run("hello.sh a 'b c'; echo $?; plain x; noexec; echo $?; /tmp; echo $?", fs)
    assert result.stdout == b"hello from /usr/local/bin/hello.sh a b c\n3\nplain x\n126\n126\n"
    assert result.stderr == b"/bin/sh: noexec: Permission denied\n/bin/sh: /tmp: Permission denied\n"
    assert run(["hello.sh", "z"], fs).stdout == b"hello from /usr/local/bin/hello.sh z\n"
    # the runtime's exec has no shell fallback for a text file without "#!"
    no_shebang = run(["/usr/local/bin/plain"], fs)
    assert (no_shebang.exit_code, no_shebang.stderr) == (126, b'exec: "/usr/local/bin/plain": exec format error\n')


def test_path_is_searched_in_order_and_taken_from_prefix_assignments() -> None:
    fs = sim.UnionFS([image()])
    assert run("PATH=/nowhere hello.sh; echo $?", fs).stdout == b"127\n"
    assert run("hello.sh", fs, env={"PATH": "/usr/local/bin"}).stdout == b"hello from /usr/local/bin/hello.sh\n"
    assert run("command -v hello.sh ls cd; type echo", fs).stdout == b"/usr/local/bin/hello.sh\necho is a shell builtin\n"


def test_implemented_applets() -> None:
    expected = {"echo", "printf", "cat", "ls", "mkdir", "rm", "rmdir", "touch", "cp", "mv", "ln", "chmod", "true", "false",
                "test", "[", "pwd", "id", "hostname", "env", "sh", "sleep", "wc", "head", "grep"}
    assert expected <= IMPLEMENTED


# -- grammar details the table does not show ----------------------------------------------------


def test_syntax_errors_stop_before_the_bad_line_runs() -> None:
    result = run("echo first\nif true; then\n", sim.UnionFS([]))
    assert (result.exit_code, result.stdout) == (2, b"first\n")
    assert result.stderr == b'/bin/sh: syntax error: unexpected end of file (expecting "fi")\n'


def test_script_files_report_line_numbers() -> None:
    fs = sim.UnionFS([])
    fs.write_bytes("/s.sh", b"echo a\nnope\ncd /nowhere\nexport 1x\necho not reached\n")
    result = run("sh /s.sh", fs)
    assert (result.exit_code, result.stdout) == (2, b"a\n")
    assert result.stderr == (b"/s.sh: line 2: nope: not found\n/s.sh: cd: line 3: can't cd to /nowhere: No such file or directory\n"
                             b"/s.sh: export: line 4: 1x: bad variable name\n")


def test_redirection_to_a_missing_directory() -> None:
    result = run("echo a > /no/such; echo $?; cat < /no/such", sim.UnionFS([]))
    assert result.stdout == b"1\n" and result.exit_code == 1
    assert result.stderr == b"/bin/sh: can't create /no/such: nonexistent directory\n/bin/sh: can't open /no/such: no such file\n"


def test_exec_redirections_persist() -> None:
    fs = sim.UnionFS([])
    result = run("exec > /log 2>&1; echo out; ls /nope; exec >/dev/null; echo gone", fs)
    assert result.stdout == b"" and result.stderr == b""
    assert fs.read_bytes("/log") == b"out\nls: /nope: No such file or directory\n"


def test_functions_case_while_and_arithmetic() -> None:
    script = """
count() { n=0; for f in "$@"; do case $f in *.txt) n=$((n + 1));; esac; done; echo $n; }
count a.txt b.sh c.txt
i=0; while [ $i -lt 3 ]; do i=$((i + 1)); done; echo $i
"""
    assert run(script, sim.UnionFS([])).stdout == b"2\n3\n"


def test_command_substitution_in_loop_words_writes_to_the_loops_stderr() -> None:
    result = run("ls 2>/x; for w in $(ls /nope) a; do echo $w; done", sim.UnionFS([]))
    assert (result.stdout, result.stderr) == (b"x\na\n", b"ls: /nope: No such file or directory\n")


def test_runaway_recursion_is_reported_not_crashed() -> None:
    with pytest.raises(sim.UnsupportedCommandError, match="this deep"):
        run("f() { f; }; f", sim.UnionFS([]))
    assert run("f() { [ $1 -gt 0 ] && f $(($1 - 1)); echo $1; }; f 20 | wc -l", sim.UnionFS([])).stdout == b"21\n"
