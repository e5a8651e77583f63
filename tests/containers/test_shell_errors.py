"""Bad command lines in the model shell get busybox's own messages and statuses, never a traceback.

Every applet the model registers runs with a bogus option (``-@``, which no busybox
applet has) and with no operands, in the model and under ``/bin/busybox``; the status,
stdout and stderr must agree.  An unknown program is ash's ``NAME: not found`` (127),
through the engine's entry point (``/bin/sh -c``) and as ``busybox sh -c`` runs it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile

import pytest

import sim
from sim.containers.shell import BUSYBOX_APPLETS, IMPLEMENTED, run
from tests.containers.test_shell_tools import BUSYBOX, ENV, require_busybox

APPLETS = sorted(IMPLEMENTED)


def _host_files() -> dict[str, bytes]:
    """The host's account files, so ``id`` reads the same names in both runs."""
    out = {}
    for path in ("/etc/passwd", "/etc/group"):
        with open(path, "rb") as fh:
            out[path] = fh.read()
    return out


def _model(script: str | list[str]) -> tuple[int, bytes, bytes]:
    layer = sim.Layer()
    layer.add_dir("w")
    layer.add_dir("etc")
    for path, data in _host_files().items():
        layer.add_file(path.lstrip("/"), data)
    fs = sim.UnionFS([layer.freeze()])
    result = run(script, fs, env=ENV, cwd="/w", uid=os.getuid(), gid=os.getgid(), groups=os.getgroups(),
                 hostname=socket.gethostname())
    return result.exit_code, result.stdout, result.stderr


def _busybox(argv: list[str], *, argv0: str = "/bin/sh") -> tuple[int, bytes, bytes]:
    with tempfile.TemporaryDirectory(prefix="layerlab-shell-") as folder:
        done = subprocess.run([argv0, *argv], executable=BUSYBOX, cwd=folder, env=ENV, input=b"", capture_output=True,
                              umask=0o022, timeout=20)
        # the model runs in /w: the folder's name is the one thing that may differ
        real = os.path.realpath(folder).encode()

        def fix(data: bytes) -> bytes:
            return data.replace(real, b"/w").replace(folder.encode(), b"/w")
        return done.returncode, fix(done.stdout), fix(done.stderr)


@pytest.mark.parametrize("applet", APPLETS)
def test_a_bogus_option_gets_busybox_message_and_status(applet: str) -> None:
    require_busybox()
    script = f"{applet} -@"
    assert _model(script) == _busybox(["-c", script])


@pytest.mark.parametrize("applet", APPLETS)
def test_no_operands_gets_busybox_answer(applet: str) -> None:
    require_busybox()
    assert _model(applet) == _busybox(["-c", applet])


@pytest.mark.parametrize("applet", ["sed", "awk", "sort", "uniq", "cut", "tr", "head", "tail", "wc", "xargs", "tee", "find"])
@pytest.mark.parametrize("args", ["-", "--bogus", "-n", "-k", "-x -y", "nosuch", "-- -@"])
def test_odd_arguments_of_the_tools_match_busybox(applet: str, args: str) -> None:
    require_busybox()
    script = f"{applet} {args} </dev/null"
    assert _model(script) == _busybox(["-c", script])


@pytest.mark.parametrize("name", ["nosuchcmd", "sedd", "./nope", "/usr/bin/nope"])
def test_an_unknown_command_is_not_found_127(name: str) -> None:
    require_busybox()
    # the engine's RUN is "/bin/sh -c": ash names itself /bin/sh
    assert _model(f"{name} x; echo $?") == _busybox(["-c", f"{name} x; echo $?"])
    # busybox sh -c, as a user types it: "sh: NAME: not found"
    model = _model(["sh", "-c", name])
    assert model == _busybox(["sh", "-c", name], argv0="/bin/busybox")
    assert model == (127, b"", f"sh: {name}: not found\n".encode())


def test_a_busybox_applet_the_model_lacks_is_a_typed_error() -> None:
    """Not a traceback: :class:`~sim.UnsupportedCommandError`, naming the applet and the real backend."""
    missing = sorted(BUSYBOX_APPLETS - IMPLEMENTED - {"busybox"})
    assert missing
    for name in missing[:40]:
        with pytest.raises(sim.UnsupportedCommandError, match=rf"'{re.escape(name)}'.*BACKEND='real'"):
            _model(f"{name} --version")
