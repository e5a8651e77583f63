"""File modes: ``bb_mode_string`` for output and ``bb_parse_mode`` for ``chmod`` and ``mkdir -m``."""

from __future__ import annotations

import re
import stat as _stat


def mode_string(mode: int) -> str:
    """``bb_mode_string``: ``-rwxr-xr-x``."""
    kind = {
        _stat.S_IFDIR: "d", _stat.S_IFLNK: "l", _stat.S_IFREG: "-", _stat.S_IFCHR: "c",
        _stat.S_IFBLK: "b", _stat.S_IFIFO: "p", _stat.S_IFSOCK: "s",
    }.get(_stat.S_IFMT(mode), "?")
    chars = [kind]
    for shift, special, low, up in ((6, _stat.S_ISUID, "s", "S"), (3, _stat.S_ISGID, "s", "S"), (0, _stat.S_ISVTX, "t", "T")):
        bits = (mode >> shift) & 7
        chars.append("r" if bits & 4 else "-")
        chars.append("w" if bits & 2 else "-")
        if mode & special:
            chars.append(low if bits & 1 else up)
        else:
            chars.append("x" if bits & 1 else "-")
    return "".join(chars)


def parse_mode(spec: str, current: int, umask: int) -> int | None:
    """``bb_parse_mode``: octal or ``[ugoa]*[-+=][rwxXst]*`` clauses; None when invalid."""
    if spec and spec[0] in "01234567":
        if not re.fullmatch(r"[0-7]+", spec) or int(spec, 8) > 0o7777:
            return None
        return int(spec, 8)
    who_mask = {"a": 0o7777, "u": _stat.S_ISUID | 0o700, "g": _stat.S_ISGID | 0o070, "o": 0o007}
    perm_mask = {"r": 0o444, "w": 0o222, "x": 0o111, "X": 0o111, "s": _stat.S_ISUID | _stat.S_ISGID, "t": _stat.S_ISVTX}
    new = current
    s = spec
    i = 0
    while i < len(s):
        if s[i] == ",":
            i += 1
            continue
        wholist = 0
        while i < len(s) and s[i] in "augo":
            wholist |= who_mask[s[i]]
            i += 1
            if i >= len(s):
                return None
        while True:
            if i >= len(s) or s[i] not in "+-=":
                return None
            op = s[i]
            if op == "=":
                new &= ~wholist if wholist else ~0o7777
            i += 1
            if i < len(s) and s[i] in "ugo":
                permlist = who_mask[s[i]] & 0o777 & new
                for m in (0o444, 0o222, 0o111):
                    if permlist & m:
                        permlist |= m
                i += 1
            else:
                permlist = 0
                while i < len(s) and s[i] in perm_mask:
                    c = s[i]
                    if c != "X" or (new & (_stat.S_IFDIR | 0o111)):
                        permlist |= perm_mask[c]
                    i += 1
            if permlist:
                permlist &= wholist if wholist else ~umask
                if op == "-":
                    new &= ~permlist
                else:
                    new |= permlist
            if i >= len(s) or s[i] == ",":
                break
    return new
