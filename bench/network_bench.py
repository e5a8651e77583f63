"""Network setup and teardown per container: layerlab's netlink path against the ``ip`` command, in one run.

    sudo .venv/bin/python bench/network_bench.py [-n 5] [--containers 50] [--no-engine] [--profile] [--json FILE]

What one *container* costs here is what a container on a network needs from the kernel: a named
network namespace with ``lo`` up, a veth pair whose host side is enslaved to the network's bridge
and up and whose other side is ``eth0`` in the namespace, with an address, up, and a default
route via the bridge's address (IPv6 address generation off on both ends, as layerlab does);
then all of it torn down again.  Three ways of doing it are timed, interleaved (each repetition
runs every side once, in an order that rotates), with the garbage collector off:

* **layerlab**: :class:`realrt.network.KernelNetworks` on its own bridge (``add_bridge`` with a
  :class:`~sim.network.NetworkInfo` from a :class:`~sim.network.NetworkModel`, not timed), the
  model deciding names and addresses: ``model.add_container`` + ``model.connect``, ``make_netns``,
  ``attach``; then ``model.disconnect``, ``detach``, ``remove_netns``, ``model.forget_container``.
  Netlink requests from this process, no process per step (the nft command runs only when the
  bridge is made and removed);
* **ip, classic script**: one ``ip`` process per step, as a shell script (and most tutorials) runs
  them -- the pair made on the host, the peer moved into the namespace and renamed:
  ``ip netns add``, ``ip -n NS link set lo up``, ``ip link add HOST type veth peer name PEER``,
  ``ip link set HOST addrgenmode none``, ``ip link set HOST master BR up``,
  ``ip link set PEER netns NS``, ``ip -n NS link set PEER name eth0``,
  ``ip -n NS link set eth0 addrgenmode none``, ``ip -n NS addr add``, ``ip -n NS link set eth0 up``,
  ``ip -n NS route add default via GW`` (11); teardown ``ip link del HOST``, ``ip netns del NS`` (2);
* **ip, fewest commands**: the peer made directly in the namespace under its final name, as
  layerlab does (``ip link add HOST type veth peer name eth0 netns NS``): 9 + 2 processes.

Each ``ip`` is started with :func:`subprocess.run`, which costs what a shell's fork + exec does
(the report prints one ``ip link show dev lo`` process for scale: the floor of every ip step).

1. **one container**: set up, then torn down, ``n`` times per side: medians of setup, teardown
   and their sum; the ratio layerlab / ip of the sums against issue 13's target (<= 0.5, "layerlab
   needs no process per step"), PASS or FAIL, against each ip script, with the ratios of setup and
   of teardown alone; layerlab's time per step and the classic script's slowest steps;
2. **many containers on one bridge** (``--containers``, default 50): all set up one after the
   other on one bridge, then all torn down; medians over ``n`` of the totals, per container, the
   same ratio, and the median setup of the first and the last ten (does it grow with the ports on
   the bridge?);
3. **the engine** (``--no-engine`` skips it): ``engine.run("busybox", ["true"], remove=True)``
   with ``network=NAME`` and with ``network="none"``: what networking adds to a container start.

``--profile`` adds a cProfile of one more untimed round of part 2 on layerlab's side.

Names cannot collide with a running engine's: layerlab's side uses a network ``llbench-<pid>``
(bridge ``llbr-<hash>``) and container ids ``lb<pid><index>``, the ip side ``llbb<pid>`` (bridge),
``llbv``/``llbp<pid><index>`` (veths) and ``llbn<pid><index>`` (namespaces), all at most 15
characters; the subnets are free /24s of 10.253.0.0/16 not routed on the host.  Nothing is sent
anywhere: the namespaces run no process (the engine's ``true`` exits at once) and no link has an
IPv6 address.

The bench runs in a mount namespace of its own (``/`` made a slave: the host's mounts reach it,
its own never reach the host).  ``ip netns add`` turns ``/run/netns`` into a shared bind mount of
itself, which ``ip netns del`` never undoes; on the host's mount table that mount would hide the
namespaces other engines already keep there.  Layerlab's and the engine's namespace mounts are
made in the same private table, so both sides pay the same syscalls.  Everything is removed on
any exit (Ctrl-C, SIGTERM and SIGHUP too); what a run killed by SIGKILL left (bridges, stale
namespace files, journal records) is swept at the next start.  At the end ``ip -j link``, ``ip
netns list`` (names), ``nft list ruleset`` and the host's mounts at ``/run/netns`` (``/proc/1/mountinfo``)
are compared with what they were before; a difference is then told apart as this run's own
leftover (any name it made) or another process's work on the same host.

Exit status 0 whatever the numbers, 130 if interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _network_lab import (
    IpSide,
    LayerlabSide,
    Ours,
    free_subnets,
    gc_off,
    host_state,
    ip,
    med_ms,
    private_mounts,
    release_journal,
    state_diff,
    still_there,
    sweep_killed_runs,
)
from run_bench import environment, fresh_folder, install_signal_handlers, log, release_state, signals_blocked

import sim
from sim.network import bridge_name, netns_name, veth_names

TARGET_RATIO = 0.5
MAX_CONTAINERS = 250  # one /24 per side
SIDES = ("layerlab", "ip", "ip-min")
LABELS = {"layerlab": "layerlab (KernelNetworks, netlink)", "ip": "ip, classic script (11+2)",
          "ip-min": "ip, fewest commands (9+2)"}

# -- the measurements ---------------------------------------------------------------------------


def one_container(ll: LayerlabSide, ipside: IpSide, n: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, dict[str, list[float]]] = {s: {"setup": [], "teardown": []} for s in SIDES}
    steps: dict[str, list[float]] = {}
    ip_steps: dict[str, list[float]] = {}  # the classic script, step by step
    for rep in range(-warmup, n):
        order = SIDES[rep % 3:] + SIDES[:rep % 3]
        for side in order:
            with gc_off():
                if side == "layerlab":
                    up, down = ll.setup(0), ll.teardown(0)
                    setup, teardown = sum(up.values()), sum(down.values())
                else:
                    script, down_script = ipside.setup_script(0, fewest=side == "ip-min"), ipside.teardown_script(0)
                    ups, downs = ipside.run(script), ipside.run(down_script)
                    setup, teardown = sum(ups), sum(downs)
            if rep < 0:
                continue
            samples[side]["setup"].append(setup)
            samples[side]["teardown"].append(teardown)
            if side == "ip":
                for args, value in zip(script + down_script, ups + downs):
                    ip_steps.setdefault(ipside.label(args), []).append(value)
            if side == "layerlab":
                merged = {"model": up["model"] + down["model"], **{k: v for k, v in {**up, **down}.items() if k != "model"}}
                for key, value in merged.items():
                    steps.setdefault(key, []).append(value)
    return summarize(samples, 1) | {"layerlab_steps_ms": {k: med_ms(v) for k, v in steps.items()},
                                    "ip_steps_ms": {k: med_ms(v) for k, v in ip_steps.items()}}


def many_containers(ll: LayerlabSide, ipside: IpSide, count: int, n: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, dict[str, list[float]]] = {s: {"setup": [], "teardown": []} for s in SIDES}
    per_index: dict[str, list[list[float]]] = {s: [[] for _ in range(count)] for s in SIDES}
    for rep in range(-warmup, n):
        order = SIDES[rep % 3:] + SIDES[:rep % 3]
        for side in order:
            ups, downs = [], []
            with gc_off():
                for i in range(count):
                    if side == "layerlab":
                        ups.append(sum(ll.setup(i).values()))
                    else:
                        ups.append(sum(ipside.run(ipside.setup_script(i, fewest=side == "ip-min"))))
                for i in range(count):
                    downs.append(sum(ll.teardown(i).values()) if side == "layerlab"
                                 else sum(ipside.run(ipside.teardown_script(i))))
            if rep < 0:
                continue
            samples[side]["setup"].append(sum(ups))
            samples[side]["teardown"].append(sum(downs))
            for i, value in enumerate(ups):
                per_index[side][i].append(value)
    each = {side: [statistics.median(v) for v in per_index[side]] for side in SIDES}  # per index, over n
    tenth = max(1, min(10, count // 2))
    growth = {s: {"first_ms": med_ms(each[s][:tenth]), "last_ms": med_ms(each[s][-tenth:])} for s in SIDES}
    return summarize(samples, count) | {"containers": count, "growth_window": tenth, "setup_growth": growth,
                                        "setup_by_index_ms": {s: [round(x * 1000, 3) for x in each[s]] for s in SIDES}}


def summarize(samples: dict[str, dict[str, list[float]]], count: int) -> dict[str, Any]:
    figures: dict[str, dict[str, float]] = {}
    for side, phases in samples.items():
        totals = [a + b for a, b in zip(phases["setup"], phases["teardown"])]
        figures[side] = {"setup_ms": med_ms(phases["setup"]), "teardown_ms": med_ms(phases["teardown"]),
                         "total_ms": med_ms(totals), "per_container_ms": med_ms(totals) / count}
    ratios = {peer: figures["layerlab"]["total_ms"] / figures[peer]["total_ms"] for peer in ("ip", "ip-min")}
    by_phase = {peer: {k: figures["layerlab"][f"{k}_ms"] / figures[peer][f"{k}_ms"] for k in ("setup", "teardown")}
                for peer in ("ip", "ip-min")}
    return {"figures": figures, "ratio": ratios, "ratio_phases": by_phase,
            "pass": {p: r <= TARGET_RATIO for p, r in ratios.items()},
            "samples_ms": {s: {k: [round(x * 1000, 3) for x in v] for k, v in p.items()} for s, p in samples.items()}}


def engine_part(subnet: str, n: int, warmup: int, parent: str | None, ours: Ours) -> dict[str, Any]:
    """``engine.run`` of busybox ``true`` on a network and on none, interleaved."""
    from realrt.journal import Journal

    folder = fresh_folder("net-engine", parent)
    engine: Any = None
    name = f"llbench-{os.getpid()}-eng"
    made = False
    samples: dict[str, list[float]] = {"none": [], "network": []}
    report: dict[str, Any] = {"network": name}
    try:
        engine = sim.connect("real", state_dir=folder)
        ours.add(bridge_name(name))
        engine.create_network(name, subnet=subnet)
        made = True
        create = engine.create

        def recorded_create(*args: Any, **kwargs: Any) -> Any:
            # In memory only: run() calls self.create, and this learns each container's id, so the
            # final check knows its namespace and veth names.
            info = create(*args, **kwargs)
            ours.add(netns_name(info.id), veth_names(info.id, name)[0])
            return info

        engine.create = recorded_create
        modes = {"none": "none", "network": name}
        for rep in range(-warmup, n):
            for key in (("none", "network") if rep % 2 == 0 else ("network", "none")):
                with gc_off():
                    t0 = time.perf_counter()
                    result = engine.run("busybox", ["true"], remove=True, network=modes[key])
                    elapsed = time.perf_counter() - t0
                if result.exit_code != 0:
                    raise RuntimeError(f"busybox true on --network {modes[key]} exited {result.exit_code}: {result}")
                if rep >= 0:
                    samples[key].append(elapsed)
    finally:
        with signals_blocked():
            if engine is not None:
                for info in engine.containers(all=True):  # an interrupted run(remove=True) leaves its container
                    with contextlib.suppress(Exception):
                        engine.remove(info.id, force=True)
                if made:
                    try:
                        engine.remove_network(name)
                    except Exception as exc:
                        log(f"cleanup: engine.remove_network({name}) failed: {exc!r}")
                with contextlib.suppress(Exception):
                    engine.close()
                report["journal_left"] = release_journal(Journal(folder))
            release_state(None, folder)
    none_ms, net_ms = med_ms(samples["none"]), med_ms(samples["network"])
    return report | {"none_ms": none_ms, "network_ms": net_ms, "adds_ms": net_ms - none_ms,
                     "samples_ms": {k: [round(x * 1000, 3) for x in v] for k, v in samples.items()}}


def profile_layerlab(ll: LayerlabSide, count: int) -> str:
    """cProfile of one untimed round of ``count`` containers on layerlab's side."""
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(count):
        ll.setup(i)
    for i in range(count):
        ll.teardown(i)
    profiler.disable()
    out = []
    for key in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(key).print_stats(25)
        out.append(f"-- sorted by {key}\n" + buffer.getvalue().split("\n\n", 1)[-1].strip())
    return "\n".join(out)


