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
# # 第 4 章 容器和虚拟机 / Chapter 4: Containers and virtual machines
#
# The seed document compares the two in four ways (资源 resources, 虚拟化层面 the level that is
# virtualised, 架构 architecture, 使用情况 usage). This notebook turns each claim into numbers with
# layerlab's resource model (`sim.capacity`: hosts, VMs, microVMs, containers and workloads, stepped
# in time with numpy), draws them, and then, with `BACKEND = "real"`, measures the same things on
# this machine: three misbehaving programs in real containers under real cgroup limits, and a real
# VM (QEMU booting Debian's cloud kernel with a busybox initramfs), each drawn over the model's
# prediction.
#
# * `BACKEND = "sim"`: the model only (runs anywhere).
# * `BACKEND = "real"`: also measures (needs Linux; the container measurements need root on
#   cgroup v1, the VM needs `qemu-system-x86_64` and the kernel `./dev` fetches).

# %%
import os

BACKEND = "sim"  # "sim" (the model only) or "real" (also measure containers and a VM on this machine)
BACKEND = os.environ.get("LAYERLAB_BACKEND") or BACKEND
print("backend:", BACKEND)

# %%
import sim
from sim.capacity import (
    DEFAULTS,
    GiB,
    MiB,
    cpu_hog,
    fork_bomb,
    memory_hog,
    plots,
    predict_hog,
    predict_start,
    scenarios,
)
from sim.containers.limits import parse_limits
from sim.errors import BackendUnavailableError
from sim.figures import show

# %% [markdown]
# ## 默认值 The published numbers the model starts from
#
# Every default carries its source; any of them can be overridden per host or instance
# (`Host(...)`, `vm(...)`, `container(...)`). "layerlab modelling choice" marks the two numbers
# no one has published.

# %%
for name, d in DEFAULTS.items():
    print(f"{name:28} {d.value:>12g} {d.unit:22} {d.source}")

# %% [markdown]
# ## 1. 资源 Resources: held in full from boot, or taken as needed
#
# *传统的虚拟机……一旦开启，分配的资源将会被全部占用。容器则是与宿主机共享硬件资源、操作系统，资源动态分配。*
#
# One service (0.25 cores requested, 256 MiB of working set) packaged three ways on one 64-core,
# 256 GiB host: as VMs (2 vCPUs, 4 GiB: a VM is given its RAM whole), as Firecracker-like microVMs
# (1 vCPU, 512 MiB), and as containers (requests of 0.25 cores and 256 MiB). The scheduler admits
# each on what it reserves.

# %%
same = scenarios.same_service()
o, t = same.outcome, same.table
for kind, limited_by in zip(t["kind"], t["limited_by"]):
    print(f"{kind:9}: {int(o[kind + '_count']):4} per host, limited by {limited_by}; reserved {o[kind + '_reserved_gib']:.0f} GiB, "
          f"held {o[kind + '_held_gib']:.1f} GiB, in use {o[kind + '_in_use_gib']:.1f} GiB")
assert t["limited_by"][t["kind"].index("vm")] == "memory" and o["vm_count"] < o["microvm_count"] < o["container_count"]
print(f"VMs hit memory first; microVMs in between; containers reach {o['container_count'] / o['vm_count']:.1f}x the VM density "
      f"(kubelet's default --max-pods would stop them at {int(o['container_count_max_pods'])})")
show(plots.figure(same))

# %% [markdown]
# Over a day the difference is **idle waste**: memory reserved but not used (GiB·h). Services follow
# a daily curve (peak 80%, trough 10% of what a VM is given). VMs are sized for the peak and hold
# it all day; containers request the mean and take more when they need it.

# %%
day = scenarios.idle_waste_day()
o = day.outcome
print(f"idle waste over a day: VMs {o['vm_waste_gib_h']:.0f} GiB·h ({100 * o['vm_waste_fraction']:.0f}% of what they reserve), "
      f"containers {o['container_waste_gib_h']:.0f} GiB·h ({100 * o['container_waste_fraction']:.0f}%)")
