"""Property tests: the three forms of a layer (memory, OCI tar, overlay directory) agree.

Each property runs on random layers from :func:`sim.testing.layers`.
The default profile (60 examples) keeps this quick; the ``slow`` variants
run only with ``LAYERLAB_PROFILE=deep``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from sim.layers.layer import Layer, RegularFile
from sim.testing import NAMES, ODD_NAMES, layer_stacks, layers

ALL_NAMES = NAMES + ODD_NAMES
any_layer = layers(ALL_NAMES)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the overlay directory form needs root (mknod, chown, trusted.*)")


@pytest.fixture(autouse=True)
def _no_sde(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A SOURCE_DATE_EPOCH in the caller's environment would clamp mtimes and break round trips."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    yield


def via_tar(layer: Layer, **kwargs: object) -> Layer:
    return Layer.from_tar(io.BytesIO(layer.tar_bytes(**kwargs)))  # type: ignore[arg-type]


def via_directory(layer: Layer, *, userxattr: bool = False) -> Layer:
    with tempfile.TemporaryDirectory() as tmp:  # not tmp_path: hypothesis reruns the body per example
        target = os.path.join(tmp, "layer")
        layer.to_directory(target, userxattr=userxattr)
        return Layer.from_directory(target)


@given(any_layer)
def test_memory_tar_memory(layer: Layer) -> None:
    back = via_tar(layer)
    assert back == layer
    assert back.frozen
    assert back.link_groups() == layer.link_groups()


@given(any_layer)
def test_tar_bytes_reproducible(layer: Layer) -> None:
    first = layer.tar_bytes()
    assert layer.tar_bytes() == first  # writing twice
    assert via_tar(layer).tar_bytes() == first  # tar -> memory -> tar
    assert len(first) % 512 == 0 and first.endswith(b"\0" * 1024)


@given(any_layer)
def test_gzip_round_trip_and_reproducible(layer: Layer) -> None:
    blob = layer.tar_bytes(compression="gzip")
    assert layer.tar_bytes(compression="gzip") == blob
    assert gzip.decompress(blob) == layer.tar_bytes()
    assert Layer.from_tar(io.BytesIO(blob)) == layer


@given(any_layer)
def test_diff_id_stable(layer: Layer) -> None:
    expected = "sha256:" + hashlib.sha256(layer.tar_bytes()).hexdigest()
    assert layer.diff_id == expected
    assert layer.diff_id == expected  # the cached value
    assert via_tar(layer).diff_id == expected
    assert layer.diff_id != "sha256:" + hashlib.sha256(layer.tar_bytes(compression="gzip")).hexdigest()


@given(any_layer)
def test_size_counts_each_file_once(layer: Layer) -> None:
    assert via_tar(layer).size == layer.size
    files = {id(e): e.size for _, e in layer.items() if isinstance(e, RegularFile)}
    assert layer.size == sum(files.values())


@needs_root
@given(any_layer)
def test_memory_directory_memory(layer: Layer) -> None:
    assert via_directory(layer) == layer


@needs_root
@given(layers(NAMES))
def test_memory_directory_memory_userxattr(layer: Layer) -> None:
    assert via_directory(layer, userxattr=True) == layer


@needs_root
@given(any_layer)
def test_directory_tar_directory(layer: Layer) -> None:
    on_disk = via_directory(layer)  # every directory explicit now, as an upperdir holds them
    through_tar = via_tar(on_disk)
    assert through_tar == on_disk
    assert through_tar.tar_bytes() == on_disk.tar_bytes()
    assert via_directory(through_tar) == on_disk


@given(layer_stacks())
def test_stacks_are_frozen_round_trippable_layers(stack: list[Layer]) -> None:
    assert 1 <= len(stack) <= 4
    for layer in stack:
        assert layer.frozen
        assert via_tar(layer) == layer


@pytest.mark.slow
@settings(max_examples=3000)
@given(any_layer)
def test_memory_tar_memory_deep(layer: Layer) -> None:
    assert via_tar(layer) == layer
    assert via_tar(layer).tar_bytes() == layer.tar_bytes()


@pytest.mark.slow
@needs_root
@settings(max_examples=1000)
@given(layers(ALL_NAMES, max_entries=25))
def test_directory_round_trips_deep(layer: Layer) -> None:
    on_disk = via_directory(layer)
    assert on_disk == layer
    assert via_directory(via_tar(on_disk)) == on_disk
