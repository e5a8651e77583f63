"""A VM and a container doing the same thing, on this machine, next to the model's prediction.

    sudo .venv/bin/python bench/start_bench.py [-n 5] [--memory 128] [--json out.json]

Both run the same busybox script (print a marker, then wait): the VM as the ``init`` of a busybox
initramfs booted by QEMU on Debian's cloud kernel (KVM where it works, software emulation (TCG)
otherwise: the report says which ran), the container as the first command of a busybox container
started by layerlab's real engine with ``--memory`` equal to the VM's RAM.  Each is measured ``n``
times, interleaved:

* **time to init**: from spawning QEMU (``VM.boot``) or calling ``engine.start`` to the marker
  line (the container's ``docker create`` is done first and not timed);
* **host memory**: QEMU's resident set (``VmRSS``) at the marker, or the container's cgroup
  charge (``memory.usage_in_bytes`` / ``memory.current``).

The report prints medians, the ratios VM / container, and each measurement against the model's
prediction from the published defaults (``sim.capacity.predict_start``): a cloud VM (44.2 s), a
Firecracker microVM (0.125 s) and a container (0.225 s).  Exit status 0 whatever the numbers,
130 if interrupted; every VM and container is stopped and removed either way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim
from sim.capacity import MiB, predict_start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="measurements of each (default 5)")
    parser.add_argument("--memory", type=int, default=128, help="the VM's RAM and the container's --memory, MiB")
    parser.add_argument("--json", metavar="FILE", help="write every measurement as JSON to FILE")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("-n must be at least 1")

    from realrt.vm import VM, measure_container_start

    engine = sim.connect("real")
    vms, containers = [], []
    try:
        machine = VM(memory_mib=args.memory)  # one instance: its KVM verdict is kept between boots
        for i in range(args.n):
            vms.append(machine.boot())
            machine.stop()
            containers.append(measure_container_start(engine, memory_mib=args.memory))
            print(f"round {i + 1}/{args.n}: VM {vms[-1].start_s:.2f} s ({vms[-1].accelerator}), "
                  f"container {containers[-1].start_s * 1000:.0f} ms", file=sys.stderr, flush=True)
    finally:
        engine.close()

    def median(values: list[float]) -> float:
        return statistics.median(values)

    vm_s, ct_s = median([m.start_s for m in vms]), median([m.start_s for m in containers])
    vm_mem, ct_mem = median([m.memory_bytes for m in vms]), median([m.memory_bytes for m in containers])
    accel = sorted({m.accelerator or "?" for m in vms})
    model = {kind: predict_start(kind, memory=args.memory * MiB) for kind in ("vm", "microvm", "container")}
    print(f"{args.n} runs each, {args.memory} MiB; the VM ran on {', '.join(accel)}"
          + (" (KVM was tried first and gave up)" if vms[0].details.get("kvm_tried") and accel == ["tcg"] else ""))
    print(f"{'':22} {'time to init':>14} {'host memory':>12}")
    print(f"{'VM (QEMU, measured)':22} {vm_s:>12.3f} s {vm_mem / MiB:>8.1f} MiB")
    print(f"{'container (measured)':22} {ct_s:>12.3f} s {ct_mem / MiB:>8.1f} MiB")
    print(f"{'ratio VM / container':22} {vm_s / ct_s:>13.0f}x {vm_mem / max(ct_mem, 1):>11.0f}x")
    print("\nagainst the model's published defaults (measured / model):")
    for kind, measured in (("vm", (vm_s, vm_mem)), ("microvm", (vm_s, vm_mem)), ("container", (ct_s, ct_mem))):
        m = model[kind]
        who = "QEMU" if kind != "container" else "container"
        print(f"  {who:9} vs model {kind:9}: time {measured[0] / m.start_s:7.3f}x ({m.start_s:g} s), "
              f"memory {measured[1] / m.memory_bytes:6.2f}x ({m.memory_bytes / MiB:.0f} MiB)")
    if args.json:
        rows = [{"kind": m.kind, "start_s": m.start_s, "memory_bytes": m.memory_bytes, "accelerator": m.accelerator}
                for m in vms + containers]
        Path(args.json).write_text(json.dumps({"memory_mib": args.memory, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
