"""容器和虚拟机 (containers vs VMs), measured: realrt.vm boots QEMU and a container, same script.

The cpio writer and the input checks need nothing; the real tests need QEMU, the cached cloud
kernel (``./dev`` as root fetches it) and the host's static busybox.  They run as root and as
the unprivileged test user (software emulation needs no privileges; without access to
``/dev/kvm`` a VM goes straight to TCG).  Afterwards no ``qemu-system`` process, no journal
record and no temporary folder may be left.
"""

from __future__ import annotations

import gzip
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from realrt import vm as rvm
from realrt.journal import Journal, Record, start_time
from realrt.vm import _console as rconsole
from realrt.vm import _guest as rguest
from realrt.vm import _initramfs as ird
from sim.capacity.series import StartMeasurement
from sim.errors import (
    BackendUnavailableError,
    InvalidLimitError,
    InvalidSpecError,
    LayerFormatError,
)
from sim.images.base import _is_static_elf, busybox_layer, find_busybox
from sim.layers.layer import Layer
from tests.backends import require_real
from tests.realcheck import under_subreaper

MiB = 1 << 20
#: What QEMU holds beyond the guest's RAM: its binary and libraries, device state and, under
#: TCG, the translated-code cache (about 90 MiB measured here at -m 128).
QEMU_OVERHEAD = 384 * MiB


def _unavailable(reason: str) -> None:
    if os.environ.get("LAYERLAB_REQUIRE_REAL") == "1":
        pytest.fail(f"LAYERLAB_REQUIRE_REAL=1 but a VM cannot run here: {reason}")
    pytest.skip(reason)


def _require_vm() -> rvm.Kernel:
    try:
        find_busybox()
        if subprocess.run(["which", "qemu-system-x86_64"], capture_output=True).returncode:
            raise BackendUnavailableError("qemu-system-x86_64 not found (./dev as root installs qemu-system-x86)")
        return rvm.find_kernel()
    except BackendUnavailableError as exc:
        _unavailable(str(exc))
        raise  # unreachable: _unavailable skips or fails


def _qemu_processes() -> str:
    return subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True).stdout.strip()


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for a parent that is not us (it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat_line = fh.read()
    except OSError:
        return True
    return stat_line[stat_line.rfind(b")") + 2:][:1] == b"Z"


def _wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the newc writer (no qemu, no privileges) ------------------------------------------------------


def _entries() -> list[ird.CpioEntry]:
    return [
        ird.CpioEntry("bin", stat.S_IFDIR | 0o755),
        ird.CpioEntry("bin/tool", stat.S_IFREG | 0o755, b"\x7fELF payload", uid=0, gid=0),
        ird.CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"tool"),
        ird.CpioEntry("dev", stat.S_IFDIR | 0o755),
        ird.CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        ird.CpioEntry("empty", stat.S_IFREG | 0o644),
        ird.CpioEntry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\necho hi\n", mtime=7, uid=1, gid=2),
    ]


def test_newc_round_trip_and_alignment() -> None:
    entries = _entries()
    archive = ird.newc_archive(entries)
    assert ird.parse_newc(archive) == entries
    assert len(archive) % 4 == 0
    # Every header starts on a 4-byte boundary with the magic, inode numbers count up from 1.
    offsets, pos = [], 0
    while True:
        assert pos % 4 == 0 and archive[pos:pos + 6] == ird.MAGIC
        offsets.append(pos)
        namesize, filesize = int(archive[pos + 94:pos + 102], 16), int(archive[pos + 54:pos + 62], 16)
        name = archive[pos + 110:pos + 110 + namesize - 1]
        pos += 110 + namesize
        pos += -pos % 4
        pos += filesize + (-filesize % 4)
        if name == b"TRAILER!!!":
            break
    assert pos == len(archive) and len(offsets) == len(entries) + 1
    assert [int(archive[o + 6:o + 14], 16) for o in offsets] == [*range(1, len(entries) + 1), 0]


