"""The busybox applets the model implements, each a port of busybox 1.35's logic.

Every applet takes a :class:`~sim.containers.shell._proc.Proc` and returns its exit
status.  Messages, exit codes and the order of system calls follow the
busybox sources (``coreutils/*.c``, ``libbb/copy_file.c``,
``libbb/remove_file.c``, ``libbb/make_directory.c``), because the calls are
what the union sees: ``cat`` opens read-only (no copy-up), ``touch`` of an
existing file is ``utimensat`` (a copy-up), ``rm -r`` unlinks children before
``rmdir``.  An option busybox has but the model does not raises
:class:`~sim.errors.UnsupportedCommandError`.
"""

from __future__ import annotations

# the family modules register their applets in APPLETS as they are imported
from sim.containers.shell._applets import (  # noqa: F401
    awk,
    columns,
    copying,
    files,
    finding,
    listing,
    printing,
    processes,
    sed,
    sorting,
    streams,
    testexpr,
    text,
)
from sim.containers.shell._applets._accounts import lookup_group, lookup_user, passwd_entry
from sim.containers.shell._applets._common import APPLETS, UsageError, applet

__all__ = ["APPLETS", "applet", "UsageError", "lookup_user", "lookup_group", "passwd_entry"]
