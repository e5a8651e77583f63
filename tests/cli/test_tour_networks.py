"""``layerlab tour --chapter 6`` (命名空间和网络 namespaces and networks): the key lines on both backends,
fast on the model, and nothing left behind (no llbr-/llv links, no ll- network namespace, no
container process, the scratch folder removed).

The sandbox half (namespaces, PIDs, uid maps) runs on every backend, rootless included; the networks
half needs bridges on the host, so its real variant is root only (a rootless engine's chapter says
it cannot make networks, which the sandbox test checks).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sim.cli import main
from sim.network.names import bridge_name
from tests.backends import require_real

BACKENDS = ["sim", pytest.param("real", marks=pytest.mark.real)]
NETWORK_BACKENDS = ["sim", pytest.param("real", marks=[pytest.mark.real, pytest.mark.root_only])]

# Printed on every backend, rootless included.
SANDBOX_LINES = [
    "第 6 章  命名空间和网络  ·  Chapter 6: Namespaces and networks",
    "--- 6.1 命名空间 / a container is a process in namespaces of its own ---",
    "solo printed: PID 1 inside, hostname ",
    "cat /proc/self/uid_map inside (inside, outside, count):",
    "uid 0 inside -> host 1000; uid 1000 inside -> host 100999; the host's root (uid 0) reads as 65534 (nobody) inside",
    "--- 6.9 与 Docker 的不同 / where Docker does otherwise ---",
    "Docker: an embedded DNS server at 127.0.0.11 on user networks; here names come from /etc/hosts only.",
]
MATRIX = ["from \\ to  web   api   db",
          "web        -     yes   no",
          "api        yes   -     yes",
          "db         no    yes   -"]


def _subnets(out: str) -> dict[str, ipaddress.IPv4Network]:
    """The subnets the chapter's two networks got: 10.89.0.0/24 and 10.89.1.0/24 unless the host
    routes those already (another engine's bridges), when the chapter asks for the next free ones."""
    found = dict(re.findall(r"^ +(front|back) +subnet (10\.89\.\d+\.0/24) ", out, re.M))
    assert set(found) == {"front", "back"}, found
    return {name: ipaddress.IPv4Network(cidr) for name, cidr in found.items()}


def _host(subnet: ipaddress.IPv4Network, n: int) -> str:
    return str(subnet.network_address + n)


def _network_lines(front: ipaddress.IPv4Network, back: ipaddress.IPv4Network) -> list[str]:
    """Printed wherever networks can be made: the model, and a real engine as root."""
    return [
        f"back   subnet {back}   gateway {_host(back, 1)}  bridge {bridge_name('back')}: db, api",
        f"front  subnet {front}   gateway {_host(front, 1)}  bridge {bridge_name('front')}: web, api",
        "/etc/resolv.conf has no nameserver line ('options ndots:0')",
        f"web resolves api -> {_host(front, 3)} (its /etc/hosts)",
        f"db resolves api -> {_host(back, 3)} (its /etc/hosts)",
        "web resolves db -> None (its /etc/hosts)",
    ]


def _kernel_lines(front: ipaddress.IPv4Network, back: ipaddress.IPv4Network) -> list[str]:
    """... and only on the kernel, as root."""
    return [
        "the kernel agrees with the model: True",
        "web$ nc db 7000 -> exit 1: nc: bad address 'db'",
        f"web$ nc -w 1 {_host(back, 2)} 7000 -> exit 1: nc: timed out",
        "web: kernel == model: True",
        "api: kernel == model: True",
        "db: kernel == model: True",
        f"2: eth0    inet {_host(front, 3)}/24 scope global eth0",
        f"3: eth1    inet {_host(back, 3)}/24 scope global eth1",
    ]


def _chapter_06(capsys: pytest.CaptureFixture[str], backend: str) -> str:
    if backend == "real":
        require_real(rootless=os.geteuid() != 0)  # what connect("real") picks
    assert main(["tour", "--backend", backend, "--chapter", "6"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def _lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines()]


def _tool(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed (the real tools are required): {done.stderr}"
    return done.stdout


def _layerlab_on_host() -> dict[str, set[str]]:
    """layerlab's links (llbr-*, llv*, llp*) and network namespaces (ll-*) on this host."""
    links = {str(m["ifname"]) for m in json.loads(_tool("ip", "-j", "link"))
             if str(m["ifname"]).startswith(("llbr-", "llv", "llp"))}
    netns = {line.split()[0] for line in _tool("ip", "netns", "list").splitlines() if line.startswith("ll-")}
    return {"links": links, "netns": netns}


@pytest.mark.parametrize("backend", BACKENDS)
def test_chapter_06_sandbox(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    started = time.perf_counter()
    out = _chapter_06(capsys, backend)
    elapsed = time.perf_counter() - started
    for line in SANDBOX_LINES:
        assert line in out, line
    # PID 1 inside is an ordinary PID outside: the kernel's own pid, or this Python process on the model.
    view = re.search(r"PID 1 inside is PID (\d+) outside \((sleep 120|sh -c \.\.\.)\)", out)
    assert view is not None
    hostname = re.search(r"solo printed: PID 1 inside, hostname (\w{12})", out)
    assert hostname is not None and f"hostname inside: {hostname.group(1)} (the container id's" in out
    # The namespace table: pid, net, mnt, uts and ipc are always new.
    table = {line.split()[0]: line.split()[-1] for line in _lines(out)
             if re.match(r"(mnt|pid|net|uts|ipc|user|cgroup) +\1:\[\d+\] +\1:\[\d+\] +(new|shared)$", line)}
    assert set(table) == {"mnt", "pid", "net", "uts", "ipc", "user", "cgroup"}
    assert all(table[kind] == "new" for kind in ("mnt", "pid", "net", "uts", "ipc"))
    rootless = backend == "real" and os.geteuid() != 0
    # The uid map read inside is the engine's: identity as root, the caller (and a range) when rootless.
    uid_map = out.split("cat /proc/self/uid_map inside (inside, outside, count):\n", 1)[1].splitlines()
    first = uid_map[0].split()
    if rootless:
        assert table["user"] == "new" and first == ["0", str(os.geteuid()), "1"]
        assert f"solo's PID 1 is uid 0 (root) inside and uid {os.geteuid()} on the host" in out
        assert "network create front -> BackendUnavailableError: --network front needs bridges" in out
        assert "1: lo    inet 127.0.0.1/8 scope host lo" in _lines(out)
        assert "--- 6.5" not in out
    else:
        assert table["user"] == "shared" and first == ["0", "0", "4294967295"]
        assert "run --user 1000:1000 id -> uid=1000 gid=1000 groups=1000; on the host that is uid 1000" in out
    if backend == "real":
        assert view.group(2) == "sleep 120"
        assert re.search(r"ps inside solo .*\n +PID +USER +COMMAND\n +1 root +sleep 120\n", out)
        assert re.search(r"PID 1 inside is PID \d+ outside \(sleep 120\): /proc/\d+/cmdline on the host reads "
                         r"'sleep 120'; the host has \d+ processes, solo sees 2", out)
    else:
        assert int(view.group(1)) == os.getpid()
        assert "ps: the model's shell has no ps applet" in out
        assert elapsed < 3.0, f"chapter 6 took {elapsed:.2f} s on the model"


@pytest.mark.parametrize("backend", NETWORK_BACKENDS)
def test_chapter_06_networks(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    out = _chapter_06(capsys, backend)
    subnets = _subnets(out)
    front, back = subnets["front"], subnets["back"]
    if backend == "sim":  # the model's IPAM: the first free 10.89.N.0/24, in creation order
        assert (str(front), str(back)) == ("10.89.0.0/24", "10.89.1.0/24")
        assert "network create --subnet" not in out
    for line in _network_lines(front, back):
        assert line in out, line
    lines = _lines(out)
    start = lines.index("the model (NetworkModel.reachability):")
    assert lines[start + 1:start + 5] == MATRIX
    # Every veth's host side is named by sim.network.names and is a port of its network's bridge.
    veths = re.findall(r"(web|api|db) +(eth\d) (10\.89\.\d+\.\d+/24) +on (front|back) +veth pair eth\d <-> "
                       r"(llv[0-9a-f]{12}) \(host side, port of (llbr-[0-9a-f]{8})\)", out)
    assert sorted((c, i, a, n) for c, i, a, n, _, _ in veths) == [
        ("api", "eth0", f"{_host(front, 3)}/24", "front"), ("api", "eth1", f"{_host(back, 3)}/24", "back"),
        ("db", "eth0", f"{_host(back, 2)}/24", "back"), ("web", "eth0", f"{_host(front, 2)}/24", "front")]
    assert all(bridge == bridge_name(network) for _, _, _, network, _, bridge in veths)
    hosts = out.split("cat /etc/hosts in api (on both networks, it lists everyone):\n", 1)[1]
    api = re.search(rf"{re.escape(_host(front, 3))}\t(\w{{12}}) api\n", hosts)
    assert api is not None and f"{_host(back, 3)}\t{api.group(1)} api" in hosts
    web_hosts = out.split("cat /etc/hosts in web (front only: db is not in it):\n", 1)[1].split("/etc/resolv.conf")[0]
    assert " db" not in web_hosts and " api" in web_hosts
    if backend == "real":
        for line in _kernel_lines(front, back):
            assert line in out, line
        assert lines[lines.index("gives the other, else the other's first address):") + 1:][:4] == MATRIX
        for client, network in (("web", "front"), ("db", "back")):
            assert f"{client}$ nc api 7000 -> {api.group(1)} (api's hostname; from {network})" in out
    else:
        assert "The model's shell has no nc: --backend real (as root) sends the requests." in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_chapter_06_leaves_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path, backend: str) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = _chapter_06(capsys, backend)
    assert list(tmp_path.iterdir()) == []  # the scratch engine's folder is gone
    if backend == "sim":
        return
    tables = _tool("nft", "list", "tables") if os.geteuid() == 0 else ""
    after = _layerlab_on_host()
    # Other engines on this host may make and remove links of their own meanwhile, so only the chapter's
    # are looked for: its bridges, host-side veths and network namespaces (ll- + the container's hostname,
    # its id's first 12 characters) are gone.
    mine = {bridge_name("front"), bridge_name("back")} | set(re.findall(r"<-> (llv[0-9a-f]{12})", out))
    namespaces = {f"ll-{h}" for h in re.findall(r"\t(\w{12}) (?:web|api|db)\n", out)}
    namespaces |= {f"ll-{h}" for h in re.findall(r"hostname (\w{12})", out)}
    assert not after["links"] & mine, after["links"] & mine
    assert not after["netns"] & namespaces, after["netns"] & namespaces
    if os.geteuid() == 0:
        assert len(mine) == 6 and len(namespaces) == 4  # the chapter did make them
    pid = re.search(r"PID 1 inside is PID (\d+) outside", out)
    assert pid is not None
    try:  # solo's PID 1 is gone (unless the kernel gave its number to a new process already)
        cmdline = Path(f"/proc/{pid.group(1)}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    assert cmdline != b"sleep\0120\0"
    if "table inet layerlab" in tables:  # the isolation table stays only while some engine has a bridge
        assert any(link.startswith("llbr-") for link in after["links"]), "the table outlived the last bridge"
