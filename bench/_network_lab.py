"""The two sides of bench/network_bench.py and its bookkeeping: what it makes, and what it must leave as it was.

- :class:`LayerlabSide` -- a :class:`~sim.network.NetworkModel` and a
  :class:`realrt.network.KernelNetworks` with one bridge of their own; one container = the model's
  ``connect`` + ``make_netns`` + ``attach``, then ``disconnect`` + ``detach`` + ``remove_netns``;
- :class:`IpSide` -- the same steps as one ``ip`` process each, on a bridge ``llbb<pid>``;
- :class:`Ours` and :func:`host_state` / :func:`state_diff` / :func:`still_there` -- the names this
  run made, the host's listings before and after, and which difference is whose;
- :func:`private_mounts`, :func:`sweep_killed_runs` -- a mount table of the bench's own, and what a
  run killed by SIGKILL left.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from run_bench import OWNER_FILE, STATE_PREFIX, log, signals_blocked, sweep_stale

from sim.network import Endpoint, NetworkModel, netns_name

NETNS_DIR = "/run/netns"
SUBNET_POOL = ipaddress.IPv4Network("10.253.0.0/16")
# The ip side's names: llb + role + 7-digit pid (+ 3-digit index); the pid lets a later run sweep them.
IP_NAME = re.compile(r"llb([bvpn])(\d{7})(\d{3})?")
# The order Journal.sweep releases in: links before namespaces, the nft table after both.
RELEASE_ORDER = {"process": 0, "link": 1, "netns": 2, "nft": 3, "cgroup": 4, "mount": 5, "tree": 6}


# -- small helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def gc_off() -> Iterator[None]:
    """The garbage collector off while timing, as timeit does."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def med_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def tool(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def ip(*args: str) -> None:
    """One ``ip`` process, as one line of a shell script."""
    done = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")


def private_mounts() -> None:
    """Move this process into a mount namespace of its own whose ``/`` is a slave of the host's:
    the bench's mounts (``ip netns add``'s bind of /run/netns, the namespaces' nsfs mounts, the
    engine's overlays) never reach the host's table.  Must run while the process has one thread."""
    from realrt import _syscalls

    _syscalls.unshare(_syscalls.CLONE_NEWNS)
    _syscalls.mount("none", "/", None, _syscalls.MS_REC | _syscalls.MS_SLAVE)


def host_netns_mounts() -> list[str]:
    """The host's (pid 1's) mounts at /run/netns and below: mount point and source."""
    with open("/proc/1/mountinfo", encoding="utf-8", errors="replace") as fh:
        fields = [line.split() for line in fh]
    return sorted(f"{f[4]} {f[3]}" for f in fields if f[4] == NETNS_DIR or f[4].startswith(NETNS_DIR + "/"))


def host_state() -> dict[str, list[str]]:
    """What must be the same before and after, as lists of lines: links (name, type, flags, master;
    counters change on their own), named namespaces (names: the ``(id: N)`` the kernel gives a
    namespace when anyone first asks is not a change), the nftables ruleset, the host's mounts at
    /run/netns."""
    links = sorted(f"{m['ifname']} {m.get('link_type')} {','.join(m.get('flags', ()))} master={m.get('master')}"
                   for m in json.loads(tool("ip", "-j", "link")))
    spaces = sorted(line.split()[0] for line in tool("ip", "netns", "list").splitlines() if line.strip())
    return {"ip -j link": links, "ip netns list": spaces,
            "nft list ruleset": tool("nft", "list", "ruleset").splitlines(), "host mounts at /run/netns": host_netns_mounts()}


class Ours:
    """Every name this run makes, so that a difference at the end can be told apart: this run's
    leftover, or what another process on the host did meanwhile."""

    def __init__(self) -> None:
        self.names: set[str] = set()  # links, namespaces, bridges (the nft set's elements)

    def add(self, *names: str) -> None:
        self.names.update(names)

    def owns(self, line: str) -> bool:
        words = set(re.split(r"[\s\"/,=]+", line))
        return bool(words & self.names)


def state_diff(before: dict[str, list[str]], after: dict[str, list[str]], ours: Ours) -> tuple[list[str], list[str]]:
    """(this run's leftovers, other processes' changes), one line per changed listing."""
    leaks, others = [], []
    for key, old in before.items():
        new = after[key]
        added = [x for x in new if x not in old]
        gone = [x for x in old if x not in new]
        mine = [x for x in added + gone if ours.owns(x)]
        if mine:
            leaks.append(f"{key}: {mine}")
        theirs = [x for x in added if x not in mine], [x for x in gone if x not in mine]
        if theirs[0] or theirs[1]:
            others.append(f"{key}: +{len(theirs[0])} -{len(theirs[1])} lines ({', '.join((theirs[0] + theirs[1])[:4])}"
                          + (", ..." if len(theirs[0]) + len(theirs[1]) > 4 else "") + ")")
    return leaks, others


