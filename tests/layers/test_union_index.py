"""The union's lookup and stat caches answer what an uncached walk answers, after any calls.

:class:`~sim.layers._lookup.Lookup` remembers walks and the stat results of lower-only objects
(and misses) until the upper layer's names change; these properties run random operation
sequences on a union, then compare every cached answer with a fresh, uncached computation.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.layers.layer import Layer
from sim.layers.unionfs import UnionFS
from sim.testing import Operation, mount_paths, mountable_layers, operation_sequences, outcome

_PATHS = [f"/{a}" for a in "abc"] + [f"/{a}/{b}" for a in "abc" for b in "abc"] + ["/a/b/c", "/a/", "/b/../c", "/"]


def _uncached(fs: UnionFS, path: str, follow: bool) -> tuple[str, object]:
    def run() -> object:
        loc = fs._lookup.walk_uncached(path, follow=follow)
        if loc.obj is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        return tuple(fs._stat(loc))[:10]

    return outcome(run)


def _cached(fs: UnionFS, path: str, follow: bool) -> tuple[str, object]:
    return outcome(lambda: tuple((fs.stat if follow else fs.lstat)(path))[:10])


@settings(max_examples=60, deadline=None)
@given(layers=st.lists(mountable_layers(), min_size=1, max_size=3), ops=operation_sequences(mount_paths(("a", "b", "c"))),
       index=st.booleans(), redirect=st.booleans())
def test_cached_stat_is_the_uncached_walk(layers: list[Layer], ops: list[Operation], index: bool, redirect: bool) -> None:
    fs = UnionFS(layers, index=index, redirect_dir=redirect)
    for op in ops:
        for path in _PATHS:  # fill the caches before the call, so a stale entry would show after it
            for follow in (True, False):
                _cached(fs, path, follow)
        outcome(lambda: op(fs))
        for path in _PATHS:
            for follow in (True, False):
                assert _cached(fs, path, follow) == _uncached(fs, path, follow), f"after {op!r}: {path} follow={follow}"


@settings(max_examples=30, deadline=None)
@given(layers=st.lists(mountable_layers(), min_size=1, max_size=3), data=st.data())
def test_writes_through_descriptors_and_attribute_calls_show(layers: list[Layer], data: st.DataObject) -> None:
    """In-place changes (write, chmod, utime, truncate) do not change the upper names: the
    stat cache must not hold the objects they change."""
    fs = UnionFS(layers)
    for _ in range(data.draw(st.integers(1, 6))):
        path = data.draw(st.sampled_from(_PATHS))
        _cached(fs, path, True)
        kind = data.draw(st.sampled_from(["write", "chmod", "truncate", "utime"]))
        if kind == "write":
            status, fd = outcome(lambda: fs.open(path, 0o1))  # O_WRONLY
            if status == "ok":
                assert isinstance(fd, int)
                fs.write(fd, b"grown by a write")
                fs.close(fd)
        elif kind == "chmod":
            outcome(lambda: fs.chmod(path, 0o600))
        elif kind == "truncate":
            outcome(lambda: fs.truncate(path, 3))
        else:
            outcome(lambda: fs.utime(path, ns=(5, 5)))
        for p in _PATHS:
            assert _cached(fs, p, True) == _uncached(fs, p, True), f"after {kind} {path}: {p}"


def _deep_stack(depth: int) -> list[Layer]:
    layers = []
    for i in range(depth):
        layer = Layer()
        for j in range(50):
            layer.add_file(f"srv/d{j % 4}/L{i}_{j}", b"x")
        layers.append(layer.freeze())
    return layers


def test_a_warm_stat_of_a_lower_file_is_remembered_until_a_name_changes() -> None:
    """A repeated stat of a lower object or a missing name is one cache hit at any depth (the
    very result object comes back), and a change of the upper layer's names drops it."""
    fs = UnionFS(_deep_stack(64))
    path = "/srv/d1/L0_1"
    first = fs.stat(path)
    assert fs.stat(path) is first and fs.lstat(path) is fs.lstat(path)
    absent = "/srv/d1/absent"
    assert outcome(lambda: fs.stat(absent)) == ("err", "ENOENT")
    assert absent in fs._lookup._stats[True] and fs._lookup._stats[True][absent] is None  # remembered as missing
    assert outcome(lambda: fs.stat(absent)) == ("err", "ENOENT")
    fs.chmod(path, 0o600)  # a copy-up: the upper layer's names change
    after = fs.stat(path)
    assert after is not first and after.st_mode & 0o777 == 0o600
    fs.chmod(path, 0o640)  # in place, in the upper layer: never served from the cache
    assert fs.stat(path).st_mode & 0o777 == 0o640