def test_newc_header_bytes_are_exact() -> None:
    archive = ird.newc_archive([ird.CpioEntry("a", stat.S_IFREG | 0o644, b"hi")])
    header = (b"070701" + b"00000001" + b"000081A4" + b"00000000" * 2 + b"00000001" + b"00000000"
              + b"00000002" + b"00000000" * 4 + b"00000002" + b"00000000")
    assert archive[:110] == header
    assert archive[110:112] == b"a\x00"  # 110 + 2 is already a multiple of 4: no name padding
    assert archive[112:116] == b"hi\x00\x00"  # the data, padded to 4
    assert archive[116:122] == b"070701" and archive[116 + 110:116 + 121] == b"TRAILER!!!\x00"
    assert len(archive) == 116 + 124  # the trailer's header and name padded from 121 to 124


@pytest.mark.parametrize("entry", [
    dict(name="/abs", mode=stat.S_IFREG | 0o644),
    dict(name="", mode=stat.S_IFREG | 0o644),
    dict(name="a\x00b", mode=stat.S_IFREG | 0o644),
    dict(name="fifo", mode=stat.S_IFIFO | 0o644),
    dict(name="d", mode=stat.S_IFDIR | 0o755, data=b"x"),
])
def test_newc_refuses_bad_entries(entry: dict) -> None:
    with pytest.raises(LayerFormatError):
        ird.CpioEntry(**entry)


def test_newc_refuses_values_over_32_bits_and_parses_only_whole_archives() -> None:
    with pytest.raises(LayerFormatError, match="32 bits"):
        ird.newc_archive([ird.CpioEntry("big", stat.S_IFREG | 0o644, uid=1 << 32)])
    archive = ird.newc_archive(_entries())
    for broken in (archive[:50], archive[:-8], b"070707" + archive[6:], archive[:6] + b"zzzzzzzz" + archive[14:]):
        with pytest.raises(LayerFormatError):
            ird.parse_newc(broken)


# -- input checks: refused before anything is spawned or written -------------------------------------


@pytest.mark.parametrize("options, error", [
    (dict(memory_mib=64), InvalidLimitError),
    (dict(memory_mib=rvm.MIN_MEMORY_MIB - 1), InvalidLimitError),
    (dict(memory_mib="128"), InvalidLimitError),
    (dict(memory_mib=128.0), InvalidLimitError),
    (dict(memory_mib=True), InvalidLimitError),
    (dict(smp=0), InvalidLimitError),
    (dict(smp=1.5), InvalidLimitError),
    (dict(smp=True), InvalidLimitError),
    (dict(accel="xen"), InvalidSpecError),
    (dict(kvm_deadline=0), InvalidSpecError),
    (dict(kvm_deadline=True), InvalidSpecError),
    (dict(boot_timeout=-1), InvalidSpecError),
    (dict(boot_timeout=float("inf")), InvalidSpecError),
    (dict(hold=float("nan")), InvalidSpecError),
    (dict(hold=float("inf")), InvalidSpecError),
    (dict(hold="60"), InvalidSpecError),
    (dict(machine="q35 -S"), InvalidSpecError),
    (dict(label=3), InvalidSpecError),
    (dict(kernel="/boot/vmlinuz"), InvalidSpecError),
])
def test_bad_inputs_are_refused_before_anything(tmp_path: Path, options: dict, error: type[Exception],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_spawn(*args: object, **kwargs: object) -> None:
        raise AssertionError("something was spawned")

    monkeypatch.setattr(subprocess, "Popen", no_spawn)
    monkeypatch.setattr(subprocess, "run", no_spawn)
    state = tmp_path / "state"
    with pytest.raises(error):
        rvm.boot_and_measure(state_dir=state, **{"memory_mib": 128, **options})
    with pytest.raises(error):
        rvm.VM(state_dir=state, **options)
    assert not state.exists()
    if "memory_mib" in options:
        with pytest.raises(error):
            rvm.measure_container_start(object(), memory_mib=options["memory_mib"])


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "30", None])
def test_container_measurement_refuses_bad_times_first(bad: object) -> None:
    for what in ("timeout", "hold"):
        with pytest.raises(InvalidSpecError, match=f"{what} must be a positive finite number"):
            rvm.measure_container_start(object(), **{what: bad})  # type: ignore[arg-type]


