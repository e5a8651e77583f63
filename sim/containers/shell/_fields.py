"""Field splitting on ``$IFS`` and pathname expansion: what turns an expanded word into arguments.

An expanded word is a list of *segments* ``(text, quoted, splittable)``;
quoted text never splits and never globs.  Globbing reads directories
through the :class:`~sim.interface.FileSystem` only.
"""

from __future__ import annotations

import re
import stat as _stat

from sim.containers.shell._exphost import ExpansionHost
from sim.containers.shell._pattern import escape_quoted, has_magic, pattern_regex, unescape

__all__ = ["Segment", "FIELD_BREAK", "AT_EMPTY", "split_fields", "glob_fields"]

Segment = tuple[str, bool, bool]  # text, quoted, splittable


class _Marker(tuple):  # type: ignore[type-arg]
    """A segment that is not text: a break between "$@" words, or "$@" with no parameters."""


FIELD_BREAK: Segment = _Marker(("", True, False))
AT_EMPTY: Segment = _Marker(("", True, False))


# -- field splitting ---------------------------------------------------------------


def split_fields(segs: list[Segment], ifs: str | None) -> list[list[tuple[str, bool]]]:
    """Split segments into fields of ``(text, quoted)`` on ``ifs`` (``$IFS``; None when unset)."""
    if ifs is None:
        ifs = " \t\n"
    ws = {c for c in ifs if c in " \t\n"}
    nws = {c for c in ifs if c not in " \t\n"}
    fields: list[list[tuple[str, bool]]] = []
    cur: list[tuple[str, bool]] = []
    has = False
    ws_emitted = False
    only_at_empty = True
    for seg in segs:
        if seg is AT_EMPTY:
            continue
        only_at_empty = False
        if seg is FIELD_BREAK:
            fields.append(cur)
            cur, has = [], False
            continue
        text, quoted, splittable = seg
        if not splittable or not ifs:
            cur.append((text, quoted))
            if quoted or text:
                has = True
                ws_emitted = False
            continue
        buf: list[str] = []
        for ch in text:
            if ch in ws:
                if buf:
                    cur.append(("".join(buf), False))
                    buf = []
                    has = True
                if has:
                    fields.append(cur)
                    cur, has = [], False
                    ws_emitted = True
            elif ch in nws:
                if buf:
                    cur.append(("".join(buf), False))
                    buf = []
                    has = True
                if has or not ws_emitted:
                    fields.append(cur)
                cur, has = [], False
                ws_emitted = False
            else:
                buf.append(ch)
                ws_emitted = False
        if buf:
            cur.append(("".join(buf), False))
            has = True
    if has:
        fields.append(cur)
    if only_at_empty and not fields:
        return []
    return fields


# -- globbing ----------------------------------------------------------------------


def glob_fields(host: ExpansionHost, segments: list[tuple[str, bool]]) -> list[str]:
    """Pathname expansion of one field: sorted matches, or the field itself when none match."""
    text = "".join(t for t, _ in segments)
    if not has_magic(segments):
        return [text]
    pattern = escape_quoted(segments)
    comps = pattern.split("/")
    if pattern.startswith("/"):
        results = _glob_walk(host, "/", comps[1:])
    else:
        results = _glob_walk(host, "", comps)
    if not results:
        return [unescape(pattern)]
    return sorted(results, key=lambda s: s.encode("utf-8", "surrogateescape"))


def _glob_walk(host: ExpansionHost, prefix: str, comps: list[str]) -> list[str]:
    if not comps:
        return [prefix]
    comp, rest = comps[0], comps[1:]
    if comp == "" and rest:  # "a//b"
        return _glob_walk(host, prefix + "/" if not prefix.endswith("/") else prefix, rest)
    if comp == "":
        return [prefix] if prefix else []
    if not has_magic([(comp, False)]) or pattern_regex(comp) == re.escape(unescape(comp)):
        name = unescape(comp)
        path = prefix + name
        if rest:
            return _glob_walk(host, path + "/", rest)
        try:
            host.fs.lstat(host.fs_path(path))
        except OSError:
            return []
        return [path]
    directory = host.fs_path(prefix or ".")
    try:
        names = host.fs.listdir(directory)
    except OSError:
        return []
    regex = re.compile(pattern_regex(comp), re.DOTALL)
    if comp.startswith(".") or comp.startswith("\\."):
        names = [".", "..", *names]
    out: list[str] = []
    for name in names:
        if name.startswith(".") and not (comp.startswith(".") or comp.startswith("\\.")):
            continue
        if not regex.fullmatch(name):
            continue
        path = prefix + name
        if rest:
            try:
                st = host.fs.stat(host.fs_path(path))
            except OSError:
                continue
            if not _stat.S_ISDIR(st.st_mode):
                continue
            out.extend(_glob_walk(host, path + "/", rest))
        else:
            out.append(path)
    return out

