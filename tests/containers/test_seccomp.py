"""Docker's default seccomp filter on the real backend, and ``--security-opt seccomp=unconfined``.

Inside a container ``/proc/self/status`` says ``Seccomp: 2`` (a filter), ``0`` when unconfined.
The calls the profile leaves out for a container without CAP_SYS_ADMIN get EPERM from the
filter, each made by a tiny static x86-64 program the test writes (busybox has no keyctl,
kexec_load or bpf applet), and the same program run unconfined gets the kernel's own answer;
``busybox unshare -U`` is refused the same way.  busybox's applets run as they did without the
filter (one script, both ways, the same output).  The rule selection, the option parsing and
what the model reports need no kernel and run everywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from realrt import _idmap
from realrt.containers import _caps, _seccomp
from realrt.containers._seccomp_profile import RULES
from realrt.containers.spec import ContainerSpec
from sim.cli import main
from sim.containers._security import seccomp_profile
from sim.errors import InvalidSpecError
from tests.backends import require_real

real = pytest.mark.real
UNCONFINED = ("seccomp=unconfined",)
DEFAULT_CAPS = _caps.mask(_caps.DEFAULT_CAPABILITIES)


def _mounts(under: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return sorted(line.split()[4] for line in fh if line.split()[4].startswith(under))


@pytest.fixture(params=["root", "rootless"])
def engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A real engine with a state folder of its own; afterwards no record, mount or folder is left."""
    state = tempfile.mkdtemp(prefix="layerlab-seccomp-")
    try:
        eng: Any = require_real(rootless=request.param == "rootless", state_dir=state)
        try:
            yield eng
        finally:
            eng.close()
            assert list(eng.journal.records()) == [], "a journal record is left"
            assert _mounts(state) == [], "a mount is left"
            _idmap.remove_tree(state, eng.id_maps)
            assert not os.path.exists(state), "the state folder could not be removed"
    finally:
        shutil.rmtree(state, ignore_errors=True)


# -- the filter is there, and gone when unconfined ---------------------------------------------------


@real
def test_proc_status_shows_the_filter_and_unconfined_shows_none(engine: Any) -> None:
    status = "grep -E '^Seccomp(_filters)?:' /proc/self/status"
    default = engine.run("busybox", status, remove=True)
    assert default.stdout.split() == [b"Seccomp:", b"2", b"Seccomp_filters:", b"1"], default
    unconfined = engine.run("busybox", status, security_opt=UNCONFINED, remove=True)
    assert unconfined.stdout.split() == [b"Seccomp:", b"0", b"Seccomp_filters:", b"0"], unconfined
    # docker exec's processes get the container's filter too, and the engine reports which one it is.
    for name, opt, mode in (("sc-default", (), b"2"), ("sc-unconfined", UNCONFINED, b"0")):
        info = engine.create("busybox", ["sleep", "30"], name=name, security_opt=opt)
        assert info.seccomp == ("unconfined" if opt else "docker-default")
        engine.start(name, detach=True)
        try:
            assert engine.exec(name, ["grep", "^Seccomp:", "/proc/self/status"]).stdout.split()[1] == mode
        finally:
            engine.stop(name, grace=0.5)
            engine.remove(name)


# -- denied calls: EPERM from the filter, the kernel's answer unconfined -----------------------------

