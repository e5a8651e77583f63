"""A change the store fails to write (ENOSPC on index.json) is not committed later by an
unrelated change, and the handle shows what the disk holds."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import sim.images._index_state as index_state
from sim.containers._images import base_image_config
from sim.images.base import busybox_layer
from sim.images.store import ImageStore


def _tags(store: ImageStore) -> list[str]:
    return sorted(t.removeprefix("docker.io/library/") for t in store.resolve("b:1").repo_tags)


def test_a_failed_index_write_is_forgotten_not_committed_by_the_next_change(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path / "store")
    layer = busybox_layer()
    store.add([layer], base_image_config(layer), tags=["a:1", "b:1"])
    real_write = index_state.write_store_index

    def full_disk(*args: object, **kwargs: object) -> bytes:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_state, "write_store_index", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.untag("a:1")
    monkeypatch.setattr(index_state, "write_store_index", real_write)
    assert _tags(store) == ["a:1", "b:1"]  # this handle shows the disk again
    store.tag("b:1", "c:1")  # an unrelated change: it must not carry the failed untag to disk
    assert _tags(ImageStore(tmp_path / "store")) == ["a:1", "b:1", "c:1"]