def test_container_measurement_needs_a_real_engine() -> None:
    import sim

    with pytest.raises(ValueError, match="real engine"):
        rvm.measure_container_start(sim.connect("sim"))


def test_missing_kernel_or_qemu_is_a_typed_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"\./dev"):
        rvm.find_kernel(tmp_path / "empty")
    with pytest.raises(BackendUnavailableError, match=r"\./dev"):
        rvm.VM(cache_dir=tmp_path / "empty", state_dir=tmp_path / "state").boot()
    with pytest.raises(BackendUnavailableError, match="qemu-system-x86"):
        rvm.VM(qemu="qemu-system-none", state_dir=tmp_path / "state").boot()
    assert not (tmp_path / "state" / "journal").exists() or not list((tmp_path / "state" / "journal").iterdir())


def test_kernel_cache_picks_the_newest_and_fetch_is_idempotent(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for version in ("6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", "6.1.0-10-cloud-amd64"):
        (tmp_path / f"vmlinuz-{version}").write_bytes(b"kernel")
    (tmp_path / ".vmlinuz-6.9.0-1-cloud-amd64.tmp").write_bytes(b"half-written")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("fetch ran a command with a cached kernel"))
    kernel = rvm.fetch_kernel(tmp_path)
    assert kernel == rvm.find_kernel(tmp_path) == rvm.Kernel(tmp_path / "vmlinuz-6.1.0-56-cloud-amd64",
                                                             "6.1.0-56-cloud-amd64")
    monkeypatch.setenv("LAYERLAB_VM_CACHE", str(tmp_path))
    assert rvm.default_cache_dir() == tmp_path


# -- the journal never kills a process that reused a recorded pid --------------------------------