def spawn_floor(reps: int = 20) -> float:
    samples = []
    for _ in range(reps):
        with gc_off():
            t0 = time.perf_counter()
            ip("link", "show", "dev", "lo")
            samples.append(time.perf_counter() - t0)
    return med_ms(samples)


def bench(args: argparse.Namespace, report: dict[str, Any], ours: Ours) -> None:
    from realrt.journal import Journal

    subnets = free_subnets(3)
    report["subnets"] = {"layerlab": subnets[0], "ip": subnets[1], "engine": subnets[2]}
    report["ip_process_ms"] = spawn_floor()
    folder = fresh_folder("net", args.state_dir)
    try:
        journal = Journal(folder)
        ipside = IpSide(subnets[1], ours)
        ll: LayerlabSide | None = None
        try:
            ipside.make_bridge()
            ll = LayerlabSide(journal, subnets[0], ours)
            report["bridges"] = {"layerlab": ll.info.bridge, "ip": ipside.bridge}
            log(f"1/3: one container, n={args.n}")
            report["one"] = one_container(ll, ipside, args.n, args.warmup)
            log(f"2/3: {args.containers} containers on one bridge, n={args.n}")
            report["many"] = many_containers(ll, ipside, args.containers, args.n, args.warmup)
            if args.profile:
                report["profile"] = profile_layerlab(ll, args.containers)
        finally:
            with signals_blocked():
                if ll is not None:
                    ll.close()
                ipside.close()
                report["journal_left"] = release_journal(journal)
    finally:
        release_state(None, folder)
    if not args.no_engine:
        log(f"3/3: engine.run busybox true, --network NAME vs none, n={args.n}")
        report["engine"] = engine_part(subnets[2], args.n, args.warmup, args.state_dir, ours)


