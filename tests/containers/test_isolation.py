"""The sandbox a container is, checked through the engine on the kernel (safety.md, "Isolation").

A container's processes, hostname and root are its own: ``ps`` shows only them with the command
as PID 1, the host's processes and files cannot be reached (not even by the classic chroot escape,
run by a real program inside), a mount inside never shows on the host, and user IDs are what the
engine's id maps say (``--user 1000:1000`` is uid 1000 on the host as root, ``start + 999`` of
the caller's subordinate range when rootless).  Each test runs as root and rootless; the
subordinate-range cases need a caller with a range (``./dev test``'s unprivileged rerun as
``layerlab-ci``, which ``./dev`` gives one).  Afterwards no mount, record or process is left.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from realrt import _idmap
from sim.containers.userns import parse_subid
from sim.errors import BackendUnavailableError
from sim.images.base import busybox_layer
from sim.layers.layer import Layer
from tests.backends import require_real

pytestmark = pytest.mark.real

REQUIRE_REAL = os.environ.get("LAYERLAB_REQUIRE_REAL") == "1"


def _mounts(under: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return sorted(line.split()[4] for line in fh if line.split()[4].startswith(under))


def _children() -> set[int]:
    me, out = str(os.getpid()), set()
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8") as fh:
                if name.isdigit() and fh.read().rsplit(")", 1)[1].split()[1] == me:
                    out.add(int(name))
        except (OSError, IndexError):
            pass
    return out


@pytest.fixture(params=["root", "rootless"])
def engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A real engine with a state folder of its own; afterwards nothing of it is left on the host."""
    rootless = request.param == "rootless"
    state = tempfile.mkdtemp(prefix="layerlab-iso-")
    children = _children()
    try:
        eng: Any = require_real(rootless=rootless, state_dir=state)
        try:
            yield eng
        finally:
            eng.close()
            assert list(eng.journal.records()) == [], "a journal record is left"
            assert _mounts(state) == [], "a mount is left"
            assert _children() <= children, "a container process is left"
            _idmap.remove_tree(state, eng.id_maps)  # layer files of subordinate ids: removed from a namespace
            assert not os.path.exists(state), "the state folder could not be removed"
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _has_uids(engine: Any, *ids: int) -> bool:
    """Whether these uids are mapped.  A rootless engine without a range (root's own rootless mode has
    none) must refuse them with a typed error saying why: that refusal is what such a run tests, and
    ./dev test's unprivileged rerun, whose user has a range, tests the mapping itself."""
    if all(engine.id_maps.covers(i, i) for i in ids):
        return True
    with pytest.raises(BackendUnavailableError, match=r"map only root.*/etc/subuid.*newuidmap"):
        engine.run("busybox", "id", user=f"{ids[0]}:{ids[0]}", remove=True)
    if os.geteuid() != 0 and REQUIRE_REAL:
        pytest.fail(f"LAYERLAB_REQUIRE_REAL=1 but this user has no subordinate range: {engine.id_maps.note}")
    return False


def _own_range() -> int:
    """The first subordinate uid of the caller, read from /etc/subuid independently of the engine."""
    uid = os.geteuid()
    with open("/etc/subuid", encoding="utf-8") as fh:
        ranges = parse_subid(fh.read(), name=pwd.getpwuid(uid).pw_name, uid=uid)
    return ranges[0][0]


# -- processes and hostname ------------------------------------------------------------------------


def test_ps_shows_only_the_container_with_its_command_as_pid_1(engine: Any) -> None:
    marker = f"{1000 + uuid.uuid4().int % 1000}.25"  # a host process with an argument seen nowhere else
    host = subprocess.Popen(["sleep", marker])
    try:
        engine.create("busybox", ["sleep", "30"], name="ps-box")
        engine.start("ps-box", detach=True)
        lines = engine.exec("ps-box", ["ps", "-o", "pid,args"]).stdout.decode().splitlines()
        rows = [line.split(None, 1) for line in lines[1:]]
        assert rows[0] == ["1", "sleep 30"], lines
        assert [args for _, args in rows] == ["sleep 30", "ps -o pid,args"], lines
        listed = engine.exec("ps-box", ["ls", "/proc"]).stdout.decode().split()
        assert sorted(p for p in listed if p.isdigit())[0] == "1" and sum(p.isdigit() for p in listed) == 2
        seen = engine.exec("ps-box", ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).stdout.decode()
        assert "sleep 30" in seen and marker not in seen
        with open(f"/proc/{host.pid}/cmdline", "rb") as fh:
            assert marker.encode() in fh.read()  # control: the host sees it
        assert engine.stop("ps-box", grace=0.5) == 137
    finally:
        host.kill()
        host.wait()


def test_hostname_is_the_containers(engine: Any) -> None:
    before = socket.gethostname()
    out = engine.run("busybox", "hostname; cat /proc/sys/kernel/hostname; echo $HOSTNAME; uname -n",
                     hostname="iso-box", remove=True).stdout.decode().split()
    assert out == ["iso-box"] * 4
    info = engine.create("busybox", "hostname")
    assert engine.start(info.id).stdout.decode().strip() == info.id[:12]  # Docker's default: the short ID
    assert socket.gethostname() == before


