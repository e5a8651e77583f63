# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Namespaces and networks (命名空间和网络)
#
# Each answer is checked by running the scenario with the engine (the model by default, the kernel
# with `layerlab exercises check --backend real`): containers that print `$$` and read their
# namespaces, networks made and containers probing each other with `nc`, a request to a published
# port; uid maps and addresses by the model's own `IdMaps` and `Subnet`, which both engines use.
# On a rootless kernel engine, which has no networks, the network checks say so and run on the model.
# Replace every `raise NotImplementedError()` with your answer, then run all cells.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false}
from hypothesis import given
from hypothesis import strategies as st

import sim.exercises as ex
from sim.errors import ConflictError

print("checks run on:", ex.backend_name())
print("namespace kinds asked:", ", ".join(ex.NAMESPACE_KINDS_ASKED))

# %% [markdown]
# ## 1. PID 1 inside, and what a container shares with the host
#
# Two `busybox` containers run `echo $$`: `solo`, made without `--network` (layerlab's default is
# `none`), and `hostnet`, made with `--network host`. What does each print? And which of the
# namespaces `mnt`, `pid`, `net`, `uts`, `ipc` does each share with the host (the same
# `/proc/self/ns/<kind>` as a process on the host)? Give sets of kind names.

# %% nbgrader={"grade": false, "grade_id": "namespaces_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
solo_pid = 1
solo_shared = set()
hostnet_pid = 1
hostnet_shared = {"net"}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "namespaces", "locked": true, "points": 2, "solution": false}
ex.check_namespaces(solo_pid, solo_shared, network="none")
ex.check_namespaces(hostnet_pid, hostnet_shared, network="host")

# %% [markdown]
# ## 2. Which host uid is it?
#
# A rootless engine's containers run in a user namespace whose `/proc/self/uid_map` is `UID_MAP`
# (`inside outside count`). Give, as numbers:
#
# * `file_owner`: the host uid that owns a file the container's uid 1000 creates;
# * `root_outside`: the host uid the container's root (uid 0) is;
# * `uid_70000`: the host uid of the container's uid 70000 (`None` if no process can have it);
# * `host_root_file`: the owner a file of the host's root (uid 0) shows inside (`ls -n`).

# %% nbgrader={"grade": false, "grade_id": "uid_map", "locked": true, "solution": false}
UID_MAP = "0 100000 65536"

# %% nbgrader={"grade": false, "grade_id": "uids_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
file_owner = 101000
root_outside = 100000
uid_70000 = None
host_root_file = 65534
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "uids", "locked": true, "points": 2, "solution": false}
ex.check_uid_map(UID_MAP, to_host={1000: file_owner, 0: root_outside, 70000: uid_70000},
                 from_host={0: host_root_file})

# %% [markdown]
# ## 3. Who reaches whom, and which names resolve
#
# Two networks, four containers: `CONTAINERS` says which networks each joins (the first when it
# is created, the others with `network connect`; `batch` uses `--network none`), and `api` joins
# `backend` with the alias `store`. Every container serves on port 8080.
#
# * `pairs`: every pair of containers that reach each other, as `{("a", "b"), ...}`;
# * `resolves`: for `web` and for `db`, which of `NAMES` resolve inside it (through `/etc/hosts`).

# %% nbgrader={"grade": false, "grade_id": "topology", "locked": true, "solution": false}
NETWORKS = ["frontend", "backend"]
CONTAINERS = {"web": ["frontend"], "api": ["frontend", "backend"], "db": ["backend"], "batch": []}
ALIASES = {("api", "backend"): ["store"]}
NAMES = ["api", "db", "store", "batch"]

# %% nbgrader={"grade": false, "grade_id": "reach_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
pairs = {("web", "api"), ("api", "db")}
resolves = {"web": {"api"}, "db": {"api", "db", "store"}}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "reach", "locked": true, "points": 3, "solution": false}
ex.check_reachability(pairs, resolves, networks=NETWORKS, containers=CONTAINERS, aliases=ALIASES, names=NAMES)

# %% [markdown]
# ## 4. The next address
#
# On a network with subnet `SUBNET`, the engine runs `STEPS` in order: containers created on it
# and one removed. Which address does each container in `ASKED` get? Give `None` for one that
# gets no address (its `create` fails).

# %% nbgrader={"grade": false, "grade_id": "steps", "locked": true, "solution": false}
SUBNET = "10.89.40.0/29"
STEPS = [("create", "a"), ("create", "b"), ("create", "c"), ("rm", "b"),
         ("create", "d"), ("create", "e"), ("create", "f"), ("create", "g")]
ASKED = ["a", "d", "e", "f", "g"]

# %% nbgrader={"grade": false, "grade_id": "addresses_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
got = {"a": "10.89.40.2", "d": "10.89.40.3", "e": "10.89.40.5", "f": "10.89.40.6", "g": None}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "addresses", "locked": true, "points": 2, "solution": false}
ex.check_addresses(got, SUBNET, STEPS, ASKED)

# %% [markdown]
# ## 5. Publish the shop
#
# `shop` runs busybox `httpd` on port 80. It must answer both the host's browser at
# `http://127.0.0.1:28080/` and the container `web` (on `frontend`) at `http://shop:80/`. Give the
# network to create `shop` on (`shop_network`) and its `-p` options (`shop_publish`, a list).

# %% nbgrader={"grade": false, "grade_id": "shop", "locked": true, "solution": false}
SHOP = dict(service="shop", service_port=80, host_port=28080, client="web", client_network="frontend",
            networks=["frontend", "backend"])

# %% nbgrader={"grade": false, "grade_id": "publish_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
shop_network = "frontend"
shop_publish = ["28080:80"]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "publish", "locked": true, "points": 3, "solution": false}
ex.check_publish(shop_network, shop_publish, **SHOP)

# %% [markdown]
# ## 6. Write the property: IPAM hands out only free host addresses
#
# Write a hypothesis property `ipam_never_repeats(new_subnet, ...)`. `new_subnet(cidr)` is passed
# in by the check and makes an address allocator like `sim.network.Subnet` (`allocate()`,
# `release(address)`, `gateway`, `network`, `capacity`). Drive it with the calls you draw and
# assert that every address `allocate()` hands out is in the subnet, is never the network, gateway
# or broadcast address, and is never one still in use (allocated and not yet released); a full
# subnet raises `sim.errors.ConflictError`. The check runs it on the model's `Subnet`, where it
# must hold, and on three broken allocators, which it must catch: one hands out the gateway, one
# the broadcast address once full, one frees the wrong address on `release`. `given`, `st`
# (hypothesis's strategies) and `ConflictError` are imported in the first cell.

# %% nbgrader={"grade": false, "grade_id": "property_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
@given(prefix=st.sampled_from([29, 28]), calls=st.lists(st.integers(0, 9), max_size=40))
def ipam_never_repeats(new_subnet, prefix, calls):
    subnet = new_subnet(f"10.89.7.0/{prefix}")
    net = subnet.network
    held = []
    for call in calls:
        if call < 7 or not held:
            try:
                address = subnet.allocate()
            except ConflictError:
                assert len(held) == subnet.capacity
                continue
            assert address in net
            assert address not in (net.network_address, subnet.gateway, net.broadcast_address)
            assert address not in held
            held.append(address)
        else:
            subnet.release(held.pop(call % len(held)))
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ipam_property", "locked": true, "points": 3, "solution": false}
ex.check_ipam_property(ipam_never_repeats)