def still_there(ours: Ours) -> list[str]:
    """Any of this run's names still on the host now: links, namespace files, nft elements."""
    links = {m["ifname"] for m in json.loads(tool("ip", "-j", "link"))}
    files = set(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else set()
    ruleset = tool("nft", "list", "ruleset")
    return sorted(n for n in ours.names if n in links or n in files or f'"{n}"' in ruleset)


def free_subnets(count: int) -> list[str]:
    """``count`` /24s of :data:`SUBNET_POOL` that overlap no route of the host's main table."""
    routed = [ipaddress.IPv4Network(r["dst"], strict=False)
              for r in json.loads(tool("ip", "-j", "-4", "route", "show", "table", "main"))
              if r.get("dst") not in (None, "default")]
    found = [str(n) for n in SUBNET_POOL.subnets(new_prefix=24) if not any(n.overlaps(r) for r in routed)]
    if len(found) < count:
        raise RuntimeError(f"fewer than {count} free /24s in {SUBNET_POOL} on this host")
    return found[:count]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- layerlab's side ----------------------------------------------------------------------------


class LayerlabSide:
    """A NetworkModel and KernelNetworks with one bridge of their own; containers by index."""

    def __init__(self, journal: Any, subnet: str, ours: Ours) -> None:
        from realrt.network import KernelNetworks

        self.journal = journal
        self.ours = ours
        self.model = NetworkModel()
        self.info = self.model.create_network(f"llbench-{os.getpid()}", subnet)
        ours.add(self.info.bridge)
        self.kernel = KernelNetworks(journal)
        self.bridge_up = False
        try:
            self.kernel.add_bridge(self.info)
        except BaseException:
            self.kernel.close()  # add_bridge undid its own steps; the journal has the rest
            raise
        self.bridge_up = True

    @staticmethod
    def cid(i: int) -> str:
        return f"lb{os.getpid():07d}{i:03d}"  # 12 characters: the namespace is ll-<these>

    def setup(self, i: int) -> dict[str, float]:
        cid = self.cid(i)
        t0 = time.perf_counter()
        self.model.add_container(cid, hostname=f"c{i}")
        endpoint = self.model.connect(self.info.name, cid, hostname=f"c{i}")
        t1 = time.perf_counter()
        self.ours.add(endpoint.host_veth, netns_name(cid))
        path = self.kernel.make_netns(cid)
        t2 = time.perf_counter()
        self.kernel.attach(endpoint, path, endpoint.index)
        t3 = time.perf_counter()
        return {"model": t1 - t0, "make_netns": t2 - t1, "attach": t3 - t2}

    def teardown(self, i: int) -> dict[str, float]:
        from realrt.network import netns_path

        cid = self.cid(i)
        t0 = time.perf_counter()
        endpoint: Endpoint = self.model.disconnect(self.info.name, cid)
        t1 = time.perf_counter()
        self.kernel.detach(endpoint, netns_path(cid))
        t2 = time.perf_counter()
        self.kernel.remove_netns(cid)
        t3 = time.perf_counter()
        self.model.forget_container(cid)
        t4 = time.perf_counter()
        return {"model": (t1 - t0) + (t4 - t3), "detach": t2 - t1, "remove_netns": t3 - t2}

    def close(self) -> None:
        """Tear down whatever is still up (an interrupt), the bridge, the socket; then release the
        journal's records in the sweep's order, so the nft table goes after the bridge."""
        from realrt.network import netns_path

        with signals_blocked():
            for cid in list(self.model.containers()):
                if os.path.lexists(netns_path(cid)):
                    try:
                        self.kernel.remove_netns(cid)  # its veth goes with it
                    except Exception as exc:
                        log(f"cleanup: remove_netns({cid}) failed: {exc!r}")
                self.model.forget_container(cid)
            if self.bridge_up:
                try:
                    self.model.remove_network(self.info.name)
                    self.kernel.remove_bridge(self.info.name)
                except Exception as exc:
                    log(f"cleanup: removing bridge {self.info.bridge} failed: {exc!r}")
                self.bridge_up = False
            self.kernel.close()
            release_journal(self.journal)


def release_journal(journal: Any) -> list[str]:
    """Release every record still in ``journal`` (links, then namespaces, then the table); what was left."""
    left = sorted(journal.records(), key=lambda r: RELEASE_ORDER.get(r.kind, 6))
    for rec in left:
        try:
            journal.release(rec)
        except Exception as exc:
            log(f"cleanup: releasing {rec.kind} {rec.path} failed: {exc!r}")
    drop_nft_elements(left)
    return [f"{r.kind} {r.path}" for r in left]


def drop_nft_elements(released: list[Any]) -> None:
    """Take the bridges of released "link" records out of the isolation table's set.  Releasing a
    bridge's record deletes the link only; while other engines' bridges keep the table, the
    element naming it would stay (and ``nft list ruleset`` would differ from before)."""
    bridges = [r.path for r in released if r.kind == "link" and r.path.startswith("llbr-")]
    if not bridges:
        return
    from realrt.network import _netns, _nft

    links = {m["ifname"] for m in json.loads(tool("ip", "-j", "link"))}
    with _netns.host_lock():  # as KernelNetworks drops an element: not between another engine's checks
        for bridge in bridges:
            if bridge not in links:
                try:
                    _nft.drop_bridge(bridge)
                except Exception as exc:
                    log(f"cleanup: taking {bridge} out of the nft set failed: {exc!r}")


# -- the ip command's side ----------------------------------------------------------------------


class IpSide:
    """The same steps as one ``ip`` process each, on a bridge ``llbb<pid>`` of their own."""

    def __init__(self, subnet: str, ours: Ours) -> None:
        self.ours = ours
        self.token = f"{os.getpid():07d}"
        self.net = ipaddress.IPv4Network(subnet)
        self.gateway = str(self.net.network_address + 1)
        self.bridge = f"llbb{self.token}"
        ours.add(self.bridge)

    def names(self, i: int) -> tuple[str, str, str]:
        """(namespace, host veth, temporary peer) of container ``i``."""
        names = f"llbn{self.token}{i:03d}", f"llbv{self.token}{i:03d}", f"llbp{self.token}{i:03d}"
        self.ours.add(*names)
        return names

    def make_bridge(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("link", "set", self.bridge, "addrgenmode", "none")
        ip("addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def setup_script(self, i: int, fewest: bool) -> list[tuple[str, ...]]:
        ns, host, peer = self.names(i)
        address = f"{self.net.network_address + 2 + i}/{self.net.prefixlen}"
        tail: list[tuple[str, ...]] = [
            ("-n", ns, "link", "set", "eth0", "addrgenmode", "none"),
            ("-n", ns, "addr", "add", address, "dev", "eth0"),
            ("-n", ns, "link", "set", "eth0", "up"),
        ]
        route = ("-n", ns, "route", "add", "default", "via", self.gateway)
        host_up = [("link", "set", host, "addrgenmode", "none"), ("link", "set", host, "master", self.bridge, "up")]
        if fewest:
            return [("netns", "add", ns), ("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns),
                    *host_up, *tail, ("-n", ns, "link", "set", "lo", "up"), route]
        return [("netns", "add", ns), ("-n", ns, "link", "set", "lo", "up"),
                ("link", "add", host, "type", "veth", "peer", "name", peer), *host_up,
                ("link", "set", peer, "netns", ns), ("-n", ns, "link", "set", peer, "name", "eth0"), *tail, route]

    def teardown_script(self, i: int) -> list[tuple[str, ...]]:
        ns, host, _ = self.names(i)
        return [("link", "del", host), ("netns", "del", ns)]

    @staticmethod
    def run(script: list[tuple[str, ...]]) -> list[float]:
        """Run each step as one ``ip`` process; the time of each."""
        times = []
        for args in script:
            t0 = time.perf_counter()
            ip(*args)
            times.append(time.perf_counter() - t0)
        return times

    def label(self, args: tuple[str, ...]) -> str:
        """``ip`` + the step with this run's names replaced by NS, HOST, PEER, BR, ADDR, GW."""
        ns, host, peer = self.names(0)
        words = {ns: "NS", host: "HOST", peer: "PEER", self.bridge: "BR", self.gateway: "GW"}
        return "ip " + " ".join(words.get(a, "ADDR" if "/" in a else a) for a in args)

    def close(self) -> None:
        """Delete every link and namespace named for this process (peers go with their veths)."""
        with signals_blocked():
            remove_ip_names(lambda pid: pid == int(self.token))


def remove_ip_names(owned: Callable[[int], bool]) -> list[str]:
    """Delete the ``llb*`` links and ``llbn*`` namespaces whose pid ``owned`` accepts: veths, then
    namespaces, then bridges.  Returns their names."""
    links = [m["ifname"] for m in json.loads(tool("ip", "-j", "link"))]
    spaces = os.listdir(NETNS_DIR) if os.path.isdir(NETNS_DIR) else []
    mine = [(m.group(1), name) for name in links + spaces
            if (m := IP_NAME.fullmatch(name)) and owned(int(m.group(2)))]
    order = {"v": 0, "p": 0, "n": 1, "b": 2}
    for role, name in sorted(mine, key=lambda x: order[x[0]]):
        args = ("netns", "del", name) if role == "n" else ("link", "del", name)
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0 and "Cannot find device" not in done.stderr and "No such file" not in done.stderr:
            log(f"cleanup: ip {' '.join(args)} failed: {done.stderr.strip()}")
    return [name for _, name in mine]


def sweep_killed_runs(parent: str | None) -> None:
    """What a bench run killed by SIGKILL left: its ip-side names, and the network records of its
    state folders, released in the sweep's order before run_bench's sweep deletes the folders."""
    swept = remove_ip_names(lambda pid: pid != os.getpid() and not pid_alive(pid))
    from realrt.journal import Journal

    for folder in sorted(Path(parent or tempfile.gettempdir()).glob(STATE_PREFIX + "*")):
        try:
            owner = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(owner) and (folder / "journal").is_dir():
            released = Journal(folder).sweep()
            drop_nft_elements(released)
            swept += [f"{r.kind} {r.path}" for r in released]
    if swept:
        log(f"swept what a killed network bench left: {', '.join(swept)}")
    sweep_stale(parent)