#: name -> (system call number on x86-64, its arguments).  Each is a call Docker's profile does
#: not allow a container without CAP_SYS_ADMIN (or one allowed only with other arguments).
_CALLS: dict[str, tuple[int, ...]] = {
    "keyctl": (250, 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "kexec_load": (246, 0, 0, 0, 0),
    "bpf": (321, 0, 0, 0),  # BPF_MAP_CREATE without attributes
    "unshare": (272, 0x10000000),  # CLONE_NEWUSER
    "clone": (56, 0x10000000 | 17, 0, 0, 0, 0),  # CLONE_NEWUSER | SIGCHLD: clone's flags are filtered
    "socket": (41, 40, 1, 0),  # AF_VSOCK, SOCK_STREAM: every other family is allowed
    "personality": (135, 0x0040000),  # ADDR_NO_RANDOMIZE: only five personalities are allowed
}
#: Allowed calls, as controls: getpid, and personality(PER_LINUX32) (what `linux32` asks for).
_ALLOWED_CALLS: dict[str, tuple[int, ...]] = {"getpid": (39,), "personality32": (135, 8)}
#: Calls whose kernel answer (unconfined) is never EPERM for a container's root: the filter's EPERM
#: is then its own.  keyctl succeeds or says ENOKEY, a user namespace may be made without
#: capabilities, a personality may always be set.  kexec_load, bpf and AF_VSOCK depend on the
#: kernel's build and sysctls (EPERM without CAP_SYS_BOOT where kexec is built in).
_KERNEL_NEVER_EPERM = ("keyctl", "unshare", "clone", "personality")

# x86-64 machine code after the argument loads: syscall; exit(0) if it returned >= 0, else exit(errno).
_TAIL = bytes.fromhex("0f05" "4885c0" "7908" "48f7d8" "4889c7" "eb02" "31ff" "b83c000000" "0f05")
_ARG_REGISTERS = (b"\x48\xbf", b"\x48\xbe", b"\x48\xba", b"\x49\xba", b"\x49\xb8", b"\x49\xb9")  # rdi..r9


def _call_program(number: int, *args: int) -> bytes:
    """A static ELF that makes one system call and exits with its errno (0 when it worked)."""
    code = b"\x48\xb8" + struct.pack("<Q", number)  # mov rax, number
    for register, value in zip(_ARG_REGISTERS, args):
        code += register + struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)  # mov reg, value
    code += _TAIL
    base, ehsize, phsize = 0x400000, 64, 56
    total = ehsize + phsize + len(code)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, base + ehsize + phsize, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return header + segment + code


@pytest.fixture
def tools() -> Iterator[Path]:
    """A world-readable folder of the call programs (bound into the container at /tools)."""
    if os.uname().machine != "x86_64":
        pytest.skip("the call programs are x86-64 machine code")
    folder = Path(tempfile.mkdtemp(prefix="layerlab-seccomp-tools-"))
    try:
        folder.chmod(0o755)
        for name, call in {**_CALLS, **_ALLOWED_CALLS}.items():
            path = folder / name
            path.write_bytes(_call_program(*call))
            path.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _answers(engine: Any, tools: Path, security_opt: tuple[str, ...]) -> dict[str, int]:
    script = "for t in /tools/*; do $t; echo ${t#/tools/}=$?; done; unshare -U true 2>/dev/null; echo busybox-unshare=$?"
    result = engine.run("busybox", script, binds={"/tools": str(tools)}, security_opt=security_opt, remove=True)
    assert result.exit_code == 0, result
    return {k: int(v) for k, _, v in (line.partition("=") for line in result.stdout.decode().split())}


@real
def test_denied_calls_get_eperm_and_unconfined_gets_the_kernels_answer(engine: Any, tools: Path) -> None:
    confined = _answers(engine, tools, ())
    assert {name: confined[name] for name in _CALLS} == dict.fromkeys(_CALLS, errno.EPERM), confined
    assert confined["busybox-unshare"] == 1, confined  # `unshare: unshare(0x10000000): Operation not permitted`
    assert confined["getpid"] == 0 and confined["personality32"] == 0, confined
    unconfined = _answers(engine, tools, UNCONFINED)
    assert all(unconfined[name] != errno.EPERM for name in _KERNEL_NEVER_EPERM), unconfined
    assert unconfined["busybox-unshare"] == 0, unconfined
    assert unconfined["getpid"] == 0 and unconfined["personality32"] == 0, unconfined


# -- busybox runs what it ran -------------------------------------------------------------------------

