"""``cp``, ``mv`` and ``ln``, over libbb's ``copy_file`` (libbb/copy_file.c)."""

from __future__ import annotations

import errno
import os
import stat as _stat

from sim.containers.shell._applets._common import (
    UsageError,
    applet,
    concat_path,
    getopt,
    last_component,
    process_umask,
    show_usage,
    unsupported,
)
from sim.containers.shell._applets.files import remove_file
from sim.containers.shell._proc import Proc
from sim.errors import UnsupportedCommandError

_PRESERVE, _DEREF, _RECUR, _FORCE, _NOCLOBBER, _HARDLINK, _SOFTLINK, _NOTARGET, _UPDATE, _VERBOSE, _DEREF_L0 = (
    1 << i for i in range(11)
)


def _flag_bits(opts: dict[str, list[str]], table: dict[str, int]) -> int:
    """OR together the bit of every option letter in `table` that `opts` holds."""
    bits = 0
    for letter, bit in table.items():
        if letter in opts:
            bits |= bit
    return bits


def _cp_stat(p: Proc, name: str, follow: bool) -> tuple[int, os.stat_result | None]:
    """``cp_mv_stat2``: 0 missing, 1 exists, 3 directory, -1 error (printed)."""
    try:
        st = p.fs.stat(p.path(name)) if follow else p.fs.lstat(p.path(name))
    except OSError as e:
        if e.errno != errno.ENOENT:
            p.perror(f"can't stat '{name}'", e)
            return -1, None
        return 0, None
    return (3 if _stat.S_ISDIR(st.st_mode) else 1), st


def _ask_and_unlink(p: Proc, dest: str, flags: int, err: OSError) -> int:
    """busybox without FEATURE_NON_POSIX_CP: only ``-f`` may remove what is in the way."""
    if not flags & _FORCE:
        p.perror(f"can't create '{dest}'", err)
        return -1
    try:
        p.fs.unlink(p.path(dest))
    except OSError:
        p.perror(f"can't create '{dest}'", err)  # errno of the failed create, not of unlink
        return -1
    return 1


