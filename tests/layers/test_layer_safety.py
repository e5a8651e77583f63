"""Layer tars are hostile input (``/work/shared/reference/safety.md``).

Every archive here is built by hand with :mod:`tarfile` to attack the reader:
escaping names, links that point out of the layer, writes through links,
bad whiteouts, entry types the model omits.  Each must either be refused
with a typed error from :mod:`sim.errors`, or be accepted as a layer that,
written out with :meth:`Layer.to_directory` or mounted in a union, touches
nothing outside its own folder.

The witness is a sibling ``victim`` folder (and ``/etc/passwd``): after every
case their names, inode numbers, link counts, modes, sizes, contents and
mtimes must be exactly as before.  The module ends by printing the figure
safety.md asks for: "N malicious archives, 0 host files touched, all bad
whiteouts rejected".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import sim
from sim.errors import LayerFormatError, UnsafeLayerError, UnsupportedEntryError
from sim.interface import UnionMount
from sim.layers.layer import BlockDevice, CharDevice, Device, Directory, Fifo, Layer, RegularFile, Symlink, Whiteout
from sim.layers.unionfs import UnionFS
from tests.backends import require_real

SECRET = b"the victim's data\n"
SECRET_MTIME_NS = 1_234_567_890_500_000_000
HOST_WITNESSES = (Path("/etc/passwd"),)


# -- the tally and the witness ---------------------------------------------------------


@dataclass
class Tally:
    archives: int = 0
    touched: int = 0
    bad_whiteouts: int = 0
    bad_whiteouts_rejected: int = 0

    def line(self) -> str:
        whiteouts = (
            "all bad whiteouts rejected"
            if self.bad_whiteouts == self.bad_whiteouts_rejected
            else f"{self.bad_whiteouts - self.bad_whiteouts_rejected} of {self.bad_whiteouts} bad whiteouts accepted"
        )
        return f"{self.archives} malicious archives, {self.touched} host files touched, {whiteouts}"


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def safety_summary(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Print the module's figure after its last test, and fail the module if a host file changed."""
    yield TALLY
    line = TALLY.line()
    print(line)  # in the captured output of the last test
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # what capsys.disabled() does: straight to the terminal
            reporter.write_line(f"\n[layer safety] {line}")
    assert TALLY.touched == 0, line
    assert TALLY.bad_whiteouts == TALLY.bad_whiteouts_rejected, line


Snapshot = dict[str, tuple[object, ...]]


def _state(path: Path) -> tuple[object, ...]:
    st = os.lstat(path)
    content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None
    link = os.readlink(path) if path.is_symlink() else None
    return (st.st_mode, st.st_ino, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, content, link,
            tuple(sorted(os.listxattr(path, follow_symlinks=False))))


@dataclass
class Host:
    """The extraction area ``root`` and, beside it, the ``victim`` folder nothing may reach."""

    base: Path
    root: Path
    victim: Path

    @property
    def secret(self) -> Path:
        return self.victim / "secret"

    @property
    def climb(self) -> str:
        """A relative path that reaches the victim from any folder on the host, if followed."""
        return "../" * 40 + str(self.victim).lstrip("/")

    def snapshot(self) -> Snapshot:
        seen: Snapshot = {"<base listing>": tuple(sorted(os.listdir(self.base)))}
        for path in [self.victim, *sorted(self.victim.rglob("*")), *HOST_WITNESSES]:
            seen[str(path)] = _state(path)
        return seen

    def extract(self, layer: Layer) -> Path:
        """Write an accepted layer in its overlay form under ``root`` and check it reads back."""
        target = self.root / f"layer{len(os.listdir(self.root))}"
        layer.to_directory(target)
        assert Layer.from_directory(target) == layer
        return target


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "secret").write_bytes(SECRET)
    os.chmod(victim / "secret", 0o640)
    os.utime(victim / "secret", ns=(SECRET_MTIME_NS, SECRET_MTIME_NS))
    (tmp_path / "root").mkdir()
    box = Host(tmp_path, tmp_path / "root", victim)
    before = box.snapshot()
    yield box
    after = box.snapshot()
    changed = [key for key in before.keys() | after.keys() if before.get(key) != after.get(key)]
    TALLY.touched += len(changed)
    assert not changed, f"host files changed: {changed}"
    assert (victim / "secret").read_bytes() == SECRET