# -- the report ---------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"network setup and teardown, n={report['n']} (+{report['warmup']} warm-up), medians, interleaved; "
             f"kernel {env['kernel']}, {env['cpus']} CPUs, load {env['loadavg']}",
             f"bridges: {report['bridges']['layerlab']} {report['subnets']['layerlab']} (layerlab), "
             f"{report['bridges']['ip']} {report['subnets']['ip']} (ip)",
             f"one ip process (ip link show dev lo): {report['ip_process_ms']:.2f} ms, the floor of each ip step", ""]
    one = report["one"]
    lines.append("1. one container: namespace + lo, veth pair on the bridge, address, default route; then torn down")
    lines.append(f"  {'':38} {'setup':>9} {'teardown':>9} {'total':>9} {'processes':>10}")
    for side in SIDES:
        f = one["figures"][side]
        lines.append(f"  {LABELS[side]:38} {f['setup_ms']:6.2f} ms {f['teardown_ms']:6.2f} ms {f['total_ms']:6.2f} ms"
                     f" {PROCESSES[side]:>10}")
    st = one["layerlab_steps_ms"]
    lines.append("  layerlab steps: " + ", ".join(f"{k} {v:.2f}" for k, v in st.items()) + " ms")
    lines.append("    (detach is one netlink request, RTM_DELLINK of the host veth: its time is the kernel's)")
    slow = sorted(one["ip_steps_ms"].items(), key=lambda kv: -kv[1])
    lines.append("  classic script, slowest steps: " + ", ".join(f"{k} {v:.2f}" for k, v in slow[:4]) + " ms; "
                 f"the other {len(slow) - 4}: {min(v for _, v in slow[4:]):.2f}..{max(v for _, v in slow[4:]):.2f} ms each")
    lines += verdicts(one)
    many = report["many"]
    c = many["containers"]
    lines += ["", f"2. {c} containers on one bridge, in a row (all set up, then all torn down)",
              f"  {'':38} {'setup':>10} {'teardown':>10} {'total':>10} {'per container':>14} "
              f"{'setup first/last ' + str(many['growth_window']):>21}"]
    for side in SIDES:
        f, g = many["figures"][side], many["setup_growth"][side]
        lines.append(f"  {LABELS[side]:38} {f['setup_ms']:7.1f} ms {f['teardown_ms']:7.1f} ms {f['total_ms']:7.1f} ms "
                     f"{f['per_container_ms']:11.2f} ms {g['first_ms']:9.2f} / {g['last_ms']:.2f} ms")
    lines += verdicts(many)
    if "engine" in report:
        e = report["engine"]
        lines += ["", "3. the engine: run('busybox', ['true'], remove=True)",
                  f"  --network none {'':22} {e['none_ms']:7.2f} ms",
                  f"  --network {e['network']:27} {e['network_ms']:7.2f} ms",
                  f"  networking adds {'':21} {e['adds_ms']:7.2f} ms per container start "
                  f"(KernelNetworks alone, part 1: {one['figures']['layerlab']['total_ms']:.2f} ms)"]
    lines += ["", "cleanup (before/after: ip -j link, ip netns list, nft list ruleset, the host's mounts at /run/netns):"]
    if report["leaks"]:
        lines += [f"  LEFT BY THIS RUN: {x}" for x in report["leaks"]]
    else:
        lines.append("  nothing of this run's is left (no link, namespace, nft element or journal record it made)"
                     + ("; the listings equal what they were before" if not report["others"] else ""))
    lines += [f"  changed meanwhile by other processes on this host, not this run's names: {x}" for x in report["others"]]
    return "\n".join(lines)