assert o["container_waste_gib_h"] < 0.5 * o["vm_waste_gib_h"]
print(f"containers with requests at the mean recover {100 * (1 - o['container_waste_gib_h'] / o['vm_waste_gib_h']):.0f}% of the VMs' waste")
show(plots.figure(day))
# The same day as capacity / reserved / used over time, for each packaging:
show(plots.fleet(day.runs["vm"]))
show(plots.fleet(day.runs["container"]))

# %% [markdown]
# Packing more on each host (overcommit) saves hosts and energy until the service level breaks. CPU
# overcommit squeezes everyone a little; memory overcommit works until the guests touch what they
# were promised, and then the host OOM killer starts: the RAM cliff comes first.

# %%
sweep = scenarios.overcommit_sweep()
o = sweep.outcome
print(f"RAM cliff at {o['ram_cliff_ratio']:g}x (host OOM kills appear); the CPU service level breaks only at {o['cpu_break_ratio']:g}x")
assert o["ram_cliff_ratio"] < o["cpu_break_ratio"]
show(plots.figure(sweep))
power = scenarios.consolidation_power()
o = power.outcome
print(f"an idle host draws {100 * o['idle_peak_ratio']:.0f}% of its peak power: spreading {o['spread_kwh']:.1f} kWh/day, "
      f"packing with idle hosts off {o['packed_off_kwh']:.1f} kWh/day")
show(plots.figure(power))

# %% [markdown]
# ## 2. 虚拟化层面 Virtualisation level: hardware vs process
#
# *传统的虚拟机实现了对硬件资源的虚拟，容器技术则是对进程的虚拟。*
#
# A VM brings a whole machine: a hypervisor process (QEMU, ~131 MB; Firecracker ≤ 5 MiB), its own
# kernel and OS, and then the app, inside RAM it was given whole. A container is the app's processes
# on the host's kernel, plus a small shim.

# %%
from sim.capacity import container, microvm, vm

for name, spec in {"vm": vm(2, 4 * GiB), "microvm": microvm(1, 512 * MiB), "container": container(0.25, 256 * MiB)}.items():
    guest = getattr(spec, "guest_os", 0)
    print(f"{name:9}: overhead {spec.overhead / MiB:6.1f} MiB, guest kernel+OS {guest / MiB:5.0f} MiB, "
          f"reserves {spec.reserved_memory / MiB:6.0f} MiB for an app of 256 MiB")
show(plots.layers())

# %% [markdown]
# ## 3. 架构 Architecture: a Hypervisor runs guests, the Docker Engine runs processes
#
# *传统虚拟机使用 Hypervisor 技术来进行虚拟化；Docker 使用 Docker Engine 完成资源的调度和进程的隔离，通过内核共享省去传统虚拟机的 OS 层。*
#
# On one shared kernel, the engine's tool is the **cgroup** (控制组): CPU shared by weight
# (`cpu.weight`), capped by a quota (`cpu.max`, from `--cpus`), memory slowed at `memory.high` and
# OOM-killed at `memory.max` (`--memory`), forks refused beyond `pids.max` (`--pids-limit`). Four
# noisy neighbours on a 4-core, 16 GiB host:

# %%
noisy = scenarios.noisy_neighbour()
o = noisy.outcome
print(f"weights only: the hog uses {o['weights_hog_cpu_alone']:.1f} cores while its neighbour idles, "
      f"then yields to {o['weights_hog_cpu_contended']:.1f} when the neighbour is busy")
print(f"cpu.max: the hog is throttled to {o['quota_hog_cpu']:.1f} core with {o['quota_idle_cores']:.1f} cores idle "
      f"({o['quota_throttled_s']:.0f} s throttled)")
