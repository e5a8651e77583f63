"""Content addresses: DiffIDs and ChainIDs as the OCI image-spec defines them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from sim.errors import LayerFormatError

__all__ = ["Digest", "EMPTY_LAYER_DIFF_ID", "chain_id", "chain_ids", "sha256_digest"]

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class Digest(str):
    """A ``sha256:<64 lowercase hex>`` string, validated on construction."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if not _DIGEST.match(value):
            raise LayerFormatError(f"not a sha256 digest: {value!r}")
        return super().__new__(cls, value)

    @property
    def hex(self) -> str:
        return self[len("sha256:"):]

    @property
    def short(self) -> str:
        """The 12-hex-digit form ``docker images`` prints."""
        return self.hex[:12]


def sha256_digest(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


#: DiffID of the empty layer tar (two 512-byte zero blocks).
EMPTY_LAYER_DIFF_ID = Digest("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")


def chain_id(diff_ids: Sequence[str]) -> Digest:
    """ChainID of a stack (bottom first): ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))."""
    return chain_ids(diff_ids)[-1]


def chain_ids(diff_ids: Sequence[str]) -> list[Digest]:
    """The ChainID of every prefix of ``diff_ids`` (bottom first)."""
    if not diff_ids:
        raise LayerFormatError("a ChainID needs at least one DiffID")
    # Inputs are checked only for the "algorithm:" shape: the spec's own example uses "sha256:a".
    for diff_id in diff_ids:
        if ":" not in diff_id:
            raise LayerFormatError(f"not a digest (algorithm:hex): {diff_id!r}")
    out: list[str] = [diff_ids[0]]
    for diff_id in diff_ids[1:]:
        out.append(sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return [d if isinstance(d, Digest) else _loose(d) for d in out]


def _loose(value: str) -> Digest:
    """The bottom ChainID is the first DiffID verbatim, valid sha256 or not."""
    try:
        return Digest(value)
    except LayerFormatError:
        return str.__new__(Digest, value)
