"""``ls`` (coreutils/ls.c): its long format, sorting, ``-R`` and the blocks ext4 would allocate."""

from __future__ import annotations

import math
import os
import posixpath
import stat as _stat
import time

from sim.containers.shell._applets._accounts import lookup_group, lookup_user
from sim.containers.shell._applets._common import UsageError, applet, current_time, getopt, show_usage, unsupported
from sim.containers.shell._applets._modes import mode_string
from sim.containers.shell._proc import Proc, encode


def _ls_time(t: int, now: float) -> str:
    tm = time.gmtime(t)
    age = now - t
    month = time.strftime("%b", tm)
    if -15 * 60 < age < 3600 * 24 * 365 / 2:
        return f"{month} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}"
    return f"{month} {tm.tm_mday:2d} {tm.tm_year:5d}"


def _blocks(st: os.stat_result) -> int:
    """512-byte blocks: ``st_blocks`` when the file system reports it, else ext4's allocation."""
    blocks = getattr(st, "st_blocks", None)
    if blocks is not None:
        return int(blocks)
    if _stat.S_ISLNK(st.st_mode):
        return 0 if st.st_size < 60 else 8
    if _stat.S_ISDIR(st.st_mode):
        return 8
    return int(math.ceil(st.st_size / 4096)) * 8


@applet("ls")
def ls(p: Proc) -> int:
    try:
        opts, operands = getopt(p, p.argv[1:], "1AaCxdLHRFplinshrSXvctuw:eZ",
                                longopts={"full-time": "\x01", "group-directories-first": "\x02", "color": "\x03", "color=": "\x03"})
    except UsageError as e:
        return show_usage(p, "ls", e.msg)
    for o in "CxXvcuwheZ\x02":
        if o in opts:
            raise unsupported(p, f"option {'-' + o if o.isalpha() else '--group-directories-first'}")
    if "\x03" in opts and any(v not in ("", "never", "auto") for v in opts["\x03"]):
        raise unsupported(p, "--color=always")
    long = "l" in opts or "n" in opts or "\x01" in opts
    show_all = "a" in opts
    almost_all = "A" in opts
    dirs_as_files = "d" in opts
    recursive = "R" in opts and not dirs_as_files
    classify = "F" in opts
    slash = "p" in opts
    follow_all = "L" in opts
    follow_cmdline = follow_all or "H" in opts or not (long or classify or dirs_as_files)
    reverse = "r" in opts
    by_time = "t" in opts
    by_size = "S" in opts
    inode = "i" in opts
    blocks = "s" in opts
    full_time = "\x01" in opts
    now = current_time(p)
    fs = p.fs
    status = 0
    users: dict[int, str | None] = {}
    groups: dict[int, str | None] = {}

    def stat_of(path: str, follow: bool) -> os.stat_result:
        return fs.stat(path) if follow else fs.lstat(path)

    def sort(entries: list[tuple[str, str, os.stat_result]]) -> list[tuple[str, str, os.stat_result]]:
        if by_size:
            entries.sort(key=lambda e: (-e[2].st_size, encode(e[0])))
        elif by_time:
            entries.sort(key=lambda e: (-int(e[2].st_mtime), encode(e[0])))
        else:
            entries.sort(key=lambda e: encode(e[0]))
        if reverse:
            entries.reverse()
        return entries

    def suffix(st: os.stat_result) -> str:
        mode = st.st_mode
        if classify:
            if _stat.S_ISDIR(mode):
                return "/"
            if _stat.S_ISLNK(mode):
                return "@"
            if _stat.S_ISFIFO(mode):
                return "|"
            if _stat.S_ISSOCK(mode):
                return "="
            if mode & 0o111:
                return "*"
            return ""
        if slash and _stat.S_ISDIR(mode):
            return "/"
        return ""

    def line(name: str, path: str, st: os.stat_result) -> str:
        text = ""
        if inode:
            text += f"{st.st_ino:8d} "
        if blocks:
            text += f"{_blocks(st) // 2:6d} "
        if long:
            if "n" in opts:
                owner, group = str(st.st_uid), str(st.st_gid)
            else:
                if st.st_uid not in users:
                    users[st.st_uid] = lookup_user(p, st.st_uid)
                if st.st_gid not in groups:
                    groups[st.st_gid] = lookup_group(p, st.st_gid)
                owner = users[st.st_uid] or str(st.st_uid)
                group = groups[st.st_gid] or str(st.st_gid)
            if full_time:
                when = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(int(st.st_mtime)))
            else:
                when = _ls_time(int(st.st_mtime), now)
            # busybox prints a device's numbers where the size goes ("%4u,%4u ").
            size = (f"{os.major(st.st_rdev):4d},{os.minor(st.st_rdev):4d}"
                    if _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode) else f"{st.st_size:9d}")
            text += f"{mode_string(st.st_mode):<10s} {st.st_nlink:4d} {owner[:8]:<8s} {group[:8]:<8s} {size} {when} "
        text += name
        if long and _stat.S_ISLNK(st.st_mode):
            try:
                target = fs.readlink(path)
            except OSError:
                target = ""
            text += f" -> {target}"
            if classify:
                try:
                    text += suffix(fs.stat(path))
                except OSError:
                    pass
            return text + "\n"
        return text + suffix(st) + "\n"

    files: list[tuple[str, str, os.stat_result]] = []
    dirs: list[tuple[str, str, os.stat_result]] = []
    for name in operands or ["."]:
        path = p.path(name)
        try:
            st = stat_of(path, follow_cmdline)
        except OSError as e:
            p.perror(name, e)
            status = 1
            continue
        if _stat.S_ISDIR(st.st_mode) and not dirs_as_files:
            dirs.append((name, path, st))
        else:
            files.append((name, path, st))
    out: list[str] = []
    for name, path, st in sort(files):
        out.append(line(name, path, st))
    headers = len(operands) > 1 or recursive
    first = not files

    def list_dir(name: str, path: str) -> None:
        nonlocal status, first
        try:
            names = fs.listdir(path)
        except OSError as e:
            p.perror(f"can't open '{name}'", e)
            status = 1
            return
        if show_all:
            names = [".", "..", *names]
        elif not almost_all:
            names = [n for n in names if not n.startswith(".")]
        entries = []
        for n in names:
            child = path.rstrip("/") + "/" + n
            try:
                st = stat_of(child, follow_all)
            except OSError as e:
                p.perror(n if name == "." else posixpath.join(name, n), e)
                status = 1
                continue
            entries.append((n, child, st))
        sort(entries)
        if headers:
            out.append(("" if first else "\n") + f"{name}:\n")
        first = False
        if long or blocks:
            out.append(f"total {sum(_blocks(e[2]) for e in entries) // 2}\n")
        for n, child, st in entries:
            out.append(line(n, child, st))
        if recursive:
            for n, child, st in entries:
                if n in (".", "..") or not _stat.S_ISDIR(st.st_mode):
                    continue
                list_dir(name.rstrip("/") + "/" + n if name != "/" else "/" + n, child)

    for name, path, _st in sort(dirs):
        list_dir(name, path)
    p.out("".join(out))
    return status
