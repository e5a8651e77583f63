# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Containers and virtual machines (容器和虚拟机)
#
# Each answer is checked by running layerlab's resource model (`sim.capacity`: admission on
# hosts, the tick engine, three misbehaving programs under cgroup limits, start times). Exercise 3
# also measures real containers with `layerlab exercises check --backend real` (as root); the
# others are graded on the model, as the chapter's notebook computes them.
# Replace every `raise NotImplementedError()` with your answer, then run all cells.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false}
import math

from hypothesis import given
from hypothesis import strategies as st

import sim.exercises as ex
from sim.capacity import GiB, Host, Instance, MiB, Workload, container, cpu_hog, fork_bomb, memory_hog, vm
from sim.capacity.profiles import diurnal, trace

print("checks run on:", ex.backend_name())

# %% [markdown]
# ## 1. How many fit on one host?
#
# One service, packaged two ways, on `HOST`: 64 cores and 256 GiB, OpenStack's way of admitting
# (4x CPU overcommit, 1.5x RAM overcommit after the 512 MB the host keeps for itself), no pod limit.
# As `VM` it gets 2 vCPUs and 4 GiB; as `CONTAINER` it requests 0.25 cores and 512 MiB, with
# `memory.max` at 1 GiB. Both run `APP` (0.25 cores, 256 MiB). How many copies of each does the
# scheduler admit on the host? Work it out from the fields (`VM.memory`, `VM.overhead`,
# `CONTAINER.memory_request`, `CONTAINER.overhead`, `HOST.admissible_cpu`, `HOST.admissible_memory`)
# and put the counts in `fit = {"vm": ..., "container": ...}`.

# %% nbgrader={"grade": false, "grade_id": "one_host", "locked": true, "solution": false}
HOST = Host(cores=64, memory=256 * GiB, cpu_overcommit=4.0, ram_overcommit=1.5, max_pods=None)
VM = vm(2, 4 * GiB)
CONTAINER = container(0.25, 512 * MiB, memory_max=1 * GiB)
APP = Workload(cpu=0.25, memory=256 * MiB)
print(f"a VM books {VM.reserved_memory / MiB:.0f} MiB, a container {CONTAINER.reserved_memory / MiB:.1f} MiB; "
      f"the host admits {HOST.admissible_cpu:g} cores and {HOST.admissible_memory / GiB:.2f} GiB")

# %% nbgrader={"grade": false, "grade_id": "fit_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
fit = {
    "vm": math.floor(min(HOST.admissible_cpu / VM.vcpus, HOST.admissible_memory / (VM.memory + VM.overhead))),
    "container": math.floor(min(HOST.admissible_cpu / CONTAINER.cpu_request,
                                HOST.admissible_memory / (CONTAINER.memory_request + CONTAINER.overhead))),
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "fit", "locked": true, "points": 2, "solution": false}
ex.check_density(fit, HOST, {"vm": VM, "container": CONTAINER}, APP)

# %% [markdown]
# ## 2. What does the host hold afterwards?
#
# `BUSY_HOUR`'s memory is 1 GiB for an hour, 3 GiB the second hour and 1 GiB again the third. It
# runs once in each of `KINDS`: a VM, the same VM with a balloon driver, and a container. At the end
# of the three hours, how much memory does each hold, as its usage series reports it: for a VM what
# its hypervisor process holds (the hypervisor's `overhead`, the guest's `guest_os`, the guest's
# pages), for a container its cgroup's charge? Put MiB in `held_mib` (to within 12 MiB).

# %% nbgrader={"grade": false, "grade_id": "busy_hour", "locked": true, "solution": false}
BUSY_HOUR = Workload(cpu=0.25, memory=1 * GiB, memory_profile=trace([1, 3, 1], 3600))
KINDS = {
    "vm": vm(2, 4 * GiB),
    "vm_balloon": vm(2, 4 * GiB, balloon=True),
    "container": container(0.5, 512 * MiB, memory_max=4 * GiB),
}
THREE_HOURS = 3 * 3600.0

# %% nbgrader={"grade": false, "grade_id": "held_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
held_mib = {
    "vm": (KINDS["vm"].overhead + KINDS["vm"].guest_os + 3 * GiB) / MiB,  # the high-water mark stays
    "vm_balloon": (KINDS["vm_balloon"].overhead + KINDS["vm_balloon"].guest_os + 1 * GiB) / MiB,
    "container": 1024,
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "held", "locked": true, "points": 2, "solution": false}
ex.check_held_memory(held_mib, KINDS, BUSY_HOUR, THREE_HOURS)

# %% [markdown]
# ## 3. Three programs under limits
#
# Each of `HOGS` runs in its own container with the `docker run` flags next to it. `hog.demand(t)`
# says what the program asks for at times `t` (cores, bytes, tasks; the container's shell is one
# task and about 1 MiB). Predict, in `outcome`: for `"memory"` when it is OOM-killed (seconds after
# it starts; `None` if never), for `"cpu"` how many cores it gets on average over its 2 s, for
# `"fork"` the most tasks it has at once. With `--backend real` (as root) the check runs the three in
# real containers and measures them from their cgroups (`realrt.measure`).

# %% nbgrader={"grade": false, "grade_id": "hogs", "locked": true, "solution": false}
HOGS = {
    "memory": (memory_hog(total_mib=64, step_mib=2, step_s=0.1, duration_s=2.0), {"memory": "16m"}),
    "cpu": (cpu_hog(duration_s=2.0), {"cpus": "0.5"}),
    "fork": (fork_bomb(tasks=30, duration_s=2.0), {"pids_limit": 10}),
}

