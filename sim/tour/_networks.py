"""Chapter 6 of the tour: 命名空间和网络 namespaces and networks (the seed's 容器 —— 简述).

The seed: 容器的实质是进程 ... 容器进程运行于自己的命名空间 ... 容器也有自己的文件系统、网络配置、进程空间、
甚至是用户的 ID 空间 -- a container is a process in namespaces of its own, with its own root file
system, network configuration, process space and even user ID space, which makes it safer than a
process run on the host.  Chapter 3 showed the file system; this chapter shows the rest, each
thing once from inside the container and once from the host:

- 6.1 the container's seven namespaces next to the host's (:class:`~sim.network.NamespaceSet`);
- 6.2 PID 1 inside is PID N outside (:class:`~sim.network.ProcessView`), its own hostname, and
  on the kernel ``ps`` listing only the container's processes;
- 6.3 the uid map (``cat /proc/self/uid_map`` inside, :attr:`engine.id_maps`), ``--user`` and
  the model's rootless layouts (:mod:`sim.containers.userns`);
- 6.4 to 6.8 two networks and three containers: bridges, veth pairs and addresses, the hosts file
  (names without a DNS server), the model's reachability matrix, a request by name with
  busybox ``nc`` and the kernel's view read back against the model's;
- 6.9 where Docker does otherwise.

Where a backend cannot show something, the chapter says so instead of pretending: the model runs
no host processes of its own (its container's shell runs inside this Python process, which is
therefore PID N), has no ``ps`` or ``nc``, and reads no kernel; a rootless real engine cannot
make networks (bridges and veth pairs need ``CAP_NET_ADMIN`` on the host), so sections 6.4 to
6.8 shrink to what a container on ``--network none`` has.

Everything goes through the engine interface of a scratch engine
(:func:`sim.tour._common.scratch_engine`), with one private read on the kernel, as chapter 3 reads
a container's mount: the running container's host PID (``engine._container(ref).process.pid``).
The measured reachability matrix is busybox ``nc`` run with ``exec`` in each container against the
others' servers (``sim`` never imports ``realrt``).
Every container and network the chapter makes is removed at its end, also when a step fails:
containers first, then networks, since a real engine keeps its bridges when it closes (networks
outlive an engine, as Docker's outlive a daemon restart).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from sim.containers.userns import subordinate_maps
from sim.errors import BackendUnavailableError, ConflictError, InvalidNetworkError
from sim.network.namespaces import NAMESPACE_KINDS, NamespaceAllocator, NamespaceSet, ProcessView
from sim.tour._common import Tour, scratch_engine

if TYPE_CHECKING:
    from sim.containers.core import EngineCore

__all__ = ["chapter_networks", "namespace_lines", "matrix_lines", "NETWORKS", "CONTAINERS", "SERVER_PORT",
           "SOLO_COMMAND"]

#: The two networks of sections 6.4 to 6.8 (default subnets: 10.89.0.0/24, then 10.89.1.0/24).
NETWORKS: Final = ("front", "back")
#: The port each container's busybox ``nc`` listens on; each connection gets the server's hostname back.
SERVER_PORT: Final = 7000
_SERVER: Final = ("nc", "-ll", "-p", str(SERVER_PORT), "-e", "hostname")
#: The three containers: the network each is created on, and its command (a server each, so the
#: reachability matrix can be measured from inside).  api joins ``back`` too.
CONTAINERS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "web": ("front", _SERVER),
    "api": ("front", _SERVER),
    "db": ("back", _SERVER),
}
#: The container of sections 6.1 to 6.3, on no network: it says who it is, then sleeps as PID 1.
SOLO_COMMAND: Final = 'echo "PID $$ inside, hostname $(hostname)"; exec sleep 120'
#: A model uid map for a rootless user 1000 with ``1000:100000:65536`` in /etc/subuid (section 6.3).
_ROOTLESS_EXAMPLE = subordinate_maps(1000, 1000, [(100000, 65536)], [(100000, 65536)],
                                     note="a user 1000 with 100000:65536 in /etc/subuid and /etc/subgid")


def namespace_lines(host: NamespaceSet, container: NamespaceSet) -> list[str]:
    """A table of the seven kinds: the host's namespace, the container's, and ``new`` or ``shared``."""
    shared = set(container.shared_with(host))
    lines = [f"{'kind':<8}{'host':<22}{'container':<22}"]
    for kind in NAMESPACE_KINDS:
        lines.append(f"{kind:<8}{host.get(kind):<22}{container.get(kind):<22}{'shared' if kind in shared else 'new'}")
    return lines


def matrix_lines(names: Sequence[str], reach: Mapping[tuple[str, str], bool]) -> list[str]:
    """``reach[(a, b)]`` (does a reach b?) for every ordered pair of ``names`` as a table: one row a
    source, one column a destination, ``yes``/``no`` (``-`` on the diagonal)."""
    width = max(len(n) for n in names) + 3
    lines = ["from \\ to".ljust(11) + "".join(n.ljust(width) for n in names)]
    for a in names:
        cells = ["-" if a == b else ("yes" if reach[(a, b)] else "no") for b in names]
        lines.append(a.ljust(11) + "".join(c.ljust(width) for c in cells))
    return lines


def _kernel(engine: EngineCore) -> bool:
    """Whether the engine runs on the kernel (only the real one can read its networks back)."""
    return hasattr(engine, "kernel_network")


def _host_pid(engine: EngineCore, name: str) -> int:
    process = engine._container(name).process
    if process is None:
        raise AssertionError(f"{name} is not running")
    return int(process.pid)


def _namespaces_of(pid: int | str) -> NamespaceSet:
    """The namespaces of a process as ``readlink /proc/<pid>/ns/<kind>`` prints them."""
    return NamespaceSet(**{kind: os.readlink(f"/proc/{pid}/ns/{kind}") for kind in NAMESPACE_KINDS})


def _host_uid(pid: int) -> int:
    """The real uid of a process as the host sees it (``Uid:`` in ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return int(next(line for line in fh if line.startswith("Uid:")).split()[1])


def _ip_lines(output: str) -> list[str]:
    """``ip -o addr`` lines without their ``\\ valid_lft ...`` tails (one address a line)."""
    return [line.split("\\", 1)[0].rstrip() for line in output.splitlines()]


def _first_line(engine: EngineCore, name: str, timeout: float = 10.0) -> str:
    """The first line a container has written (a detached one writes it a little later)."""
    deadline = time.monotonic() + timeout
    while b"\n" not in engine.logs(name) and time.monotonic() < deadline:
        time.sleep(0.02)
    return engine.logs(name).decode(errors="replace").split("\n", 1)[0]


def _sandbox(t: Tour, engine: EngineCore, real: bool) -> None:
    """6.1 to 6.3: one container on no network, its namespaces, PIDs and user ids."""
    engine.create("busybox", SOLO_COMMAND, name="solo")
    engine.start("solo", detach=True)  # the model runs it on a virtual clock: it sleeps, running
    said = _first_line(engine, "solo")

    t.section("6.1", "命名空间", "a container is a process in namespaces of its own")
    t.say("container solo (busybox, --network none) runs: " + SOLO_COMMAND)
    model = NamespaceAllocator().for_container(user_namespace=engine.id_maps.user_namespace)
    if real:
        pid = _host_pid(engine, "solo")
        host, inside = _namespaces_of("self"), _namespaces_of(pid)
        t.say(f"readlink /proc/self/ns/* (this process) and /proc/{pid}/ns/* (solo's PID 1), from the host:")
    else:
        host, inside = NamespaceAllocator().host, model
        t.say("the model's namespaces (sim.network.NamespaceAllocator; the host's numbers are Linux's fixed ones):")
    t.lines(namespace_lines(host, inside))
    new = [k for k in NAMESPACE_KINDS if k not in inside.shared_with(host)]
    t.say(f"new: {' '.join(new)}; shared with the host: {' '.join(inside.shared_with(host)) or 'nothing'}")
    if real:
        modelled = [k for k in NAMESPACE_KINDS if k not in model.shared_with(NamespaceAllocator().host)]
        if modelled != new:
            t.say(f"(the model's NamespaceAllocator.for_container makes new: {' '.join(modelled)})")
    if not engine.id_maps.user_namespace:
        t.say("No user namespace: a root engine's containers run with the host's user ids, as Docker's do.")

    t.section("6.2", "进程空间", "PID 1 inside is PID N outside; the container's own hostname")
    t.say(f"solo printed: {said}")
    if real:
        ps = engine.exec("solo", ["ps"]).output.splitlines()
        t.say("ps inside solo (only the container's processes; the host's are invisible):")
        t.lines(ps)
        inside_pid = next(int(line.split()[0]) for line in ps[1:] if line.split()[-2:] == ["sleep", "120"])
        view = ProcessView(inside_pid, pid, "sleep 120")
        host_pids = sum(1 for entry in os.listdir("/proc") if entry.isdigit())
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode().strip()
        t.say(f"{view}: /proc/{pid}/cmdline on the host reads {cmdline!r}; the host has {host_pids} processes, "
              f"solo sees {len(ps) - 1}")
    else:
        view = ProcessView(1, os.getpid(), "sh -c ...")
        t.say(f"{view}: the model runs solo's shell inside this Python process, which is PID {os.getpid()} "
              "on the host")
        t.say("ps: the model's shell has no ps applet; --backend real lists the container's processes")
    t.say(f"hostname inside: {engine.exec('solo', 'hostname').output.strip()} (the container id's first 12 "
          f"characters, its own UTS namespace); on the host: {socket.gethostname()}")

    t.section("6.3", "用户 ID 空间", "user ids: the uid map of the container's user namespace")
    uid_map = engine.exec("solo", "cat /proc/self/uid_map").output
    assert uid_map == engine.id_maps.proc_uid_map(), (uid_map, engine.id_maps.proc_uid_map())
    t.say("cat /proc/self/uid_map inside (inside, outside, count):")
    t.lines(uid_map.splitlines())
    t.say(f"engine.id_maps: {engine.id_maps.describe()}".replace("\n", "\n  "))
    if real:
        t.say(f"solo's PID 1 is uid 0 (root) inside and uid {_host_uid(pid)} on the host (/proc/{pid}/status)")
    else:
        t.say(f"uid 0 (root) inside is uid {engine.id_maps.uid_to_host(0)} on the host")
    if engine.id_maps.covers(1000, 1000):
        ran = engine.run("busybox", "id", user="1000:1000", remove=True)
        t.say(f"run --user 1000:1000 id -> {ran.output.strip()}; on the host that is uid "
              f"{engine.id_maps.uid_to_host(1000)}")
    else:
        try:
            engine.run("busybox", "id", user="1000:1000", remove=True)
            raise AssertionError("a uid the map does not cover ran")
        except BackendUnavailableError as exc:
            t.say(f"run --user 1000:1000 -> {type(exc).__name__}: {exc}")
    rootless = _ROOTLESS_EXAMPLE
    t.say(f"Rootless, as podman maps it ({rootless.note}), the map reads:")
    t.lines(rootless.proc_uid_map().splitlines())
    t.say(f"uid 0 inside -> host {rootless.uid_to_host(0)}; uid 1000 inside -> host {rootless.uid_to_host(1000)}; "
          f"the host's root (uid 0) reads as {rootless.uid_from_host(0)} (nobody) inside:\nroot in such a "
          "container is an unprivileged user on the host, which is why it is safer (更高的安全性).")


def _create_network(t: Tour, engine: EngineCore, network: str) -> None:
    """``network create NAME``: the engine's IPAM picks the first free 10.89.N.0/24 *it* knows of.  The
    kernel refuses a subnet the host routes already (another engine's bridge, the host's own LAN):
    then the next 10.89.N.0/24 is asked for by name (``--subnet``), as one would on such a host."""
    try:
        engine.create_network(network)
        return
    except ConflictError as exc:
        if "overlaps" not in str(exc):
            raise
        t.say(f"network create {network} -> {type(exc).__name__}: {exc}")
    for n in range(256):
        subnet = f"10.89.{n}.0/24"
        try:
            engine.create_network(network, subnet=subnet)
        except (ConflictError, InvalidNetworkError) as exc:  # routed on the host, or another of ours has it
            if "overlaps" not in str(exc):
                raise
            continue
        t.say(f"network create --subnet {subnet} {network}: the first 10.89.N.0/24 this host does not route yet")
        return
    raise ConflictError(f"every 10.89.N.0/24 is in use on this host: network {network} has no subnet left")


def _build_networks(t: Tour, engine: EngineCore, real: bool) -> dict[str, str] | None:
    """6.4: the networks and containers (started on the kernel); ``None`` when this engine cannot."""
    t.section("6.4", "网络配置", "two networks, three containers: bridges, veth pairs, addresses")
    t.say(f"network create {' / '.join(NETWORKS)}; run web and api on front, db on back; network connect back api")
    try:
        for network in NETWORKS:
            _create_network(t, engine, network)
    except BackendUnavailableError as exc:
        t.say(f"network create {NETWORKS[0]} -> {type(exc).__name__}: {exc}")
        t.say("So this rootless engine shows only what it can: solo, on --network none, has a network namespace\n"
              "with nothing but lo (ip -4 -o addr inside):")
        t.lines(_ip_lines(engine.exec("solo", "ip -4 -o addr").output))
        t.say("Run the tour as root for sections 6.5 to 6.8 (networks, names, reachability, a request by name).")
        return None
    for name, (network, command) in CONTAINERS.items():
        engine.create("busybox", list(command), name=name, network=network)
    engine.connect("back", "api")
    ids = {name: engine._container(name).id for name in CONTAINERS}
    names = {cid: name for name, cid in ids.items()}
    for info in engine.networks():
        members = ", ".join(names.get(c, c[:12]) for c in info.containers)
        t.say(f"{info.name:<6} subnet {info.subnet:<14} gateway {info.gateway:<10} bridge {info.bridge}: {members}", 4)
    for name in CONTAINERS:
        for e in engine.container_network(name).endpoints:
            t.say(f"{name:<4} {e.interface} {e.address:<13} on {e.network:<5} veth pair {e.interface} <-> "
                  f"{e.host_veth} (host side, port of {engine.inspect_network(e.network).bridge})", 4)
    if real:
        for name in CONTAINERS:
            engine.start(name, detach=True)
        t.say("started all three: each process got its namespace, veth pairs, addresses and routes")
    return ids


def _names_and_reach(t: Tour, engine: EngineCore, ids: Mapping[str, str], real: bool) -> None:
    """6.5 and 6.6: the hosts files, and who reaches whom (the model; measured on the kernel)."""
    t.section("6.5", "/etc/hosts", "names without a DNS server: the hosts file every container gets")
    hosts = engine.exec("api", "cat /etc/hosts").output
    assert hosts == engine.container_network("api").hosts
    t.say("cat /etc/hosts in api (on both networks, it lists everyone):")
    t.lines(hosts.splitlines())
    t.say("cat /etc/hosts in web (front only: db is not in it):")
    t.lines(engine.exec("web", "cat /etc/hosts").output.splitlines())
    resolv = engine.exec("web", "cat /etc/resolv.conf").output
    t.say(f"/etc/resolv.conf has no nameserver line ({resolv.splitlines()[-1]!r}): no DNS server is reachable,\n"
          "names resolve through /etc/hosts, rewritten whenever a container joins or leaves a network.")

    t.section("6.6", "隔离", "who reaches whom: containers that share a network, nothing else")
    order = list(ids)
    model = engine.network_model.reachability(ids.values())
    by_name = {(a, b): model[(ids[a], ids[b])] for a in order for b in order if a != b}
    t.say("the model (NetworkModel.reachability):")
    t.lines(matrix_lines(order, by_name))
    if not real:
        t.say("(measured from inside each container with busybox nc on --backend real as root)")
        return
    _wait_for_servers(engine)
    measured = {(a, b): _connects(engine, a, _address(engine, ids, a, b)) for a in order for b in order if a != b}
    t.say(f"measured on the kernel (in each container, nc -w 1 to port {SERVER_PORT} at the address its /etc/hosts\n"
          "gives the other, else the other's first address):")
    t.lines(matrix_lines(order, measured))
    t.say(f"the kernel agrees with the model: {measured == by_name}")


def _connects(engine: EngineCore, client: str, address: str) -> bool:
    """Whether ``client``'s busybox nc gets a server's answer from ``address`` (an unreachable
    address times out after a second)."""
    return engine.exec(client, f"nc -w 1 {address} {SERVER_PORT} </dev/null | grep -q .").exit_code == 0


def _wait_for_servers(engine: EngineCore) -> None:
    """Until each container's server answers inside it (they were started a moment ago)."""
    for name in CONTAINERS:
        ready = engine.exec(name, f"for i in $(seq 50); do nc 127.0.0.1 {SERVER_PORT} </dev/null | grep -q . && "
                                  "exit 0; sleep 0.1; done; exit 1")
        if ready.exit_code != 0:
            raise AssertionError(f"{name}'s nc server did not answer: {ready.output}")


def _address(engine: EngineCore, ids: Mapping[str, str], a: str, b: str) -> str:
    """Where ``a`` would send a packet for ``b``: the address ``a``'s /etc/hosts gives ``b``, else ``b``'s first."""
    found = engine.network_model.resolve(ids[a], b)
    return found if found is not None else engine.network_model.endpoints(container=ids[b])[0].ip


def _request(t: Tour, engine: EngineCore, ids: Mapping[str, str], real: bool) -> None:
    """6.7: a request from web to api by name; db not even by address."""
    t.section("6.7", "按名字访问", f"a request by name: api answers on port {SERVER_PORT} with its hostname")
    model = engine.network_model
    for a, b in (("web", "api"), ("db", "api"), ("web", "db")):
        t.say(f"{a} resolves {b} -> {model.resolve(ids[a], b)} (its /etc/hosts)")
    api_hostname = engine._container("api").hostname
    if not real:
        t.say("The model's shell has no nc: --backend real (as root) sends the requests.")
        return
    for client in ("web", "db"):
        answer = engine.exec(client, f"nc -w 2 api {SERVER_PORT} </dev/null")
        assert answer.exit_code == 0 and answer.output.strip() == api_hostname, answer
        t.say(f"{client}$ nc api {SERVER_PORT} -> {answer.output.strip()} (api's hostname; from "
              f"{'front' if client == 'web' else 'back'})")
    by_name = engine.exec("web", f"nc -w 1 db {SERVER_PORT} </dev/null")
    t.say(f"web$ nc db {SERVER_PORT} -> exit {by_name.exit_code}: {by_name.output.strip()}")
    db_ip = model.endpoints(container=ids["db"])[0].ip
    by_ip = engine.exec("web", f"nc -w 1 {db_ip} {SERVER_PORT} </dev/null")
    t.say(f"web$ nc -w 1 {db_ip} {SERVER_PORT} -> exit {by_ip.exit_code}: {by_ip.output.strip()}: web's default "
          "route leads to\nfront's bridge on the host, and the nftables table inet layerlab drops what would be "
          "forwarded between bridges.")


def _kernel_view(t: Tour, engine: EngineCore, real: bool) -> None:
    """6.8: the kernel's interfaces and routes read back (pyroute2) against the model's."""
    t.section("6.8", "内核与模型", "the kernel's view of each container equals the model's")
    if not real:
        t.say("engine.kernel_network(ref) reads a running container's interfaces and routes back from the kernel:\n"
              "--backend real (as root) compares them with engine.container_network(ref), the model's view.")
        return
    kernel: Any = engine  # the real engine (kernel_network is not part of the Engine interface)
    for name in CONTAINERS:
        interfaces, routes = kernel.kernel_network(name)
        view = engine.container_network(name)
        same = (interfaces, routes) == (list(view.interfaces), list(view.routes))
        t.say(f"{name}: kernel == model: {same}")
        assert same, (name, interfaces, routes, view)
        if name == "api":
            for i in interfaces:
                t.say(f"{i.name:<5} {i.kind:<9} {' '.join(i.addresses):<14} peer {i.peer or '-'}", 4)
            for r in routes:
                t.say(f"{r.destination} {'via ' + r.gateway + ' ' if r.gateway else ''}dev {r.device}", 4)
    t.say("ip -4 -o addr inside api:")
    t.lines(_ip_lines(engine.exec("api", "ip -4 -o addr").output))


def _docker(t: Tour) -> None:
    t.section("6.9", "与 Docker 的不同", "where Docker does otherwise")
    t.lines([
        "Docker: a default bridge network with NAT to the outside; here the default is --network none (only lo),",
        "  and no network routes or NATs anywhere.",
        "Docker: an embedded DNS server at 127.0.0.11 on user networks; here names come from /etc/hosts only.",
        "Docker: -p 8080:80 listens on every host address; here only on 127.0.0.1 (a userspace forwarder).",
    ])


def _tear_down(engine: EngineCore) -> None:
    """Remove every container (killed if running), then every network; the first failure is raised after."""
    failures: list[BaseException] = []
    for info in engine.containers():
        try:
            engine.remove(info.id, force=True)
        except Exception as exc:  # keep going: the networks must still be removed
            failures.append(exc)
    for network in engine.networks():
        try:
            engine.remove_network(network.name)
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


def chapter_networks(t: Tour) -> None:
    with scratch_engine(t) as (engine, _folder):
        try:
            _chapter(t, engine)
        finally:
            _tear_down(engine)


def _chapter(t: Tour, engine: EngineCore) -> None:
    real = _kernel(engine)
    _sandbox(t, engine, real)
    ids = _build_networks(t, engine, real)
    if ids is not None:
        _names_and_reach(t, engine, ids, real)
        _request(t, engine, ids, real)
        _kernel_view(t, engine, real)
    _docker(t)