# -- the root: the chroot escape -------------------------------------------------------------------

# x86-64 machine code: mkdir("x"); chroot("x"); 64 x chdir(".."); chroot("."); then cat argv[1].
# Exit 0 (the file printed: escaped), 1 (the file cannot be opened), 2 (chroot refused: no
# CAP_SYS_CHROOT).  busybox's chroot applet changes into the new root, so it cannot run the attack.
_ESCAPE_CODE = bytes.fromhex(
    "488b5c2410488d3da0000000beed010000b8530000000f05488d3d8d000000b8a10000000f054885c0757541bc4000"
    "0000488d3d76000000b8500000000f0541ffcc75ed488d3d66000000b8a10000000f054885c075494889df31f6b802"
    "0000000f054885c078314889c74881ec001000004889e6ba0010000031c00f054885c078164889c2bf010000004889"
    "e6b8010000000f0531ffeb0cbf01000000eb05bf02000000b83c0000000f0578002e2e002e00")


def _escape_program(folder: Path) -> Path:
    """The program as a static ELF (one PT_LOAD segment, entry right after the headers)."""
    base, ehsize, phsize = 0x400000, 64, 56
    total = ehsize + phsize + len(_ESCAPE_CODE)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, base + ehsize + phsize, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    path = folder / "escape"
    path.write_bytes(header + segment + _ESCAPE_CODE)
    path.chmod(0o755)
    return path


def test_the_chroot_escape_does_not_reach_the_host(engine: Any) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("the escape program is x86-64 machine code")
    work = Path(tempfile.mkdtemp(prefix="layerlab-escape-"))
    try:
        work.chmod(0o755)
        tools = work / "tools"
        tools.mkdir(mode=0o755)
        program = _escape_program(tools)
        secret = f"host-only-{uuid.uuid4().hex}"
        (work / "marker").write_text(secret)
        (work / "marker").chmod(0o644)
        # Control: under a plain chroot (in a user namespace of our own) the same program escapes.
        jail = work / "jail"
        jail.mkdir()
        shutil.copy2(program, jail / "escape")
        control = subprocess.run(["unshare", "--user", "--map-root-user", "chroot", str(jail), "/escape",
                                  str(work / "marker")], capture_output=True, timeout=30, cwd="/")
        assert (control.returncode, control.stdout) == (0, secret.encode()), control

        caps = engine.run("busybox", "grep CapEff /proc/self/status", remove=True).stdout.split()[1]
        assert int(caps, 16) >> 18 & 1, "Docker's default set has CAP_SYS_CHROOT"
        host_name = Path("/etc/hostname").read_bytes().strip() if os.path.exists("/etc/hostname") else b""
        for target in (str(work / "marker"), "/etc/hostname"):
            inside = engine.run("busybox", ["sh", "-c", f"cd /tmp && /tools/escape {target}"],
                                binds={"/tools": str(tools)}, remove=True)
            assert inside.exit_code == 1, inside  # chroot worked, the host's file stayed out of reach
            assert secret.encode() not in inside.stdout and (not host_name or host_name not in inside.stdout)
        if engine.id_maps.covers(1000, 1000):  # without CAP_SYS_CHROOT the first chroot is refused
            refused = engine.run("busybox", ["sh", "-c", f"cd /tmp && /tools/escape {work / 'marker'}"],
                                 binds={"/tools": str(tools)}, user="1000:1000", remove=True)
            assert refused.exit_code == 2, refused
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- mounts ----------------------------------------------------------------------------------------


def test_a_mount_inside_is_refused_and_the_host_table_unchanged(engine: Any) -> None:
    probe = f"layerlab-probe-{uuid.uuid4().hex[:8]}"
    state = str(engine.state_dir)
    engine.create("busybox", ["sleep", "30"], name="mnt-box")
    engine.start("mnt-box", detach=True)
    below = _mounts(state)
    tried = engine.exec("mnt-box", f"mkdir -p /mnt/p && mount -t tmpfs {probe} /mnt/p")
    assert tried.exit_code != 0 and b"denied" in tried.stderr.lower(), tried  # no CAP_SYS_ADMIN: EPERM
    assert engine.exec("mnt-box", f"grep -c {probe} /proc/self/mountinfo").stdout == b"0\n"
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        assert probe not in fh.read()
    assert _mounts(state) == below
    engine.stop("mnt-box", grace=0.5)


# -- user IDs --------------------------------------------------------------------------------------


