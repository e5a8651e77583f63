"""Detached containers with several processes on one state folder, as ``layerlab`` runs them: the
CLI's engine, each container's monitor (its own engine on the same folder) and every later command.

- A saved network's bridge belongs to the network, not to the process that made it: a second engine
  opens (adopts the bridge), and no sweep removes it while the network is saved or has ports.
- A monitor answers ``stop``/``kill`` from the moment its pid can be read, survives a request that
  fails, and one that does not report in time is stopped with a typed error.
- A damaged ``config.json`` of a monitor's container is a typed error, not a recursion without end.
- ``wait`` gets the end of the run it waited for, however late it looks (the monitor logs every end).
- A ``stop``'s grace does not hold the monitor up: a ``kill`` meanwhile is served at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.errors import BackendUnavailableError, ContainerStateError
from tests.backends import require_real
from tests.containers.test_lifecycle import kill_monitors

pytestmark = pytest.mark.real

ROOT = str(Path(__file__).resolve().parents[2])
#: PID 1 with a handler for SIGTERM: a stop ends it at once (no 10 s grace in the tests).
QUICK_TO_STOP = "trap 'exit 0' TERM; sleep 30 & wait"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "state"
    try:
        yield folder
    finally:
        kill_monitors(folder)  # what a failed test left running
        engine: Any = require_real(state_dir=str(folder))
        engine.close()  # its sweep removes their containers, mounts and namespaces


def _monitors(state: Path) -> list[int]:
    """The monitor processes of ``state`` that are not this process's children (the forked ones)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if b"realrt.containers" in argv and str(state).encode() in argv and fields[0] not in (b"Z", b"X") \
                and int(fields[1]) != os.getpid():
            found.append(int(entry.name))
    return found


