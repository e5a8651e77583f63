"""The real container runtime (realrt.containers.runtime) over a kernel overlay of the busybox base layer.

Every real test runs inside ``clean_host``: afterwards the host's mount table,
the journal and the process table must be as they were before it.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from realrt.containers import runtime as rt
from sim.digest import Digest, sha256_digest
from sim.errors import BackendUnavailableError, ContainerStateError, UnsafeLayerError
from sim.images.base import GROUP, PASSWD, busybox_layer, find_busybox
from sim.interface import Engine, UnionMount
from sim.layers.layer import Directory, RegularFile, Symlink
from tests.backends import require_real

DOCKER_CAPS = 0xA80425FB


def _busybox_or_skip() -> None:
    try:
        find_busybox()
    except BackendUnavailableError as exc:
        if os.environ.get("LAYERLAB_REQUIRE_REAL") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


# -- the base layer (no privileges needed) ---------------------------------------------------


def test_busybox_layer_is_deterministic_and_complete() -> None:
    _busybox_or_skip()
    layer = busybox_layer()
    assert layer.frozen
    binary = layer["bin/busybox"]
    assert isinstance(binary, RegularFile) and binary.mode == 0o755 and binary.uid == binary.gid == 0
    assert binary.data == Path(find_busybox()).read_bytes()
    sh = layer["bin/sh"]
    assert isinstance(sh, Symlink) and sh.target == "busybox"
    assert "bin/busybox" in layer and "bin/[" in layer and "bin/echo" in layer
    assert layer["etc/passwd"].data == PASSWD and layer["etc/group"].data == GROUP  # type: ignore[attr-defined]
    modes = {p: layer[p].mode for p in ("tmp", "root", "proc", "sys", "dev", "etc")}  # type: ignore[attr-defined]
    assert modes == {"tmp": 0o1777, "root": 0o700, "proc": 0o755, "sys": 0o755, "dev": 0o755, "etc": 0o755}
    assert all(e.mtime_ns == 0 for _, e in layer.items() if isinstance(e, (RegularFile, Directory, Symlink)))
    assert "etc/hostname" not in layer  # the runtime gives the hostname

    from sim.images import base

    def digest() -> Digest:
        buf = io.BytesIO()
        busybox_layer().to_tar(buf)
        return sha256_digest(buf.getvalue())

    first = digest()
    base._build.cache_clear()  # rebuilt from the file: the same bytes
    assert digest() == first


def test_busybox_layer_names_the_package_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.images import base

    monkeypatch.setattr(base, "BUSYBOX_CANDIDATES", ("/nonexistent/busybox",))
    monkeypatch.setattr(base.shutil, "which", lambda name: None)
    with pytest.raises(BackendUnavailableError, match="busybox-static"):
        busybox_layer()


def test_a_dynamic_busybox_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.images import base

    fake = tmp_path / "busybox"
    fake.write_bytes(Path("/bin/sh").resolve().read_bytes() if Path("/bin/sh").exists() else b"")
    monkeypatch.setattr(base, "BUSYBOX_CANDIDATES", (str(fake),))
    monkeypatch.setattr(base.shutil, "which", lambda name: None)
    with pytest.raises(BackendUnavailableError, match="busybox-static"):
        busybox_layer()


# -- the specification: bad input is refused before anything happens ---------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"argv": ()},
        {"argv": "echo hi"},
        {"argv": ("echo", "a\x00b")},
        {"argv": ("true",), "env": ("NOEQUALS",)},
        {"argv": ("true",), "env": ("=x",)},
        {"argv": ("true",), "cwd": "relative"},
        {"argv": ("true",), "cwd": "/a/../b"},
        {"argv": ("true",), "uid": -1},
        {"argv": ("true",), "gid": 2**32},
        {"argv": ("true",), "hostname": ""},
        {"argv": ("true",), "hostname": "x" * 65},
    ],
)
def test_bad_specs_are_value_errors(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        rt.ContainerSpec(**kwargs)


@pytest.mark.parametrize("target", ["/", "/proc", "/proc/sys", "data", "/a/../b"])
def test_bad_bind_targets_are_value_errors(target: str) -> None:
    with pytest.raises(ValueError):
        rt.BindMount("/tmp", target)


def test_spec_normalises_env_and_paths() -> None:
    spec = rt.ContainerSpec(["echo", "x"], env={"A": "1", "B": "x=y"}, cwd="//work/./dir/")  # type: ignore[arg-type]
    assert spec.argv == ("echo", "x") and spec.env == ("A=1", "B=x=y") and spec.cwd == "/work/dir"


# -- the real runtime ---------------------------------------------------------------------------


def _mountinfo(under: Path | None = None) -> list[str]:
    """The host's mount points (all, or those below ``under``) and mounts any test names "layerlab-inner"."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        lines = [line for line in fh if under is None or line.split()[4].startswith(str(under))
                 or "layerlab-inner" in line]
    return sorted(" ".join(line.split()[3:5]) for line in lines)


