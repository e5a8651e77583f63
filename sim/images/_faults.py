"""Named fault points: where crash tests stop a real engine process to kill it.

Production code calls :func:`fault_point` at the moments a crash would be worst (a blob half
written, a build between two steps, an archive half written).  It does nothing unless the
environment variable ``LAYERLAB_FAULT_POINT`` names that point: ``name`` (its first hit) or
``name:detail`` (the hit whose detail, a step number or a byte count, is at least ``detail``).
Then the process stops itself with ``SIGSTOP`` (``LAYERLAB_FAULT_ACTION=kill``: ``SIGKILL``), so
a test's parent process, which sees the stop with ``waitpid(WUNTRACED)``, kills it with
``SIGKILL`` at exactly that point.  Nothing is mocked: the child is the real engine.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_VARIABLE", "FAULT_ACTION_VARIABLE", "fault_point"]

FAULT_VARIABLE = "LAYERLAB_FAULT_POINT"
FAULT_ACTION_VARIABLE = "LAYERLAB_FAULT_ACTION"


def fault_point(name: str, detail: int = 0) -> None:
    """Stop (or kill) this process here if ``$LAYERLAB_FAULT_POINT`` names ``name`` (see the module docstring)."""
    wanted = os.environ.get(FAULT_VARIABLE)
    if not wanted:
        return
    point, _, at = wanted.partition(":")
    if point != name or (at and (not at.isdigit() or detail < int(at))):
        return
    os.environ.pop(FAULT_VARIABLE, None)  # a stopped process that is continued goes on without stopping again
    os.kill(os.getpid(), signal.SIGKILL if os.environ.get(FAULT_ACTION_VARIABLE) == "kill" else signal.SIGSTOP)