print(f"memory.high then memory.max: the leak slows at {o['limits_slowed_at_s']:.0f} s and is OOM-killed at {o['limits_first_kill_s']:.0f} s; "
      f"neighbours killed: {int(o['limits_neighbour_kills'])}")
print(f"no memory.max: the host ran out and the host OOM killer killed a neighbour first ({int(o['host_oom_neighbour_kills'])} times)")
assert o["quota_throttled_s"] > 0 and o["limits_neighbour_kills"] == 0 and o["host_oom_first_victim_is_neighbour"]
show(plots.figure(noisy))

# %% [markdown]
# The same rules, for one container and three misbehaving programs, as the model predicts them on a
# host the size of this machine. `docker run` gives no restart: an OOM kill ends the container. (The
# measurement further down runs exactly these programs.)

# %%
HOGS = {
    "memory": (memory_hog(total_mib=64, step_mib=2, step_s=0.1, duration_s=2.0), {"memory": "16m"}),
    "cpu": (cpu_hog(duration_s=2.0), {"cpus": "0.5"}),
    "fork": (fork_bomb(tasks=30, duration_s=2.0), {"pids_limit": 10}),
}
predicted = {name: predict_hog(hog, parse_limits(**flags)) for name, (hog, flags) in HOGS.items()}
p = predicted["memory"]
print(f"model: the memory hog is OOM-killed at memory.max after {p.t[p.oom_kills > 0][0]:.2f} s (peak {p.peak_memory / MiB:.0f} MiB)")
p = predicted["cpu"]
print(f"model: the CPU hog runs at {p.at(1.0)['cpu']:.2f} cores under --cpus 0.5, throttled {p.throttled[-1]:.2f} s in 2 s")
print(f"model: the fork bomb stops at {predicted['fork'].pids.max():.0f} tasks under --pids-limit 10")

# %% [markdown]
# ## 4. 使用情况 Usage: VMs isolate more; containers start and ship faster
#
# *传统虚拟机能提供更安全的隔离环境；Docker 更轻量级，……完成集群内的快速分发和快速部署。*
#
# A flash crowd: demand doubles at t = 60 s and new replicas are started at once. Until they run,
# the extra demand is unmet: for about a VM's boot time, and almost not at all for microVMs and
# containers.

# %%
flash = scenarios.flash_crowd()
o = flash.outcome
for kind in ("vm", "microvm", "container"):
    print(f"{kind:9}: unmet-demand window {o[kind + '_window_s']:6.2f} s after the crowd (starts in {o[kind + '_start_s']:.3f} s), "
          f"{o[kind + '_unmet_core_s']:.0f} core-seconds missed")
assert o["container_window_s"] < 1 < o["vm_window_s"]
show(plots.figure(flash))
show(plots.start_latency(flash.runs))  # every start in the three runs: the spread around the published medians

# %% [markdown]
# ## 在这台机器上 Measured on this machine (`BACKEND = "real"`)
#
# The three programs above, run for real: a busybox container per program, with the same
# `docker run` flags, sampled from its cgroup files every 50 ms (`realrt.measure`), drawn over the
# model's prediction. Then a real VM next to a real container: time from launch to the guest's
# `init` (or the container's first command) and the host memory each holds.

# %%
engine = None
measured = {}
if BACKEND == "real":
    engine = sim.connect("real")
    try:
        for name, (hog, flags) in HOGS.items():
            measured[name] = engine.measure_hog(hog, **flags)  # realrt.measure: a busybox container, its cgroup sampled
    except BackendUnavailableError as exc:  # e.g. rootless on cgroup v1: no cgroup to put a limit in
        print("cannot measure containers with limits here:", exc)
for name, run in measured.items():
    show(plots.overlay(predicted[name], run.series))