def _children() -> set[int]:
    me = str(os.getpid())
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="utf-8") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                out.add(int(name))
    return out


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal and mounts of our own: other runs on the machine cannot blur the before/after checks."""
    path = tmp_path_factory.mktemp("runtime-state")
    os.chmod(path, 0o700)
    return path


@pytest.fixture(params=["root", "rootless"])
def engine(request: pytest.FixtureRequest, state_dir: Path) -> Engine:
    """Root mode (as root only) and rootless mode: a user namespace mapping 0 to the caller, the
    overlay mounted by the rootless helper and the container started in its namespaces."""
    _busybox_or_skip()
    rootless = request.param == "rootless"
    if not rootless and os.geteuid() != 0:
        pytest.skip("the runtime's root mode needs root")
    shared = require_real(rootless=rootless)  # skips, or fails under LAYERLAB_REQUIRE_REAL=1
    return type(shared)(rootless=rootless, state_dir=state_dir)  # type: ignore[call-arg]


def rootless(engine: Engine) -> bool:
    return bool(engine.rootless)  # type: ignore[attr-defined]


@pytest.fixture
def clean_host(engine: Engine, state_dir: Path) -> Iterator[None]:
    """The host's mounts, the journal and our children, compared before and after the test.

    Every mount a container could leak lands below its root, which is below ``state_dir``."""
    mounts, children = _mountinfo(state_dir), _children()
    yield
    journal = engine.journal  # type: ignore[attr-defined]
    assert list(journal.records()) == [], "the journal still holds records"
    assert _children() <= children, "a container process is left"
    assert _mountinfo(state_dir) == mounts, "the host's mount table changed"


@pytest.fixture
def union(engine: Engine, clean_host: None) -> Iterator[UnionMount]:
    with engine.union([busybox_layer()]) as mounted:
        yield mounted


def run(engine: Engine, union: UnionMount, *argv: str, **spec: object) -> rt.ExecResult:
    with start(engine, union, *argv, **spec) as process:
        code = process.wait(60)
        return rt.ExecResult(code, process.stdout, process.stderr)


def start(engine: Engine, union: UnionMount, *argv: str, **spec: object) -> rt.Process:
    return rt.start_on(union, rt.ContainerSpec(argv, **spec), journal=engine.journal)  # type: ignore[arg-type,attr-defined]


@pytest.mark.real
class TestRuntime:
    def test_echo(self, engine: Engine, union: UnionMount) -> None:
        result = run(engine, union, "echo", "hi")
        assert (result.exit_code, result.stdout, result.stderr) == (0, b"hi\n", b"")

    def test_exit_codes(self, engine: Engine, union: UnionMount) -> None:
        assert run(engine, union, "sh", "-c", "exit 3").exit_code == 3
        missing = run(engine, union, "no-such-program")
        assert missing.exit_code == 127
        assert b'"no-such-program": executable file not found in $PATH' in missing.stderr
        assert run(engine, union, "/no/such/file").exit_code == 127
        union.write_bytes("/not-executable", b"#!/bin/sh\necho no\n", mode=0o644)
        denied = run(engine, union, "/not-executable")
        assert denied.exit_code == 126 and b"permission denied" in denied.stderr
        # PID 1 of a namespace cannot be killed from inside it, not even by SIGKILL (Docker alike).
        assert run(engine, union, "sh", "-c", "kill -KILL $$; echo alive").stdout == b"alive\n"

    def test_pid_1_hostname_and_ipc(self, engine: Engine, union: UnionMount) -> None:
        host = socket.gethostname()
        result = run(engine, union, "sh", "-c", "echo $$; hostname; ps -o pid | wc -l; ls /proc | grep -c '^[0-9]'",
                     hostname="box-1")
        pid, name, _, visible = result.stdout.decode().split()
        assert (pid, name) == ("1", "box-1")
        assert int(visible) <= 3  # sh, ps/ls and wc: nothing of the host
        assert socket.gethostname() == host

    def test_env_cwd_and_user(self, engine: Engine, union: UnionMount) -> None:
        if rootless(engine) and not engine.id_maps.covers(65534, 65534):  # type: ignore[attr-defined]
            with pytest.raises(BackendUnavailableError, match="map only root"):
                run(engine, union, "id", uid=65534, gid=65534)  # said clearly, before anything starts
            result = run(engine, union, "sh", "-c", 'echo "$FOO"; pwd; id -u', env=("FOO=x",), cwd="/w")
            assert result.stdout.decode().split() == ["x", "/w", "0"]
            return
        result = run(engine, union, "sh", "-c", 'echo "$FOO|$HOME|$HOSTNAME|$PATH"; pwd; id -u; id -g',
                     env=("FOO=bar baz",), cwd="/work/dir", uid=65534, gid=65534, hostname="h")
        lines = result.stdout.decode().splitlines()
        assert lines == ["bar baz|/nonexistent|h|" + rt.DEFAULT_PATH, "/work/dir", "65534", "65534"], result
        assert run(engine, union, "sh", "-c", "echo $HOME").stdout == b"/root\n"
        assert run(engine, union, "sh", "-c", "echo $PATH", env={"PATH": "/bin"}).stdout == b"/bin\n"

    def test_stdin(self, engine: Engine, union: UnionMount) -> None:
        assert run(engine, union, "cat", stdin=b"abc" * 100_000).stdout == b"abc" * 100_000
        assert run(engine, union, "cat").stdout == b""  # /dev/null without stdin

    def test_capabilities_and_no_new_privs(self, engine: Engine, union: UnionMount) -> None:
        def status(**spec: object) -> dict[str, str]:
            out = run(engine, union, "cat", "/proc/self/status", **spec).stdout.decode()
            return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)

        root = status()
        assert root["NoNewPrivs"].strip() == "1"
        assert int(root["CapInh"], 16) == 0 and int(root["CapAmb"], 16) == 0
        assert int(root["CapBnd"], 16) == DOCKER_CAPS == int(root["CapEff"], 16)
        assert int(root["SigIgn"], 16) == 0  # Python's ignored SIGPIPE does not leak into the container
        if not rootless(engine):
            nobody = status(uid=65534, gid=65534)
            assert int(nobody["CapEff"], 16) == 0 and int(nobody["CapPrm"], 16) == 0
            assert int(nobody["CapBnd"], 16) == DOCKER_CAPS
        assert run(engine, union, "mount", "-t", "tmpfs", "t", "/tmp").exit_code != 0  # no CAP_SYS_ADMIN

    def test_masked_and_readonly_paths(self, engine: Engine, union: UnionMount) -> None:
        masked = [p for p in rt.MASKED_PATHS if os.path.exists(p)]
        assert masked, "the host has none of the masked paths"
        script = "; ".join(f"echo '== {p}'; if [ -d {p} ]; then ls -A {p}; else cat {p}; fi" for p in masked)
        out = run(engine, union, "sh", "-c", script).stdout.decode()
        assert out.split() == [w for p in masked for w in ("==", p)], out  # every one reads as empty
        ro = run(engine, union, "sh", "-c", "echo x > /proc/sys/kernel/domainname")
        assert ro.exit_code != 0 and b"Read-only file system" in ro.stderr
        sys_write = run(engine, union, "sh", "-c", "echo x > /sys/kernel/uevent_helper")
        assert sys_write.exit_code != 0

    def test_proc_dev_and_sys(self, engine: Engine, union: UnionMount) -> None:
        result = run(engine, union, "sh", "-c", "ls /dev; head -c 4 /dev/zero | wc -c; echo x > /dev/null; "
                     "grep -c . /proc/self/mountinfo; ls /sys | head -n 1")
        out = result.stdout.decode().split()
        for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd"):
            assert name in out
        assert "4" in out and result.exit_code == 0

    def test_network_namespace_has_only_lo(self, engine: Engine, union: UnionMount) -> None:
        own = run(engine, union, "cat", "/proc/net/dev").stdout.decode()
        devices = [line.split(":")[0].strip() for line in own.splitlines()[2:]]
        assert devices == ["lo"]
        assert b"UP" in run(engine, union, "ip", "link", "show", "lo").stdout
        with open("/proc/net/dev", encoding="ascii") as fh:
            host_count = len(fh.readlines()) - 2
        shared = run(engine, union, "cat", "/proc/net/dev", network=True).stdout.decode()
        assert len(shared.splitlines()) - 2 == host_count

    def test_chroot_escape_does_not_reach_the_host(self, engine: Engine, union: UnionMount, tmp_path: Path) -> None:
        marker = tmp_path / f"host-only-{uuid.uuid4().hex}"
        marker.write_text("host")
        # busybox's chroot applet changes to the new root itself, so inside busybox the classic
        # sequence can only try and fail:
        script = ("mkdir -p /x && cp -a /bin /x/ && cd /x && chroot /x /bin/sh -c "
                  f"'cd ../../../../..; chroot . /bin/ls {marker} 2>&1; ls /'")
        inside = run(engine, union, "sh", "-c", script)
        assert b"No such file" in inside.stdout and b"bin" in inside.stdout

        # The classic escape as syscalls: mkdir x; chroot x; cd ../../..; chroot . -- from a process
        # that joined the container (with every capability of the test's root).  Under a plain
        # chroot the same steps reach the host: the control shows the attack is real.
        def escape(prepare: object) -> bool:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 2
                try:
                    os.close(read)
                    prepare()  # type: ignore[operator]
                    os.makedirs("/escape-x", exist_ok=True)
                    os.chroot("/escape-x")
                    for _ in range(64):
                        os.chdir("..")
                    os.chroot(".")
                    code = 1 if os.path.exists(str(marker)) else 0
                finally:
                    os.write(write, bytes([code]))
                    os._exit(0)
            os.close(write)
            result = os.read(read, 1)
            os.close(read)
            os.waitpid(pid, 0)
            assert result in (b"\x00", b"\x01"), f"escape attempt failed to run: {result!r}"
            return result == b"\x01"

        def plain_chroot() -> None:
            os.chroot(union.mountpoint)  # type: ignore[attr-defined]
            os.chdir("/")

        if not rootless(engine):  # (rootless, the overlay is mounted only in the helper's namespace)
            assert escape(plain_chroot), "control: a plain chroot should be escapable"
        with start(engine, union, "sleep", "100") as process:
            ns = rt.open_namespaces(process.pid)
            try:
                joined = escape(lambda: rt.join_namespaces(ns, user=rootless(engine)))
                assert not joined, "escaped the container's root"
            finally:
                for fd in ns.values():
                    os.close(fd)
            process.stop(grace=0)

    def test_mounts_inside_do_not_reach_the_host(self, engine: Engine, union: UnionMount, state_dir: Path) -> None:
        before = _mountinfo(state_dir)
        with start(engine, union, "sleep", "100") as process:
            ns = rt.open_namespaces(process.pid)
            try:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - child: a process in the container with CAP_SYS_ADMIN
                    try:
                        rt.join_namespaces(ns, user=rootless(engine))
                        from realrt import _syscalls

                        os.makedirs("/mnt/inner", exist_ok=True)
                        _syscalls.mount("layerlab-inner", "/mnt/inner", "tmpfs", 0, "size=1m")
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
            finally:
                for fd in ns.values():
                    os.close(fd)
            seen = rt.exec(process, ["cat", "/proc/self/mountinfo"]).stdout.decode()
            assert "layerlab-inner" in seen and "/mnt/inner" in seen
            assert _mountinfo(state_dir) == before
            with open("/proc/self/mountinfo", encoding="utf-8") as fh:
                assert "layerlab-inner" not in fh.read()
            process.stop(grace=0)

    def test_bind_mounts(self, engine: Engine, union: UnionMount, tmp_path: Path) -> None:
        data = tmp_path / "data"
        data.mkdir()
        (data / "from-host").write_text("h\n")
        conf = tmp_path / "app.conf"
        conf.write_text("conf\n")
        mounts = (rt.BindMount(str(data), "/data"), rt.BindMount(str(data), "/srv/ro", readonly=True),
                  rt.BindMount(str(conf), "/etc/app.conf", readonly=True))
        result = run(engine, union, "sh", "-c", "cat /data/from-host; echo w > /data/written; cat /etc/app.conf; "
                     "echo x > /srv/ro/nope; echo $?", mounts=mounts)
        assert result.stdout.decode().split() == ["h", "conf", "1"]
        assert (data / "written").read_text() == "w\n"
        assert not (data / "nope").exists()
        upper = Path(union.upper_dir)  # type: ignore[attr-defined]
        written = [str(p.relative_to(upper)) for p in upper.rglob("*")]
        assert not [p for p in written if "written" in p or "from-host" in p], written
        assert not [p for p in written if p.split("/")[0] not in ("data", "srv", "etc")], written

    def test_a_bind_target_through_an_escaping_symlink_is_refused(self, engine: Engine, union: UnionMount,
                                                                   tmp_path: Path) -> None:
        victim = tmp_path / "victim"
        victim.mkdir()
        union.symlink("../../../../../../" + str(victim).lstrip("/"), "/evil")
        union.symlink(str(victim), "/evil-abs")
        for target in ("/evil/sub", "/evil-abs/sub", "/evil"):
            with pytest.raises(UnsafeLayerError, match="leaves the container root"):
                run(engine, union, "true", mounts=(rt.BindMount(str(tmp_path), target),))
        assert list(victim.iterdir()) == []

    def test_bind_source_must_exist(self, engine: Engine, union: UnionMount, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="bind source"):
            run(engine, union, "true", mounts=(rt.BindMount(str(tmp_path / "missing"), "/m"),))

    def test_symlinked_proc_or_dev_is_refused(self, engine: Engine, union: UnionMount) -> None:
        for name in ("proc", "dev"):
            union.rmdir(f"/{name}")
            union.symlink("/", f"/{name}")
            with pytest.raises(UnsafeLayerError, match=f"/{name} is a symlink"):
                run(engine, union, "true")
            union.unlink(f"/{name}")
            union.mkdir(f"/{name}", 0o755)

    def test_no_host_fd_leaks(self, engine: Engine, union: UnionMount, tmp_path: Path) -> None:
        leaked = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
        os.set_inheritable(leaked, True)  # the worst case: not even close-on-exec
        try:
            out = run(engine, union, "sh", "-c", "ls /proc/self/fd; readlink /proc/self/fd/*").stdout.decode()
            fds = out.split()
            assert str(leaked) not in fds[:4] or leaked < 4, out
            assert str(tmp_path) not in out
            # CVE-2024-21626: a working directory through the leaked descriptor must not reach the host.
            with pytest.raises(OSError):
                run(engine, union, "pwd", cwd=f"/proc/self/fd/{leaked}")
        finally:
            os.close(leaked)

    def test_stop_kills_after_the_grace_period(self, engine: Engine, union: UnionMount) -> None:
        process = start(engine, union, "sh", "-c", "trap '' TERM; echo ready; sleep 100")
        _wait_for(lambda: process.stdout == b"ready\n")
        began = time.monotonic()
        assert process.stop(grace=1.0) == 128 + signal.SIGKILL
        assert 1.0 <= time.monotonic() - began < 5
        assert not process.running and process.returncode == 137
        with pytest.raises(ContainerStateError):
            process.kill()
        assert process.stop() == 137  # stopping a stopped container is a no-op

    def test_stop_lets_a_handler_exit_early(self, engine: Engine, union: UnionMount) -> None:
        process = start(engine, union, "sh", "-c", "trap 'echo bye; exit 7' TERM; echo ready; "
                        "while true; do sleep 0.05; done")
        _wait_for(lambda: process.stdout == b"ready\n")
        began = time.monotonic()
        assert process.stop(grace=20) == 7
        assert time.monotonic() - began < 5
        assert process.logs() == b"ready\nbye\n"

    def test_wait_timeout_and_kill(self, engine: Engine, union: UnionMount) -> None:
        process = start(engine, union, "sleep", "100")
        with pytest.raises(TimeoutError):
            process.wait(0.1)
        assert process.running
        process.kill(signal.SIGKILL)
        assert process.wait(10) == 137

    def test_exec_in_a_running_container(self, engine: Engine, union: UnionMount) -> None:
        user = 0 if rootless(engine) else 65534
        with start(engine, union, "sh", "-c", "echo $$ > /tmp/init; sleep 100; echo end", hostname="exec-box",
                   env=("FROM_RUN=1",)) as process:
            _wait_for(lambda: rt.exec(process, ["cat", "/tmp/init"]).stdout == b"1\n")
            result = rt.exec(process, ["sh", "-c", "echo $$ $FROM_RUN $EXTRA; hostname; pwd; id -u; "
                                       "grep NoNewPrivs /proc/self/status; cat /proc/1/cmdline"],
                             env={"EXTRA": "2"}, cwd="/tmp", uid=user, gid=user)
            lines = result.stdout.decode().splitlines()
            pid, from_run, extra = lines[0].split()
            assert int(pid) > 1 and (from_run, extra) == ("1", "2")
            assert lines[1:5] == ["exec-box", "/tmp", str(user), "NoNewPrivs:\t1"]
            assert lines[5].startswith("sh\x00-c")
            assert rt.exec(process, ["nope"]).exit_code == 127
            assert rt.exec(process, ["sh", "-c", "exit 5"]).exit_code == 5
            assert rt.exec(process, ["cat"], stdin=b"in").stdout == b"in"
            with pytest.raises(TimeoutError):
                rt.exec(process, ["sleep", "100"], timeout=0.2)
            process.stop(grace=0)
        with pytest.raises(ContainerStateError):
            rt.exec(process, ["true"])

    def test_a_dropped_process_is_killed(self, engine: Engine, union: UnionMount) -> None:
        process = start(engine, union, "sleep", "100")
        pid = process.pid
        del process
        import gc

        gc.collect()
        assert not os.path.exists(f"/proc/{pid}")

    def test_sweep_kills_a_container_whose_owner_was_killed(self, engine: Engine, union: UnionMount) -> None:
        report_r, report_w = os.pipe()
        owner = os.fork()
        if owner == 0:  # pragma: no cover - child: start a container, report its pid, die by SIGKILL
            try:
                os.close(report_r)
                process = rt.start_on(union, rt.ContainerSpec(("sleep", "100")),
                                      journal=engine.journal)  # type: ignore[attr-defined]
                os.write(report_w, str(process.pid).encode())
            finally:
                os.kill(os.getpid(), signal.SIGKILL)
        os.close(report_w)
        pid = int(os.read(report_r, 32) or b"0")
        os.close(report_r)
        os.waitpid(owner, 0)
        assert pid and _state(pid) not in (None, "Z"), "the orphaned container should still run"
        records = [r for r in engine.journal.records() if r.pid == pid]  # type: ignore[attr-defined]
        assert records, "the container was not recorded"
        engine.journal.sweep()  # type: ignore[attr-defined]
        engine.journal.sweep()  # type: ignore[attr-defined]  # idempotent
        _wait_for(lambda: _state(pid) in (None, "Z"))

    @pytest.mark.parametrize("point", ["forked", "recorded", "started"])
    def test_kill_points_then_sweep(self, engine: Engine, union: UnionMount, point: str) -> None:
        """The owner is SIGKILLed right after the fork, after the journal record, or once the
        container runs; a sweep (run twice) then leaves no process and no record."""
        journal = engine.journal  # type: ignore[attr-defined]
        report_r, report_w = os.pipe()
        owner = os.fork()
        if owner == 0:  # pragma: no cover - child
            try:
                os.close(report_r)
                real_fork, real_record = rt._fork, journal.record

                def fork(plan: object, rootless: bool) -> int:
                    pid = real_fork(plan, rootless)  # type: ignore[arg-type]
                    os.write(report_w, f"{pid} ".encode())
                    if point == "forked":
                        os.kill(os.getpid(), signal.SIGKILL)
                    return pid

                def record(*args: object, **kwargs: object) -> object:
                    rec = real_record(*args, **kwargs)
                    if point == "recorded":
                        os.kill(os.getpid(), signal.SIGKILL)
                    return rec

                rt._fork = fork  # type: ignore[assignment]
                journal.record = record
                process = rt.start_on(union, rt.ContainerSpec(("sleep", "100")), journal=journal)
                os.write(report_w, f"{process.pid} ".encode())
            finally:
                os.kill(os.getpid(), signal.SIGKILL)
        os.close(report_w)
        pids = [int(p) for p in _read_to_eof(report_r).split()]
        os.waitpid(owner, 0)
        assert pids, "the owner reported no pid"
        journal.sweep()
        journal.sweep()
        for pid in pids:
            _wait_for(lambda: _state(pid) in (None, "Z"))
        assert not [r for r in journal.records() if r.owner == owner]

    def test_setup_failure_leaves_nothing(self, engine: Engine, union: UnionMount, tmp_path: Path) -> None:
        union.write_bytes("/file", b"x")
        with pytest.raises(NotADirectoryError):
            run(engine, union, "true", mounts=(rt.BindMount(str(tmp_path), "/file"),))
        with pytest.raises(OSError):
            run(engine, union, "true", cwd="/file/below")


def _read_to_eof(fd: int) -> str:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    os.close(fd)
    return data.decode()


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.mark.real
@pytest.mark.root_only
def test_rootless_runtime_as_an_unprivileged_user(tmp_path: Path) -> None:
    """The rootless half of this file again, as uid 65534 (how CI's unprivileged run sees it)."""
    import shutil
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0 or os.environ.get("LAYERLAB_NESTED_RUNTIME_TEST"):
        pytest.skip("needs root to become an unprivileged user")
    _busybox_or_skip()
    require_real(rootless=False)
    home = Path(tempfile.mkdtemp(prefix="layerlab-unpriv-rt-"))
    try:
        os.chmod(home, 0o755)
        for sub in ("state", "tmp"):
            (home / sub).mkdir()
            os.chown(home / sub, 65534, 65534)
        repo = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(repo), "LAYERLAB_STATE_DIR": str(home / "state"),
               "TMPDIR": str(home / "tmp"), "LAYERLAB_NESTED_RUNTIME_TEST": "1", "LAYERLAB_REQUIRE_REAL": "1",
               "HOME": str(home / "tmp")}
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "pytest",
             "-q", "-p", "no:cacheprovider", "-k", "rootless and not unprivileged", f"{repo}/tests/containers/test_runtime.py"],
            capture_output=True, text=True, env=env, timeout=300, cwd=repo)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-2000:]

