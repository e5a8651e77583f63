"""镜像 (images): OCI documents, references, content-addressed storage, Buildfiles and analysis.

An image is a config and its layers (bottom first), stored by digest: :class:`ContentStore` holds
the blobs, :class:`ImageStore` the images and tags on top; :mod:`sim.images.buildfile` parses the
Dockerfile subset the engine builds from, :mod:`sim.images.analysis` explains what each layer adds
and wastes.  The modules keep their own fuller ``__all__``; this is the chapter's front door.
"""

from __future__ import annotations

from sim.images.analysis import ImageAnalysis, analyze
from sim.images.base import busybox_layer
from sim.images.blobs import BlobNotFoundError, ContentStore
from sim.images.buildfile import Buildfile, Instruction
from sim.images.buildfile import parse as parse_buildfile
from sim.images.oci import Descriptor, ImageConfig, Index, Manifest
from sim.images.reference import Reference, parse_reference
from sim.images.store import ImageRecord, ImageStore

__all__ = [
    "ContentStore", "BlobNotFoundError", "ImageStore", "ImageRecord",
    "Descriptor", "ImageConfig", "Manifest", "Index",
    "Reference", "parse_reference",
    "Buildfile", "Instruction", "parse_buildfile",
    "ImageAnalysis", "analyze",
    "busybox_layer",
]