if "memory" in measured:
    m = measured["memory"].series
    print(f"measured: the memory hog was OOM-killed at memory.max (exit {measured['memory'].exit_code}, "
          f"oom_kill {m.oom_kills[-1]:.0f}, peak sample {m.peak_memory / MiB:.1f} MiB)")
    assert measured["memory"].exit_code == 137 and m.oom_kills[-1] >= 1 and m.peak_memory <= 16 * MiB
    c = measured["cpu"].series
    print(f"measured: the CPU hog used {c.cpu_seconds / c.t[-1]:.2f} cores on average under --cpus 0.5, "
          f"throttled {c.throttled[-1]:.2f} s (model {predicted['cpu'].throttled[-1]:.2f} s)")
    assert 0.3 < c.cpu_seconds / c.t[-1] < 0.7
    f = measured["fork"].series
    print(f"measured: the fork bomb peaked at {f.pids.max():.0f} tasks under --pids-limit 10")
    assert f.pids.max() <= 10
elif BACKEND == "sim":
    print("BACKEND is 'sim': predictions only; set BACKEND = 'real' to measure them")

# %%
MEMORY_MIB = 128
starts = [predict_start(kind, memory=MEMORY_MIB * MiB) for kind in ("vm", "microvm", "container")]
if BACKEND == "real":
    from realrt.vm import measure_container_start

    try:
        booted = engine.boot_vm(memory_mib=MEMORY_MIB)  # realrt.vm: QEMU, Debian's cloud kernel, a busybox initramfs
        starts.append(booted)
        print(f"VM booted to init in {booted.start_s:.2f} s (accelerator: {booted.accelerator}), "
              f"holding {booted.memory_bytes / MiB:.0f} MiB of host memory for a {MEMORY_MIB} MiB guest")
    except BackendUnavailableError as exc:
        print("cannot boot a VM here:", exc)
    try:
        ran = measure_container_start(engine, memory_mib=MEMORY_MIB)
        starts.append(ran)
        print(f"container ran its first command in {ran.start_s * 1000:.0f} ms, "
              f"its cgroup charged {ran.memory_bytes / MiB:.1f} MiB")
    except BackendUnavailableError as exc:
        print("cannot measure a container start here:", exc)
    if len(starts) == 5:
        print(f"the container started {booted.start_s / ran.start_s:.0f}x faster and held "
              f"{booted.memory_bytes / max(ran.memory_bytes, 1):.0f}x less memory")
show(plots.starts(starts))

# %% [markdown]
# What the measurements say about the model:
#
# * the model's QEMU VM is a *cloud* VM (44 s: firmware, a disk image, a full distribution). Booting
#   a kernel straight into a busybox initramfs is closer to a microVM: with KVM that is ~0.1 s, under
#   software emulation (TCG, what this machine can run) a few seconds. The figure says which
#   accelerator ran;
# * the VM holds more host memory than its guest was given: the guest's touched pages plus QEMU;
# * the container's first command runs in tens of milliseconds, and its cgroup is charged well under
#   a MiB: there is no second kernel.
#
# | 中文 | English | in layerlab |
# |---|---|---|
# | 虚拟机 | virtual machine | `vm(...)`, `realrt.vm.VM` |
# | 资源全部占用 | reserved in full | `VMSpec`: reserved at admission, high-water mark |
# | 资源动态分配 | allocated as needed | `ContainerSpec`: requests, then what it uses |
# | 硬件虚拟化 / 进程虚拟化 | hardware / process virtualisation | `plots.layers()` |
# | Hypervisor / Docker Engine | hypervisor / container engine | QEMU / cgroups + namespaces |
# | 控制组 | cgroup | `--memory`, `--cpus`, `--cpu-shares`, `--pids-limit` |
# | 隔离 | isolation | `scenarios.noisy_neighbour()` |
# | 快速部署 | fast deployment | `scenarios.flash_crowd()` |
#
# `layerlab tour --chapter 4` prints the same story in a terminal.

# %%
if engine is not None:
    engine.close()
print("done")
