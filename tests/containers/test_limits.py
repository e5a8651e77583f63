"""资源限制 (resource limits): Docker's parsing and cgroup translation (sim/containers/limits.py), and the
real thing (realrt/containers/cgroups.py): a memory hog OOM-killed, a fork loop stopped, a busy loop throttled.

Real tests leave nothing: after each one no ``*layerlab*`` folder is left in /sys/fs/cgroup
(not even the per-controller ``layerlab`` parent), no journal record, no mount.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from realrt.containers import cgroups
from realrt.containers import runtime as rt
from realrt.journal import Journal
from sim.cli import main as cli_main
from sim.containers.limits import (
    Limits,
    cgroup_v1_files,
    cgroup_v2_files,
    cpu_quota_us,
    parse_cpu_shares,
    parse_cpus,
    parse_limits,
    parse_memory,
    parse_pids_limit,
    shares_to_weight,
)
from sim.errors import BackendUnavailableError, InvalidLimitError
from tests.backends import require_real
from tests.realcheck import leftovers as _leftovers
from tests.realcheck import mounts_below as _mounts_below

MiB = 1 << 20

# -- parsing: exactly what the docker CLI and daemon accept and say ------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("512m", 512 * MiB), ("512M", 512 * MiB), ("512mb", 512 * MiB), ("512MiB", 512 * MiB), ("512 m", 512 * MiB),
    ("1g", 1 << 30), ("1.5g", 3 << 29), ("0.5G", 1 << 29), ("1t", 1 << 40), ("6m", 6 * MiB), ("6144k", 6 * MiB),
    ("6291456", 6291456), ("6291456b", 6291456), ("6291456B", 6291456), ("1e7", 10_000_000),
    ("6.5m", int(6.5 * MiB)), ("0", None), ("0b", None),
])
def test_memory_sizes_as_docker_reads_them(text: str, expected: int | None) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("1x", "invalid argument \"1x\" for \"-m, --memory\" flag: invalid suffix: 'x'"),
    ("5kbx", "invalid argument \"5kbx\" for \"-m, --memory\" flag: invalid suffix: 'kbx'"),
    ("5mx", "invalid argument \"5mx\" for \"-m, --memory\" flag: invalid suffix: 'mx'"),
    ("5KBytes", "invalid argument \"5KBytes\" for \"-m, --memory\" flag: invalid suffix: 'KBytes'"),
    ("5ib", "invalid argument \"5ib\" for \"-m, --memory\" flag: invalid suffix: 'ib'"),
    ("-1", "invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'"),
    ("-64m", "invalid argument \"-64m\" for \"-m, --memory\" flag: invalid size: '-64m'"),
    ("", "invalid argument \"\" for \"-m, --memory\" flag: invalid size: ''"),
    ("m", "invalid argument \"m\" for \"-m, --memory\" flag: invalid size: 'm'"),
    ("1.2.3m", 'invalid argument "1.2.3m" for "-m, --memory" flag: strconv.ParseFloat: parsing "1.2.3": '
               "invalid syntax"),
    ("64m ", 'invalid argument "64m " for "-m, --memory" flag: strconv.ParseFloat: parsing "64m": invalid syntax'),
    ("4m", "Minimum memory limit allowed is 6MB"),
    ("6291455", "Minimum memory limit allowed is 6MB"),
    ("1k", "Minimum memory limit allowed is 6MB"),
])
def test_bad_memory_gets_dockers_message(text: str, message: str) -> None:
    with pytest.raises(InvalidLimitError) as caught:
        parse_memory(text)
    assert str(caught.value) == message


def test_memory_as_an_integer_is_bytes() -> None:
    assert parse_memory(64 * MiB) == 64 * MiB and parse_memory(0) is None and parse_memory(None) is None
    for bad in (-1, 5 * MiB):
        with pytest.raises(InvalidLimitError, match="^Minimum memory limit allowed is 6MB$"):
            parse_memory(bad)
    for wrong in (True, 1.5, b"64m"):
        with pytest.raises(InvalidLimitError):
            parse_memory(wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "nano"), [
    ("1.5", 1_500_000_000), ("3/2", 1_500_000_000), ("15e-1", 1_500_000_000), (".5", 500_000_000),
    ("0.01", 10_000_000), ("2", 2_000_000_000), ("0.123456789", 123_456_789), (0.2, 200_000_000),
    (1, 1_000_000_000), ("0", None), ("0.0", None), (None, None),
])
def test_cpus_as_docker_reads_them(value: object, nano: int | None) -> None:
    assert parse_cpus(value, cpus_available=2) == nano  # type: ignore[arg-type]


RANGE = "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"


@pytest.mark.parametrize(("value", "message"), [
    ("abc", 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'),
    ("1,5", 'invalid argument "1,5" for "--cpus" flag: failed to parse 1,5 as a rational number'),
    ("", 'invalid argument "" for "--cpus" flag: failed to parse  as a rational number'),
    ("1/0", 'invalid argument "1/0" for "--cpus" flag: failed to parse 1/0 as a rational number'),
    ("0.0000000001", 'invalid argument "0.0000000001" for "--cpus" flag: value is too precise'),
    ("1/3", 'invalid argument "1/3" for "--cpus" flag: value is too precise'),
    ("-1", RANGE), ("-0.5", RANGE), ("2.01", RANGE), ("0.001", RANGE), ("100", RANGE),
])
def test_bad_cpus_get_dockers_message(value: str, message: str) -> None:
    with pytest.raises(InvalidLimitError) as caught:
        parse_cpus(value, cpus_available=2)
    assert str(caught.value) == message


def test_cpus_are_checked_against_this_hosts_cpus() -> None:
    n = len(os.sched_getaffinity(0))
    assert parse_cpus(str(n)) == n * 10**9
    with pytest.raises(InvalidLimitError, match=f"from 0.01 to {n}.00, as there are only {n} CPUs"):
        parse_cpus(str(n + 1))


@pytest.mark.parametrize(("value", "shares"), [
    ("512", 512), (512, 512), ("0x400", 1024), ("0", None), (0, None), ("2", 2), (262144, 262144), (None, None),
])
def test_cpu_shares(value: object, shares: int | None) -> None:
    assert parse_cpu_shares(value) == shares  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "message"), [
    ("x", 'invalid argument "x" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    ("1.5", 'invalid argument "1.5" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "1.5": invalid syntax'),
    ("99999999999999999999", 'invalid argument "99999999999999999999" for "-c, --cpu-shares" flag: '
                             'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
    ("-5", "invalid CPU shares (-5): value must be a positive integer"),
    (1, "the minimum allowed cpu-shares is 2"),
    (262145, "the maximum allowed cpu-shares is 262144"),
])
def test_bad_cpu_shares(value: object, message: str) -> None:
    with pytest.raises(InvalidLimitError) as caught:
        parse_cpu_shares(value)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_pids_limit_zero_or_negative_is_unlimited() -> None:
    assert [parse_pids_limit(v) for v in (100, "100", 0, "0", -1, "-5", None)] == [100, 100, -1, -1, -1, -1, None]
    with pytest.raises(InvalidLimitError, match='for "--pids-limit" flag: strconv.ParseInt: parsing "ten"'):
        parse_pids_limit("ten")


def test_parse_limits_and_the_limits_value() -> None:
    limits = parse_limits(memory="512m", cpus="1.5", cpu_shares=512, pids_limit=100)
    assert limits == Limits(memory=512 * MiB, nano_cpus=1_500_000_000, cpu_shares=512, pids_limit=100)
    assert limits.cpus == 1.5 and limits.flags() == ("--memory", "--cpus", "--cpu-shares", "--pids-limit")
    assert Limits.from_dict(limits.to_dict()) == limits
    assert not parse_limits() and not Limits() and parse_limits(pids_limit=0) == Limits(pids_limit=-1)
    assert hash(limits) == hash(Limits(**limits.to_dict()))  # frozen, a value


# -- translation: the files runc writes, and their exact contents --------------------------------------


def test_cgroup_v1_files_exactly_as_runc_writes_them() -> None:
    limits = parse_limits(memory="512m", cpus="1.5", cpu_shares=512, pids_limit=100)
    assert list(cgroup_v1_files(limits).items()) == [
        (("memory", "memory.limit_in_bytes"), "536870912"),
        (("memory", "memory.memsw.limit_in_bytes"), "1073741824"),  # --memory-swap defaults to 2 x --memory
        (("cpu", "cpu.shares"), "512"),
        (("cpu", "cpu.cfs_period_us"), "100000"),
        (("cpu", "cpu.cfs_quota_us"), "150000"),
        (("pids", "pids.max"), "100"),
    ]
    assert ("memory", "memory.memsw.limit_in_bytes") not in cgroup_v1_files(limits, swap=False)
    assert cgroup_v1_files(parse_limits(pids_limit=-1)) == {("pids", "pids.max"): "max"}
    assert cgroup_v1_files(parse_limits(cpus="0.01")) == {("cpu", "cpu.cfs_period_us"): "100000",
                                                          ("cpu", "cpu.cfs_quota_us"): "1000"}
    assert cgroup_v1_files(Limits()) == {}


def test_cgroup_v2_files_exactly_as_runc_writes_them() -> None:
    limits = parse_limits(memory="512m", cpus="1.5", cpu_shares=512, pids_limit=100)
    assert list(cgroup_v2_files(limits).items()) == [
        ("memory.swap.max", "536870912"),  # v2 counts swap alone: 2 x 512m - 512m
        ("memory.max", "536870912"),
        ("cpu.weight", "20"),
        ("cpu.max", "150000 100000"),
        ("pids.max", "100"),
    ]
    assert cgroup_v2_files(parse_limits(memory="16m"), swap=False) == {"memory.max": "16777216"}
    assert cgroup_v2_files(parse_limits(cpus="0.2", pids_limit=0)) == {"cpu.max": "20000 100000", "pids.max": "max"}
    assert cgroup_v2_files(parse_limits(cpu_shares=1024)) == {"cpu.weight": "39"}


def test_shares_to_weight_is_runcs_formula() -> None:
    assert [shares_to_weight(s) for s in (2, 512, 1024, 2048, 262144)] == [1, 20, 39, 79, 10000]
    assert all(1 <= shares_to_weight(s) <= 10000 for s in range(2, 262145, 997))
    assert [cpu_quota_us(n) for n in (10_000_000, 200_000_000, 1_500_000_000, 123_456_789)] == [
        1000, 20000, 150000, 12345]


# -- the engine and the CLI refuse bad limits before anything exists (model backend) ------------------


def test_sim_create_refuses_bad_limits_before_anything(tmp_path: Path) -> None:
    engine: Any = sim.connect("sim", state_dir=str(tmp_path / "state"))
    for bad in ({"memory": "1x"}, {"memory": "4m"}, {"cpus": "-1"}, {"cpus": "abc"}, {"cpu_shares": -5},
                {"pids_limit": "ten"}):
        with pytest.raises(InvalidLimitError):
            engine.create("busybox", ["true"], **bad)
    assert engine.containers() == [] and engine.images() == [] and engine.list_volumes() == []
    assert not (tmp_path / "state" / "containers").exists() or not list((tmp_path / "state" / "containers").iterdir())


def test_sim_containers_keep_their_limits(tmp_path: Path) -> None:
    engine: Any = sim.connect("sim", state_dir=str(tmp_path / "state"))
    info = engine.create("busybox", ["true"], memory="64m", cpus=0.5, pids_limit=20)
    assert engine._container(info.id).limits == Limits(memory=64 * MiB, nano_cpus=500_000_000,  # type: ignore[attr-defined]
                                                       pids_limit=20)
    engine.close()
    again: Any = sim.connect("sim", state_dir=str(tmp_path / "state"))
    assert again._container(info.id).limits == Limits(memory=64 * MiB, nano_cpus=500_000_000,  # type: ignore[attr-defined]
                                                      pids_limit=20)
    assert again.start(info.id).exit_code == 0  # the model stores limits; it enforces none


def test_cli_flags_reach_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path))
    assert cli_main(["run", "--backend", "sim", "-m", "1x", "busybox", "true"]) != 0
    assert "invalid suffix: 'x'" in capsys.readouterr().err
    assert cli_main(["run", "--backend", "sim", "--memory", "4m", "busybox", "true"]) != 0
    assert "Minimum memory limit allowed is 6MB" in capsys.readouterr().err
    assert cli_main(["run", "--backend", "sim", "--cpus", "-1", "busybox", "true"]) != 0
    assert "range of CPUs is from 0.01" in capsys.readouterr().err
    assert cli_main(["create", "--backend", "sim", "-m", "64m", "--cpus", "0.5", "--cpu-shares", "512",
                     "--pids-limit", "10", "busybox", "true"]) == 0
    cid = capsys.readouterr().out.strip()
    engine: Any = sim.connect("sim", state_dir=str(tmp_path / "sim"))
    assert engine._container(cid).limits == Limits(64 * MiB, 500_000_000, 512, 10)  # type: ignore[attr-defined]


# -- realrt.containers.cgroups without the kernel: detection, refusals and a v2 tree in a folder ----------------


def _mountinfo(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "mountinfo"
    path.write_text("".join(f"{i} 1 0:{i} / {line}\n" for i, line in enumerate(lines, 30)))
    return str(path)


def test_detect_v1_hybrid_and_v2(tmp_path: Path) -> None:
    v1 = _mountinfo(tmp_path, [
        "/sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
        "/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
        "/sys/fs/cgroup/pids rw - cgroup cgroup rw,pids",
        "/sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
    ])
    h = cgroups.detect(mountinfo=v1)
    assert h is not None and h.version == 1 and h.controllers == {"cpu", "cpuacct", "memory", "pids"}
    assert h.roots["cpu"] == h.roots["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    v2 = _mountinfo(tmp_path, [f"{unified} rw - cgroup2 cgroup2 rw,nsdelegate"])
    h = cgroups.detect(mountinfo=v2)
    assert h is not None and h.version == 2 and h.roots == {"": str(unified)}
    assert h.controllers == {"cpu", "memory", "pids"}
    (unified / "cgroup.controllers").write_text("hugetlb\n")  # a hybrid host's empty v2 tree: unusable
    assert cgroups.detect(mountinfo=v2) is None


def test_rootless_limits_are_refused_where_rootless_runc_refuses_them() -> None:
    limits = parse_limits(memory="16m")
    v1 = cgroups.Hierarchy(1, {"memory": "/m", "cpu": "/c", "pids": "/p"}, frozenset({"memory", "cpu", "pids"}))
    with pytest.raises(BackendUnavailableError) as caught:
        cgroups.plan(limits, rootless=True, hierarchy=v1)
    assert "rootless containers cannot apply --memory on cgroup v1 without delegation (as rootless runc and " \
           "podman)" in str(caught.value)
    no_delegation = cgroups.Hierarchy(2, {}, frozenset())
    with pytest.raises(BackendUnavailableError, match="cgroup v2 without a delegated writable subtree"):
        cgroups.plan(parse_limits(cpus="0.5", pids_limit=5), rootless=True, hierarchy=no_delegation)
    memory_only = cgroups.Hierarchy(2, {"": "/x"}, frozenset({"memory", "pids"}))
    with pytest.raises(BackendUnavailableError, match="--cpus: the cpu cgroup controller is not delegated"):
        cgroups.plan(parse_limits(cpus="0.5"), rootless=True, hierarchy=memory_only)
    assert cgroups.plan(Limits(), rootless=True, hierarchy=v1) is None  # no limits: nothing to do
    assert cgroups.plan(limits, rootless=False, hierarchy=v1) is v1


def test_a_v2_cgroup_in_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The v2 steps, on a plain folder standing in for /sys/fs/cgroup: controllers handed down,
    the limit files in runc's order, the pid written to cgroup.procs, the counters read back."""
    monkeypatch.setattr(cgroups, "_write", lambda path, value: Path(path).write_text(value))  # files appear
    base = tmp_path / "cg"
    base.mkdir()
    journal = Journal(tmp_path / "state")
    h = cgroups.Hierarchy(2, {"": str(base)}, frozenset({"memory", "cpu", "pids"}), swap=True)
    limits = parse_limits(memory="16m", cpus="0.5", cpu_shares=2048, pids_limit=0)
    group = cgroups.create(limits, "c1", journal=journal, rootless=False, hierarchy=h)
    assert group is not None and group.paths == (str(base / "layerlab" / "c1"),)
    assert (base / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (base / "layerlab" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    leaf = base / "layerlab" / "c1"
    assert {f: (leaf / f).read_text() for f in cgroup_v2_files(limits)} == {
        "memory.swap.max": "16777216", "memory.max": "16777216", "cpu.weight": "79", "cpu.max": "50000 100000",
        "pids.max": "max"}
    assert [r.kind for r in journal.records()] == ["cgroup"]
    group.add(4242)
    assert (leaf / "cgroup.procs").read_text() == "4242"
    (leaf / "memory.current").write_text("1234\n")
    (leaf / "cpu.stat").write_text("usage_usec 2500000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 300000\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (leaf / "pids.current").write_text("3\n")
    usage = group.usage()
    assert (usage.memory_bytes, usage.cpu_seconds, usage.nr_periods, usage.nr_throttled, usage.throttled_seconds,
            usage.pids, usage.oom_kills, usage.memory_peak_bytes) == (1234, 2.5, 10, 4, 0.3, 3, 1, None)


@pytest.mark.root_only
def test_the_delegated_subtree_is_the_highest_folder_this_user_owns(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup2"
    path = mount
    for part in ("", "user.slice", "user@1000.service", "app.slice", "shell.scope"):
        path = path / part if part else path
        path.mkdir(exist_ok=True)
        for name in ("cgroup.procs", "cgroup.subtree_control"):
            (path / name).touch()
    for foreign in (mount, mount / "user.slice"):
        os.chown(foreign, 65534, 65534)
    assert cgroups._delegated_base(str(mount), "/user.slice/user@1000.service/app.slice/shell.scope") == str(
        mount / "user.slice" / "user@1000.service")
    os.chown(mount / "user.slice" / "user@1000.service" / "app.slice", 65534, 65534)
    assert cgroups._delegated_base(str(mount), "/user.slice/user@1000.service/app.slice/shell.scope") is None



# -- the kernel ---------------------------------------------------------------------------------------------


def _hog(mib: int) -> str:
    """Anonymous memory in busybox: the shell keeps a command substitution's output in a variable."""
    return f"x=$(head -c {mib * MiB} /dev/zero | tr '\\0' a); echo done ${{#x}}"


@pytest.fixture
def union(real: Any) -> Iterator[object]:
    from sim.images.base import busybox_layer

    with real.union([busybox_layer()]) as mounted:
        yield mounted


def _start(real: Any, union: object, script: str, **limits: object) -> rt.Process:
    spec = rt.ContainerSpec(("sh", "-c", script), limits=parse_limits(**limits))  # type: ignore[arg-type]
    return rt.start_on(union, spec, journal=real.journal)  # type: ignore[attr-defined]


@pytest.mark.real
@pytest.mark.root_only
class TestKernelLimits:
    def test_a_memory_hog_is_oom_killed(self, real: Any, union: object) -> None:
        started = time.monotonic()
        with _start(real, union, _hog(50), memory="16m") as process:
            code = process.wait(60)
        elapsed = time.monotonic() - started
        usage = process.usage()
        assert code == 137, process.stderr
        assert b"done" not in process.stdout
        assert usage is not None and usage.oom_kills and usage.oom_kills >= 1
        assert usage.memory_peak_bytes is not None and usage.memory_peak_bytes <= 16 * MiB
        print(f"OOM kill of a 50 MiB hog under --memory 16m: exit {code} after {elapsed * 1000:.0f} ms "
              f"(peak {usage.memory_peak_bytes / MiB:.1f} MiB, oom_kill {usage.oom_kills})")

    def test_the_same_hog_fits_a_larger_limit(self, real: Any, union: object) -> None:
        with _start(real, union, _hog(8), memory="256m") as process:
            assert process.wait(60) == 0, process.stderr
        assert process.stdout == f"done {8 * MiB}\n".encode()
        usage = process.usage()
        assert usage is not None and usage.oom_kills == 0 and usage.memory_peak_bytes > 8 * MiB  # type: ignore[operator]

    def test_through_the_engine_run_memory_16m_exits_137(self, real: Any) -> None:
        result = real.run("busybox", ["sh", "-c", _hog(50)], memory="16m", remove=True)
        assert result.exit_code == 137 and b"done" not in result.stdout

    def test_pids_limit_stops_a_fork_loop(self, real: Any) -> None:
        result = real.run("busybox", ["sh", "-c", "for i in $(seq 50); do sleep 5 & done; echo all started"],
                          pids_limit=10, remove=True)
        assert b"can't fork" in result.stderr and b"all started" not in result.stdout, result

    def test_pids_current_never_passes_the_limit(self, real: Any, union: object) -> None:
        # The loop runs in a subshell (a failed fork ends a shell); its sleeps stay, PID 1 waits.
        script = "(for i in $(seq 30); do sleep 3 & done) 2>/dev/null; sleep 1"
        with _start(real, union, script, pids_limit=10) as process:
            peak = 0
            while process.running:
                usage = process.usage()
                peak = max(peak, usage.pids or 0) if usage else peak
                time.sleep(0.02)
            process.wait(30)
        assert 5 <= peak <= 10, peak

    def test_cpus_throttle_a_busy_loop(self, real: Any, union: object) -> None:
        started = time.monotonic()
        with _start(real, union, "timeout 1 sh -c 'while :; do :; done'; true", cpus="0.2") as process:
            assert process.wait(30) == 0, process.stderr
        wall = time.monotonic() - started
        usage = process.usage()
        assert usage is not None and usage.cpu_seconds is not None and usage.nr_throttled
        ratio = usage.cpu_seconds / wall
        assert ratio < 0.35, ratio  # 0.2 CPUs; an unthrottled loop uses ~1.0
        print(f"--cpus 0.2 busy loop: {usage.cpu_seconds:.3f} CPU s in {wall:.3f} s wall (ratio {ratio:.2f}), "
              f"throttled in {usage.nr_throttled}/{usage.nr_periods} periods, {usage.throttled_seconds:.3f} s waiting")

    def test_the_files_hold_what_the_translation_says(self, real: Any, union: object) -> None:
        limits = parse_limits(memory="512m", cpus="1.5", cpu_shares=512, pids_limit=100)
        spec = rt.ContainerSpec(("sleep", "30"), limits=limits)
        with rt.start_on(union, spec, journal=real.journal, cgroup_name="files-check") as process:  # type: ignore[attr-defined]
            group = process.cgroup
            assert group is not None
            if group.version == 1:
                expected = {os.path.join(group.dirs[c], f): v
                            for (c, f), v in cgroup_v1_files(limits, swap=group.hierarchy.swap).items()}
            else:
                expected = {os.path.join(group.dirs[""], f): v
                            for f, v in cgroup_v2_files(limits, swap=group.hierarchy.swap).items()}
            assert {p: Path(p).read_text().strip() for p in expected} == expected
            assert all(p.endswith("/layerlab/files-check") for p in group.paths)
            for path in group.paths:
                assert str(process.pid) in Path(path, "cgroup.procs").read_text().split()
            process.stop(grace=0)
        assert all(not os.path.exists(p) for p in group.paths)

    def test_exec_joins_the_containers_cgroup(self, real: Any, union: object) -> None:
        spec = rt.ContainerSpec(("sleep", "30"), limits=parse_limits(pids_limit=50))
        with rt.start_on(union, spec, journal=real.journal, cgroup_name="exec-check") as process:  # type: ignore[attr-defined]
            result = rt.exec(process, ["cat", "/proc/self/cgroup"])
            assert result.exit_code == 0
            assert any(line.endswith(":/layerlab/exec-check") for line in result.stdout.decode().splitlines())
            process.stop(grace=0)

    def test_no_limits_no_cgroup(self, real: Any, union: object) -> None:
        with _start(real, union, "cat /proc/self/cgroup") as process:
            assert process.wait(30) == 0
        assert process.cgroup is None and process.usage() is None and b"layerlab" not in process.stdout

    def test_engine_detached_container_with_limits(self, real: Any) -> None:
        info = real.create("busybox", ["sleep", "30"], cpus="0.5", memory="64m", name="limited")
        real.start(info.id, detach=True)
        container = real._container(info.id)  # type: ignore[attr-defined]
        assert container.process.cgroup.name == info.id
        assert real.exec(info.id, "cat /proc/self/cgroup").stdout.decode().count(f"/layerlab/{info.id}") >= 1
        real.stop(info.id, grace=0)
        assert container.process is None
        real.remove(info.id)

    def test_bad_limits_create_nothing(self, real: Any, union: object) -> None:
        state = Path(real.state_dir)  # type: ignore[attr-defined]
        mounts, records = _mounts_below(state), list(real.journal.records())  # type: ignore[attr-defined]
        for bad in ({"memory": "4m"}, {"memory": "12q"}, {"cpus": "-1"}, {"cpus": "lots"}, {"cpu_shares": "-2"},
                    {"pids_limit": "1.5"}):
            with pytest.raises(InvalidLimitError):
                real.run("busybox", ["true"], remove=True, **bad)
        assert real.containers() == [] and _leftovers() == [] and _mounts_below(state) == mounts
        assert list(real.journal.records()) == records  # type: ignore[attr-defined]
        # Limits built by hand skip parse_limits: a 0 us quota reaches the kernel, which refuses it.
        spec = rt.ContainerSpec(("true",), limits=Limits(nano_cpus=1))
        with pytest.raises(InvalidLimitError, match="cpu.cfs_quota_us|cpu.max"):
            rt.run_on(union, spec, journal=real.journal)  # type: ignore[attr-defined]
        assert _leftovers() == [] and list(real.journal.records()) == records  # type: ignore[attr-defined]

    @pytest.mark.parametrize("point", ["recorded", "made", "running"])
    def test_kill_points_then_sweep(self, real: Any, union: object, point: str) -> None:
        """The owner is SIGKILLed right after the cgroup's journal record (before the mkdir), once the
        folders and limit files exist, or with the container running inside; a sweep (run twice)
        then leaves no cgroup folder, no process and no record."""
        journal = real.journal  # type: ignore[attr-defined]
        report_r, report_w = os.pipe()
        owner = os.fork()
        if owner == 0:  # pragma: no cover - child
            try:
                os.close(report_r)
                real_record, real_make = journal.record, cgroups.Cgroup._make

                def record(kind: str, *args: object, **kwargs: object) -> object:
                    rec = real_record(kind, *args, **kwargs)
                    if kind == "process":
                        os.write(report_w, f"{kwargs.get('pid', 0)} ".encode())
                    if kind == "cgroup" and point == "recorded":
                        os.kill(os.getpid(), signal.SIGKILL)
                    return rec

                def make(self: cgroups.Cgroup, limits: Limits) -> None:
                    real_make(self, limits)
                    if point == "made":
                        os.kill(os.getpid(), signal.SIGKILL)

                journal.record = record
                cgroups.Cgroup._make = make  # type: ignore[method-assign]
                process = _start(real, union, "sleep 100", memory="32m", pids_limit=20)
                os.write(report_w, f"{process.pid} ".encode())
            finally:
                os.kill(os.getpid(), signal.SIGKILL)
        os.close(report_w)
        pids = []
        while chunk := os.read(report_r, 4096):
            pids += [int(p) for p in chunk.split()]
        os.close(report_r)
        os.waitpid(owner, 0)
        assert pids, "the owner reported no pid"
        if point != "recorded":
            assert _leftovers(), "the killed owner should have left its cgroup"
        assert [r for r in journal.records() if r.kind == "cgroup" and r.owner == owner]
        journal.sweep()
        journal.sweep()
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in pids):
            assert time.monotonic() < deadline, "a container process survived the sweep"
            time.sleep(0.01)
        assert _leftovers() == []
        assert not [r for r in journal.records() if r.owner == owner]


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.real
def test_rootless_limits_on_v1_are_refused_before_anything(tmp_path_factory: pytest.TempPathFactory) -> None:
    """As rootless runc and podman: no cgroup v1 limits without delegation; nothing is created."""
    hierarchy = cgroups.detect(rootless=True)
    if hierarchy is not None and hierarchy.version == 2 and hierarchy.roots:
        pytest.skip("this host delegates a cgroup v2 subtree: rootless limits are allowed here")
    state = tmp_path_factory.mktemp("rootless-limits")
    engine: Any = require_real(rootless=True, state_dir=str(state))
    try:
        with pytest.raises(BackendUnavailableError, match="rootless containers cannot apply --memory"):
            engine.create("busybox", ["true"], memory="16m")
        assert engine.containers() == [] and engine.images() == []
        assert list(engine.journal.records()) == []  # type: ignore[attr-defined]
        assert engine.run("busybox", ["true"], remove=True).exit_code == 0  # no limits: nothing to refuse
    finally:
        engine.close()
    assert _leftovers() == []
