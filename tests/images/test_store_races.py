"""Races in the image store that a reviewer found (docs/concurrency.md): two pullers of one blob,
a crash-safe write where ``/proc`` is missing or the rename is refused, and the kernel layer
cache's staging folders whose writer lives elsewhere.

Each race is forced, not hoped for: a waiter is released only once ``/proc/locks`` shows it
blocked on the lock, a writer is stopped at a fault point with ``SIGSTOP`` and then killed.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.digest import sha256_digest
from sim.images._durable import AtomicFile, clean_temporaries
from sim.images._faults import FAULT_VARIABLE
from sim.images.blobs import ContentStore, Download
from sim.images.store import ImageStore
from sim.layers.layer import Layer
from sim.registries import ModelRegistry, pull, push

DATA = os.urandom(1000)
DIGEST = str(sha256_digest(DATA))


# -- helpers -------------------------------------------------------------------------------------


def _blocked_on(path: Path, timeout: float = 10.0) -> None:
    """Wait until some thread or process is blocked in ``flock`` on the file at ``path``."""
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/locks", encoding="ascii") as fh:
            if any("->" in line and inode in line.split() for line in fh):
                return
        time.sleep(0.005)
    raise AssertionError(f"nobody blocked on {path}")


class _Waiter(threading.Thread):
    """A second ``Download`` of one digest, opened (and blocked) in its own thread."""

    def __init__(self, open_download: Callable[[], Download]) -> None:
        super().__init__(daemon=True)
        self._open = open_download
        self.download: Download | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.download = self._open()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def opened(self) -> Download:
        self.join(10)
        assert not self.is_alive(), "the second download never got the lock"
        assert self.error is None, repr(self.error)
        assert self.download is not None
        return self.download


def _fork(child: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            child()
        except BaseException as exc:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
        finally:
            os._exit(code)
    return pid


@pytest.fixture
def reaped() -> Iterator[list[int]]:
    """Pids of children a test forks: killed and reaped whatever happens."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


# -- two downloads of one digest -----------------------------------------------------------------


