"""Making, removing and changing files: ``mkdir``, ``rmdir``, ``rm``, ``touch`` and ``chmod``.

``make_directory`` and ``remove_file`` are libbb's, which ``mv`` reuses.
"""

from __future__ import annotations

import calendar
import errno
import os
import re
import stat as _stat
import time

from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    concat_path,
    current_time,
    getopt,
    process_umask,
    show_usage,
    unsupported,
)
from sim.containers.shell._applets._modes import mode_string, parse_mode
from sim.containers.shell._proc import Proc


def make_directory(p: Proc, path: str, mode: int | None, recursive: bool) -> bool:
    """``bb_make_directory``: the prefixes keep their trailing slashes, as the errors show."""
    fs = p.fs
    if path == "/" or path == ".":
        return True
    s = 0
    while True:
        c_found = False
        if recursive:
            while s < len(path):
                if path[s] == "/":
                    while s < len(path) and path[s] == "/":
                        s += 1
                    c_found = s < len(path)
                    break
                s += 1
        prefix = path[:s] if c_found else path
        try:
            fs.mkdir(p.path(prefix), 0o777)
        except OSError as e:
            err = e
            if e.errno not in (errno.EEXIST, errno.EISDIR) or not recursive:
                p.perror(f"can't create directory '{prefix}'", err)
                return False
            try:
                st = fs.stat(p.path(prefix))
            except OSError as e2:
                p.perror(f"can't create directory '{prefix}'", e2)
                return False
            if not _stat.S_ISDIR(st.st_mode):
                p.perror(f"can't create directory '{prefix}'", err)
                return False
            if not c_found:
                return True
        if not c_found:
            if mode is not None:
                try:
                    fs.chmod(p.path(prefix), mode)
                except OSError as e:
                    p.perror(f"can't set permissions of directory '{prefix}'", e)
                    return False
            return True


@applet("mkdir")
def mkdir(p: Proc) -> int:
    try:
        opts, dirs = getopt(p, p.argv[1:], "m:pv", longopts={"mode=": "m", "parents": "p", "verbose": "v"})
    except UsageError as e:
        return show_usage(p, "mkdir", e.msg)
    if "v" in opts:
        raise unsupported(p, "option -v")
    if not dirs:
        return show_usage(p, "mkdir")
    mode = None
    if "m" in opts:
        mode = parse_mode(opts["m"][-1], 0o777, process_umask(p))
        if mode is None:
            p.error(f"invalid mode '{opts['m'][-1]}'")
            return 1
    status = 0
    for d in dirs:
        if not make_directory(p, d, mode, "p" in opts):
            status = 1
    return status


@applet("rmdir")
def rmdir(p: Proc) -> int:
    try:
        opts, dirs = getopt(p, p.argv[1:], "pv", longopts={"parents": "p", "ignore-fail-on-non-empty": "\x01"})
    except UsageError as e:
        return show_usage(p, "rmdir", e.msg)
    if not dirs:
        return show_usage(p, "rmdir")
    status = 0
    for d in dirs:
        path = d
        while True:
            try:
                p.fs.rmdir(p.path(path))
            except OSError as e:
                if not ("\x01" in opts and e.errno == errno.ENOTEMPTY):
                    p.perror(f"'{path}'", e)
                    status = 1
                break
            if "p" not in opts:
                break
            path = path.rstrip("/")
            if "/" not in path:
                break
            path = path.rsplit("/", 1)[0].rstrip("/")
            if not path:
                break
    return status


def remove_file(p: Proc, path: str, force: bool, recursive: bool) -> bool:
    """``remove_file``: lstat, recurse into directories, unlink or rmdir."""
    fs = p.fs
    try:
        st = fs.lstat(p.path(path))
    except OSError as e:
        if e.errno != errno.ENOENT:
            p.perror(f"can't stat '{path}'", e)
            return False
        if not force:
            p.perror(f"can't remove '{path}'", e)
            return False
        return True
    if _stat.S_ISDIR(st.st_mode):
        if not recursive:
            p.error(f"'{path}' is a directory")
            return False
        try:
            names = fs.listdir(p.path(path))
        except OSError as e:
            p.perror(f"can't open '{path}'", e)
            return False
        ok = True
        for name in names:
            child = path + name if path.endswith("/") else path + "/" + name
            if not remove_file(p, child, force, recursive):
                ok = False
        if ok:
            try:
                fs.rmdir(p.path(path))
            except OSError as e:
                p.perror(f"can't remove '{path}'", e)
                return False
        return ok
    try:
        fs.unlink(p.path(path))
    except OSError as e:
        p.perror(f"can't remove '{path}'", e)
        return False
    return True