def test_sweep_kills_the_recorded_process_but_not_a_pid_reuser(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()  # an owner that is gone
    victims = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    try:
        for victim, shift in zip(victims, (0, 1)):
            rec = Record(f"r{shift}", "process", "", dead.pid, victim.pid, start_time(victim.pid) + shift)
            (journal.root / f"{rec.id}.json").write_text(__import__("json").dumps(rec.__dict__))
        assert journal.record("process", pid=victims[0].pid).start_time == start_time(victims[0].pid) > 0
        journal.forget(next(r for r in journal.records() if r.owner == os.getpid()))
        journal.sweep()
        assert victims[0].wait(5) == -signal.SIGKILL, "the recorded process was not killed"
        assert victims[1].poll() is None, "a process whose start time differs was killed"
        assert list(journal.records()) == []
    finally:
        for victim in victims:
            victim.kill()
            victim.wait()


def test_sweep_takes_the_records_of_an_owner_whose_pid_was_reused(tmp_path: Path) -> None:
    """An owner is alive only as the process that wrote the record: a live process that now has a
    dead owner's pid (another start time) does not keep the dead owner's resources."""
    import json

    journal = Journal(tmp_path)
    owner = subprocess.Popen(["sleep", "30"])
    try:
        folders = {}
        for name, shift in (("kept", 0), ("reused", 1)):
            folders[name] = tmp_path / name
            folders[name].mkdir()
            rec = Record(name, "tree", str(folders[name]), owner.pid, owner_start=start_time(owner.pid) + shift)
            (journal.root / f"{rec.id}.json").write_text(json.dumps(rec.__dict__))
        mine = journal.record("tree", str(tmp_path / "mine"))
        assert mine.owner_start == start_time(os.getpid()) > 0 and mine.owner_alive()
        assert [r.id for r in journal.sweep()] == ["reused"]
        assert folders["kept"].exists() and not folders["reused"].exists()
        assert sorted(r.id for r in journal.records()) == sorted(["kept", mine.id])
    finally:
        owner.kill()
        owner.wait()


# -- the initramfs the guest gets ---------------------------------------------------------------------


@pytest.mark.real
def test_initramfs_holds_busybox_devices_and_init(tmp_path: Path) -> None:
    try:
        layer = busybox_layer()
    except BackendUnavailableError as exc:
        _unavailable(str(exc))
        raise
    script = rvm.vm_init_script()
    path = ird.cached_initramfs(tmp_path, layer, script)
    assert ird.cached_initramfs(tmp_path, layer, script) == path and path.stat().st_mode & 0o777 == 0o644
    assert ird.cached_initramfs(tmp_path, layer, script + "\n") != path  # keyed by content
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw == ird.initramfs_bytes(layer, script)  # deterministic
    entries = {e.name: e for e in ird.parse_newc(gzip.decompress(raw))}
    names = list(entries)
    assert all(names.index(os.path.dirname(n)) < names.index(n) for n in names if "/" in n), "a parent comes later"
    init = entries["init"]
    assert stat.S_ISREG(init.mode) and init.mode & 0o777 == 0o755 and init.data == script.encode()
    assert script.startswith("#!/bin/sh\n") and rvm.MARKER_SCRIPT in script and "poweroff -f" in script
    busybox = entries["bin/busybox"]
    assert busybox.data == Path(find_busybox()).read_bytes() and _is_static_elf(busybox.data)
    assert entries["bin/sh"].mode == stat.S_IFLNK | 0o777 and entries["bin/sh"].data == b"busybox"
    for name in ("mount", "poweroff", "echo", "sleep"):
        assert entries[f"bin/{name}"].data == b"busybox", name
    console = entries["dev/console"]
    assert stat.S_ISCHR(console.mode) and console.rdev == (5, 1)
    assert all(e.uid == 0 and e.gid == 0 and e.mtime == 0 for e in entries.values())


# -- real boots -----------------------------------------------------------------------------------------


class _Boots:
    def __init__(self, vm: rvm.VM, first: StartMeasurement, second: StartMeasurement, state: Path,
                 pids: list[int], leftovers: str) -> None:
        self.vm, self.first, self.second, self.state, self.pids, self.leftovers = vm, first, second, state, pids, leftovers


@pytest.fixture(scope="module")
def boots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Boots]:
    """One VM instance booted twice (the second boot must reuse the first's KVM verdict)."""
    _require_vm()
    state = tmp_path_factory.mktemp("vmstate")
    vm = rvm.VM(memory_mib=128, label="vm-128", state_dir=state, hold=60)
    pids = []
    with vm:
        first = vm.measurement
        pids.append(vm.pid)
        assert vm.running and vm.memory()["VmRSS"] > 0
    with vm:
        second = vm.measurement
        pids.append(vm.pid)
    assert first is not None and second is not None
    yield _Boots(vm, first, second, state, [p for p in pids if p], _qemu_processes())


@pytest.mark.real
def test_boot_measures_a_plausible_time_and_memory(boots: _Boots) -> None:
    m = boots.first
    assert m.kind == "vm" and m.source == "measured" and m.accelerator in ("kvm", "tcg")
    assert 0 < m.start_s < 60
    assert m.reserved_bytes == 128 * MiB
    assert 10 * MiB < m.memory_bytes < m.reserved_bytes + QEMU_OVERHEAD
    assert m.details["vm_hwm_bytes"] >= m.memory_bytes  # type: ignore[operator]
    assert 0 < m.details["guest_uptime_s"] < m.start_s + 1  # type: ignore[operator]
    assert m.details["kernel_version"] == rvm.find_kernel().version
    assert str(m.details["qemu_version"]).startswith("QEMU emulator version")
    argv = m.details["argv"]
    assert isinstance(argv, list) and argv[argv.index("-accel") + 1] == m.accelerator and "-m" in argv
    assert m.details["kvm_tried"] == rvm.kvm_usable()
    if m.accelerator == "tcg" and m.details["kvm_tried"]:
        assert m.details["kvm_failed"] and boots.vm.kvm_works is False


