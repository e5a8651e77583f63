"""What a real-backend test leaves behind, as the project's hook looks for it (the ``real``
fixture in ``conftest.py`` checks it is nothing after each test)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

__all__ = ["leftovers", "mounts_below", "under_subreaper"]


def leftovers() -> list[str]:
    """What the project's hook looks for: ``find /sys/fs/cgroup -maxdepth 3 -name '*layerlab*'``."""
    done = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "3", "-name", "*layerlab*"],
                          capture_output=True, text=True, check=False)
    return done.stdout.split()


def mounts_below(path: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return sorted(line.split()[4] for line in fh if line.split()[4].startswith(str(path)))


def under_subreaper(body: str) -> str:
    """A ``python -c`` script that becomes a child subreaper, runs ``body`` in a forked child
    (``os``, ``sys``, ``time`` imported; the child exits after it) and reaps every process the
    child leaves, exiting once none is left: what a test kills as "the owner" of a run."""
    return ("import ctypes, os, sys, time\n"
            "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER\n"
            "if os.fork() == 0:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n    os._exit(0)\n"
            "while True:\n    try:\n        os.wait()\n    except ChildProcessError:\n        break\n")