@applet("rm")
def rm(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "fiRrv", longopts={"force": "f", "recursive": "r", "verbose": "v"})
    except UsageError as e:
        return show_usage(p, "rm", e.msg)
    if "i" in opts or "v" in opts:
        raise unsupported(p, "option -i" if "i" in opts else "option -v")
    force = "f" in opts
    if not files:
        if force:
            return 0
        return show_usage(p, "rm")
    status = 0
    for f in files:
        base = f.rstrip("/").rsplit("/", 1)[-1] if f.rstrip("/") else f
        if base in (".", ".."):
            p.error("can't remove '.' or '..'")
            status = 1
            continue
        if not remove_file(p, f, force, "r" in opts or "R" in opts):
            status = 1
    return status


def parse_date(text: str) -> int | None:
    """The forms of busybox ``parse_datestr`` the model takes (UTC, as in a container without TZ)."""
    if text.startswith("@"):
        try:
            return int(float(text[1:]))
        except ValueError:
            return None
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", text)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        h, mi, s = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
        try:
            return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        except (ValueError, OverflowError):
            return None
    return None


def parse_touch_t(text: str, now: float) -> int | None:
    m = re.fullmatch(r"(\d{2,4})?(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{2}))?", text)
    if not m or (m.group(1) is not None and len(m.group(1)) not in (2, 4)):
        return None
    year = time.gmtime(now).tm_year
    if m.group(1):
        year = int(m.group(1))
        if len(m.group(1)) == 2:
            year += 2000 if year < 69 else 1900
    try:
        return calendar.timegm((year, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)), int(m.group(6) or 0), 0, 0, 0))
    except (ValueError, OverflowError):
        return None


@applet("touch")
def touch(p: Proc) -> int:
    try:
        opts, files = getopt(p, p.argv[1:], "chamd:t:r:", longopts={"no-create": "c", "date=": "d", "reference=": "r"})
    except UsageError as e:
        return show_usage(p, "touch", e.msg)
    if not files:
        return show_usage(p, "touch")
    fs = p.fs
    when: int | None = None
    if "r" in opts:
        try:
            when = fs.stat(p.path(opts["r"][-1])).st_mtime_ns
        except OSError as e:
            p.perror(opts["r"][-1], e)
            return 1
    if "d" in opts:
        t = parse_date(opts["d"][-1])
        if t is None:
            p.error(f"invalid date '{opts['d'][-1]}'")
            return 1
        when = t * 10**9
    if "t" in opts:
        t = parse_touch_t(opts["t"][-1], current_time(p))
        if t is None:
            p.error(f"invalid date '{opts['t'][-1]}'")
            return 1
        when = t * 10**9
    follow = "h" not in opts
    status = 0
    for f in files:
        path = p.path(f)
        try:
            if when is None:
                fs.utime(path, follow_symlinks=follow)
            else:
                fs.utime(path, ns=(when, when), follow_symlinks=follow)
            continue
        except OSError as e:
            err = e
        if err.errno == errno.ENOENT:
            if "c" in opts:
                continue
            try:
                fd = fs.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                err = e
            else:
                fs.close(fd)
                if when is not None:
                    fs.utime(path, ns=(when, when))
                continue
        p.perror(f, err)
        status = 1
    return status


@applet("chmod")
def chmod(p: Proc) -> int:
    args = p.argv[1:]
    mode_index = None
    for k, a in enumerate(args):
        if not a.startswith("-"):
            break
        if a == "--":
            break
        if a[1:] and a[1 + len(a[1:]) - len(a[1:].lstrip("Rvcf")):]:
            mode_index = k
            break
    if mode_index is not None:
        mode_arg = args[mode_index]
        rest = args[:mode_index] + ["\x00MODE"] + args[mode_index + 1:]
    else:
        mode_arg = None
        rest = args
    try:
        opts, operands = getopt(p, rest, "Rvcf", longopts={"recursive": "R", "verbose": "v", "changes": "c", "silent": "f", "quiet": "f"})
    except UsageError as e:
        return show_usage(p, "chmod", e.msg)
    operands = [mode_arg if o == "\x00MODE" and mode_arg is not None else o for o in operands]
    if len(operands) < 2:
        return show_usage(p, "chmod")
    spec, files = operands[0], operands[1:]
    fs = p.fs
    umask = process_umask(p)
    status = 0

    def one(name: str, top: bool) -> bool:
        path = p.path(name)
        try:
            st = fs.stat(path) if top else fs.lstat(path)
        except OSError as e:
            if "f" not in opts:
                p.perror(name, e)
            return False
        if not top and _stat.S_ISLNK(st.st_mode):
            return True
        new = parse_mode(spec, st.st_mode, umask)
        if new is None:
            raise _ModeError(spec)
        new &= 0o7777
        try:
            fs.chmod(path, new)
        except OSError as e:
            if "f" not in opts:
                p.perror(name, e)
            return False
        if "v" in opts or ("c" in opts and (st.st_mode & 0o7777) != new):
            p.out(f"mode of '{name}' changed to {new:04o} ({mode_string(_stat.S_IFMT(st.st_mode) | new)[1:]})\n")
        ok = True
        if "R" in opts and _stat.S_ISDIR(st.st_mode):
            try:
                names = fs.listdir(path)
            except OSError as e:
                p.perror(f"can't open '{name}'", e)
                return False
            for child in names:
                if not one(concat_path(name, child), False):
                    ok = False
        return ok

    try:
        for f in files:
            if not one(f, True):
                status = 1
    except _ModeError as e:
        p.error(f"invalid mode '{e.args[0]}'")
        return 1
    return status