def load(raw: bytes) -> Layer:
    """Read one hostile archive (counted in the module's figure)."""
    TALLY.archives += 1
    return Layer.from_tar(io.BytesIO(raw))


# -- building archives -----------------------------------------------------------------

Member = tuple[tarfile.TarInfo, bytes | None]


def tar_of(*members: Member) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def f(name: str, data: bytes = b"pwned\n", **fields: object) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def d(name: str, **fields: object) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    for key, value in fields.items():
        setattr(info, key, value)
    return info, None


def sym(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def hard(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info, None


def special(name: str, kind: bytes, major: int = 1, minor: int = 3) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = (major, minor) if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE) else (0, 0)
    return info, (b"" if kind == tarfile.CONTTYPE else None)


def pax(member: Member, **headers: str) -> Member:
    info, data = member
    info.pax_headers = dict(headers)
    return info, data


def _flip(raw: bytes, offset: int) -> bytes:
    """``raw`` with one byte inverted (a header checksum then fails)."""
    return raw[:offset] + bytes([raw[offset] ^ 0xFF]) + raw[offset + 1:]


# -- archives that must be refused -----------------------------------------------------


@dataclass(frozen=True)
class Refused:
    name: str
    build: Callable[[Host], bytes]
    error: type[LayerFormatError]
    bad_whiteout: bool = False


REFUSED: list[Refused] = [
    # names that leave the root
    Refused("dotdot-file", lambda h: tar_of(f("../victim/secret")), UnsafeLayerError),
    Refused("dotdot-deep", lambda h: tar_of(f(h.climb + "/secret")), UnsafeLayerError),
    Refused("dotdot-inside", lambda h: tar_of(d("a"), f("a/../../victim/secret")), UnsafeLayerError),
    Refused("dot-dotdot", lambda h: tar_of(f("./../victim/secret")), UnsafeLayerError),
    Refused("absolute-file", lambda h: tar_of(f(str(h.secret))), UnsafeLayerError),
    Refused("absolute-dir", lambda h: tar_of(d(str(h.victim / "sub" / "new"))), UnsafeLayerError),
    Refused("pax-path-escape", lambda h: tar_of(pax(f("harmless"), path="../victim/secret")), UnsafeLayerError),
    Refused("pax-path-nul", lambda h: tar_of(pax(f("harmless"), path="ok\x00/../../victim")), UnsafeLayerError),
    Refused("gzip-dotdot", lambda h: gzip.compress(tar_of(f("../victim/secret"))), UnsafeLayerError),
    # writes through a symlink of the same archive
    Refused("symlink-then-write", lambda h: tar_of(sym("l", "../victim"), f("l/secret")), UnsafeLayerError),
    Refused("abs-symlink-then-write", lambda h: tar_of(sym("l", str(h.victim)), f("l/secret")), UnsafeLayerError),
    Refused("climb-symlink-then-dir", lambda h: tar_of(sym("l", h.climb), d("l/sub/evil")), UnsafeLayerError),
    Refused("chained-symlinks", lambda h: tar_of(sym("a", "b"), sym("b", "c"), sym("c", h.climb), f("a/secret")),
            UnsafeLayerError),
    Refused("symlink-then-hardlink-below", lambda h: tar_of(f("x"), sym("l", h.climb), hard("l/secret", "x")),
            UnsafeLayerError),
    Refused("truncate-through-link", lambda h: tar_of(sym("l", str(h.secret)), f("l", b"")), LayerFormatError),
    Refused("chmod-through-link", lambda h: tar_of(sym("l", str(h.victim)), d("l", mode=0o777)), LayerFormatError),
    Refused("dir-then-symlink-over-it", lambda h: tar_of(d("d"), f("d/x"), sym("d", h.climb)), LayerFormatError),
    # hard links
    Refused("hardlink-dotdot-passwd", lambda h: tar_of(hard("h", "../../etc/passwd")), UnsafeLayerError),
    Refused("hardlink-absolute", lambda h: tar_of(hard("h", "/etc/passwd")), UnsafeLayerError),
    Refused("hardlink-absolute-victim", lambda h: tar_of(hard("h", str(h.secret))), UnsafeLayerError),
    Refused("hardlink-pax-linkpath", lambda h: tar_of(pax(hard("h", "x"), linkpath="../../etc/passwd")), UnsafeLayerError),
    Refused("hardlink-through-symlink", lambda h: tar_of(sym("l", h.climb), hard("h", "l/secret")), LayerFormatError),
    Refused("hardlink-to-symlink", lambda h: tar_of(sym("l", str(h.secret)), hard("h", "l")), LayerFormatError),
    Refused("hardlink-missing", lambda h: tar_of(hard("h", "nowhere")), LayerFormatError),
    Refused("hardlink-to-dir", lambda h: tar_of(d("dir"), hard("h", "dir")), LayerFormatError),
    Refused("hardlink-to-itself", lambda h: tar_of(hard("h", "h")), LayerFormatError),
    # odd names
    Refused("symlink-named-dotdot", lambda h: tar_of(sym("..", "/")), UnsafeLayerError),
    Refused("hardlink-named-dotdot", lambda h: tar_of(f("x"), hard("..", "x")), UnsafeLayerError),
    Refused("dir-named-dotdot", lambda h: tar_of(d("..")), UnsafeLayerError),
    Refused("file-named-dotdot-slash", lambda h: tar_of(f("a/..")), UnsafeLayerError),
    Refused("empty-name-file", lambda h: tar_of(f("")), LayerFormatError),
    Refused("dot-name-file", lambda h: tar_of(f(".")), LayerFormatError),
    Refused("empty-name-symlink", lambda h: tar_of(sym("", h.climb)), LayerFormatError),
    Refused("file-with-slash", lambda h: tar_of(f("a/")), LayerFormatError),
    Refused("symlink-with-slash", lambda h: tar_of(sym("l/", h.climb)), LayerFormatError),
    Refused("hardlink-with-slash", lambda h: tar_of(f("x"), hard("h/", "x")), LayerFormatError),
    Refused("empty-symlink-target", lambda h: tar_of(sym("l", "")), LayerFormatError),
    Refused("nul-symlink-target", lambda h: tar_of(pax(sym("l", "x"), linkpath="ok\x00" + h.climb)), LayerFormatError),
    # duplicates
    Refused("duplicate-file", lambda h: tar_of(f("a", b"1"), f("a", b"2")), LayerFormatError),
    Refused("duplicate-spelled-differently", lambda h: tar_of(f("a/b"), f("./a//b")), LayerFormatError),
    Refused("duplicate-dir", lambda h: tar_of(d("d"), d("d/")), LayerFormatError),
    Refused("duplicate-symlink-then-file", lambda h: tar_of(sym("a", h.climb), f("a")), LayerFormatError),
    # bad whiteouts
    Refused("wh-bare", lambda h: tar_of(f(".wh.", b"")), LayerFormatError, True),
    Refused("wh-dot", lambda h: tar_of(f(".wh..", b"")), LayerFormatError, True),
    Refused("wh-dotdot", lambda h: tar_of(f(".wh...", b"")), LayerFormatError, True),
    Refused("wh-etc-dot", lambda h: tar_of(d("etc"), f("etc/.wh..", b"")), LayerFormatError, True),
    Refused("wh-etc-dotdot", lambda h: tar_of(f("etc/.wh...", b"")), LayerFormatError, True),
    Refused("wh-dotdot-name", lambda h: tar_of(f("../.wh.victim", b"")), UnsafeLayerError, True),
    Refused("wh-absolute", lambda h: tar_of(f(str(h.victim / ".wh.secret"), b"")), UnsafeLayerError, True),
    Refused("wh-through-symlink", lambda h: tar_of(sym("l", h.climb), f("l/.wh.secret", b"")), UnsafeLayerError, True),
    Refused("wh-opaque-through-symlink", lambda h: tar_of(sym("l", h.climb), f("l/.wh..wh..opq", b"")),
            LayerFormatError, True),
    Refused("wh-opaque-in-file", lambda h: tar_of(f("a"), f("a/.wh..wh..opq", b"")), LayerFormatError, True),
    Refused("wh-below-file", lambda h: tar_of(f("a"), f("a/.wh.b", b"")), LayerFormatError, True),
    Refused("wh-as-directory", lambda h: tar_of(d(".wh.etc")), LayerFormatError, True),
    Refused("wh-as-symlink", lambda h: tar_of(sym(".wh.secret", h.climb)), LayerFormatError, True),
    Refused("wh-as-hardlink", lambda h: tar_of(f("x"), hard(".wh.x", "x")), LayerFormatError, True),
    Refused("wh-as-fifo", lambda h: tar_of(special(".wh.x", tarfile.FIFOTYPE)), LayerFormatError, True),
    Refused("wh-with-slash", lambda h: tar_of(f(".wh.a/", b"")), LayerFormatError, True),
    Refused("wh-aufs-link-dir", lambda h: tar_of(f(".wh..wh.plnk", b"")), UnsupportedEntryError, True),
    Refused("wh-aufs-prefix", lambda h: tar_of(f(".wh..wh.", b"")), UnsupportedEntryError, True),
    Refused("wh-root-opaque", lambda h: tar_of(f("./.wh..wh..opq", b"")), UnsupportedEntryError, True),
    Refused("wh-and-file", lambda h: tar_of(f("a"), f(".wh.a", b"")), LayerFormatError, True),
    Refused("wh-and-file-reversed", lambda h: tar_of(f(".wh.a", b""), f("a")), LayerFormatError, True),
    Refused("wh-and-populated-dir", lambda h: tar_of(f("d/x"), f(".wh.d", b"")), LayerFormatError, True),
    Refused("wh-and-opaque-same-dir", lambda h: tar_of(f(".wh.d", b""), f("d/.wh..wh..opq", b"")), LayerFormatError, True),
    Refused("wh-duplicate", lambda h: tar_of(f(".wh.a", b""), f("./.wh.a", b"")), LayerFormatError, True),
    Refused("forged-opaque-xattr", lambda h: tar_of(pax(d("etc"), **{"SCHILY.xattr.trusted.overlay.opaque": "y"})),
            LayerFormatError, True),
    Refused("forged-userxattr-opaque", lambda h: tar_of(pax(d("etc"), **{"SCHILY.xattr.user.overlay.opaque": "y"})),
            LayerFormatError, True),
    Refused("forged-redirect-xattr", lambda h: tar_of(pax(d("etc"), **{"SCHILY.xattr.trusted.overlay.redirect": "/"})),
            LayerFormatError, True),
    Refused("forged-metacopy-xattr", lambda h: tar_of(pax(f("x"), **{"SCHILY.xattr.trusted.overlay.metacopy": ""})),
            LayerFormatError, True),
    Refused("bogus-xattr-namespace", lambda h: tar_of(pax(f("x"), **{"SCHILY.xattr.evil": "1"})), LayerFormatError),
    # entry types the model does not represent (FIFOs and devices it does: see ACCEPTED)
    Refused("char-device-0-0", lambda h: tar_of(special("w", tarfile.CHRTYPE, 0, 0)), UnsupportedEntryError),
    Refused("device-number-too-big", lambda h: tar_of(special("dev/x", tarfile.CHRTYPE, 4096, 0)), LayerFormatError),
    Refused("fifo-through-symlink", lambda h: tar_of(sym("l", h.climb), special("l/p", tarfile.FIFOTYPE)),
            UnsafeLayerError),
    Refused("device-through-symlink", lambda h: tar_of(sym("l", str(h.victim)), special("l/sda", tarfile.BLKTYPE)),
            UnsafeLayerError),
    Refused("contiguous", lambda h: tar_of(special("c", tarfile.CONTTYPE)), UnsupportedEntryError),
    Refused("unknown-type", lambda h: tar_of(special("u", b"Z")), UnsupportedEntryError),
    # broken archives
    Refused("truncated", lambda h: tar_of(f("a", b"x" * 5000), f("b"))[:3000], LayerFormatError),
    Refused("cut-in-second-data", lambda h: tar_of(f("a", b"x" * 100), f("b"))[:1536 + 200], LayerFormatError),
    # tarfile alone ends the member list quietly at a cut or corrupt header that is not the first
    Refused("cut-in-second-header", lambda h: tar_of(f("a", b"x" * 100), f("b"))[:1024 + 300], LayerFormatError),
    Refused("cut-after-last-member", lambda h: tar_of(f("a", b"x" * 100))[:1024], LayerFormatError),
    Refused("corrupt-second-header", lambda h: _flip(tar_of(f("a", b"x" * 100), f(".wh.etc", b"")), 1024 + 5),
            LayerFormatError),
    Refused("corrupt-gzip", lambda h: gzip.compress(tar_of(f("a")))[:-12], LayerFormatError),
    Refused("pax-mtime-garbage", lambda h: tar_of(pax(f("a"), mtime="NaN")), LayerFormatError),
]

assert len({case.name for case in REFUSED}) == len(REFUSED)


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_refused_with_a_typed_error(case: Refused, host: Host) -> None:
    raw = case.build(host)
    if case.bad_whiteout:
        TALLY.bad_whiteouts += 1
    with pytest.raises(LayerFormatError) as info:
        load(raw)
    assert isinstance(info.value, case.error), f"{type(info.value).__name__}: {info.value}"
    if case.bad_whiteout:
        TALLY.bad_whiteouts_rejected += 1
    assert os.listdir(host.root) == []


# -- archives that are legal layers, and stay harmless when written out -------------------


@dataclass(frozen=True)
class Accepted:
    name: str
    build: Callable[[Host], bytes]
    check: Callable[[Layer, Host], None]


def _is_symlink_to(path: str, target: Callable[[Host], str]) -> Callable[[Layer, Host], None]:
    def check(layer: Layer, host: Host) -> None:
        entry = layer[path]
        assert isinstance(entry, Symlink) and entry.target == target(host)

    return check


def _wh_etc_is_a_file(layer: Layer, host: Host) -> None:
    assert isinstance(layer[".wh.etc/file"], RegularFile)
    assert isinstance(layer[".wh.etc"], Directory)
    assert "etc" not in layer  # not a whiteout of etc
    lower = Layer()
    lower.add_file("etc/passwd", b"root")
    with UnionFS([lower.freeze(), layer]) as union:
        assert union.read_bytes("/etc/passwd") == b"root"
        assert union.read_bytes("/.wh.etc/file") == b"pwned\n"


def _opaque_after_children(layer: Layer, host: Host) -> None:
    entry = layer["d"]
    assert isinstance(entry, Directory) and entry.opaque
    assert layer.paths() == ["d", "d/new"]  # the redundant whiteout is dropped


def _setuid_kept(layer: Layer) -> None:
    entry = layer["bin/su"]
    assert isinstance(entry, RegularFile) and entry.mode == 0o4755  # kept: these tests extract as root


ACCEPTED: list[Accepted] = [
    Accepted("relative-escaping-symlink", lambda h: tar_of(sym("l", "../victim")), _is_symlink_to("l", lambda h: "../victim")),
    Accepted("climbing-symlink", lambda h: tar_of(sym("l", h.climb)), _is_symlink_to("l", lambda h: h.climb)),
    Accepted("absolute-symlink", lambda h: tar_of(sym("l", str(h.secret))), _is_symlink_to("l", lambda h: str(h.secret))),
    Accepted("symlink-named-like-victim", lambda h: tar_of(d("victim"), sym("victim/secret", str(h.secret))),
             _is_symlink_to("victim/secret", lambda h: str(h.secret))),
    Accepted("symlink-loop", lambda h: tar_of(sym("a", "b"), sym("b", "a")), _is_symlink_to("a", lambda h: "b")),
    Accepted("wh-prefixed-parent", lambda h: tar_of(f(".wh.etc/file")), _wh_etc_is_a_file),
    Accepted("opaque-after-children", lambda h: tar_of(d("d"), f("d/new"), f("d/.wh.old", b""), f("d/.wh..wh..opq", b"")),
             _opaque_after_children),
    Accepted("setuid-root-file", lambda h: tar_of(f("bin/su", mode=0o4755, uid=0)), lambda layer, h: _setuid_kept(layer)),
    Accepted("fifo", lambda h: tar_of(special("p", tarfile.FIFOTYPE)), lambda layer, h: _is_kind(layer, "p", Fifo)),
    Accepted("char-device", lambda h: tar_of(special("dev/mem", tarfile.CHRTYPE, 1, 1)),
             lambda layer, h: _is_kind(layer, "dev/mem", CharDevice)),
    Accepted("block-device", lambda h: tar_of(special("dev/sda", tarfile.BLKTYPE, 8, 0)),
             lambda layer, h: _is_kind(layer, "dev/sda", BlockDevice)),
    Accepted("device-named-like-victim", lambda h: tar_of(d("victim"), special("victim/secret", tarfile.CHRTYPE)),
             lambda layer, h: _is_kind(layer, "victim/secret", CharDevice)),
]


def _is_kind(layer: Layer, path: str, kind: type) -> None:
    assert type(layer[path]) is kind


@pytest.mark.parametrize("case", ACCEPTED, ids=[case.name for case in ACCEPTED])
def test_accepted_layers_stay_inside_their_folder(case: Accepted, host: Host) -> None:
    layer = load(case.build(host))
    case.check(layer, host)
    target = host.extract(layer)
    for path, entry in layer.items():
        on_disk = target / path
        if isinstance(entry, Symlink):
            assert os.readlink(on_disk) == entry.target  # written as a link, never followed
        elif isinstance(entry, Whiteout):
            assert os.lstat(on_disk).st_rdev == 0
        elif isinstance(entry, Device):
            assert os.lstat(on_disk).st_rdev == entry.rdev  # written as a node, in the folder only


# -- attacks across layers: one archive plants a link, the next uses it ---------------------


def _whiteout_of_symlink(host: Host) -> list[Layer]:
    lower = load(tar_of(d("target"), f("target/f", b"kept"), sym("link", "target"), sym("abslink", "/target"),
                        sym("hostlink", str(host.victim))))
    upper = load(tar_of(f(".wh.link", b""), f(".wh.hostlink", b"")))
    return [lower, upper]


def _check_whiteout_of_symlink(union: UnionMount) -> None:
    assert sorted(union.listdir("/")) == ["abslink", "target"]
    for gone in ("/link", "/hostlink"):
        with pytest.raises(FileNotFoundError):
            union.lstat(gone)
    assert union.read_bytes("/target/f") == b"kept"  # the link went, not its target
    assert union.read_bytes("/abslink/f") == b"kept"


def _write_through_lower_symlink(host: Host) -> list[Layer]:
    """L1 plants links to the victim; L2 writes, and deletes, "through" them."""
    lower = load(tar_of(sym("l", str(host.victim)), sym("r", host.climb), sym("s", str(host.secret))))
    upper = load(tar_of(f("l/secret", b"overwritten?"), f("l/x", b"new"), f("r/.wh.secret", b""), d("s", mode=0o777)))
    return [lower, upper]


def _check_write_through(union: UnionMount) -> None:
    # Overlay form: L2's directories hide L1's symlinks; nothing merges below a non-directory.
    for name in ("l", "r", "s"):
        assert union.lstat("/" + name).st_mode & 0o170000 == 0o040000
    assert sorted(union.listdir("/l")) == ["secret", "x"]
    assert union.read_bytes("/l/secret") == b"overwritten?"
    # L2's "r" holds only a whiteout and merges with nothing (L1's "r" is a link), so the kernel
    # reads that directory as it is: readdir may list "secret", but the name cannot be looked up.
    assert set(union.listdir("/r")) <= {"secret"} and union.listdir("/s") == []
    with pytest.raises(FileNotFoundError):
        union.lstat("/r/secret")
    union.write_bytes("/l/y", b"through the mount")
    union.chmod("/l", 0o700)
    union.unlink("/l/secret")
    union.chmod("/s", 0o777)
    assert sorted(union.listdir("/l")) == ["x", "y"]


def _symlink_over_directory(host: Host) -> list[Layer]:
    """L1 has a real directory; L2 replaces it by a link to the victim (CVE-2021-32760 shape)."""
    lower = load(tar_of(d("d"), f("d/f", b"lower")))
    upper = load(tar_of(sym("d", str(host.victim)), sym("e", host.climb)))
    return [lower, upper]


def _check_symlink_over_directory(union: UnionMount) -> None:
    assert union.lstat("/d").st_mode & 0o170000 == 0o120000
    # Absolute targets start at the union's root, relative ones stop there: the host is out of reach.
    for path in ("/d/secret", "/e/secret"):
        with pytest.raises(FileNotFoundError):
            union.read_bytes(path)
        with pytest.raises(FileNotFoundError):
            union.write_bytes(path, b"pwned")
        with pytest.raises(FileNotFoundError):
            union.truncate(path, 0)
    for path in ("/d", "/e"):
        with pytest.raises(FileNotFoundError):
            union.chmod(path, 0o777)


CROSS_LAYER: list[tuple[str, Callable[[Host], list[Layer]], Callable[[UnionMount], None]]] = [
    ("whiteout-of-symlink", _whiteout_of_symlink, _check_whiteout_of_symlink),
    ("write-through-lower-symlink", _write_through_lower_symlink, _check_write_through),
    ("symlink-over-directory", _symlink_over_directory, _check_symlink_over_directory),
]
CROSS_IDS = [name for name, _, _ in CROSS_LAYER]


@pytest.mark.parametrize("name, build, check", CROSS_LAYER, ids=CROSS_IDS)
def test_cross_layer_attack_in_the_model(
    name: str, build: Callable[[Host], list[Layer]], check: Callable[[UnionMount], None], host: Host
) -> None:
    layers = build(host)
    for layer in layers:
        host.extract(layer)
    with UnionFS(layers) as union:
        check(union)


@pytest.mark.real
@pytest.mark.parametrize("name, build, check", CROSS_LAYER, ids=CROSS_IDS)
def test_cross_layer_attack_in_the_kernel(
    name: str, build: Callable[[Host], list[Layer]], check: Callable[[UnionMount], None], host: Host
) -> None:
    engine = require_real()
    layers = build(host)
    with engine.union(layers) as union:
        check(union)


def test_write_through_upper_matches_kernel(host: Host) -> None:
    """The model's upper layer after the write-through attack is the kernel's (when the kernel is here)."""
    layers = _write_through_lower_symlink(host)
    with UnionFS(layers) as union:
        _check_write_through(union)
        model_paths = union.upper.paths()
    assert "l/y" in model_paths and "l/secret" in model_paths  # the unlink left a whiteout over L2's file
    assert isinstance(union.upper["l/secret"], Whiteout)
    try:
        engine = sim.connect("real")
    except sim.BackendUnavailableError:
        return
    with engine.union(layers) as kernel:
        _check_write_through(kernel)
        assert kernel.upper.paths() == model_paths