@pytest.mark.real
def test_a_second_boot_keeps_the_kvm_verdict(boots: _Boots) -> None:
    assert boots.second.accelerator == boots.first.accelerator
    if boots.vm.kvm_works is False:
        assert boots.second.details["kvm_tried"] is False and boots.second.details["kvm_wasted_s"] == 0
    assert 0 < boots.second.start_s < 60


@pytest.mark.real
def test_nothing_is_left_after_a_boot(boots: _Boots) -> None:
    assert boots.leftovers == "", f"qemu still runs:\n{boots.leftovers}"
    assert all(_gone(pid) for pid in boots.pids)
    assert list(Journal(boots.state).records()) == []
    assert [p.name for p in (boots.state / "vm").iterdir() if not p.name.startswith("initramfs-")] == []
    assert not boots.vm.running and boots.vm.stop() is None  # stop is idempotent


# The owner runs under a subreaper of ours, so the orphaned QEMU is reaped there (not left a
# zombie of the host's init for a while) and the subreaper exits once nothing of the run is left.
_CHILD = under_subreaper("""
    from realrt.vm import VM
    vm = VM(accel="tcg", state_dir=sys.argv[1], hold=60)
    vm.boot()
    print(os.getpid(), vm.pid, flush=True)
    time.sleep(60)
""")


@pytest.mark.real
def test_a_killed_owner_leaves_nothing(tmp_path: Path) -> None:
    """The owner is SIGKILLed while its guest runs: QEMU dies with it (PDEATHSIG) and a sweep
    removes its records and its temporary folder."""
    _require_vm()
    state = tmp_path / "state"
    # This checkout first on the path: the unprivileged run's venv may point at another one.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    reaper = subprocess.Popen([sys.executable, "-c", _CHILD, str(state)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    owner = qemu = 0
    try:
        line = reaper.stdout.readline() if reaper.stdout else ""  # after the boot, ~3 s under TCG
        assert len(line.split()) == 2, f"the owner did not boot: {reaper.stderr.read() if reaper.stderr else ''}"
        owner, qemu = map(int, line.split())
        records = [r for r in Journal(state).records() if r.owner == owner]
        assert {r.kind for r in records} == {"process", "tree"}
        assert any(r.pid == qemu and r.start_time == start_time(qemu) for r in records)
        folders = [Path(r.path) for r in records if r.kind == "tree"]
        assert folders and all(f.is_dir() for f in folders)
        assert not _gone(qemu)
        os.kill(owner, signal.SIGKILL)
        reaper.wait(10)  # it exits once the owner and QEMU are both reaped
    finally:
        if reaper.poll() is None:
            for pid in (owner, qemu):
                if pid:
                    os.kill(pid, signal.SIGKILL)
            reaper.kill()
            reaper.wait()
    assert _gone(qemu) and not os.path.exists(f"/proc/{qemu}"), "qemu outlived its owner"
    swept = Journal(state).sweep()
    assert {r.owner for r in swept} == {owner}
    assert list(Journal(state).records()) == []
    assert not any(f.exists() for f in folders)
    assert _qemu_processes() == ""


# -- the container side, and the comparison --------------------------------------------------------


@pytest.mark.real
def test_container_start_is_measured_and_much_faster(boots: _Boots, tmp_path: Path) -> None:
    from realrt.containers import cgroups
    from sim.containers.limits import parse_limits

    engine = require_real(state_dir=str(tmp_path / "state"))
    rootless = bool(getattr(engine, "rootless", False))
    try:
        cgroups.plan(parse_limits("128m"), rootless=rootless)
    except BackendUnavailableError:
        # Rootless on cgroup v1 (or v2 without delegation) there is no cgroup to read the charge
        # from: the measurement is refused, typed, before any image or container is made.
        with pytest.raises(BackendUnavailableError):
            rvm.measure_container_start(engine, memory_mib=128)
        assert engine.containers() == [] and engine.images() == []  # type: ignore[attr-defined]
        _print_summary(boots, None)
        return
    c = rvm.measure_container_start(engine, memory_mib=128, label="container-128")
    assert c.kind == "container" and c.source == "measured" and c.accelerator is None
    assert c.reserved_bytes == 128 * MiB
    assert 0 < c.start_s < 5
    assert 0 < c.memory_bytes < c.reserved_bytes
    assert c.start_s * 10 < boots.first.start_s, (c.start_s, boots.first.start_s)
    assert c.memory_bytes * 10 < boots.first.memory_bytes
    assert engine.containers() == [] and list(engine.journal.records()) == []  # type: ignore[attr-defined]
    _print_summary(boots, c)


