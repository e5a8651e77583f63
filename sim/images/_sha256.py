"""The one digest form the image store keeps: ``sha256:`` and 64 lowercase hex digits."""

from __future__ import annotations

import re

from sim.digest import Digest
from sim.images.oci import ImageFormatError

HEX64 = re.compile(r"^[a-f0-9]{64}$")


def as_sha256(value: str) -> Digest:
    if isinstance(value, Digest):
        return value
    if not isinstance(value, str) or not value.startswith("sha256:") or not HEX64.match(value[7:]):
        raise ImageFormatError(f"not a sha256 digest: {value!r} (this store keeps sha256 blobs only)")
    return Digest(value)