# Everyday applets and shell features: each line prints something checkable; the same script under
# the filter and unconfined must print the same.  wget fetches from busybox httpd on the container's
# own loopback; mount is refused as before (no CAP_SYS_ADMIN), with the same message and status on an
# existing mount point (on a missing one the kernel says ENOENT first, the filter EPERM: as under Docker).
_EVERYDAY = r"""
ls / | head -3; ps -o pid,args | head -2; id; uname -s; linux32 uname -m
x=$((6 * 7)); echo "arith $x"; f() { echo "func $1"; }; f ok; echo "sub $(echo inner)"; (exit 3); echo "status $?"
cat <<EOF | tr a-z A-Z
here doc
EOF
trap 'echo trapped' USR1; kill -USR1 $$; sleep 0.1 & wait $!; echo "waited $?"
mkdir -p /tmp/w && cd /tmp/w && echo data > f && ln -s f l && ln f h && chmod 600 f && chown 0:0 f && stat -c '%a %u %h' f
mknod /tmp/w/fifo p && ls -l /tmp/w/fifo | cut -c1; mkfifo /tmp/w/p2 && rm /tmp/w/fifo /tmp/w/p2
tar -C /tmp -czf /tmp/t.tgz w && tar -tzf /tmp/t.tgz | sort | head -2; gzip -c /etc/passwd | gunzip | head -1
echo "a b c" | awk '{print $2}'; echo abc | sed 's/b/X/'; seq 3 | sort -r | xargs echo; find /tmp/w -name f
date -u -d @0 +%Y; renice -n 5 $$ >/dev/null && echo reniced; timeout 1 sleep 5; echo "timeout $?"; df / >/dev/null && echo df
mkdir -p /tmp/www && echo hello > /tmp/www/index.html
httpd -p 127.0.0.1:8080 -h /tmp/www && sleep 0.2 && wget -q -O - http://127.0.0.1:8080/index.html
mount -t tmpfs none /tmp/w 2>&1; echo "mount $?"
"""


@real
def test_busybox_applets_and_the_shell_work_as_they_did_unconfined(engine: Any) -> None:
    confined = engine.run("busybox", _EVERYDAY, remove=True)
    unconfined = engine.run("busybox", _EVERYDAY, security_opt=UNCONFINED, remove=True)
    assert (confined.exit_code, confined.stdout, confined.stderr) == \
        (unconfined.exit_code, unconfined.stdout, unconfined.stderr)
    out = confined.stdout.decode()
    for expected in ("arith 42", "func ok", "sub inner", "status 3", "HERE DOC", "trapped", "waited 0",
                     "600 0 2", "\np\n", "b\n", "aXc", "3 2 1", "/tmp/w/f", "1970", "reniced", "timeout 143",
                     "df\n", "hello\n", "mount 1"):
        assert expected in out, (expected, out)
    assert "mount: permission denied" in out, out  # busybox's words for mount's EPERM


# -- the CLI's flag --------------------------------------------------------------------------------------


@real
def test_cli_security_opt_seccomp_unconfined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / "state"))
    probe: Any = require_real(state_dir=str(tmp_path / "probe"))  # the real backend, or the suite's skip/fail
    probe.close()
    assert main(["run", "--backend", "real", "busybox", "grep", "^Seccomp:", "/proc/self/status"]) == 0
    assert capfd.readouterr().out.split() == ["Seccomp:", "2"]
    assert main(["run", "--backend", "real", "--security-opt", "seccomp=unconfined", "busybox", "grep",
                 "^Seccomp:", "/proc/self/status"]) == 0
    assert capfd.readouterr().out.split() == ["Seccomp:", "0"]


# -- the filter's rules, compiled (libseccomp) ----------------------------------------------------------


@real
def test_the_filter_compiles_from_every_rule_libseccomp_knows() -> None:
    program = _seccomp.compile_filter(DEFAULT_CAPS)
    assert len(program) % 8 == 0 and 100 < len(program) // 8 <= 4096  # BPF_MAXINSNS
    assert _seccomp.compile_filter(DEFAULT_CAPS) == program  # the same caps, the same program
    assert _seccomp.compile_filter(DEFAULT_CAPS | 1 << _caps.CAPABILITIES["CAP_SYS_ADMIN"]) != program