def _print_summary(boots: _Boots, container: StartMeasurement | None) -> None:
    lines = ["", "== VM vs container, measured on this host =="]
    for m in (boots.first, boots.second, container):
        if m is None:
            continue
        extra = f" [{m.accelerator}]" if m.accelerator else ""
        lines.append(f"{m.label:>14}{extra}: {m.start_s * 1000:8.1f} ms to marker, "
                     f"{m.memory_bytes / MiB:7.1f} MiB held (reserved {m.reserved_bytes / MiB:.0f} MiB)")
    if boots.first.details.get("kvm_failed"):
        lines.append(f"  KVM tried first and given up: {boots.first.details['kvm_failure']}"[:160])
    print("\n".join(lines))


# -- the initramfs: one entry per name, built safely from many threads ---------------------------------


def _tiny_layer(**extra: bytes) -> Layer:
    layer = Layer()
    layer.add_dir("bin")
    layer.add_file("bin/busybox", b"\x7fELF", mode=0o755)
    layer.add_symlink("bin/sh", "busybox")
    for name, data in extra.items():
        path = name.replace("__", "/")
        if "/" in path and path.split("/")[0] not in layer:
            layer.add_dir(path.split("/")[0])
        layer.add_file(path, data, mode=0o755)
    return layer


def test_the_initramfs_entries_replace_the_layers_own() -> None:
    """A layer that already holds ``init`` and ``dev/console``: the archive holds each name once,
    ours (the script, the character device), the layer's other files kept."""
    layer = _tiny_layer(init=b"#!/bin/sh\necho theirs\n", dev__console=b"not a device", dev__keep=b"kept")
    script = "#!/bin/sh\necho ours\n"
    entries = ird.initramfs_entries(layer, script)
    names = [e.name for e in entries]
    assert len(names) == len(set(names)), f"duplicate entries: {names}"
    by_name = {e.name: e for e in ird.parse_newc(gzip.decompress(ird.initramfs_bytes(layer, script)))}
    assert len(by_name) == len(entries)
    assert by_name["init"].data == script.encode() and by_name["init"].mode == stat.S_IFREG | 0o755
    assert stat.S_ISCHR(by_name["dev/console"].mode) and by_name["dev/console"].rdev == (5, 1)
    assert by_name["dev/keep"].data == b"kept" and stat.S_ISDIR(by_name["dev"].mode)
    assert all(names.index(os.path.dirname(n)) < names.index(n) for n in names if "/" in n), "a parent comes later"
    # Without any of them in the layer: one "dev" added, before what goes in it.
    plain = [e.name for e in ird.initramfs_entries(_tiny_layer(), script)]
    assert plain.count("dev") == 1 and plain.index("dev") < plain.index("dev/console")


def test_the_initramfs_refuses_a_layer_it_cannot_complete() -> None:
    with pytest.raises(LayerFormatError, match="'dev' is not a directory"):
        ird.initramfs_entries(_tiny_layer(dev=b"a file"), "#!/bin/sh\n")
    nested = _tiny_layer()
    nested.add_dir("init")
    nested.add_file("init/x", b"")
    with pytest.raises(LayerFormatError, match="below 'init'"):
        ird.initramfs_entries(nested, "#!/bin/sh\n")