def copy_file(p: Proc, source: str, dest: str, flags: int, seen: dict[int, str]) -> int:
    """``copy_file`` from libbb: returns 0 or -1 (messages printed)."""
    fs = p.fs
    deref = bool(flags & (_DEREF | _DEREF_L0))
    try:
        sst = fs.stat(p.path(source)) if deref else fs.lstat(p.path(source))
    except OSError as e:
        if flags & (_SOFTLINK | _HARDLINK):
            return _make_links(p, source, dest, flags)
        p.perror(f"can't stat '{source}'", e)
        return -1
    dest_exists = False
    dst: os.stat_result | None = None
    try:
        dst = fs.lstat(p.path(dest))
    except OSError as e:
        if e.errno != errno.ENOENT:
            p.perror(f"can't stat '{dest}'", e)
            return -1
    else:
        if dst.st_ino == sst.st_ino and dst.st_dev == sst.st_dev:
            p.error(f"'{source}' and '{dest}' are the same file")
            return -1
        if flags & _NOCLOBBER:
            return 0
        dest_exists = True
    umask = process_umask(p)
    if _stat.S_ISDIR(sst.st_mode):
        if not flags & _RECUR:
            p.error(f"omitting directory '{source}'")
            return -1
        if sst.st_ino in seen and seen[sst.st_ino] == "\0dir":
            p.error(f"recursion detected, omitting directory '{source}'")
            return -1
        if dest_exists:
            assert dst is not None
            if not _stat.S_ISDIR(dst.st_mode):
                p.error(f"target '{dest}' is not a directory")
                return -1
        else:
            mode = sst.st_mode & 0o7777
            if not flags & _PRESERVE:
                mode &= ~umask
            mode |= 0o700
            try:
                fs.mkdir(p.path(dest), mode)
                dst = fs.lstat(p.path(dest))
            except OSError as e:
                p.perror(f"can't create directory '{dest}'", e)
                return -1
        assert dst is not None
        seen[dst.st_ino] = "\0dir"
        retval = 0
        try:
            names = fs.listdir(p.path(source))
        except OSError as e:
            p.perror(f"can't open '{source}'", e)
            return -1
        for name in names:
            if copy_file(p, concat_path(source, name), concat_path(dest, name), flags & ~_DEREF_L0, seen) < 0:
                retval = -1
        if not dest_exists:
            try:
                fs.chmod(p.path(dest), sst.st_mode & 0o7777 & ~umask)
            except OSError as e:
                p.perror(f"can't preserve permissions of '{dest}'", e)
        return _preserve(p, source, dest, sst, flags, retval)
    if dest_exists and flags & _UPDATE:
        assert dst is not None
        if int(sst.st_mtime) <= int(dst.st_mtime):
            return 0
    if flags & (_SOFTLINK | _HARDLINK):
        return _make_links(p, source, dest, flags)
    if not flags & _RECUR or _stat.S_ISREG(sst.st_mode):
        if not deref and _stat.S_ISLNK(sst.st_mode):
            return _copy_special(p, source, dest, sst, flags, dest_exists)
        if not deref and _stat.S_ISREG(sst.st_mode) and sst.st_nlink > 1:
            target = seen.get(sst.st_ino)
            if target is not None and target != "\0dir":
                try:
                    fs.link(p.path(target), p.path(dest), follow_symlinks=False)
                except OSError as e:
                    ovr = _ask_and_unlink(p, dest, flags, e)
                    if ovr <= 0:
                        return ovr
                    try:
                        fs.link(p.path(target), p.path(dest), follow_symlinks=False)
                    except OSError as e2:
                        p.perror(f"can't create link '{dest}'", e2)
                        return -1
                return 0
            seen[sst.st_ino] = dest
        try:
            src = p.world.open_stream(p.cwd, source, os.O_RDONLY, p.fds)
        except OSError as e:
            p.perror(f"can't open '{source}'", e)
            return -1
        new_mode = sst.st_mode & 0o7777 if _stat.S_ISREG(sst.st_mode) else 0o666
        try:
            out = p.world.open_stream(p.cwd, dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, p.fds, mode=new_mode)
        except OSError as e:
            ovr = _ask_and_unlink(p, dest, flags, e)
            if ovr <= 0:
                src.close()
                return ovr
            try:
                out = p.world.open_stream(p.cwd, dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, p.fds, mode=new_mode)
            except OSError as e2:
                src.close()
                p.perror(f"can't open '{dest}'", e2)
                return -1
        retval = 0
        try:
            data = src.read()
        except OSError as e:
            p.perror("read error", e)
            data = b""
            retval = -1
        try:
            out.write(data)
        except OSError as e:
            p.perror("write error", e)
            retval = -1
        out.close()
        src.close()
        if not _stat.S_ISREG(sst.st_mode):
            return retval
        return _preserve(p, source, dest, sst, flags, retval)
    return _copy_special(p, source, dest, sst, flags, dest_exists)


def _copy_special(p: Proc, source: str, dest: str, sst: os.stat_result, flags: int, dest_exists: bool) -> int:
    if dest_exists:
        ovr = _ask_and_unlink(p, dest, flags, OSError(errno.EEXIST, os.strerror(errno.EEXIST)))
        if ovr <= 0:
            return ovr
    if _stat.S_ISLNK(sst.st_mode):
        try:
            target = p.fs.readlink(p.path(source))
        except OSError as e:
            p.perror(f"can't read link '{source}'", e)
            return 0
        try:
            p.fs.symlink(target, p.path(dest))
        except OSError as e:
            p.perror(f"can't create symlink '{dest}' to '{target}'", e)
            return -1
        return 0
    p.error(f"unrecognized file '{source}' with mode {sst.st_mode:x}")
    return -1


def _make_links(p: Proc, source: str, dest: str, flags: int) -> int:
    soft = bool(flags & _SOFTLINK)

    def make() -> None:
        if soft:
            p.fs.symlink(source, p.path(dest))
        else:
            p.fs.link(p.path(source), p.path(dest), follow_symlinks=False)

    try:
        make()
    except OSError as e:
        ovr = _ask_and_unlink(p, dest, flags, e)
        if ovr <= 0:
            return ovr
        try:
            make()
        except OSError as e2:
            p.perror(f"can't create link '{dest}'", e2)
            return -1
    return 0