def _allowed(capabilities: int) -> dict[str, list[Any]]:
    """syscall name -> the rules that apply to it for ``capabilities`` on x86_64."""
    out: dict[str, list[Any]] = {}
    for rule in _seccomp.selected_rules(capabilities, "x86_64"):
        for name in rule.names:
            out.setdefault(name, []).append(rule)
    return out


def test_the_default_capabilities_select_docker_s_rules() -> None:
    rules = _allowed(DEFAULT_CAPS)
    for denied in ("keyctl", "add_key", "kexec_load", "kexec_file_load", "bpf", "unshare", "setns", "mount",
                   "umount2", "pivot_root", "init_module", "reboot", "swapon", "acct",
                   "open_by_handle_at", "perf_event_open", "userfaultfd", "clock_settime"):
        assert denied not in rules, denied
    assert [r.args[0].op for r in rules["clone"]] == ["MASKED_EQ"]  # clone without namespace flags only
    assert [(r.action, r.errno_ret) for r in rules["clone3"]] == [("errno", errno.ENOSYS)]  # glibc falls back
    assert [r.args[0].value for r in rules["personality"]] == [0, 8, 131072, 131080, 4294967295]
    assert [(r.args[0].op, r.args[0].value) for r in rules["socket"]] == [("NE", 40)]
    assert "chroot" in rules and "arch_prctl" in rules and "modify_ldt" in rules and "ptrace" in rules
    assert len(RULES[0].names) == len(set(RULES[0].names)) == 349  # moby's unconditional list


def test_cap_sys_admin_brings_back_the_namespace_calls() -> None:
    rules = _allowed(DEFAULT_CAPS | 1 << _caps.CAPABILITIES["CAP_SYS_ADMIN"])
    assert all(not r.args for r in rules["clone"]) and [r.action for r in rules["clone3"]] == ["allow"]
    assert "unshare" in rules and "mount" in rules and "bpf" in rules
    assert "kexec_load" not in rules and "keyctl" not in rules  # never allowed, whatever the capabilities


# -- the option, the spec and the model ------------------------------------------------------------------


def test_security_opt_values() -> None:
    assert seccomp_profile(()) == "docker-default"
    assert seccomp_profile(["seccomp=unconfined"]) == "unconfined"
    assert seccomp_profile(["seccomp=unconfined", "seccomp=builtin"]) == "docker-default"  # the last wins
    assert seccomp_profile(["no-new-privileges", "seccomp=unconfined"]) == "unconfined"
    for bad in (["seccomp=/tmp/profile.json"], ["apparmor=unconfined"], ["no-new-privileges=false"], ["seccomp"],
                "seccomp=unconfined"):
        with pytest.raises(InvalidSpecError):
            seccomp_profile(bad)  # a str on purpose too


def test_container_spec_refuses_a_non_bool_seccomp() -> None:
    assert ContainerSpec(("true",)).seccomp is True
    with pytest.raises(ValueError, match="seccomp must be True"):
        ContainerSpec(("true",), seccomp="unconfined")  # type: ignore[arg-type]  # wrong on purpose


def test_the_model_reports_the_sandbox_filter_and_keeps_it(tmp_path: Path) -> None:
    eng: Any = sim.connect("sim", state_dir=str(tmp_path))
    default = eng.create("busybox", ["true"], name="d")
    unconfined = eng.create("busybox", ["true"], name="u", security_opt=UNCONFINED)
    assert (default.seccomp, unconfined.seccomp) == ("docker-default", "unconfined")
    with pytest.raises(InvalidSpecError):
        eng.create("busybox", ["true"], name="bad", security_opt=("seccomp=/x.json",))
    assert sorted(c.name for c in eng.containers()) == ["d", "u"]  # the refused one was never made
    again: Any = sim.connect("sim", state_dir=str(tmp_path))  # the state folder keeps it
    assert {c.name: c.seccomp for c in again.containers()} == {"d": "docker-default", "u": "unconfined"}