def test_proc_self_uid_map_is_what_the_engine_reports(engine: Any) -> None:
    maps = engine.id_maps
    out = engine.run("busybox", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map", remove=True).stdout
    assert out.decode() == maps.proc_uid_map() + "--\n" + maps.proc_gid_map()
    if not engine.rootless:
        assert maps.kind == "host" and out.startswith(b"         0          0 4294967295\n")
        return
    assert maps.kind in ("single", "subordinate") and maps.note  # the note says which, and why
    assert tuple(maps.uids[0]) == (0, os.geteuid(), 1) and tuple(maps.gids[0]) == (0, os.getegid(), 1)
    assert (maps.kind == "subordinate") == (maps.uid_count > 1)


def test_user_flag_and_the_owner_of_what_it_writes_on_the_host(engine: Any) -> None:
    if not _has_uids(engine, 1000):
        return
    volume = {"/data": "owners"}
    assert engine.run("busybox", "chmod 777 /data && touch /data/by-root", volumes=volume, remove=True).exit_code == 0
    made = engine.run("busybox", "id -u; id -g; touch /data/by-1000 && mkdir /data/dir && echo x > /data/dir/f",
                      volumes=volume, user="1000:1000", remove=True)
    assert made.stdout == b"1000\n1000\n" and made.exit_code == 0, made
    folder = Path(engine.state_dir) / "volumes" / "owners" / "_data"
    expected = 1000 if not engine.rootless else _own_range() + 999  # uid 1000 is start + 999 of the range
    assert expected == engine.id_maps.uid_to_host(1000)
    for name in ("by-1000", "dir", "dir/f"):
        st = os.lstat(folder / name)
        assert (st.st_uid, st.st_gid) == (expected, engine.id_maps.gid_to_host(1000)), name
    assert os.lstat(folder / "by-root").st_uid == (os.geteuid() if engine.rootless else 0)
    seen = engine.run("busybox", "ls -ln /data/by-1000 /data/by-root", volumes=volume, remove=True).stdout.split()
    assert seen[2:4] == [b"1000", b"1000"] and seen[11:13] == [b"0", b"0"]  # inside, the owners are 1000 and 0
    engine.remove_volume("owners")
    assert not folder.parent.exists(), "files of subordinate ids must go with the volume"


def test_layers_keep_their_owners(engine: Any, tmp_path: Path) -> None:
    if not _has_uids(engine, 1000):
        return
    (tmp_path / "Buildfile").write_text("FROM busybox\nUSER 1000:1000\nRUN touch /tmp/mine && mkdir /tmp/dir\n")
    engine.build(tmp_path, tag="owned:1")
    out = engine.run("owned:1", "ls -lnd /tmp/mine /tmp/dir", user="0", remove=True).stdout.decode().splitlines()
    assert [line.split()[2:4] for line in out] == [["1000", "1000"], ["1000", "1000"]]
    layer = engine._layers(engine.store.resolve("owned:1"))[-1]
    assert (layer["tmp/mine"].uid, layer["tmp/mine"].gid) == (1000, 1000)
    on_disk = [p for p in (Path(engine.state_dir) / "layers").rglob("mine") if p.parent.name == "tmp"]
    assert on_disk and {p.lstat().st_uid for p in on_disk} == {engine.id_maps.uid_to_host(1000)}


def test_exec_in_a_running_container_of_another_user(engine: Any) -> None:
    if not _has_uids(engine, 1000):
        return
    engine.create("busybox", ["sleep", "30"], name="user-box", user="1000:1000")
    engine.start("user-box", detach=True)
    assert engine.exec("user-box", "id -u; id -g; grep ^Uid /proc/1/status").stdout.decode().split() == \
        ["1000", "1000", "Uid:", "1000", "1000", "1000", "1000"]
    assert engine.stop("user-box", grace=0.5) == 137


def test_without_a_range_the_single_mapping_says_so(tmp_path: Path) -> None:
    state = tempfile.mkdtemp(prefix="layerlab-iso-single-")
    try:
        eng: Any = require_real(rootless=True, state_dir=state)
        eng.close()
        from realrt.engine import RealEngine

        single = RealEngine(rootless=True, state_dir=state, subordinate_ids=False)
        try:
            maps = single.id_maps
            assert (maps.kind, [tuple(r) for r in maps.uids]) == ("single", [(0, os.geteuid(), 1)])
            assert "turned off" in maps.note
            out = single.run("busybox", "id -u; cat /proc/self/uid_map", remove=True).stdout.decode()
            assert out == "0\n" + maps.proc_uid_map()
            with pytest.raises(BackendUnavailableError, match=r"map only root.*/etc/subuid.*newuidmap"):
                single.run("busybox", "id", user="1000:1000", remove=True)
            (tmp_path / "Buildfile").write_text("FROM busybox\nUSER nobody\nRUN true\n")
            with pytest.raises(BackendUnavailableError, match="uid 65534/gid 65534"):
                single.build(tmp_path, tag="nobody:1")
            owned = Layer()
            owned.add_file("f", b"x", uid=1000, gid=1000)
            before = sorted(os.listdir(single.workspace)) if single.workspace.exists() else []
            with pytest.raises(BackendUnavailableError, match="layer 1 has /f owned by 1000:1000"):
                single.union([busybox_layer(), owned.freeze()])  # refused before anything is made
            assert (sorted(os.listdir(single.workspace)) if single.workspace.exists() else []) == before
            assert list(single.journal.records()) == []
        finally:
            single.close()
        assert _mounts(state) == []
    finally:
        shutil.rmtree(state, ignore_errors=True)
