# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 第 6 章 命名空间和网络 / Chapter 6: Namespaces and networks
#
# > 容器的实质是进程，与直接在宿主执行的进程不同，容器进程运行于自己的命名空间。因此容器拥有良好的隔离性，容器也有自己的
# > 文件系统、网络配置、进程空间、甚至是用户的 ID 空间。因为容器的沙箱特性，使用容器封装的应用要比直接运行在宿主机上有更高的安全性。
#
# A container **is a process (进程)**, but one that runs in **namespaces (命名空间)** of its own: it has its own
# root file system, its own **network configuration (网络配置)**, its own **process space (进程空间)** and even
# its own **user ID space (用户的 ID 空间)**, and this sandbox makes it safer than a process run directly on the
# host. Notebook 03 showed the file system; this notebook shows the rest, each thing twice: as the container
# sees it and as the host sees it.
#
# * `BACKEND = "sim"`: layerlab's model (`sim.network`: namespaces, uid maps, bridges, veth pairs, addresses,
#   `/etc/hosts`, reachability), which runs anywhere.
# * `BACKEND = "real"`: the Linux engine. The sandbox part (namespaces, PIDs, uid maps) works as root and
#   rootless; the networks (bridges and veth pairs on the host, made with pyroute2) need root, and the
#   notebook then builds them for real, shows `ip addr` and `ps` inside, sends a request from one container
#   to another by name, and checks that the kernel's view equals the model's. A rootless engine cannot make
#   networks: the notebook says so and runs that part on the model.
#
# Nothing here leaves this machine: the networks never route to the outside. The environment variable
# `LAYERLAB_BACKEND`, when set, overrides the cell below (the tests run this notebook both ways).

# %%
import os

BACKEND = "sim"  # "sim" (the model) or "real" (the Linux engine; its networks need root)
BACKEND = os.environ.get("LAYERLAB_BACKEND") or BACKEND
print("backend:", BACKEND)

# %%
import contextlib
import shutil
import socket
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.patches import Polygon

import sim
from sim.containers.userns import HOST_MAPS, single_maps, subordinate_maps
from sim.errors import BackendUnavailableError, ConflictError, InvalidNetworkError
from sim.figures import show
from sim.network import NamespaceAllocator, NamespaceSet, ProcessView
from sim.network.namespaces import NAMESPACE_KINDS

KERNEL = BACKEND == "real"

# Everything this notebook makes is registered here and undone, last first, by the final cell:
# containers removed (killed if running), networks removed (their bridges with them), engines closed,
# the working folder removed.
cleanup = contextlib.ExitStack()
workdir = Path(tempfile.mkdtemp(prefix="layerlab-06-"))
cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)


@contextlib.contextmanager
def on_error():
    """Run a cell's body; if it raises, undo everything before the error propagates: a failed cell stops
    the notebook, the final cell never runs, and a real engine's bridges and processes must not outlive it."""
    try:
        yield
    except BaseException:
        cleanup.close()
        raise


def remove_everything(e):
    """Every container (killed if running), then every network: a real engine keeps its bridges when it
    closes (networks outlive an engine, as Docker's outlive a daemon restart), so they go explicitly."""
    for info in e.containers():
        e.remove(info.id, force=True)
    for network in e.networks():
        e.remove_network(network.name)


def first_line(e, name, timeout=10.0):
    """The first line a container wrote (a detached one on the kernel writes it a moment later)."""
    deadline = time.monotonic() + timeout
    while b"\n" not in e.logs(name) and time.monotonic() < deadline:
        time.sleep(0.02)
    return e.logs(name).decode(errors="replace").split("\n", 1)[0]


def read_namespaces(pid):
    """readlink /proc/<pid>/ns/<kind> for the seven kinds, as a NamespaceSet."""
    return NamespaceSet(**{kind: os.readlink(f"/proc/{pid}/ns/{kind}") for kind in NAMESPACE_KINDS})


def host_pid(e, name):
    """The host's PID of a running container's PID 1 (the real engine's process handle; not in the interface)."""
    return e._container(name).process.pid


