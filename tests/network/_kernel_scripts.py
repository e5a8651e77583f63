"""Scripts that tests/network/test_kernel.py runs as child processes (``python -c``).

``SANDBOX_HOST`` unshares a network namespace that plays the host (``ip_forward=1``, a reachable
"outside" at 192.0.2.1 behind a plain veth) and prints, as JSON, the reachability matrix with
the isolation table, without its same-bridge set and without the table.  ``KILLED_RUN`` builds a
network up to a step (``bridge``, ``netns``, ``veth``, ``forwarder``), prints ``ready`` and waits
to be killed.
"""

from __future__ import annotations

SANDBOX_HOST = '''
import json, os, sys, traceback
from pathlib import Path
from realrt import _syscalls
from realrt.journal import Journal
from realrt.network import KernelNetworks, listen, reachable
from realrt.network import _nft
from pyroute2 import IPRoute
from sim.network.model import NetworkModel

state, tag = sys.argv[1], sys.argv[2]
_syscalls.unshare(_syscalls.CLONE_NEWNET)  # from here on this process's namespace plays the host
Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
results = {"bridge_nf": Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip()
           if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() else "0"}
m = NetworkModel()
k = KernelNetworks(Journal(Path(state)))
with IPRoute(groups=0) as ipr:
    ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    red, blue = m.create_network("red" + tag, "10.250.5.0/24"), m.create_network("blue" + tag, "10.250.6.0/24")
    k.add_bridge(red); k.add_bridge(blue)
    paths, eps = {}, {}
    for box, net in (("a", red), ("b", red), ("c", blue), ("o", None)):
        cid = tag + box
        paths[box] = k.make_netns(cid)
        if net is not None:
            eps[box] = m.connect(net.name, cid, hostname=box)
            k.attach(eps[box], paths[box], 0)
    # The "outside": a namespace behind a plain veth, 192.0.2.1, with a route back to the containers.
    ipr.link("add", ifname="llpout" + tag[:6], kind="veth", peer={"ifname": "eth0", "net_ns_fd": paths["o"]})
    out = ipr.link_lookup(ifname="llpout" + tag[:6])[0]
    ipr.addr("add", index=out, address="192.0.2.2", prefixlen=24)
    ipr.link("set", index=out, state="up")
    with IPRoute(netns=paths["o"], flags=0, groups=0) as o:
        eth = o.link_lookup(ifname="eth0")[0]
        o.addr("add", index=eth, address="192.0.2.1", prefixlen=24)
        o.link("set", index=eth, state="up")
        o.route("add", dst="10.250.0.0/16", gateway="192.0.2.2")
    ls = [listen(paths[b]) for b in ("a", "b", "c", "o")]
    def matrix():
        return {"a-b": reachable(paths["a"], eps["b"].ip), "a-c": reachable(paths["a"], eps["c"].ip),
                "a-out": reachable(paths["a"], "192.0.2.1"), "out-a": reachable(paths["o"], eps["a"].ip)}
    results["with_table"] = matrix()
    _nft.drop_bridge(red.bridge)
    results["without_same_bridge"] = matrix()
    _nft.delete_table()
    results["without_table"] = matrix()
    _nft.ensure(red.bridge); _nft.ensure(blue.bridge)
    for each in ls:
        each.close()
    ipr.link("del", index=out)
    for box in eps:
        k.detach(eps[box], paths[box])
    for box in paths:
        k.remove_netns(tag + box)
    k.remove_bridge(red.name); k.remove_bridge(blue.name)
    results["table_after"] = _nft.listing()
print(json.dumps(results))
'''


KILLED_RUN = '''
import sys, time
from pathlib import Path
from realrt.journal import Journal
from realrt.network import KernelNetworks, publish
from sim.network.model import NetworkModel, PortMapping

state, net, cid, stop, port = sys.argv[1:]
journal = Journal(Path(state))
model = NetworkModel()
info = model.create_network(net, "10.250.20.0/24")
endpoint = model.connect(net, cid, hostname="victim")
kernel = KernelNetworks(journal)
kernel.add_bridge(info)
if stop != "bridge":
    path = kernel.make_netns(cid)
    if stop != "netns":
        kernel.attach(endpoint, path, 0)
        if stop != "veth":
            publish(PortMapping("127.0.0.1", int(port), 80), endpoint.ip, journal)
print("ready", flush=True)
time.sleep(600)
'''