class _ModeError(Exception):
    pass


# -- mkfifo and mknod (coreutils/mkfifo.c, mknod.c, libbb/getopt_mk_fifo_nod.c) --------


def _fifo_nod_mode(p: Proc, name: str) -> tuple[int, bool] | None:
    """``getopt_mk_fifo_nod``: the mode (0666 unless ``-m``) and whether it is exact (``-m``
    made busybox call ``umask(0)``).  An invalid ``-m`` gives mode -1, which mknod(2) refuses
    with EINVAL for each name: busybox prints no "invalid mode" here.  None: a usage error."""
    try:
        opts, operands = getopt(p, p.argv[1:], "m:")
    except UsageError as e:
        show_usage(p, name, e.msg)
        return None
    p.argv[1:] = operands
    if "m" not in opts:
        return 0o666, False
    mode = parse_mode(opts["m"][-1], 0o666, 0)
    return (-1, True) if mode is None else (mode, True)


def _make_node(p: Proc, path: str, mode: int, exact: bool, kind: int, device: int = 0) -> OSError | None:
    if mode == -1:
        return OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
    try:
        p.fs.mknod(p.path(path), kind | mode, device)
        if exact and mode & process_umask(p):
            p.fs.chmod(p.path(path), mode)  # the model's union applies its umask; busybox had set umask(0)
    except OSError as e:
        return e
    return None


@applet("mkfifo")
def mkfifo(p: Proc) -> int:
    got = _fifo_nod_mode(p, "mkfifo")
    if got is None:
        return 1
    mode, exact = got
    if len(p.argv) < 2:
        return show_usage(p, "mkfifo")
    status = 0
    for name in p.argv[1:]:
        err = _make_node(p, name, mode, exact, _stat.S_IFIFO)
        if err is not None:
            p.perror(name, err)
            status = 1
    return status


#: ``mknod``'s TYPE letters: ``u`` is an (unbuffered) character device, as in busybox.
_NODE_TYPES = {"b": _stat.S_IFBLK, "c": _stat.S_IFCHR, "u": _stat.S_IFCHR, "p": _stat.S_IFIFO}


def _dev_number(p: Proc, text: str, top: int) -> int | None:
    """``xatoul_range``: a decimal number in 0..top, else busybox's message (None)."""
    if not re.fullmatch(r"[0-9]+", text):
        p.error(f"invalid number '{text}'")
        return None
    if int(text) > top:
        p.error(f"number {text} is not in 0..{top} range")
        return None
    return int(text)


@applet("mknod")
def mknod(p: Proc) -> int:
    """A FIFO for anyone; a device only for root outside a user namespace (CAP_MKNOD in
    the initial namespace, which a Docker container's root has): EPERM otherwise, as the kernel."""
    got = _fifo_nod_mode(p, "mknod")
    if got is None:
        return 1
    mode, exact = got
    args = p.argv[1:]
    if len(args) < 2 or not args[1] or args[1][0] not in _NODE_TYPES:
        return show_usage(p, "mknod")
    name, kind = args[0], _NODE_TYPES[args[1][0]]
    device = 0
    if kind == _stat.S_IFIFO:
        if len(args) != 2:
            return show_usage(p, "mknod")
    else:
        if len(args) != 4:
            return show_usage(p, "mknod")
        major = _dev_number(p, args[2], 4095)
        minor = _dev_number(p, args[3], 1048575) if major is not None else None
        if major is None or minor is None:
            return 1
        device = os.makedev(major, minor)
        if p.world.uid != 0 or p.world.id_maps.user_namespace:
            p.perror(name, errno.EPERM)
            return 1
    err = _make_node(p, name, mode, exact, kind, device)
    if err is not None:
        p.perror(name, err)
        return 1
    return 0