def _catches(pid: int, signum: int) -> bool:
    """``pid`` has a handler for ``signum`` (its bit in ``SigCgt`` of /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) >> (signum - 1) & 1)


def _until(check: Any, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.02)


# -- the monitor -------------------------------------------------------------------------------


def test_a_stop_signal_while_the_monitor_starts_the_container_does_not_kill_it(state: Path) -> None:
    """SIGUSR1 (what ``stop``/``kill`` from another terminal send) reaches the monitor while its engine
    opens and starts the container: the handler is in already, the monitor lives and reports."""
    eng: Any = require_real(state_dir=str(state))
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            eng.run_detached("busybox", QUICK_TO_STOP, name="early", monitor=True)
            outcome.append(None)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=start)
    worker.start()
    try:
        # The first moment its handler is in (the kernel shows it caught): the engine is not open yet.
        _until(lambda: any(_catches(pid, signal.SIGUSR1) for pid in _monitors(state)) or bool(outcome), 30)
        signalled = 0
        while not outcome:  # the monitor is opening its engine and starting the container meanwhile
            for pid in _monitors(state):
                os.kill(pid, signal.SIGUSR1)
                signalled += 1
            time.sleep(0.002)
        worker.join()
        assert outcome == [None], outcome
        assert signalled >= 1  # a signal came while the start went on (how many depends on the machine)
        assert [c.state for c in eng.containers(all=True) if c.name == "early"] == ["running"]
        assert eng.stop("early", grace=5) == 0
    finally:
        worker.join()
        eng.close()


def test_a_monitor_that_does_not_start_in_time_is_stopped_with_a_typed_error(state: Path) -> None:
    """The monitor hangs (here: on the image store's lock, held by the test): ``spawn`` gives up at its
    timeout, the monitor abandons the start on SIGTERM, and nothing of it is left running."""
    from realrt.containers import _monitor

    eng: Any = require_real(state_dir=str(state))
    cid = eng.create("busybox", QUICK_TO_STOP, name="slow").id
    rootless = eng.rootless
    eng.close()  # saved and unmounted: the monitor alone mounts and starts it
    store = os.open(state / "images", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(store, fcntl.LOCK_EX)  # the store lock (sim.images._lock): the monitor's engine waits
        outcome: list[BaseException | None] = []

        def spawn() -> None:
            try:
                _monitor.spawn(state, cid, rootless=rootless, timeout=1.0)
                outcome.append(None)
            except BaseException as exc:  # handed to the test's thread
                outcome.append(exc)

        worker = threading.Thread(target=spawn, daemon=True)
        worker.start()
        worker.join(11.0)  # SIGTERM is enough: no SIGKILL after the 10 s grace
        assert outcome, "spawn did not return after its timeout"
    finally:
        os.close(store)  # a spawn that hangs (no timeout) goes on once the lock is free
        worker.join(60)
    assert isinstance(outcome[0], BackendUnavailableError), outcome
    assert "did not start it within 1 s" in str(outcome[0])
    _until(lambda: _monitors(state) == [])
    err = (state / "containers" / cid / "monitor.err").read_text()
    assert "Traceback" not in err, err  # it left through its own error path
    other: Any = require_real(state_dir=str(state))
    try:
        assert [c.state for c in other.containers(all=True) if c.name == "slow"] == ["created"]
        other.remove("slow")
    finally:
        other.close()


def test_a_request_that_fails_leaves_the_monitor_supervising(state: Path) -> None:
    eng: Any = require_real(state_dir=str(state))
    try:
        eng.run_detached("busybox", QUICK_TO_STOP, name="steady", monitor=True)
        process = eng._container("steady").process
        # A request the engine cannot serve (not a signal number): a ValueError inside the monitor.
        with pytest.raises(BackendUnavailableError, match="could not kill it: ValueError"):
            process._request(15.0, op="kill", signal="SIGNOPE")
        assert process.alive()
        assert [c.state for c in eng.containers(all=True) if c.name == "steady"] == ["running"]
        err = (state / "containers" / process.folder.name / "monitor.err").read_text()
        assert "kill failed: ValueError" in err
        assert eng.stop("steady", grace=5) == 0  # and it still serves the next request
    finally:
        eng.close()


def test_wait_from_a_slow_engine_gets_the_run_that_ended_not_a_later_one(state: Path, monkeypatch: Any) -> None:
    """``wait`` returns the exit code of the first run to end after the call, even when the monitor has
    restarted the container (and that run ended too) before the waiting engine looks again: each run
    counts up in its writable layer and exits 10 + its number."""
    from realrt.containers import _remote

    counting = "n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; sleep 0.3; exit $((10+n))"
    eng: Any = require_real(state_dir=str(state))
    try:
        eng.run_detached("busybox", counting, name="counts", restart="on-failure:2", monitor=True)
        monkeypatch.setattr(_remote, "_POLL", 1.5)  # the first look comes after all three runs have ended
        assert eng.wait("counts", timeout=60) == 11
        monkeypatch.setattr(_remote, "_POLL", 0.05)
        _until(lambda: [c.state for c in eng.containers(all=True) if c.name == "counts"] == ["exited"], 60)
        assert eng.wait("counts", timeout=60) == 13  # exited for good: the last run's code, at once
        last = next(c for c in eng.containers(all=True) if c.name == "counts")
        assert (last.state, last.exit_code, last.restart_count) == ("exited", 13, 2)
        assert _remote.recorded_exits(state / "containers" / last.id) == [11, 12, 13]
    finally:
        eng.close()


def test_a_kill_during_a_stops_grace_is_served_at_once(state: Path) -> None:
    """The monitor does not sit out a ``stop``'s grace: a ``kill`` from another command meanwhile ends
    the container at once, and the stop returns then (137), long before its SIGKILL was due."""
    eng: Any = require_real(state_dir=str(state))
    other: Any = None
    try:
        eng.run_detached("busybox", "sleep 60", name="stubborn", monitor=True)  # PID 1 ignores SIGTERM
        stopped: list[Any] = []
        began = time.monotonic()
        stopper = threading.Thread(target=lambda: stopped.append(eng.stop("stubborn", grace=40)), daemon=True)
        stopper.start()
        time.sleep(1.0)
        assert stopper.is_alive()  # the grace is running
        other = require_real(state_dir=str(state))
        other.kill("stubborn")
        stopper.join(20)
        assert not stopper.is_alive(), "the stop waited out its grace"
        assert stopped == [137] and time.monotonic() - began < 20
        assert [(c.state, c.exit_code) for c in other.containers(all=True)] == [("exited", 137)]
    finally:
        if other is not None:
            other.close()
        eng.close()


def test_a_damaged_config_of_a_monitors_container_is_a_typed_error(tmp_path: Path, monkeypatch: Any) -> None:
    from realrt.containers import _remote
    from realrt.journal import Journal

    folder = tmp_path / "containers" / ("ab" * 32)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"state": "runn')  # stays damaged however often it is read
    monkeypatch.setattr(_remote, "_POLL", 0.001)
    process = _remote.RemoteProcess(folder, os.getpid(), 0, Journal(tmp_path))
    with pytest.raises(ContainerStateError, match=r"container abababababab: its config.json .* is damaged"):
        process._meta()


# -- networks: one bridge per saved network, whichever process made it ------------------------------


def _free_subnet() -> str:
    """A /24 of 10.252.0.0/16 no route of the host overlaps (other engines' bridges included)."""
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=True).stdout
    for _ in range(50):
        subnet = f"10.252.{random.randrange(256)}.0/24"
        if subnet.split("/")[0].rsplit(".", 1)[0] + "." not in routes:
            return subnet
    pytest.fail("no free 10.252.N.0/24 on this host")


def _ifindex(name: str) -> int | None:
    try:
        return int(Path(f"/sys/class/net/{name}/ifindex").read_text())
    except OSError:
        return None


@pytest.mark.root_only(reason="bridges and veth pairs on the host need CAP_NET_ADMIN there")
def test_run_d_on_a_network_with_every_command_a_process(state: Path) -> None:
    from realrt.network import _nft

    env = {**os.environ, "LAYERLAB_STATE_DIR": str(state), "PYTHONPATH": ROOT}
    env.pop("LAYERLAB_BACKEND", None)

    def layerlab(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sim.cli", argv[0], "--backend", "real", *argv[1:]],
                              env=env, capture_output=True, text=True, timeout=60)

    net = "mp" + uuid.uuid4().hex[:10]
    made = layerlab("network", "create", net, "--subnet", _free_subnet())
    assert made.returncode == 0, made.stderr
    info = json.loads(layerlab("network", "inspect", net).stdout)
    bridge, first = info["bridge"], _ifindex(info["bridge"])
    cid = ""
    try:
        assert first is not None
        # The process that made the bridge is gone: the next engines adopt it, none deletes it.
        started = layerlab("run", "-d", "--network", net, "--name", "a", "busybox", "sh", "-c", QUICK_TO_STOP)
        assert started.returncode == 0, started.stderr
        cid = started.stdout.strip()
        listed = layerlab("ps")
        # `ps` (no -a) lists running containers only; its STATUS wording is not this test's business.
        assert listed.returncode == 0 and cid[:12] in listed.stdout and "xited" not in listed.stdout, listed
        assert _ifindex(bridge) == first  # the same bridge, never deleted and made again
        ip = json.loads(layerlab("network", "inspect", net).stdout)["subnet"].rsplit(".", 1)[0] + ".2"
        pinged = layerlab("run", "--network", net, "busybox", "ping", "-c1", "-W3", ip)
        assert pinged.returncode == 0 and "1 packets received" in pinged.stdout, pinged
        assert _ifindex(bridge) == first
        assert layerlab("stop", "-t", "5", "a").returncode == 0
        assert layerlab("rm", "a").returncode == 0
        assert _ifindex(bridge) == first  # the network is still saved: its bridge stays
        gone = layerlab("network", "rm", net)
        assert gone.returncode == 0, gone.stderr
        assert _ifindex(bridge) is None
        assert not [n for n in os.listdir("/sys/class/net") if n.startswith("llv" + cid[:6])]
        assert not os.path.lexists(f"/run/netns/ll-{cid[:12]}")
        assert bridge not in json.dumps(_nft.listing() or [])  # out of the isolation set too
        assert list((state / "journal").glob("*.json")) == []
    finally:
        if _ifindex(bridge) is not None:
            layerlab("rm", "-f", "a")
            layerlab("network", "rm", net)


@pytest.mark.root_only(reason="bridges on the host need CAP_NET_ADMIN there")
def test_a_second_engine_opens_on_a_store_with_networks(state: Path) -> None:
    first: Any = require_real(state_dir=str(state))
    net = "mp" + uuid.uuid4().hex[:10]
    info = first.create_network(net, subnet=_free_subnet())
    try:
        index = _ifindex(info.bridge)
        second: Any = require_real(state_dir=str(state))  # ps while logs -f is open; a run -d's monitor
        try:
            assert second.inspect_network(net).bridge == info.bridge and _ifindex(info.bridge) == index
        finally:
            second.close()
        assert _ifindex(info.bridge) == index  # closing an engine leaves the network's bridge
    finally:
        first.remove_network(net)
        first.close()
    assert _ifindex(info.bridge) is None


@pytest.mark.root_only(reason="bridges and veth pairs on the host need CAP_NET_ADMIN there")
def test_the_sweep_keeps_a_dead_makers_bridge_while_it_has_ports(tmp_path: Path) -> None:
    from realrt.journal import Journal
    from realrt.network import _nft
    from sim.network.names import bridge_name

    tag = uuid.uuid4().hex[:8]
    name, veth, peer = "mp" + tag, f"llv{tag}", f"llp{tag}"
    bridge = bridge_name(name)
    journal = Journal(tmp_path / "state")
    subnet = _free_subnet()
    script = ("import sys; from pathlib import Path; from realrt.journal import Journal; "
              "from realrt.network import KernelNetworks; from sim.network.model import NetworkInfo; "
              "k = KernelNetworks(Journal(Path(sys.argv[1]))); "
              "k.add_bridge(NetworkInfo(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])); k.close()")
    made = subprocess.run([sys.executable, "-c", script, str(journal.root.parent), name, subnet,
                           subnet.rsplit(".", 1)[0] + ".1", bridge], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    try:
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer], check=True)
        subprocess.run(["ip", "link", "set", veth, "master", bridge], check=True)
        # Its maker is dead, but a port is still on it: the bridge and its record stay (the table too:
        # its record is done with while a bridge is left).
        assert [r.kind for r in journal.sweep()] == ["nft"]
        assert _ifindex(bridge) is not None and [r.path for r in journal.records()] == [bridge]
        assert bridge in json.dumps(_nft.listing() or [])
        subprocess.run(["ip", "link", "del", veth], check=True)
        assert [r.path for r in journal.sweep()] == [bridge]  # no port, no saved network: it goes
        assert _ifindex(bridge) is None and list(journal.records()) == []
        assert bridge not in json.dumps(_nft.listing() or [])
    finally:
        for link in (veth, bridge):
            if _ifindex(link) is not None:
                subprocess.run(["ip", "link", "del", link], check=False)
        journal.sweep()
