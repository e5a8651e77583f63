"""What a real-backend test leaves behind, as the project's hook looks for it (the ``real``
fixture in ``conftest.py`` checks it is nothing after each test)."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["leftovers", "mounts_below"]


def leftovers() -> list[str]:
    """What the project's hook looks for: ``find /sys/fs/cgroup -maxdepth 3 -name '*layerlab*'``."""
    done = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "3", "-name", "*layerlab*"],
                          capture_output=True, text=True, check=False)
    return done.stdout.split()


def mounts_below(path: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return sorted(line.split()[4] for line in fh if line.split()[4].startswith(str(path)))