def uid_map_of_this_process():
    """This process's /proc/self/uid_map on one line (the host's side of the tables below)."""
    try:
        return " ".join(Path("/proc/self/uid_map").read_text().split())
    except OSError:  # not Linux: the model's host mapping
        return " ".join(HOST_MAPS.proc_uid_map().split())


def table(rows, headers):
    """Rows of cells as aligned text columns."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


with on_error():
    engine = sim.connect(BACKEND, **({"state_dir": str(workdir / "state")} if KERNEL else {}))
    cleanup.callback(engine.close)
    cleanup.callback(remove_everything, engine)  # runs before close: last registered, first undone
print(engine, "| user namespace:", engine.id_maps.kind)

# %% [markdown]
# ## 6.1 命名空间 / A container's namespaces next to the host's
#
# Linux has one kind of namespace for each thing a process can be given a private copy of. A container gets
# new ones; a plain host process shares the host's:
#
# | kind | 中文 | what is private |
# |---|---|---|
# | `mnt` | 挂载 | the mount table: the container's root file system (notebook 03) |
# | `pid` | 进程 | process IDs: the container's first process is PID 1 |
# | `net` | 网络 | interfaces, addresses, routes, ports |
# | `uts` | 主机名 | the hostname |
# | `ipc` | 进程间通信 | System V IPC, POSIX message queues |
# | `user` | 用户 | uids and gids (a root engine keeps the host's; a rootless one has its own) |
# | `cgroup` | 控制组 | the view of the cgroup tree |
#
# Each namespace has an inode number; two processes share a namespace exactly when the numbers are equal
# (`readlink /proc/<pid>/ns/net` prints `net:[4026532001]`). The container `solo` (busybox, `--network none`)
# says who it is and then sleeps as PID 1. On the kernel we read its namespaces from `/proc` on the host;
# the model hands out its own (`NamespaceAllocator`).

# %%
with on_error():
    engine.create("busybox", 'echo "PID $$ inside, hostname $(hostname)"; exec sleep 300', name="solo")
    engine.start("solo", detach=True)  # the model runs it on a virtual clock: it sleeps, running
    said = first_line(engine, "solo")
    modelled = NamespaceAllocator().for_container(user_namespace=engine.id_maps.user_namespace)
    if KERNEL:
        solo_pid = host_pid(engine, "solo")
        host_ns, solo_ns = read_namespaces("self"), read_namespaces(solo_pid)
        print(f"readlink /proc/self/ns/* (this process) and /proc/{solo_pid}/ns/* (solo's PID 1):")
    else:
        host_ns, solo_ns = NamespaceAllocator().host, modelled
        print("the model's namespaces (NamespaceAllocator; the host's numbers are the ones Linux gives its first namespaces):")
    shared = solo_ns.shared_with(host_ns)
    table([(k, host_ns.get(k), solo_ns.get(k), "shared" if k in shared else "new") for k in NAMESPACE_KINDS],
          ("kind", "host", "container solo", ""))
    new = [k for k in NAMESPACE_KINDS if k not in shared]
    print(f"solo's new namespaces: {' '.join(new)}; shared with the host: {' '.join(shared) or 'none'}")
    if KERNEL and new != [k for k in NAMESPACE_KINDS if k not in modelled.shared_with(NamespaceAllocator().host)]:
        print("(the model's NamespaceAllocator.for_container would also give solo a new:",
              " ".join(k for k in NAMESPACE_KINDS if k not in modelled.shared_with(NamespaceAllocator().host) and k not in new) + ")")
    assert {"mnt", "pid", "net", "uts", "ipc"} <= set(new)

# %% [markdown]
# ## 6.2 进程空间 / PID 1 inside is PID N outside
#
# In its own PID namespace the container's command is **PID 1** (it printed `$$` itself). The host sees the
# same process under an ordinary PID, and a container sees none of the host's processes: `ps` inside lists
# only its own. The hostname is the container's too (its UTS namespace; Docker's default is the first 12
# characters of the container's id). Side by side, the host's view and the container's:

# %%
with on_error():
    print("solo printed:", said)
    if KERNEL:
        ps = engine.exec("solo", ["ps"]).output
        print("ps inside solo:")
        print(ps.rstrip())
        inside_pid = next(int(line.split()[0]) for line in ps.splitlines()[1:] if line.split()[-2:] == ["sleep", "300"])
        view = ProcessView(inside_pid, solo_pid, "sleep 300")
        cmdline = Path(f"/proc/{solo_pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        print(f"{view}: /proc/{solo_pid}/cmdline on the host reads {cmdline!r}")
        solo_interfaces = sorted(line.split(":")[1].strip().split("@")[0]
                                 for line in engine.exec("solo", "ip -o link").output.splitlines())
    else:
        view = ProcessView(1, os.getpid(), "sh -c ...")
        print(f"{view}: the model runs solo's shell inside this Python process (PID {os.getpid()} on the host)")
        print("ps: the model's shell has no ps applet; BACKEND = 'real' lists the container's processes")
        solo_interfaces = [i.name for i in engine.container_network("solo").interfaces]
    solo_hostname = engine.exec("solo", "hostname").output.strip()
    solo_map = " ".join(engine.exec("solo", "cat /proc/self/uid_map").output.split())
    print()
    table([("hostname", socket.gethostname(), solo_hostname),
           ("PID of the command", view.pid_outside, view.pid_inside),
           ("uid map (inside outside count)", uid_map_of_this_process(), solo_map),
           ("interfaces", ", ".join(sorted(name for _, name in socket.if_nameindex())), ", ".join(solo_interfaces)),
           ("net namespace", host_ns.net, solo_ns.net)],
          ("", "host (this machine)", "container solo"))
    assert view.pid_inside == 1 and solo_interfaces == ["lo"] and said == f"PID 1 inside, hostname {solo_hostname}"

# %% [markdown]
# ## 6.3 用户的 ID 空间 / User IDs: the uid map
#
# A uid is a number *inside a user namespace*; the kernel turns it into a host uid through the namespace's
# **uid map**, rows of `inside outside count` (`/proc/self/uid_map`). layerlab's engines have one of three
# (`sim.containers.userns.IdMaps`, the same on both backends):
#
# * **host**: no user namespace (a root engine, Docker's default): `0 0 4294967295`, uid N is uid N.
# * **single**: rootless without a subordinate range: only uid 0 exists inside, and it is the caller.
# * **subordinate**: rootless with a range in `/etc/subuid` and `/etc/subgid` (written by `newuidmap` and
#   `newgidmap`, as podman does): 0 inside is the caller, 1, 2 ... inside are the range.
#
# In the last two, root inside a container is an unprivileged user on the host: the safety the seed promises.

# %%
with on_error():
    inside_map = engine.exec("solo", "cat /proc/self/uid_map").output
    print("cat /proc/self/uid_map inside solo:")
    print(inside_map.rstrip())
    print("engine.id_maps:", engine.id_maps.describe())
    assert inside_map == engine.id_maps.proc_uid_map()
    if KERNEL:
        host_uid = int(next(line for line in Path(f"/proc/{solo_pid}/status").read_text().splitlines()
                            if line.startswith("Uid:")).split()[1])
        print(f"solo's PID 1: uid 0 inside, uid {host_uid} on the host (/proc/{solo_pid}/status)")
        assert host_uid == engine.id_maps.uid_to_host(0)
    if engine.id_maps.covers(1000, 1000):
        ran = engine.run("busybox", "id", user="1000:1000", remove=True)
        print(f"run --user 1000:1000 id -> {ran.output.strip()}; uid {engine.id_maps.uid_to_host(1000)} on the host")
    else:
        try:
            engine.run("busybox", "id", user="1000:1000", remove=True)
            raise AssertionError("a uid the map does not cover ran")
        except BackendUnavailableError as exc:
            print(f"run --user 1000:1000 -> {type(exc).__name__}: {exc}")

    mappings = {"host (root engine)": HOST_MAPS,
                "single (rootless, no range)": single_maps(1000, 1000, note="user 1000, no /etc/subuid range"),
                "subordinate (rootless, 1000:100000:65536)": subordinate_maps(1000, 1000, [(100000, 65536)],
                                                                             [(100000, 65536)])}
    if engine.id_maps.kind != "host":
        mappings[f"this engine ({engine.id_maps.kind})"] = engine.id_maps
    for label, maps in mappings.items():
        to = {uid: maps.uid_to_host(uid) for uid in (0, 1000)}
        print(f"{label:<44} uid 0 inside -> host {to[0]}; uid 1000 inside -> host {to[1000] if to[1000] is not None else 'unmapped'}; "
              f"host root reads inside as {maps.uid_from_host(0)}")


# %%
def draw_uid_maps(mappings):
    # Each map: ids inside on top, the host's below, a band from each row's inside range to its outside
    # range. The axis is symlog: 0, 1000, 100000 and 4294967295 all fit.
    fig, axes = plt.subplots(len(mappings), 1, figsize=(10, 1.6 * len(mappings)), sharex=True)
    colours = ["#8fb3de", "#f4a261", "#9fd39b", "#d9a6e0"]
    for ax, (label, maps) in zip(axes, mappings.items()):
        for i, (inside, outside, count) in enumerate(maps.uids):
            ax.add_patch(Polygon([(inside, 1), (inside + count, 1), (outside + count, 0), (outside, 0)], closed=True,
                                 facecolor=colours[i % len(colours)], edgecolor="#444444", alpha=0.7,
                                 label=f"{inside}-{inside + count - 1} -> {outside}-{outside + count - 1}"))
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, 2**32)
        ax.set_ylim(-0.25, 1.25)
        ax.set_yticks([0, 1], ["host", "inside"])
        ax.set_title(label, fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="center right", frameon=False)
    axes[-1].set_xlabel("user id, uid (a number, no unit; symlog scale)")
    fig.suptitle("uid maps: which host uid each uid inside the container is")
    fig.tight_layout()
    return fig


show(draw_uid_maps(mappings))

# %% [markdown]
# ## 6.4 网络配置 / Two networks, three containers
#
# A layerlab network is a **bridge** on the host (`llbr-` + a hash of the name) holding the first address of
# its subnet (the gateway); the engine's IP address management hands out the next addresses, lowest first,
# from `10.89.N.0/24` (the first N no other network has). A container on a network gets a **veth pair**: one
# end on the host, a port of the bridge (`llv...`), the other end `eth0`, `eth1` ... in the container's network
# namespace, with its address and a default route via the gateway of the network on `eth0`.
#
# `web` and `api` go on `frontend`, `db` on `backend`, and `api` joins `backend` too. api serves its hostname
# over HTTP (busybox `httpd` on port 8080). On a rootless engine this part runs on the model: bridges and veth
# pairs on the host need `CAP_NET_ADMIN` there.

# %%
NETS = ("frontend", "backend")
CONTAINERS = {
    "web": ("frontend", ["sleep", "300"]),
    "api": ("frontend", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"),
    "db": ("backend", ["sleep", "300"]),
}


def create_network(e, name):
    # The engine's IPAM picks the first 10.89.N.0/24 *it* knows of; the kernel refuses a subnet this host
    # routes already (another engine's bridge): then ask for the next free one by name, as one would.
    try:
        return e.create_network(name)
    except ConflictError as exc:
        if "overlaps" not in str(exc):
            raise
        print(f"network create {name}: {exc}")
    for n in range(256):
        try:
            return e.create_network(name, subnet=f"10.89.{n}.0/24")
        except (ConflictError, InvalidNetworkError) as exc:
            if "overlaps" not in str(exc):
                raise
    raise ConflictError("no 10.89.N.0/24 is free on this host")


with on_error():
    try:
        create_network(engine, NETS[0])
        net_engine = engine
    except BackendUnavailableError as exc:
        print(f"network create {NETS[0]} -> {type(exc).__name__}: {exc}")
        print("So the networks below are the model's (sim.connect('sim')): the same calls, the model's answers.")
        net_engine = sim.connect("sim")
        cleanup.callback(net_engine.close)
        cleanup.callback(remove_everything, net_engine)
        create_network(net_engine, NETS[0])
    create_network(net_engine, NETS[1])
    LIVE = KERNEL and net_engine is engine  # the kernel builds it: root
    NOT_LIVE = "BACKEND is 'sim'" if not KERNEL else "this rootless engine made no networks"
    for name, (network, command) in CONTAINERS.items():
        net_engine.create("busybox", command, name=name, network=network)
    net_engine.connect("backend", "api")
    if LIVE:
        for name in CONTAINERS:
            net_engine.start(name, detach=True)
ids = {name: net_engine._container(name).id for name in CONTAINERS}
names = {cid: name for name, cid in ids.items()}
model = net_engine.network_model
table([(n.name, n.subnet, n.gateway, n.bridge, ", ".join(names[c] for c in n.containers)) for n in net_engine.networks()],
      ("network", "subnet", "gateway", "bridge", "containers"))
print()
table([(name, e.interface, e.address, e.network, e.host_veth) for name in CONTAINERS
       for e in net_engine.container_network(name).endpoints],
      ("container", "interface", "address", "network", "host side of the veth pair"))
print(f"\nbuilt by: {'the kernel (and the model)' if LIVE else 'the model'}")


# %% [markdown]
# The same host-and-container table for `api`, which is on both networks. The host's column lists layerlab's
# links only (its bridges and the host ends of the veth pairs), as `engine.network_model.interfaces("host")`
# does; the container's lists `lo` and one `ethN` a network, and its routes.

# %%
def api_views():
    view = net_engine.container_network("api")
    if LIVE:
        kernel_interfaces, kernel_routes = net_engine.kernel_network("api")
        ps = net_engine.exec("api", ["ps"]).output
        inside = next(int(line.split()[0]) for line in ps.splitlines()[1:] if "httpd" in line)
        pids = (host_pid(net_engine, "api"), inside)
        assert inside == 1, ps
        hostname = net_engine.exec("api", "hostname").output.strip()
        uid_map = " ".join(net_engine.exec("api", "cat /proc/self/uid_map").output.split())
        assert (kernel_interfaces, kernel_routes) == (list(view.interfaces), list(view.routes))
    else:
        pids = ("not run (the model has no httpd)", "-")
        hostname = net_engine._container("api").hostname
        uid_map = " ".join(net_engine.id_maps.proc_uid_map().split())
    host = [f"{i.name} {' '.join(i.addresses)}".strip() for i in model.interfaces("host")]
    inside = [f"{i.name} {' '.join(i.addresses)}" for i in view.interfaces]
    routes = [f"{r.destination}{' via ' + r.gateway if r.gateway else ''} dev {r.device}" for r in view.routes]
    rows = [("hostname", socket.gethostname(), hostname), ("PID of the command", *pids),
            ("uid map", uid_map_of_this_process(), uid_map)]
    rows += [("interfaces" if i == 0 else "", h, c)
             for i, (h, c) in enumerate(zip(host + [""] * len(inside), inside + [""] * len(host))) if h or c]
    rows += [("routes" if i == 0 else "", "", r) for i, r in enumerate(routes)]
    table(rows, ("", "host (layerlab's links)", "container api"))


with on_error():
    api_views()

# %% [markdown]
# ## 6.5 网桥和 veth / The bridges and veth pairs as a graph
#
# `engine.network_model.graph()` is a networkx graph of the host, its bridges, the veth pairs and the
# containers' network namespaces; `draw(ax)` draws it in four rows. The graph is connected, but packets do
# not follow every path in it: the host **forwards nothing between bridges** (nor out: the nftables table
# `inet layerlab` drops it), and `api`, on both networks, routes nothing from one to the other (forwarding is
# off in a container's namespace). A bridge only switches between its own ports, so two containers reach
# each other exactly when their namespaces are two veth hops from one bridge node.

# %%
graph = model.graph()
fig, ax = plt.subplots(figsize=(12, 5.5))
model.draw(ax)
show(fig)
kinds = [kind for _, kind in graph.nodes(data="kind")]
print(f"{graph.number_of_nodes()} nodes ({', '.join(f'{kinds.count(k)} {k}' for k in ('host', 'bridge', 'veth', 'netns'))}), "
      f"{graph.number_of_edges()} edges")
netns = {names[d["container"]]: n for n, d in graph.nodes(data=True) if d["kind"] == "netns" and d["container"] in names}
bridges_of = {name: {b for veth in graph[node] for b in graph[veth] if graph.nodes[b]["kind"] == "bridge"}
              for name, node in netns.items()}
by_graph = {(a, b): bool(bridges_of[a] & bridges_of[b]) for a in CONTAINERS for b in CONTAINERS if a != b}
path = nx.shortest_path(graph, netns["web"], netns["db"])
print(f"a path web -> db exists in the graph ({' - '.join(graph.nodes[n]['kind'] for n in path)}), yet no packet takes it")
print("sharing a bridge: " + ", ".join(f"{a}-{b}" for (a, b), ok in by_graph.items() if ok and a < b))
alone = [net_engine._container(d["container"]).name for n, d in graph.nodes(data=True) if d["kind"] == "netns" and not graph[n]]
if alone:
    print(f"namespaces with no edge: {', '.join(alone)} (--network none: only lo)")

# %% [markdown]
# ## 6.6 /etc/hosts 和隔离 / Names without a DNS server, and who reaches whom
#
# Every container on a network gets an `/etc/hosts` listing every container it shares a network with (its
# hostname, its name, its aliases on that network), and an `/etc/resolv.conf` with no nameserver: no DNS
# server is reachable, since nothing routes out. The files are rewritten whenever a container joins or
# leaves one of its networks. Two containers reach each other exactly when they share a network.

# %%
with on_error():
    for name in ("api", "web"):
        print(f"cat /etc/hosts in {name}:")
        hosts = net_engine.exec(name, "cat /etc/hosts").output
        print(hosts.rstrip())
        assert hosts == net_engine.container_network(name).hosts
    resolv = net_engine.exec("web", "cat /etc/resolv.conf").output
    assert not any(line.startswith("nameserver") for line in resolv.splitlines())
    print(f"/etc/resolv.conf: no nameserver line, {resolv.splitlines()[-1]!r}")
    reach = model.reachability(ids.values())
    by_name = {(a, b): reach[(ids[a], ids[b])] for a in CONTAINERS for b in CONTAINERS if a != b}
    print("\nreachability (the model): from \\ to")
    table([(a, *("-" if a == b else ("yes" if by_name[(a, b)] else "no") for b in CONTAINERS)) for a in CONTAINERS],
          ("", *CONTAINERS))
    for a, b in (("web", "api"), ("db", "api"), ("web", "db")):
        print(f"{a} resolves {b} -> {model.resolve(ids[a], b)}")
    assert by_name == by_graph and not by_name[("web", "db")] and by_name[("web", "api")] and by_name[("db", "api")]
    print("the reachability matrix equals 'shares a bridge in the graph': True")

# %% [markdown]
# ## 6.7 真实的网络 / Built on the kernel (`BACKEND = "real"`, as root)
#
# With the real engine as root the three containers above are running: each process got a named network
# namespace (`/run/netns/ll-<id>`), its veth pairs, its addresses and routes, and `/etc/hosts` bind-mounted.
# `ip addr` and `ps` inside, then an HTTP request from `web` to `api` **by name** (busybox `wget`), the same
# from `db` over the other network, and from `web` to `db`, whose name `web` does not even know.

# %%
if LIVE:
    with on_error():
        for name in ("api", "web"):
            print(f"--- ip addr in {name}")
            print(net_engine.exec(name, "ip addr").output.rstrip())
        print("--- ps in api")
        print(net_engine.exec("api", ["ps"]).output.rstrip())
else:
    print(f"{NOT_LIVE}: BACKEND = 'real' (as root) shows ip addr and ps inside the containers")

# %%
if LIVE:
    with on_error():
        api_hostname = net_engine.exec("api", "hostname").output.strip()
        fetch = "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://api:8080/ && exit 0; sleep 0.2; done; exit 1"
        for client in ("web", "db"):
            got = net_engine.exec(client, fetch)
            print(f"{client}$ wget -q -O - http://api:8080/ -> exit {got.exit_code}: {got.output.strip()}")
            assert got.exit_code == 0 and got.output.strip() == api_hostname
        print(f"request by name: web and db both got api's hostname {api_hostname}")
        refused = net_engine.exec("web", "wget -q -O - http://db:8080/")
        print(f"web$ wget http://db:8080/ -> exit {refused.exit_code}: {refused.output.strip()}")
        db_ip = model.endpoints(container=ids["db"])[0].ip
        dropped = net_engine.exec("web", f"nc -w 1 {db_ip} 8080 </dev/null")
        print(f"web$ nc -w 1 {db_ip} 8080 -> exit {dropped.exit_code}: {dropped.output.strip()} (dropped on the host)")
        assert refused.exit_code != 0 and dropped.exit_code != 0
else:
    print(f"{NOT_LIVE} (and the model's shell has no httpd, wget or nc): BACKEND = 'real' (as root) sends the requests")

# %% [markdown]
# ## 6.8 内核与模型一致 / The kernel's view equals the model's
#
# `engine.kernel_network(ref)` reads a running container's interfaces and routes back from the kernel with
# pyroute2 (netlink) into the model's own dataclasses; `engine.container_network(ref)` is the model's view.
# They must be equal, and so must the host's side: layerlab's bridges and veth ends as the kernel lists them.

# %%
if LIVE:
    with on_error():
        for name in CONTAINERS:
            interfaces, routes = net_engine.kernel_network(name)
            view = net_engine.container_network(name)
            same = (interfaces, routes) == (list(view.interfaces), list(view.routes))
            print(f"{name}: the kernel's interfaces and routes equal the model's: {same}")
            assert same
        ours = {i.name for i in model.interfaces("host")}
        kernel_host = [i for i in net_engine._net.kernel.snapshot("host") if i.name in ours]  # other engines' links left out
        print(f"host: the kernel's {len(kernel_host)} layerlab links equal the model's: {kernel_host == model.interfaces('host')}")
        assert kernel_host == model.interfaces("host")
else:
    print(f"{NOT_LIVE}: no kernel networks to read back; BACKEND = 'real' (as root) compares the two")

# %% [markdown]
# ## 6.9 与 Docker 的不同 / Where Docker does otherwise
#
# | | Docker | layerlab |
# |---|---|---|
# | default network | `bridge`, with NAT to the outside | `none`: a namespace with only `lo` |
# | names | an embedded DNS server at `127.0.0.11` (user networks) | `/etc/hosts`, rewritten as containers come and go |
# | way out | NAT (masquerade) and a route via the bridge | none, ever: the nftables table `inet layerlab` drops it |
# | `-p 8080:80` | listens on every host address | only on `127.0.0.1` (a userspace forwarder per port) |
# | rootless networks | slirp4netns / pasta | none: `--network none` or `host` only |
#
# ## 小结 / Summary
#
# | 中文 | English | in layerlab |
# |---|---|---|
# | 命名空间 | namespace | `sim.network.NamespaceSet`, `NamespaceAllocator`; `/proc/<pid>/ns/*` |
# | 进程空间 | PID namespace | `ProcessView`: PID 1 inside, PID N outside |
# | 用户的 ID 空间 | user namespace, uid map | `engine.id_maps` (`IdMaps`: host, single, subordinate) |
# | 网络配置 | network configuration | `engine.create_network`, `connect`, `container_network` |
# | 网桥 / veth | bridge / veth pair | `llbr-*` / `llv*`, `engine.network_model.graph()`, `draw(ax)` |
# | 隔离 | isolation | `NetworkModel.reachability`; the `inet layerlab` table |
#
# `layerlab tour --chapter 6` prints the same story in a terminal; `docs/networks.md` says how it works.

# %%
with on_error():
    made = {n.bridge for n in model.networks()} | {e.host_veth for e in model.endpoints()}
    namespaces = [f"/run/netns/ll-{cid[:12]}" for cid in [*ids.values(), engine._container("solo").id]]
    cleanup.close()  # last registered first: containers and networks removed, engines closed, workdir removed
    left = ({name for _, name in socket.if_nameindex()} & made) | {path for path in namespaces if os.path.lexists(path)}
    assert not workdir.exists() and not left, left
    print(f"removed the containers and networks: none of this notebook's {len(made)} links or {len(namespaces)} "
          f"network namespaces is left; removed {workdir}")
