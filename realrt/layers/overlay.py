"""The kernel twin of :class:`sim.layers.unionfs.UnionFS`: a real overlayfs mount.

Each layer is written in its overlay directory form, then mounted with every
option that changes behaviour given explicitly (``redirect_dir``, ``index``,
``metacopy=off``, ``xino=off``) so kernel build defaults cannot differ from
the model.  As root the mount is made here; unprivileged, a helper process
enters a new user and mount namespace, mounts with ``userxattr`` and serves
the same calls over a socket.  That namespace is mapped by the engine's
:class:`~sim.containers.userns.IdMaps` (newuidmap with a subordinate range), and
containers start in it, so files of uid 1000 in a layer are uid 1000 inside.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import pickle
import shutil
import signal
import socket
import struct
import uuid
import weakref
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import Any

from realrt import _idmap, _syscalls
from realrt.journal import Journal
from realrt.layers._rooted import RootedOps
from sim.containers.userns import HOST_MAPS, IdMaps
from sim.errors import (
    BackendUnavailableError,
    FrozenLayerError,
    LayerFormatError,
    MountError,
)
from sim.interface import UnionMount, UnionOptions
from sim.layers.layer import Layer
from sim.layers.trace import Event

__all__ = ["KernelUnionFS", "overlay_settings", "legacy_options"]

_FS_CALLS = ("open", "read", "write", "close", "stat", "lstat", "listdir", "mkdir", "rmdir", "unlink",
             "rename", "symlink", "link", "readlink", "chmod", "chown", "truncate", "utime")


def overlay_settings(lower_dirs_bottom_first: Sequence[str], upper: str, work: str, options: UnionOptions,
                     *, userxattr: bool) -> list[tuple[str, str | None]]:
    """Every mount option as (key, value); ``None`` marks a flag.

    The one place where the API's bottom-first layers become the kernel's
    top-first ``lowerdir`` order.
    """
    if userxattr and options.redirect_dir:
        raise MountError(errno.EINVAL, "an unprivileged (userxattr) overlay cannot use redirect_dir=on; mount as root")
    # With userxattr the kernel accepts only "nofollow"; it creates no redirects either, like "off".
    redirect = "on" if options.redirect_dir else ("nofollow" if userxattr else "off")
    settings: list[tuple[str, str | None]] = [("lowerdir+", d) for d in reversed(lower_dirs_bottom_first)]
    settings += [
        ("upperdir", upper),
        ("workdir", work),
        ("redirect_dir", redirect),
        ("index", "on" if options.index else "off"),
        ("metacopy", "off"),
        ("xino", "off"),
    ]
    if userxattr:
        settings.append(("userxattr", None))
    return settings


def legacy_options(settings: list[tuple[str, str | None]]) -> str:
    """The same settings as one mount(2) data string (``lowerdir=top:...:bottom``), for older kernels."""
    lowers = [v for k, v in settings if k == "lowerdir+"]
    rest = [k if v is None else f"{k}={v}" for k, v in settings if k != "lowerdir+"]
    return ",".join([f"lowerdir={':'.join(str(v) for v in lowers)}", *rest])


def _prepare(base: Path, layers: Sequence[Layer], upper: Layer | None, *, userxattr: bool,
             options: UnionOptions, layer_cache: Path | None = None,
             held: list[int] | None = None) -> tuple[list[str], str, str, str]:
    """The mount's folders; ``held`` gets the shared locks of the cached layers it stands on (the
    caller keeps them while mounted, so :func:`collect_layer_cache` leaves those layers alone)."""
    planned = [str(base / str(i)) for i in range(max(1, len(layers)))]
    overlay_settings(planned, str(base / "u"), str(base / "w"), options, userxattr=userxattr)  # refuse before writing
    lowers: list[str] = []
    held = [] if held is None else held  # None: the locks stay with this process until it ends
    for i, layer in enumerate(layers or [Layer().freeze()]):  # the kernel needs at least one lowerdir
        # The kernel refuses one folder twice in a stack (ELOOP): a repeated layer gets its own copy.
        cache = layer_cache if layer_cache is not None and not _in_stack(layer, layer_cache, lowers, userxattr) else None
        lowers.append(str(_layer_dir(layer, base / str(i), cache, userxattr=userxattr, held=held)))
    up, work, mnt = base / "u", base / "w", base / "m"
    if upper is not None:
        upper.to_directory(up, userxattr=userxattr)
    else:
        up.mkdir()
    work.mkdir()
    mnt.mkdir()
    return lowers, str(up), str(work), str(mnt)


def _cache_name(layer: Layer, userxattr: bool) -> str:
    return layer.content_id.hex + ("-userxattr" if userxattr else "")


def _in_stack(layer: Layer, cache: Path, lowers: list[str], userxattr: bool) -> bool:
    return str(cache / _cache_name(layer, userxattr)) in lowers


def _layer_dir(layer: Layer, private: Path, cache: Path | None, *, userxattr: bool, held: list[int]) -> Path:
    """Where a lower layer lives on disk: written once into the layer cache (shared by every
    mount of every image that has it, as Docker's layer store is), else into the mount's own folder.
    A cached layer is returned with its lock held shared (appended to ``held``): no collection
    removes it while a mount stands on it."""
    if cache is None:
        layer.to_directory(private, userxattr=userxattr)
        return private
    folder = cache / _cache_name(layer, userxattr)
    cache.mkdir(parents=True, exist_ok=True)
    while True:
        shared = _lock_layer(cache, folder.name, blocking=True, shared=True)
        assert shared is not None  # a blocking lock is always granted
        if folder.exists():
            held.append(shared)
            return folder
        os.close(shared)
        # Held while the layer is written and renamed: a sweeper skips what a live writer holds,
        # and a second writer of the same layer waits, then finds it written.
        lock = _lock_layer(cache, folder.name, blocking=True)
        assert lock is not None
        try:
            if not folder.exists():
                _sweep_staging(cache, held=folder.name)
                staging = cache / f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
                layer.to_directory(staging, userxattr=userxattr)
                try:
                    os.rename(staging, folder)  # atomic: a half-written layer is never visible under its name
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)  # written meanwhile by another kind of writer
        finally:
            os.close(lock)
        # Taken shared again, and looked at again: a collection may have come between the two locks.


def _lock_layer(cache: Path, name: str, *, blocking: bool, shared: bool = False) -> int | None:
    """An exclusive (a writer, a collector) or ``shared`` (a mount) ``flock`` on ``<cache>/.<name>.lock``
    (made if missing; never removed, so no holder's lock can end up on an unlinked file); ``None``
    if another holds it and not ``blocking``."""
    fd = os.open(cache / f".{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sweep_staging(cache: Path, *, held: str | None = None) -> list[str]:
    """Remove the staging folders (``.<layer>.<pid>.<random>``) of writers that died half-way; the names.

    A layer is only ever visible under its name once whole, but a killed writer's half stays
    here.  Its writer held ``.<layer>.lock`` while it wrote: a staging folder whose lock this can
    take (``LOCK_NB``) has no live writer, one whose lock is held is skipped (the pid in the name
    says nothing: another pid namespace, a reused pid, no ``/proc``).  ``held``: the layer whose
    lock the caller holds itself (its old staging folders are dead: writers of a layer take turns)."""
    removed: list[str] = []
    for entry in sorted(os.listdir(cache)):
        parts = entry.split(".")
        if not (entry.startswith(".") and len(parts) == 4 and parts[2].isdigit()) or not (cache / entry).is_dir():
            continue
        lock = None if parts[1] == held else _lock_layer(cache, parts[1], blocking=False)
        if lock is None and parts[1] != held:
            continue  # a live writer is at it
        try:
            shutil.rmtree(cache / entry, ignore_errors=True)
            if not os.path.lexists(cache / entry):
                removed.append(entry)
        finally:
            if lock is not None:
                os.close(lock)
    return removed


def layer_cache_dir(layer_cache: Path, *, rootless: bool, id_maps: IdMaps) -> Path:
    """The cache folder a :class:`KernelUnionFS` with these settings writes its lower layers into:
    ``layer_cache`` itself, or, for a rootless engine with subordinate ids, a folder of that mapping
    (owners on disk are host ids of the mapping: another mapping needs its own copies)."""
    if rootless and id_maps.kind == "subordinate":
        return layer_cache / f"idmap-{_maps_tag(id_maps)}"
    return layer_cache


def collect_layer_cache(cache: Path, keep: Container[str], maps: IdMaps) -> list[str]:
    """Remove from ``cache`` (see :func:`layer_cache_dir`) every layer folder whose content ID (hex)
    is not in ``keep`` and that no mount stands on (its lock is free: a mount holds it shared, a
    writer exclusive, in any process); the names removed.  Files of subordinate ids (``maps``) are
    removed from a user namespace of that mapping, as volumes are.  Staging folders of dead writers
    go too (:func:`_sweep_staging`); lock files stay, as they always do."""
    if not cache.is_dir():
        return []
    removed = _sweep_staging(cache)
    for entry in sorted(os.listdir(cache)):
        if entry.startswith(".") or entry.startswith("idmap-") or entry.removesuffix("-userxattr") in keep \
                or not (cache / entry).is_dir():
            continue
        lock = _lock_layer(cache, entry, blocking=False)
        if lock is None:
            continue  # a mount or a writer holds it
        try:
            if (cache / entry).is_dir():
                _idmap.remove_tree(cache / entry, maps)
                if not os.path.lexists(cache / entry):
                    removed.append(entry)
        finally:
            os.close(lock)
    return removed


def _mount(lowers: list[str], up: str, work: str, mnt: str, options: UnionOptions, *, userxattr: bool) -> None:
    settings = overlay_settings(lowers, up, work, options, userxattr=userxattr)
    try:
        _syscalls.fsmount_overlay(mnt, settings)
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL):
            raise MountError(exc.errno, f"the kernel refused the overlay mount ({os.strerror(exc.errno or 0)}): "
                             f"{legacy_options(settings)}") from exc
        # No new mount API (or no "lowerdir+", before Linux 6.8): the one-page mount(2) string.
        data = legacy_options(settings)
        if len(data) >= 4096:
            raise MountError(errno.E2BIG, f"overlay options exceed one page ({len(data)} bytes) and this kernel "
                             "lacks fsconfig lowerdir+: use fewer layers or a shorter LAYERLAB_STATE_DIR") from exc
        try:
            _syscalls.mount("overlay", mnt, "overlay", 0, data)
        except OSError as exc2:
            raise MountError(exc2.errno, f"the kernel refused the overlay mount ({os.strerror(exc2.errno or 0)}): "
                             f"{data}") from exc2
    # The kernel may quietly fall back (index=on needs file handles on the upper fs, which a
    # user namespace does not get); the model would then describe a different mount.
    if options.index and "index=on" not in _super_options(mnt):
        _syscalls.umount2(mnt, 0)
        raise MountError(errno.EOPNOTSUPP, "the kernel fell back to index=off (the upper file system offers no file "
                         "handles here, as in a user namespace); mount as root to use index=on")


def _super_options(mnt: str) -> list[str]:
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.split()
            if fields[4] == target:
                return fields[-1].split(",")
    return []


class KernelUnionFS(UnionMount):
    """A kernel overlay mount behind the :class:`sim.interface.UnionMount` interface.

    ``upper`` returns the upper directory read back with
    :meth:`Layer.from_directory` (a frozen snapshot: the live upper layer is
    the kernel's).  Use it as a context manager; :meth:`unmount` is idempotent
    and also runs at interpreter exit.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        upper: Layer | None = None,
        *,
        redirect_dir: bool = False,
        index: bool = False,
        umask: int = 0o022,
        rootless: bool = False,
        journal: Journal,
        workspace: Path,
        layer_cache: Path | None = None,
        id_maps: IdMaps | None = None,
    ) -> None:
        if upper is not None and upper.frozen:
            raise FrozenLayerError("the upper layer must be writable; pass Layer() or None")
        for i, layer in enumerate(layers):
            if not layer.frozen:
                raise LayerFormatError(f"lower layer {i} is not frozen; call freeze() first (lower layers are read-only)")
        #: The helper's user namespace maps (rootless; default :func:`realrt._idmap.detect`), the host's as root.
        self.id_maps = (id_maps or _idmap.detect(rootless=True)) if rootless else HOST_MAPS
        if rootless:
            _check_owners(self.id_maps, layers, upper)  # before anything is made
            if layer_cache is not None:
                layer_cache = layer_cache_dir(layer_cache, rootless=True, id_maps=self.id_maps)
        self.options = UnionOptions(redirect_dir=redirect_dir, index=index, umask=umask)
        self.layers = tuple(layers)
        self.rootless = rootless
        self._journal = journal
        self._base = workspace / uuid.uuid4().hex[:12]
        self._records = [journal.record("tree", str(self._base))]
        self._base.mkdir(parents=True)
        self._upper_dir = str(self._base / "u")
        held: list[int] = []  # the cached layers' shared locks, while mounted (rootless: the helper holds them)
        try:
            if rootless:
                self._ops: Any = _Helper(self._base, self.layers, upper, self.options, journal, self._records,
                                         layer_cache, self.id_maps)
            else:
                lowers, up, work, mnt = _prepare(self._base, self.layers, upper, userxattr=False, options=self.options,
                                                 layer_cache=layer_cache, held=held)
                self._records.append(journal.record("mount", mnt))
                _mount(lowers, up, work, mnt, self.options, userxattr=False)
                self._ops = RootedOps(os.open(mnt, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), umask)
        except BaseException:
            _teardown(None, journal, self._records, held)
            raise
        self._finalizer = weakref.finalize(self, _teardown, self._ops, journal, self._records, held)
        for name in _FS_CALLS:
            setattr(self, name, getattr(self._ops, name))

    @property
    def mountpoint(self) -> str:
        """Where the overlay is mounted (inside the helper's namespace when rootless)."""
        return str(self._base / "m")

    @property
    def helper_pid(self) -> int:
        """Rootless: the helper whose user and mount namespaces hold the mount (0 as root)."""
        return int(getattr(self._ops, "pid", 0) or 0) if self.rootless else 0

    @property
    def upper_dir(self) -> str:
        """The upper directory on the host: where the kernel leaves char 0/0 whiteouts and opaque xattrs."""
        return self._upper_dir

    @property
    def upper(self) -> Layer:
        if isinstance(self._ops, _Helper):
            layer: Layer = self._ops.call("read_upper")
            return layer
        return Layer.from_directory(self._upper_dir)

    @property
    def events(self) -> Sequence[Event]:
        return ()  # the kernel does not report its copy-ups; notebooks take them from the model

    def unmount(self) -> None:
        self._finalizer()

    # The os-shaped calls are bound per instance in __init__; these satisfy the ABC.
    def open(self, path: str, flags: int, mode: int = 0o666) -> int: raise AssertionError  # noqa: E704
    def read(self, fd: int, n: int) -> bytes: raise AssertionError  # noqa: E704
    def write(self, fd: int, data: bytes) -> int: raise AssertionError  # noqa: E704
    def close(self, fd: int) -> None: raise AssertionError  # noqa: E704
    def stat(self, path: str) -> os.stat_result: raise AssertionError  # noqa: E704
    def lstat(self, path: str) -> os.stat_result: raise AssertionError  # noqa: E704
    def listdir(self, path: str = "/") -> list[str]: raise AssertionError  # noqa: E704
    def mkdir(self, path: str, mode: int = 0o777) -> None: raise AssertionError  # noqa: E704
    def rmdir(self, path: str) -> None: raise AssertionError  # noqa: E704
    def unlink(self, path: str) -> None: raise AssertionError  # noqa: E704
    def rename(self, src: str, dst: str) -> None: raise AssertionError  # noqa: E704
    def symlink(self, target: str, path: str) -> None: raise AssertionError  # noqa: E704
    def link(self, src: str, dst: str, *, follow_symlinks: bool = True) -> None: raise AssertionError  # noqa: E704
    def readlink(self, path: str) -> str: raise AssertionError  # noqa: E704
    def chmod(self, path: str, mode: int) -> None: raise AssertionError  # noqa: E704
    def truncate(self, path: str, length: int) -> None: raise AssertionError  # noqa: E704
    def chown(self, path: str, uid: int, gid: int) -> None: raise AssertionError  # noqa: E704

    def utime(self, path: str, times: tuple[float, float] | None = None, *, ns: tuple[int, int] | None = None,
              follow_symlinks: bool = True) -> None:
        raise AssertionError


def _maps_tag(maps: IdMaps) -> str:
    return hashlib.sha256(repr((maps.uids, maps.gids)).encode()).hexdigest()[:12]


def _check_owners(maps: IdMaps, layers: Sequence[Layer], upper: Layer | None) -> None:
    """Refuse a layer with an owner the helper's namespace cannot represent (chown would fail half-way)."""
    for i, layer in enumerate([*layers, *([upper] if upper is not None else [])]):
        for path, entry in layer.items():
            uid, gid = getattr(entry, "uid", 0), getattr(entry, "gid", 0)
            if not maps.covers(uid, gid):
                where = "the upper layer" if i == len(layers) else f"layer {i}"
                try:
                    maps.require(uid, gid)
                except BackendUnavailableError as exc:
                    raise BackendUnavailableError(f"{where} has /{path} owned by {uid}:{gid}: {exc}") from None


def _teardown(ops: Any, journal: Journal, records: list[Any], held: list[int]) -> None:
    """Close descriptors, unmount, delete the folders, forget the records, then let go of the
    cached layers (``held``: their shared locks).  Idempotent."""
    if isinstance(ops, RootedOps):
        ops.close_all()
        os.close(ops.root)
    elif isinstance(ops, _Helper):
        ops.stop()
    for rec in reversed(records):
        journal.release(rec)
    records.clear()
    while held:
        os.close(held.pop())


# -- the rootless helper ---------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _send(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack("!Q", len(data)) + data)


def _recv(sock: socket.socket) -> Any:
    head = _recv_exact(sock, 8)
    return pickle.loads(_recv_exact(sock, struct.unpack("!Q", head)[0]))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the rootless helper went away")
        buf += chunk
    return bytes(buf)


class _Helper:
    """A child in its own user and mount namespaces holding the mount; calls go over a socket."""

    def __init__(self, base: Path, layers: Sequence[Layer], upper: Layer | None, options: UnionOptions,
                 journal: Journal, records: list[Any], layer_cache: Path | None = None,
                 id_maps: IdMaps | None = None) -> None:
        parent_sock, child_sock = socket.socketpair()
        maps = id_maps or _idmap.detect(rootless=True)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            parent_sock.close()
            code = 0
            try:
                _serve(child_sock, base, layers, upper, options, maps, layer_cache)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child_sock.close()
        self.pid = pid
        self.sock = parent_sock
        records.append(journal.record("process", pid=pid))
        status, value = _recv(self.sock)
        if status == "unshared":  # a subordinate mapping: newuidmap/newgidmap run here, on the helper's pid
            try:
                _idmap.write_maps(pid, maps)
            except BaseException:
                self.stop()
                raise
            _send(self.sock, ("mapped", None))
            status, value = _recv(self.sock)
        if status != "ok":
            self.stop()
            raise value

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        _send(self.sock, (name, args, kwargs))
        status, value = _recv(self.sock)
        if status == "err":
            raise value
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in _FS_CALLS:
            raise AttributeError(name)
        return lambda *a, **k: self.call(name, *a, **k)

    def stop(self) -> None:
        if self.pid:
            try:
                _send(self.sock, ("exit", (), {}))
                _recv(self.sock)
            except (OSError, EOFError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.sock.close()
            self.pid = 0


def _serve(sock: socket.socket, base: Path, layers: Sequence[Layer], upper: Layer | None, options: UnionOptions,
           maps: IdMaps, layer_cache: Path | None) -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # A forked child that never execs keeps every descriptor the parent had: close them, so a
    # container's stdin pipe held open by the parent reaches EOF when the parent closes it.
    keep = sorted({0, 1, 2, sock.fileno()})
    for low, high in zip(keep, [*keep[1:], 1 << 20]):
        if high > low + 1:
            os.closerange(low + 1, high)
    ops: RootedOps | None = None
    mnt = ""
    try:
        try:
            _syscalls.unshare(_syscalls.CLONE_NEWUSER | _syscalls.CLONE_NEWNS)
            if maps.kind == "subordinate":
                _send(sock, ("unshared", None))  # the parent maps us with newuidmap/newgidmap
                if _recv(sock) != ("mapped", None):
                    os._exit(1)
            else:
                Path("/proc/self/setgroups").write_text("deny")
                Path("/proc/self/uid_map").write_text(_idmap.map_text(maps.uids))
                Path("/proc/self/gid_map").write_text(_idmap.map_text(maps.gids))
            _syscalls.mount("none", "/", None, _syscalls.MS_REC | _syscalls.MS_PRIVATE)
        except OSError as exc:
            raise BackendUnavailableError(
                f"rootless mode needs unprivileged user namespaces, which this kernel refused ({exc}); "
                "run as root or enable kernel.unprivileged_userns_clone"
            ) from exc
        held: list[int] = []  # the cached layers' shared locks, kept while this helper lives (it holds the mount)
        lowers, up, work, mnt = _prepare(base, layers, upper, userxattr=True, options=options, layer_cache=layer_cache,
                                         held=held)
        _mount(lowers, up, work, mnt, options, userxattr=True)
        ops = RootedOps(os.open(mnt, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), options.umask)
        _send(sock, ("ok", None))
    except BaseException as exc:
        _send(sock, ("err", exc))
        raise
    while True:
        try:
            name, args, kwargs = _recv(sock)
        except EOFError:
            name, args, kwargs = "exit", (), {}
        if name == "exit":
            ops.close_all()
            os.close(ops.root)
            _syscalls.umount2(mnt, 0)
            shutil.rmtree(base, ignore_errors=True)  # we own every file as namespace root
            try:
                _send(sock, ("ok", None))
            except OSError:
                pass
            return
        try:
            if name == "read_upper":
                result: Any = Layer.from_directory(up)
            else:
                result = getattr(ops, name)(*args, **kwargs)
            _send(sock, ("ok", result))
        except Exception as exc:
            _send(sock, ("err", exc))
