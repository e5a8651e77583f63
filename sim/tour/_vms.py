"""Chapter 4 of the tour: 容器和虚拟机 containers vs virtual machines, in a terminal.

The seed's four comparisons, each as the numbers the resource model computes
(:mod:`sim.capacity.scenarios`); on the real backend the chapter then measures a hog in a real
container under a real limit, and boots a real VM, and prints each next to the model's prediction.
Notebook 04 draws the same story.
"""

from __future__ import annotations

from typing import Any

from sim.errors import BackendUnavailableError
from sim.tour._common import Tour

__all__ = ["chapter_vms"]


def chapter_vms(t: Tour) -> None:
    from sim.capacity import MiB, memory_hog, predict_hog, predict_start, scenarios
    from sim.containers.limits import parse_limits

    t.section("4.1", "资源", "resources: a VM holds all it was given, a container takes what it needs")
    same = scenarios.same_service()
    o = same.outcome
    for kind, limited_by in zip(same.table["kind"], same.table["limited_by"]):
        t.say(f"{kind:9} {int(o[kind + '_count']):4} per 64-core / 256 GiB host (limited by {limited_by}); "
              f"reserved {o[kind + '_reserved_gib']:.0f} GiB, in use {o[kind + '_in_use_gib']:.1f} GiB")
    t.say(f"VMs hit memory first; containers reach {o['container_count'] / o['vm_count']:.1f}x their density.")
    day = scenarios.idle_waste_day().outcome
    t.say(f"over a day (peak 80%, trough 10%): VMs sized for peak waste {day['vm_waste_gib_h']:.0f} GiB·h, "
          f"containers requesting the mean {day['container_waste_gib_h']:.0f} GiB·h")

    t.section("4.2", "虚拟化层面", "hardware virtualisation vs process virtualisation")
    t.say("a VM: hypervisor (QEMU ~131 MB) + its own kernel and OS + the app, in RAM it was given whole;")
    t.say("a container: the app's processes on the host's kernel + a shim (3-11 MB).")

    t.section("4.3", "架构", "Hypervisor vs Docker Engine: cgroups on one shared kernel")
    n = scenarios.noisy_neighbour().outcome
    t.say(f"cpu.weight: a hog uses {n['weights_hog_cpu_alone']:.1f} idle cores, yields to "
          f"{n['weights_hog_cpu_contended']:.1f} when its neighbour is busy")
    t.say(f"cpu.max: throttled to {n['quota_hog_cpu']:.1f} core with {n['quota_idle_cores']:.1f} idle")
    t.say(f"memory.max: a leak is OOM-killed at {n['limits_first_kill_s']:.0f} s, neighbours untouched; "
          f"without it the host OOM killer took a neighbour ({int(n['host_oom_neighbour_kills'])} times)")
    hog = memory_hog(total_mib=64, step_mib=2, step_s=0.1, duration_s=2.0)
    flags: dict[str, Any] = {"memory": "16m"}  # docker run's flags, for the model and the real run alike
    predicted = predict_hog(hog, parse_limits(**flags))
    killed = float(predicted.t[predicted.oom_kills > 0][0])
    t.say(f"model: a {hog.label} under --memory 16m is OOM-killed after {killed:.2f} s")

    t.section("4.4", "使用情况", "usage: VMs isolate more; containers start and ship faster")
    crowd = scenarios.flash_crowd().outcome
    for kind in ("vm", "microvm", "container"):
        t.say(f"flash crowd at t=60 s: {kind:9} unmet for {crowd[kind + '_window_s']:6.2f} s "
              f"(starts in {crowd[kind + '_start_s']:.3f} s)")
    sweep = scenarios.overcommit_sweep().outcome
    t.say(f"overcommit: the RAM cliff comes at {sweep['ram_cliff_ratio']:g}x, the CPU service level breaks at "
          f"{sweep['cpu_break_ratio']:g}x")

    t.section("4.5", "在这台机器上", "measured on this machine")
    if t.backend != "real":
        t.say("the sim backend measures nothing: `layerlab tour --backend real --chapter 4` (as root) runs the")
        t.say("hog in a real container and boots a real VM (QEMU), next to these predictions.")
        return
    # The real engine measures (sim never imports realrt: it asks the engine it was given).
    engine: Any = t.engine
    try:
        run = engine.measure_hog(hog, **flags)
        s = run.series
        t.say(f"measured: exit {run.exit_code}, oom_kill {s.oom_kills[-1]:.0f}, at most {s.peak_memory / MiB:.1f} MiB "
              f"sampled (model: killed after {killed:.2f} s)")
    except BackendUnavailableError as exc:
        t.say(f"no container measurement here: {exc}")
    model = predict_start("vm", memory=128 * MiB)
    try:
        booted = engine.boot_vm(memory_mib=128)
        t.say(f"a 128 MiB QEMU VM reached init in {booted.start_s:.2f} s ({booted.accelerator}), holding "
              f"{booted.memory_bytes / MiB:.0f} MiB (model of a cloud VM: {model.start_s:g} s, "
              f"{model.memory_bytes / MiB:.0f} MiB)")
    except BackendUnavailableError as exc:
        t.say(f"no VM here: {exc}")
