"""``python -m realrt.vm fetch``: download and unpack the VMs' kernel (``./dev`` calls it)."""

import sys

from realrt.vm import main

sys.exit(main())