def test_threads_building_one_initramfs_do_not_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads of one process share a pid: each writes its own temporary file all the same (with
    only the pid in its name, one thread's rename took the file another was still writing)."""
    layer, script, threads = _tiny_layer(), "#!/bin/sh\n", 6
    build, barrier = ird.initramfs_bytes, threading.Barrier(threads)

    def together(*args: object) -> bytes:
        data = build(*args)  # type: ignore[arg-type]
        barrier.wait(10)  # every thread past the "is it built?" check before any writes
        return data

    monkeypatch.setattr(ird, "initramfs_bytes", together)
    results: list[object] = []

    def one() -> None:
        try:
            results.append(ird.cached_initramfs(tmp_path, layer, script))
        except BaseException as exc:
            results.append(exc)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert len(results) == threads and len(set(map(str, results))) == 1, results
    path = results[0]
    assert isinstance(path, Path) and path.read_bytes() == build(layer, script)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "a temporary file is left"


# -- a guest's own bookkeeping, with a stand-in for QEMU (no QEMU, no privileges) ---------------------


def _stand_in(tmp_path: Path, script: str) -> Path:
    """An executable that plays QEMU: ``--version`` prints nothing, any other call runs ``script``."""
    path = tmp_path / "fake-qemu"
    path.write_text(f'#!/bin/sh\n[ "$1" = --version ] && exit 0\n{script}\n')
    path.chmod(0o755)
    return path


def test_a_guest_is_reaped_before_its_console_fd_is_closed(tmp_path: Path) -> None:
    """``stop`` reaps QEMU, lets the console thread see EOF and end, and only then closes the
    pipe (closed earlier, its fd number could be reused by an open() the thread then reads)."""
    journal = Journal(tmp_path / "state")
    guest = rguest.Guest(["sh", "-c", f"echo '{rvm.MARKER} 0.5'; exec sleep 30"], accelerator="tcg",
                       journal=journal, workdir=tmp_path / "state" / "vm" / "run-test")
    assert guest.wait_for_marker(time.monotonic() + 10) and guest.console.uptime == 0.5
    assert {r.kind for r in journal.records()} == {"tree", "process"}
    seen: list[tuple[bool, int | None]] = []
    stdout = guest.proc.stdout

    class Watched:
        def close(self) -> None:
            seen.append((guest.console.done, guest.proc.returncode))
            stdout.close()  # type: ignore[union-attr]

    guest.proc.stdout = Watched()  # type: ignore[assignment]
    assert guest.stop(grace=0) == -signal.SIGKILL
    assert seen == [(True, -signal.SIGKILL)], "the fd was closed before the console thread ended"
    assert stdout is not None and stdout.closed
    assert list(journal.records()) == [] and not guest.workdir.exists()
    assert guest.stop(grace=0) == -signal.SIGKILL and seen == [(True, -signal.SIGKILL)] * 2  # idempotent


def test_a_guests_subfolders_exist_when_qemu_starts_and_go_with_it(tmp_path: Path) -> None:
    """A folder QEMU exports to the guest (``-fsdev local,path=...``) must exist at its launch;
    it is in the guest's folder, so ``stop`` removes it with what the guest wrote there."""
    journal = Journal(tmp_path / "state")
    guest = rguest.Guest(["sh", "-c", f"[ -d out ] && echo written > out/report && echo '{rvm.MARKER} 0.5'; "
                                      "exec sleep 30"], accelerator="tcg", journal=journal,
                         workdir=tmp_path / "state" / "vm" / "share-test", subdirs=("out",))
    assert guest.wait_for_marker(time.monotonic() + 10), guest.console.text()
    assert (guest.workdir / "out" / "report").read_text() == "written\n"
    guest.stop(grace=0)
    assert list(journal.records()) == [] and not guest.workdir.exists()


@pytest.mark.parametrize("failing", ["mkdir", "open"])
def test_a_guest_that_cannot_set_up_leaves_no_record(tmp_path: Path, failing: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path / "state")
    workdir = tmp_path / "state" / "vm" / "run-test"
    if failing == "mkdir":
        (tmp_path / "state" / "vm").write_text("a file where the folder goes")
    else:
        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied", str(args[0]))

        monkeypatch.setattr(rguest, "open", refuse, raising=False)
    with pytest.raises(BackendUnavailableError, match="cannot start"):
        rguest.Guest(["sh", "-c", "exit 0"], accelerator="tcg", journal=journal, workdir=workdir)
    assert list(journal.records()) == [] and not workdir.exists()


class _Caught:
    """Keeps the guests a boot made (to check their QEMU is gone afterwards)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.guests: list[rguest.Guest] = []
        init = rguest.Guest.__init__

        def keep(guest: rguest.Guest, *args: Any, **kwargs: Any) -> None:
            init(guest, *args, **kwargs)
            self.guests.append(guest)

        monkeypatch.setattr(rguest.Guest, "__init__", keep)


def _fake_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, **options: Any) -> rvm.VM:
    kernel = tmp_path / "vmlinuz-0-test"
    kernel.write_bytes(b"not a kernel")
    vm = rvm.VM(accel="tcg", state_dir=tmp_path / "state", kernel=rvm.Kernel(kernel, "0-test"),
                qemu=str(_stand_in(tmp_path, script)), **options)
    monkeypatch.setattr(vm, "_initramfs", lambda: tmp_path / "initrd")
    return vm


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["stderr_text", "text"])
def test_an_interrupt_after_a_failed_boot_stops_the_guest(tmp_path: Path, where: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest printed no marker in time; a KeyboardInterrupt while the failure is described
    (between the wait and the stop) still stops QEMU and drops its records."""
    vm = _fake_vm(tmp_path, monkeypatch, "exec sleep 30", boot_timeout=0.3)
    caught = _Caught(monkeypatch)
    monkeypatch.setattr(rguest.Guest if where == "stderr_text" else rconsole.Console, where, _interrupt)
    with pytest.raises(KeyboardInterrupt):
        vm.boot()
    assert len(caught.guests) == 1 and caught.guests[0].proc.returncode == -signal.SIGKILL
    assert caught.guests[0].console.done
    assert not vm.running and vm.pid is None
    assert list(Journal(vm.state_dir).records()) == [] and not caught.guests[0].workdir.exists()


def test_an_interrupt_while_a_booted_guest_is_measured_stops_it(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    vm = _fake_vm(tmp_path, monkeypatch, f"echo '{rvm.MARKER} 0.25'; exec sleep 30")
    caught = _Caught(monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(rvm.VM, "_measure", _interrupt)
        with pytest.raises(KeyboardInterrupt):
            vm.boot()
    assert len(caught.guests) == 1 and caught.guests[0].proc.returncode == -signal.SIGKILL
    assert not vm.running and vm.pid is None and vm.measurement is None
    assert list(Journal(vm.state_dir).records()) == []
    measured = vm.boot()  # nothing of the interrupted boot is in the way
    try:
        assert measured.start_s > 0 and measured.details["guest_uptime_s"] == 0.25 and vm.running
    finally:
        vm.stop(grace=0)
    assert list(Journal(vm.state_dir).records()) == [] and caught.guests[1].console.done


@pytest.mark.real
@pytest.mark.root_only
@pytest.mark.parametrize("point", ["logs", "usage"])
def test_an_interrupted_container_measurement_leaves_nothing(real: Any, point: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt in ``measure_container_start`` while it polls for the marker, or while
    it reads the charge of the running container: the container is removed on the way out (the
    ``real`` fixture checks no cgroup, mount or journal record is left)."""
    from tests.realcheck import leftovers

    method = getattr(real, point)

    def interrupted(ref: str) -> object:
        assert leftovers() != [] and real.containers(all=False) != [], "no running container with a cgroup"
        raise KeyboardInterrupt

    monkeypatch.setattr(real, point, interrupted)
    with pytest.raises(KeyboardInterrupt):
        rvm.measure_container_start(real, memory_mib=128, hold=60)
    monkeypatch.undo()
    assert getattr(real, point) == method
    assert real.containers(all=True) == [] and leftovers() == []
