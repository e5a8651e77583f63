"""Resource limits under cgroup v1 (this host) and cgroup v2 (a QEMU guest), each next to the model.

    sudo .venv/bin/python bench/limits_v2.py [--no-host] [--no-guest] [--accel auto|kvm|tcg] [--json FILE]

The same code (``realrt.vm.limits.measure_limits``) runs the programs of ``sim.capacity.hogs``
(a memory hog, a CPU hog, a fork bomb) under ``docker run``'s ``--memory``, ``--cpus`` and
``--pids-limit`` twice: on this machine's kernel (cgroup v1 here: v2 is mounted with no
controllers) and in a guest booted by QEMU on Debian's generic kernel that mounts **only cgroup
v2** and runs this checkout with the host's Python (the host's root shared read-only over
virtio-9p).  Each row shows the model's prediction (``sim.capacity.predict_hog``) and what the
kernel measured, then the checks of the real backend's cgroup code (limit files, cgroup.procs,
exec joining the group, removal, a sweep).  The guest's accelerator is printed: under TCG
(software emulation) the hogs run ~30x slower, so memory is compared by its peak and CPU by the
ratio of CPU time to wall time.  Exit status 0 whatever the numbers, 1 when a side could not run,
130 if interrupted; nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realrt.vm.limits import LimitsReport, measure_limits, measure_limits_in_guest
from sim.errors import LayerlabError


def _where(report: LimitsReport) -> str:
    return f"{report.where}, {report.accelerator}" if report.accelerator else report.where


def table(reports: list[LimitsReport]) -> str:
    """The model-vs-measured rows of every report side by side, then each report's checks."""
    if not reports:
        return "(nothing measured)"
    head = ["flag", "program", "compared", "model"] + [f"v{r.cgroup_version} ({_where(r)})" for r in reports]
    rows = [head]
    for first in reports[0].rows:
        cells = [first.flag, first.program, f"{first.quantity} ({first.unit})", f"{first.model:.2f}"]
        for report in reports:
            row = report.row(first.case)
            note = f", exit {row.exit_code}"
            if row.case == "memory":
                note += f", oom_kill {row.extra['oom_kills']:.0f}, killed at {row.extra['last_sample_s']:.1f} s"
            if row.case == "cpus":
                note += f", throttled {row.extra['throttled_s']:.2f} s"
            cells.append(f"{row.measured:.2f}{note}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.append("")
    lines.append("model: memory hog OOM-killed after "
                 f"{reports[0].row('memory').extra['model_killed_s']:.2f} s at the limit; "
                 f"CPU hog throttled {reports[0].row('cpus').extra['model_throttled_s']:.2f} s")
    for report in reports:
        failed = [name for name, ok in report.checks.items() if not ok]
        timing = f"suite {report.elapsed_s:.1f} s"
        if report.wall_s is not None:
            timing += f", guest boot {report.boot_s:.1f} s, QEMU wall {report.wall_s:.1f} s"
        lines.append(f"v{report.cgroup_version} ({_where(report)}, kernel {report.kernel}"
                     f"{', cgroup2 ' + report.mount if report.mount else ''}): {timing}; "
                     f"checks {len(report.checks) - len(failed)}/{len(report.checks)} passed"
                     + (f", FAILED: {', '.join(failed)}" if failed else ""))
        for name, note in sorted(report.notes.items()):
            lines.append(f"    {name}: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-host", action="store_true", help="skip this host's kernel")
    parser.add_argument("--no-guest", action="store_true", help="skip the cgroup v2 guest")
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"), help="the guest's accelerator")
    parser.add_argument("--json", metavar="FILE", help="write both reports as JSON to FILE")
    args = parser.parse_args(argv)
    reports: list[LimitsReport] = []
    status = 0
    try:
        if not args.no_host:
            try:
                reports.append(measure_limits())
            except LayerlabError as exc:
                print(f"this host: cannot measure: {exc}", file=sys.stderr)
                status = 1
        if not args.no_guest:
            print("booting the cgroup v2 guest (about a minute under TCG)...", file=sys.stderr)
            try:
                reports.append(measure_limits_in_guest(accel=args.accel))
            except LayerlabError as exc:
                print(f"the cgroup v2 guest: cannot measure: {exc}", file=sys.stderr)
                status = 1
    except KeyboardInterrupt:
        return 130
    print(table(reports))
    if args.json:
        Path(args.json).write_text(json.dumps([json.loads(r.to_json()) for r in reports], indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