# %% nbgrader={"grade": false, "grade_id": "outcome_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
outcome = {"memory": 0.4, "cpu": 0.5, "fork": 10}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "outcome", "locked": true, "points": 3, "solution": false}
ex.check_hog_outcome(outcome, HOGS)

# %% [markdown]
# ## 4. Who starts first, and who survives a flash crowd?
#
# Order `"vm"`, `"microvm"` and `"container"` from the fastest start to the slowest, as the model's
# published numbers have them (`sim.capacity.DEFAULTS`), in `fastest_first`. Then, in
# `under_a_second`, name the kinds whose unmet-demand window stays under one second in the flash
# crowd of the chapter (`scenarios.flash_crowd()`: demand doubles at t = 60 s and as many new
# replicas start at once). Graded on the model (the chapter's notebook boots a real VM; this
# check does not).

# %% nbgrader={"grade": false, "grade_id": "starts_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
fastest_first = ["microvm", "container", "vm"]
under_a_second = {"microvm", "container"}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "starts", "locked": true, "points": 2, "solution": false}
ex.check_start_order(fastest_first, under_a_second)

# %% [markdown]
# ## 5. Find the limits that make this workload fit 100 hosts
#
# `COUNT` containers run `SERVICE`, whose use follows the day: at 14:00 it peaks at 0.6 cores and
# 2 GiB. They go on 100 copies of `SMALL_HOST` (8 cores, 32 GiB, no overcommit, 512 MB kept for the
# host). Give `spec = container(cpu_request, memory_request, cpu_max=..., memory_max=...)` such that
# over a day (ticks of 15 minutes, first-fit, no restart after a kill) every container is placed,
# none is OOM-killed (by its own `memory.max` or by the host) and at most 1% of the CPU they ask
# for goes unserved.

# %% nbgrader={"grade": false, "grade_id": "fleet", "locked": true, "solution": false}
SMALL_HOST = Host(cores=8, memory=32 * GiB, cpu_overcommit=1.0, ram_overcommit=1.0)
SERVICE = Workload(cpu=0.6, memory=2 * GiB, cpu_profile=diurnal(1.0, 0.25), memory_profile=diurnal(1.0, 0.5))
COUNT = 1200

# %% nbgrader={"grade": false, "grade_id": "spec_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
spec = container(0.6, 2 * GiB, cpu_max=1.0, memory_max=3 * GiB)
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "spec", "locked": true, "points": 3, "solution": false}
ex.check_fleet_fit(spec, SERVICE, COUNT, SMALL_HOST, 100)

# %% [markdown]
# ## 6. Write the property: the scheduler admits exactly what fits
#
# Write a hypothesis property `admits_what_fits(place, ...)`. `place` is passed in by the check:
# `place(hosts, instances)` returns a `Placement` whose `.host[i]` is the index of instance `i`'s
# host (-1: rejected). Instances arrive in the order of `workload.arrival` (at a tie, in list order)
# and leave at `arrival + duration`, departures first. A host admits an instance when what the
# instances still on it book, plus the newcomer's, stays within `host.admissible_cpu`
# (`spec.cpu_request`) and `host.admissible_memory` (`spec.reserved_memory`). The check runs your
# property on the real scheduler, where it must hold, and on three broken ones, which it must
# catch: one that places each instance as if the hosts were empty, one that forgets departures
# (what left stays booked), and one that books a VM on what its workload uses instead of its whole
# RAM. Keep each example small (a dozen instances, one or two hosts).

# %% nbgrader={"grade": false, "grade_id": "property_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
ROOM = Host(cores=4, memory=8 * GiB, cpu_overcommit=1.0, ram_overcommit=1.0, reserved_memory=0, max_pods=None)


def instance(kind, size, arrival, duration):
    spec = vm(1, size * GiB) if kind == "vm" else container(0.5, size * 512 * MiB)
    return Instance(spec, Workload(memory=256 * MiB, arrival=float(arrival), duration=duration))


instances = st.lists(st.builds(instance, st.sampled_from(["vm", "container"]), st.integers(1, 3),
                               st.integers(0, 6), st.sampled_from([2.0, 4.0, math.inf])), max_size=12)


def fits(instances, where, before, k, h):
    """Whether host h has room for instance k when it arrives: the instances placed before it
    (``before``) that are still there, plus k, within what the host admits."""
    now, spec = instances[k].workload.arrival, instances[k].spec
    held = [instances[j].spec for j in before
            if where[j] == h and instances[j].workload.arrival + instances[j].workload.duration > now]
    return (sum(s.cpu_request for s in held) + spec.cpu_request <= ROOM.admissible_cpu
            and sum(s.reserved_memory for s in held) + spec.reserved_memory <= ROOM.admissible_memory)


@given(n_hosts=st.integers(1, 2), instances=instances)
def admits_what_fits(place, n_hosts, instances):
    where = place([ROOM] * n_hosts, instances).host
    order = sorted(range(len(instances)), key=lambda i: (instances[i].workload.arrival, i))
    for n, k in enumerate(order):
        if where[k] >= 0:
            assert fits(instances, where, order[:n], k, where[k]), f"instance {k} was placed on a full host"
        else:
            assert not any(fits(instances, where, order[:n], k, h) for h in range(n_hosts)), \
                f"instance {k} was rejected, but a host had room"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "admits_what_fits", "locked": true, "points": 3, "solution": false}
ex.check_placement_property(admits_what_fits)