PROCESSES = {"layerlab": "0 (+0)", "ip": "11 + 2", "ip-min": "9 + 2"}


def verdicts(part: dict[str, Any]) -> list[str]:
    out = []
    for peer, label in (("ip", "classic script"), ("ip-min", "fewest commands")):
        ratio, ok = part["ratio"][peer], part["pass"][peer]
        phases = part["ratio_phases"][peer]
        out.append(f"  ratio layerlab / ip ({label + '):':20} {ratio:.2f}  (target <= {TARGET_RATIO}: "
                   f"{'PASS' if ok else 'FAIL'}); setup {phases['setup']:.2f}, teardown {phases['teardown']:.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="repetitions of each measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repetitions first (default 1)")
    parser.add_argument("--containers", type=int, default=50, help="containers on one bridge in part 2 (default 50)")
    parser.add_argument("--no-engine", action="store_true", help="skip part 3 (engine.run with and without a network)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of layerlab's side (part 2's size)")
    parser.add_argument("--state-dir", default=None, help="parent folder for the temporary state folders")
    parser.add_argument("--json", metavar="FILE", help="also write every figure and sample as JSON to FILE")
    args = parser.parse_args(argv)
    if args.n < 1 or args.warmup < 0:
        parser.error("-n must be at least 1 and --warmup at least 0")
    if not 1 <= args.containers <= MAX_CONTAINERS:
        parser.error(f"--containers must be from 1 to {MAX_CONTAINERS} (one /24 per side)")
    if os.geteuid() != 0:
        raise SystemExit("run as root: bridges, veth pairs and named namespaces are made on this host")
    for name in ("ip", "nft"):
        if shutil.which(name) is None:
            raise SystemExit(f"the {name} command is needed (packages iproute2 and nftables)")
    private_mounts()  # first: unshare(CLONE_NEWNS) needs a single-threaded process
    install_signal_handlers()
    sweep_killed_runs(args.state_dir)
    ours = Ours()
    before = host_state()
    report: dict[str, Any] = {"n": args.n, "warmup": args.warmup, "environment": environment()}
    code = 0
    try:
        bench(args, report, ours)
    except KeyboardInterrupt:
        code = 130
    finally:
        with signals_blocked():
            leaks, others = state_diff(before, host_state(), ours)
            left = still_there(ours)
            leaks += [f"still on the host: {left}"] if left else []
            for key in ("journal_left",):
                for where in (report, report.get("engine", {})):
                    if where.get(key):
                        leaks.append(f"journal records the teardown did not release: {where[key]}")
            report["leaks"], report["others"] = leaks, others
    if code == 130:
        log("interrupted: everything made so far has been removed"
            + ("" if not report["leaks"] else "; but: " + "; ".join(report["leaks"])))
        return code
    print(render(report))
    if args.profile:
        print(f"\ncProfile of layerlab's side, one round of {args.containers} containers:\n{report['profile']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
