"""``python -m realrt.containers monitor STATE_DIR CONTAINER_ID root|rootless FD``: a detached
container's monitor (:mod:`realrt.containers._monitor`), started by the engine, never by hand."""

from __future__ import annotations

import sys

from realrt.containers._monitor import main
from realrt.engine import RealEngine

if __name__ == "__main__":
    if sys.argv[1:2] != ["monitor"]:
        sys.exit("usage: python -m realrt.containers monitor STATE_DIR CONTAINER_ID root|rootless FD")
    sys.exit(main(sys.argv[2:], RealEngine))