def test_a_waiting_download_finds_the_blob_the_first_one_committed(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    first = store.download(DIGEST, len(DATA))
    first.write(DATA)
    waiter = _Waiter(lambda: store.download(DIGEST, len(DATA)))
    waiter.start()
    _blocked_on(tmp_path / "store" / "ingest" / f"{DIGEST[7:]}.download")
    first.commit()
    first.close()
    second = waiter.opened()
    # It must not resume from the file that was renamed into blobs/ (offset 1000 of a file gone from
    # ingest/, whose commit then failed with FileNotFoundError): the blob is there, nothing to fetch.
    second.commit()
    second.close()
    assert second.present and second.offset == len(DATA)
    assert store.get(DIGEST) == DATA
    assert store.ingests() == []


def test_a_waiting_download_starts_again_when_the_first_one_discards(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    first = store.download(DIGEST, len(DATA))
    first.write(b"x" * 10)
    path = tmp_path / "store" / "ingest" / f"{DIGEST[7:]}.download"
    waiter = _Waiter(lambda: store.download(DIGEST, len(DATA)))
    waiter.start()
    _blocked_on(path)
    first.discard()  # unlinks the file the waiter opened
    second = waiter.opened()
    assert second.offset == 0  # not the 10 bytes of the unlinked file
    assert second._fd is not None and os.fstat(second._fd).st_ino == os.stat(path).st_ino  # locks what is at the name
    assert not second.present
    second.write(DATA)
    second.commit()
    second.close()
    assert store.get(DIGEST) == DATA and store.ingests() == []


def test_a_commit_never_renames_over_a_stored_blob(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    download = store.download(DIGEST, len(DATA))
    download.write(DATA)
    store.put(DATA)  # stored meanwhile by someone else (a load, another pull's ingest)
    stored = os.stat(tmp_path / "store" / "blobs" / "sha256" / DIGEST[7:]).st_ino
    descriptor = download.commit()
    download.close()
    assert os.stat(tmp_path / "store" / "blobs" / "sha256" / DIGEST[7:]).st_ino == stored
    assert descriptor.digest == DIGEST and download.present
    assert store.ingests() == []


def test_an_in_memory_download_waits_for_the_first_and_finds_its_blob() -> None:
    store = ContentStore()
    first = store.download(DIGEST, len(DATA))
    first.write(DATA[:400])
    waiter = _Waiter(lambda: store.download(DIGEST, len(DATA)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive(), "a second in-memory download of the digest did not wait for the first"
    first.write(DATA[400:])
    first.commit()
    first.close()
    second = waiter.opened()
    assert second.present
    second.close()
    assert store.get(DIGEST) == DATA


def test_discarding_downloads_skips_what_is_not_a_plain_file(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    os.symlink("gone", tmp_path / "store" / "ingest" / f"{'ab' * 32}.download")  # a name whose file went away
    kept = store.download(DIGEST, len(DATA))
    kept.write(b"abc")
    left = store.download("sha256:" + "cd" * 32, 10)
    left.write(b"1234")
    left.close()
    assert store.discard_downloads() == [f"{'cd' * 32}.download"]
    assert f"{DIGEST[7:]}.download" in store.ingests()  # held by a live download
    kept.close()


@pytest.mark.parametrize("where", ["memory", "folder"])
def test_a_pull_of_an_image_listing_one_layer_twice(tmp_path: Path, where: str) -> None:
    source = ImageStore()
    repeated = Layer()
    repeated.add_file("data", os.urandom(200_000))
    repeated.freeze()
    other = Layer()
    other.add_file("other", b"o")
    other.freeze()
    record = source.add([repeated, other, repeated], tags=["app:1"])
    registry = ModelRegistry("localhost:5000")
    push(source, record, registry.client(), "lab/app", "1")
    target = ImageStore(tmp_path / "pulled" if where == "folder" else None)
    result = pull(target, registry.client(), "lab/app", "1", jobs=4)
    digests = [b.digest for b in result.blobs]
    assert len(digests) == len(set(digests)) == 3  # config, and each layer once
    assert result.image_id == record.id and target.resolve(str(record.id)).id == record.id
    assert target.content.ingests() == []


# -- crash-safe writes ---------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_refused_rename_aborts_and_leaves_no_temporary_name(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    target.mkdir()
    (target / "inside").write_bytes(b"")
    before = _open_fds()
    out = AtomicFile(target)
    out.write(b"{}")
    with pytest.raises(OSError) as caught:
        out.commit()
    assert caught.value.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)
    assert _leftovers(tmp_path) == []
    assert _open_fds() == before  # the descriptor and its lock are released
    out.abort()  # idempotent


def test_a_refused_link_copies_into_a_named_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "oci-layout"
    real_link = os.link

    def refused(src: object, dst: object, **kw: object) -> None:
        if kw.get("src_dir_fd") is not None:  # the /proc/self/fd link (as with hidepid or another user's /proc)
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_link(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", refused)
    with AtomicFile(target, mode=0o640) as out:
        out.write(b"a" * 3_000_000)
    assert target.read_bytes() == b"a" * 3_000_000
    assert target.stat().st_mode & 0o777 == 0o640
    assert _leftovers(tmp_path) == []


def _no_tmpfile(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def no_tmpfile(path: object, flags: int, *args: object, **kw: object) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_tmpfile)


def test_a_writer_killed_mid_file_without_tmpfile_leaves_only_a_swept_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaped: list[int]) -> None:
    target = tmp_path / "repositories.json"
    target.write_bytes(b"old")
    _no_tmpfile(monkeypatch)

    def writer() -> None:
        os.environ[FAULT_VARIABLE] = "atomic.write:2000000"
        with AtomicFile(target) as out:
            for _ in range(4):
                out.write(b"n" * 1_000_000)

    pid = _fork(writer)
    reaped.append(pid)
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), f"the writer never reached the fault point ({status:#x})"
    [temporary] = _leftovers(tmp_path)
    assert temporary.startswith(".repositories.json.")
    assert target.read_bytes() == b"old"
    assert clean_temporaries(target) == []  # its writer is alive (stopped) and holds it
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    reaped.remove(pid)
    assert target.read_bytes() == b"old"  # never visible under the final name
    assert clean_temporaries(target) == [temporary]
    assert _leftovers(tmp_path) == []
    with AtomicFile(target) as out:  # and the named path still commits
        out.write(b"new")
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == []


@pytest.mark.real
def test_an_atomic_write_where_proc_is_not_mounted(tmp_path: Path, reaped: list[int]) -> None:
    from realrt import _syscalls

    target = tmp_path / "index.json"
    uid, gid = os.getuid(), os.getgid()

    def writer() -> None:
        if uid == 0:
            _syscalls.unshare(_syscalls.CLONE_NEWNS)
        else:  # rootless: a user namespace of our own, written before /proc is covered
            _syscalls.unshare(_syscalls.CLONE_NEWUSER | _syscalls.CLONE_NEWNS)
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1\n")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1\n")
        _syscalls.mount("none", "/", None, _syscalls.MS_REC | _syscalls.MS_PRIVATE)
        _syscalls.mount("none", "/proc", "tmpfs", 0, "size=16k")  # as in a chroot: no /proc/self
        assert not os.path.exists("/proc/self/fd")
        with AtomicFile(target) as out:
            out.write(b'{"ok": 1}')

    pid = _fork(writer)
    reaped.append(pid)
    _, status = os.waitpid(pid, 0)
    reaped.remove(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the write failed without /proc"
    assert target.read_bytes() == b'{"ok": 1}'
    assert _leftovers(tmp_path) == []


# -- the kernel layer cache's staging folders -----------------------------------------------------


def _hold(path: Path, *, shared: bool = False) -> tuple[int, int]:
    """A child process that holds an exclusive (``shared``: a shared) flock on ``path`` until killed;
    (pid, its read pipe)."""
    import fcntl

    ready_r, ready_w = os.pipe()

    def holder() -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        os.write(ready_w, b"x")
        signal.pause()

    pid = _fork(holder)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x"
    return pid, ready_r


def _let_go(pid: int, pipe: int, reaped: list[int]) -> None:
    """End a :func:`_hold` holder (SIGKILL: its lock goes with it) and reap it."""
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    reaped.remove(pid)
    os.close(pipe)


def _layer_dir_in_thread(layer: Layer, private: Path, cache: Path, held: list[int]) -> tuple[threading.Thread, list[Any]]:
    """``_layer_dir`` started in a thread (it may block on a lock); the list gets its result or error."""
    from realrt.layers.overlay import _layer_dir

    done: list[Any] = []

    def run() -> None:
        try:
            done.append(_layer_dir(layer, private, cache, userxattr=False, held=held))
        except BaseException as exc:  # reported by the test
            done.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_a_staging_folder_is_swept_only_when_its_writer_is_gone(tmp_path: Path, reaped: list[int]) -> None:
    from realrt.layers.overlay import _sweep_staging

    cache = tmp_path / "layers"
    cache.mkdir()
    # A live writer in another pid namespace: the pid in its folder's name means nothing here.
    alive = cache / ".aaaa.4194303.0badc0de"
    alive.mkdir()
    (alive / "half").write_bytes(b"x")
    pid, pipe = _hold(cache / ".aaaa.lock")
    reaped.append(pid)
    # A dead writer whose pid was reused (here: ours, very much alive).
    dead = cache / f".bbbb.{os.getpid()}.deadbeef"
    dead.mkdir()
    (dead / "half").write_bytes(b"x")
    (cache / "cccc").mkdir()  # a finished layer
    swept = _sweep_staging(cache)
    assert alive.is_dir() and not dead.exists() and (cache / "cccc").is_dir()
    assert swept == [dead.name]
    _let_go(pid, pipe, reaped)
    assert _sweep_staging(cache) == [alive.name]  # its writer died
    assert sorted(os.listdir(cache)) == [".aaaa.lock", ".bbbb.lock", "cccc"]


def test_a_layer_writer_holds_its_lock_and_a_second_writer_waits(tmp_path: Path, reaped: list[int]) -> None:
    from realrt.layers.overlay import _cache_name

    layer = Layer()
    layer.add_file("f", b"data", uid=os.getuid(), gid=os.getgid())  # ours: no chown needed
    layer.freeze()
    cache = tmp_path / "layers"
    cache.mkdir()
    name = _cache_name(layer, False)
    pid, pipe = _hold(cache / f".{name}.lock")  # another engine writing this layer
    reaped.append(pid)
    held: list[int] = []
    writer, done = _layer_dir_in_thread(layer, tmp_path / "private", cache, held)
    _blocked_on(cache / f".{name}.lock")
    assert not (cache / name).exists() and done == []
    _let_go(pid, pipe, reaped)
    writer.join(10)
    assert done == [cache / name] and len(held) == 1  # returned with its lock held shared
    os.close(held.pop())
    assert (cache / name / "f").read_bytes() == b"data"
    assert sorted(os.listdir(cache)) == [f".{name}.lock", name]


def _own_layer(text: bytes) -> Layer:
    layer = Layer()
    layer.add_file("f", text, uid=os.getuid(), gid=os.getgid())  # ours: no chown needed
    return layer.freeze()


def test_the_layer_cache_collection_keeps_what_is_kept_or_mounted(tmp_path: Path, reaped: list[int]) -> None:
    """A cached layer goes when no stored image has it (not in ``keep``) and no mount stands on it: a
    mount in another process holds its lock shared, and the collection skips it until that ends."""
    from realrt.layers.overlay import _cache_name, _layer_dir, collect_layer_cache
    from sim.containers.userns import HOST_MAPS

    cache = tmp_path / "layers"
    kept, mounted, unused = (_own_layer(t) for t in (b"kept", b"mounted", b"unused"))
    names = {k: _cache_name(layer, False) for k, layer in (("kept", kept), ("mounted", mounted), ("unused", unused))}
    held: list[int] = []
    for layer in (kept, mounted, unused):
        _layer_dir(layer, tmp_path / "private", cache, userxattr=False, held=held)
    while held:
        os.close(held.pop())
    (cache / ".gone.4194303.0badc0de").mkdir()  # a dead writer's staging folder
    pid, pipe = _hold(cache / f".{names['mounted']}.lock", shared=True)  # another engine's mount
    reaped.append(pid)
    keep = {kept.content_id.hex}
    assert collect_layer_cache(cache, keep, HOST_MAPS) == [".gone.4194303.0badc0de", names["unused"]]
    assert (cache / names["kept"]).is_dir() and (cache / names["mounted"]).is_dir()
    _let_go(pid, pipe, reaped)
    assert collect_layer_cache(cache, keep, HOST_MAPS) == [names["mounted"]]
    assert sorted(p for p in os.listdir(cache) if not p.startswith(".")) == [names["kept"]]
    assert collect_layer_cache(tmp_path / "never-made", keep, HOST_MAPS) == []


def test_a_mount_after_a_collection_writes_the_layer_again(tmp_path: Path, reaped: list[int]) -> None:
    """A collector holds a layer's lock (exclusive) and removes the folder while a mount waits for the
    lock: the mount then finds it gone, writes it again, and stands on a whole layer."""
    from realrt.layers.overlay import _cache_name, _layer_dir

    layer = _own_layer(b"data")
    cache = tmp_path / "layers"
    held: list[int] = []
    folder = _layer_dir(layer, tmp_path / "private", cache, userxattr=False, held=held)
    os.close(held.pop())
    name = _cache_name(layer, False)
    pid, pipe = _hold(cache / f".{name}.lock")  # the collector
    reaped.append(pid)
    waiter, done = _layer_dir_in_thread(layer, tmp_path / "private2", cache, held)
    _blocked_on(cache / f".{name}.lock")
    shutil.rmtree(folder)  # what the collector does while it holds the lock
    _let_go(pid, pipe, reaped)
    waiter.join(10)
    assert done == [folder] and len(held) == 1
    assert (folder / "f").read_bytes() == b"data"
    os.close(held.pop())