def _preserve(p: Proc, source: str, dest: str, sst: os.stat_result, flags: int, retval: int) -> int:
    if flags & _PRESERVE:
        fs = p.fs
        secs = int(sst.st_mtime)
        try:
            fs.utime(p.path(dest), ns=(secs * 10**9, secs * 10**9))
        except OSError as e:
            p.perror(f"can't preserve times of '{dest}'", e)
        try:
            st = fs.stat(p.path(dest))
            if (st.st_uid, st.st_gid) != (sst.st_uid, sst.st_gid):
                raise UnsupportedCommandError(
                    "the model's cp -p cannot preserve file ownership (the FileSystem has no chown); run it with BACKEND='real'")
        except OSError:
            pass
        try:
            fs.chmod(p.path(dest), sst.st_mode & 0o7777)
        except OSError as e:
            p.perror(f"can't preserve permissions of '{dest}'", e)
    if flags & _VERBOSE:
        p.out(f"'{source}' -> '{dest}'\n")
    return retval


@applet("cp")
def cp(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "arPLHpfinlsTuvt:dR",
                            longopts={"archive": "a", "force": "f", "interactive": "i", "link": "l", "dereference": "L",
                                      "no-dereference": "P", "recursive": "R", "symbolic-link": "s", "no-clobber": "n",
                                      "target-directory=": "t", "no-target-directory": "T", "update": "u", "verbose": "v",
                                      "parents": "\x01", "preserve=": "\x02", "reflink": "\x03", "reflink=": "\x03"})
    except UsageError as e:
        return show_usage(p, "cp", e.msg)
    for o, what in (("i", "option -i"), ("\x01", "--parents"), ("\x02", "--preserve"), ("\x03", "--reflink")):
        if o in opts:
            raise unsupported(p, what)
    flags = 0
    if "a" in opts:
        opts.setdefault("p", [""])
        opts.setdefault("d", [""])
        opts.setdefault("R", [""])
    if "r" in opts:
        opts.setdefault("R", [""])
    if "R" in opts or "P" in opts:
        opts.setdefault("d", [""])
    if "d" not in opts:
        flags |= _DEREF
    flags |= _flag_bits(opts, {"p": _PRESERVE, "R": _RECUR, "f": _FORCE, "n": _NOCLOBBER, "l": _HARDLINK,
                               "s": _SOFTLINK, "T": _NOTARGET, "u": _UPDATE, "v": _VERBOSE, "L": _DEREF,
                               "H": _DEREF_L0})
    if "l" in opts and "s" in opts:
        return show_usage(p, "cp")
    if "t" in opts:
        last = opts["t"][-1]
        sources = args
        if not sources:
            return show_usage(p, "cp")
    else:
        if len(args) < 2:
            return show_usage(p, "cp")
        last = args[-1]
        sources = args[:-1]
    seen: dict[int, str] = {}
    if len(sources) == 1 and "t" not in opts:
        s_flags, _ = _cp_stat(p, sources[0], bool(flags & (_DEREF | _DEREF_L0)))
        if s_flags < 0:
            return 1
        d_flags, _ = _cp_stat(p, last, True)
        if d_flags < 0:
            return 1
        if flags & _NOTARGET:
            if not (s_flags & 2) and (d_flags & 2):
                p.error(f"'{last}' is a directory")
                return 1
            if (s_flags & 2) and (d_flags & 1) and not (d_flags & 2):
                p.error(f"can't overwrite non-directory '{last}' with directory '{sources[0]}'")
                return 1
        if not ((s_flags | d_flags) & 2) or ((flags & _RECUR) and (s_flags & 2) and not d_flags) or (flags & _NOTARGET):
            return 1 if copy_file(p, sources[0], last, flags, seen) < 0 else 0
    elif flags & _NOTARGET:
        p.error("too many arguments")
        return 1
    status = 0
    for src in sources:
        dest = concat_path(last, last_component(src))
        if copy_file(p, src, dest, flags, seen) < 0:
            status = 1
    return status


