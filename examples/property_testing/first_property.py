"""Your first property: deleting a file in the upper layer hides it in the merged view.

Run it: ``pytest examples/property_testing/first_property.py`` (add ``-m "not real"`` to stay on
the model; as root, the ``[real]`` case runs the same property on the kernel's overlayfs).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis.strategies import lists

from sim import Engine, Layer, Whiteout
from sim.testing import both_backends, mountable_layers, names

__all__ = ["both_backends"]  # imported so pytest finds the fixture in this module


@given(stack=lists(mountable_layers(), min_size=1, max_size=3), name=names(), data=...)
def test_deleting_a_file_hides_it(both_backends: Engine, stack: list[Layer], name: str, data: bytes) -> None:
    top = Layer()
    top.add_file(name, data)  # whatever the layers below hold at this name, the top one has a file
    with both_backends.union([*stack, top.freeze()]) as fs:
        fs.unlink("/" + name)

        assert not fs.exists("/" + name)
        assert name not in fs.listdir("/")
        assert isinstance(fs.upper.get(name), Whiteout)  # the deletion is recorded in the upper layer
