"""``docker save``'s writer: an OCI image layout tar with the legacy ``manifest.json`` and ``repositories``.

Docker 25+ writes this form, and older ``docker load`` still reads it.  The
tar is byte-reproducible: entries sorted, owned by 0:0, dated 0.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from typing import IO, Any

from sim.images._layout import OCI_LAYOUT_VERSION, StoredImage
from sim.images._sha256 import as_sha256
from sim.images.blobs import ContentStore
from sim.images.oci import (
    ANNOTATION_CONTAINERD_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
    Index,
    canonical_json,
)
from sim.images.reference import parse_reference


def save_archive(images: Iterable[tuple[StoredImage, Iterable[str]]], content: ContentStore, fileobj: IO[bytes]) -> None:
    """Write ``images``, each with the full references to name it by (none: saved untagged), to ``fileobj``."""
    files: dict[str, bytes] = {}
    index_entries: list[Descriptor] = []
    legacy: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image, chosen in images:
        for d in image.blobs():
            files[f"blobs/sha256/{d.hex}"] = content.get(d)
        base = image.descriptor()
        names = sorted(chosen)
        if not names:
            index_entries.append(base)
        for name in names:
            ref = parse_reference(name)
            index_entries.append(base.with_annotations({ANNOTATION_CONTAINERD_IMAGE_NAME: name, ANNOTATION_REF_NAME: ref.tag or ""}))
            if image.manifest.layers:
                repositories.setdefault(ref.familiar_name, {})[ref.tag or ""] = as_sha256(image.manifest.layers[-1].digest).hex
        legacy.append({
            "Config": f"blobs/sha256/{as_sha256(image.manifest.config.digest).hex}",
            "RepoTags": [parse_reference(n).familiar for n in names] or None,
            "Layers": [f"blobs/sha256/{as_sha256(d.digest).hex}" for d in image.manifest.layers],
        })
    files["oci-layout"] = canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION})
    files["index.json"] = Index(tuple(index_entries)).to_json()
    # Go's encoding/json as docker writes these two: struct field order, a final newline.
    files["manifest.json"] = (json.dumps(legacy, separators=(",", ":")) + "\n").encode()
    if repositories:
        files["repositories"] = (json.dumps(repositories, separators=(",", ":"), sort_keys=True) + "\n").encode()
    _write_tar(files, fileobj)


def _write_tar(files: Mapping[str, bytes], fileobj: IO[bytes]) -> None:
    dirs = sorted({"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)})
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in dirs] + [(n, files[n]) for n in files]
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