@applet("mv")
def mv(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "finTt:v", longopts={"force": "f", "interactive": "i", "no-clobber": "n",
                                                               "no-target-directory": "T", "target-directory=": "t",
                                                               "verbose": "v"})
    except UsageError as e:
        return show_usage(p, "mv", e.msg)
    if "i" in opts:
        raise unsupported(p, "option -i")
    fs = p.fs
    if "t" in opts:
        last = opts["t"][-1]
        sources = args
        if not sources:
            return show_usage(p, "mv")
    else:
        if len(args) < 2:
            return show_usage(p, "mv")
        last, sources = args[-1], args[:-1]
    status = 0
    for k, src in enumerate(sources):
        if k == 0 and len(sources) == 1 and "t" not in opts:
            dest_exists, _ = _cp_stat(p, last, True)
            if dest_exists < 0:
                return 1
            if not (dest_exists & 2) or "T" in opts:
                dest = last
            else:
                dest = concat_path(last, last_component(src))
                dest_exists, _ = _cp_stat(p, dest, True)
                if dest_exists < 0:
                    status = 1
                    continue
        else:
            dest = concat_path(last, last_component(src))
            dest_exists, _ = _cp_stat(p, dest, True)
            if dest_exists < 0:
                status = 1
                continue
        if dest_exists and "n" in opts:
            continue
        try:
            fs.rename(p.path(src), p.path(dest))
            if "v" in opts:
                p.out(f"'{src}' -> '{dest}'\n")
            continue
        except OSError as e:
            err = e
        source_exists = 0
        if err.errno == errno.EXDEV:
            source_exists, _ = _cp_stat(p, src, False)
        if err.errno != errno.EXDEV or source_exists < 1:
            p.perror(f"can't rename '{src}'", err)
            status = 1
            continue
        if dest_exists:
            if dest_exists == 3 and source_exists != 3:
                p.error("can't overwrite directory with non-directory")
                status = 1
                continue
            if dest_exists != 3 and source_exists == 3:
                p.error("can't overwrite non-directory with directory")
                status = 1
                continue
            try:
                fs.unlink(p.path(dest)) if dest_exists != 3 else fs.rmdir(p.path(dest))
            except OSError as e:
                p.perror(f"can't remove '{dest}'", e)
                status = 1
                continue
        if copy_file(p, src, dest, _RECUR | _PRESERVE, {}) >= 0 and remove_file(p, src, True, True):
            if "v" in opts:
                p.out(f"'{src}' -> '{dest}'\n")
            continue
        status = 1
    return status


@applet("ln")
def ln(p: Proc) -> int:
    try:
        opts, args = getopt(p, p.argv[1:], "sfnbS:vT", longopts={"symbolic": "s", "force": "f", "no-dereference": "n",
                                                                "verbose": "v", "no-target-directory": "T"})
    except UsageError as e:
        return show_usage(p, "ln", e.msg)
    if "b" in opts or "S" in opts:
        raise unsupported(p, "backups (-b, -S)")
    if not args:
        return show_usage(p, "ln")
    fs = p.fs
    if len(args) == 1:
        last = last_component(args[0])
        sources = args
    else:
        last = args[-1]
        sources = args[:-1]
    if "T" in opts and len(sources) > 1:
        return show_usage(p, "ln")
    status = 0
    for src in sources:
        link_name = last
        try:
            st = fs.stat(p.path(last)) if "n" not in opts else fs.lstat(p.path(last))
            is_dir = _stat.S_ISDIR(st.st_mode)
        except OSError:
            is_dir = False
        if is_dir:
            if "T" in opts:
                p.error(f"'{last}' is a directory")
                status = 1
                continue
            link_name = concat_path(last, last_component(src))
        if "s" not in opts:
            try:
                fs.stat(p.path(src))
            except OSError as e:
                p.perror(src, e)
                status = 1
                continue
        if "f" in opts:
            try:
                fs.unlink(p.path(link_name))
            except OSError:
                pass
        if "v" in opts:
            p.out(f"'{link_name}' -> '{src}'\n")
        try:
            if "s" in opts:
                fs.symlink(src, p.path(link_name))
            else:
                fs.link(p.path(src), p.path(link_name), follow_symlinks=False)
        except OSError as e:
            p.perror(link_name, e)
            status = 1
    return status
