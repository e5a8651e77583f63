"""``python -m sim.cli``: the ``layerlab`` command."""

import sys

from sim.cli import main

sys.exit(main())
