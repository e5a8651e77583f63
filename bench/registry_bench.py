#!/usr/bin/env python3
"""Push and pull through a real registry: layerlab's HTTP client against skopeo, on the same image.

    .venv/bin/python bench/registry_bench.py [-n 5] [--big-mb 20] [--quick] [--profile] [--json FILE]

One image is built (``--big-layers`` layers of ``--big-mb`` MiB of random bytes, ``--small-layers``
layers of ``--small-kb`` KiB) in an :class:`~sim.images.store.ImageStore` folder and written again as
an OCI layout folder holding only it, which skopeo reads as ``oci:FOLDER:1``.  Every registry is
Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1, started outside every timed region.
Each figure is the median of ``-n`` runs after ``--warmup`` rounds (default 1, not counted), the
tools interleaved, their order swapped every round (A B, B A, ...) so load from elsewhere and any
after-effect of the previous run fall on both alike:

* **push**: layerlab's ``sim.registries.push`` over ``realrt.registries.HttpRegistry``, timed
  in-process around the call (the session is made before, and its construction reported apart),
  against ``skopeo copy --preserve-digests oci:... docker://...`` timed as a whole process
  (``skopeo --version`` is timed too: skopeo's process start, so the reader can judge).  Both send
  the same uncompressed blobs.  Every measured push goes to a *fresh* registry, so neither tool can
  skip or mount a blob from an earlier run (skopeo's blob-info cache would otherwise mount).
* **pull**: ``sim.registries.pull`` into a fresh ``ImageStore`` folder (its creation inside the timed
  call) against ``skopeo copy --preserve-digests --dest-oci-accept-uncompressed-layers docker://...
  oci:FRESH:1``, both from one registry that holds the image.
* **second push**: the unchanged image again to the registry and repository of the push just
  measured, with a new session; HttpRegistry's ``requests`` counter, and both tools' requests as
  the registry's access log counts them.
* **de-duplication**: a ``sim.connect("sim")`` engine pushes the image to ``bench/a`` and then,
  tagged again, to ``bench/b`` of one registry: bytes sent and blob actions per push, and ``du`` of
  the registry's data folder against twice the image.
* **mirror**: a pull-through mirror of an upstream registry, with a counting TCP relay of this
  script (standard library only) on the mirror->upstream link; the image is pulled through the
  mirror twice into fresh stores.  Distribution stores a proxied blob in the background after
  serving it, so the script waits until the mirror's data folder holds every blob (and the link
  is quiet) before counting pull 1 and starting pull 2.  The upstream's access log
  (``http.response.written``, HEAD answers left out) gives a second count.

Targets (PASS/FAIL): layerlab push and pull no slower than skopeo's (median ratio <= 1.0), second
push under 50 ms.  A report, not a test: exit status 0 whatever the numbers, 130 if interrupted;
every registry process and temporary folder is removed either way.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

_BENCH = Path(__file__).resolve().parent
for folder in (_BENCH.parent, _BENCH):  # runs from a checkout without the editable install too
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from _registry_lab import Lab, access_log, du, log_offset, log_summary  # noqa: E402

import sim  # noqa: E402
from realrt.registries import HttpRegistry, RegistryServer  # noqa: E402
from sim.digest import sha256_digest  # noqa: E402
from sim.images.store import ImageRecord, ImageStore  # noqa: E402
from sim.layers.layer import Layer  # noqa: E402
from sim.registries import PullResult, pull, push  # noqa: E402
from sim.registries.config import RegistryConfig  # noqa: E402

REPO, TAG = "bench/app", "1"
REF = f"{REPO}:{TAG}"
SECOND_PUSH_TARGET_S = 0.050
T = TypeVar("T")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stats(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    return {"n": len(s), "median": statistics.median(s), "p90": s[min(len(s) - 1, -(-9 * len(s) // 10) - 1)],
            "min": s[0], "samples": samples}


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f} ms"


def size(n: float) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


# -- the image and the tools ---------------------------------------------------------------------


def build_image(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    layers = []
    for i in range(args.big_layers + args.small_layers):
        n = args.big_mb << 20 if i < args.big_layers else args.small_kb << 10
        layer = Layer()
        layer.add_file(f"data/{i}", os.urandom(n))
        layers.append(layer.freeze())
    store = ImageStore(lab.folder("store"))
    record = store.add(layers, tags=[REF])
    built = time.perf_counter() - t0
    buf = io.BytesIO()
    store.save([REF], buf)
    oci = lab.folder("oci-layout")
    buf.seek(0)
    ImageStore(oci).load(buf)
    blobs = record.manifest.config.size + sum(d.size for d in record.manifest.layers)
    return {"store": store, "record": record, "oci": oci, "tar": buf.getvalue(), "build_s": built,
            "blob_bytes": blobs, "blobs": len(record.manifest.layers) + 1}


def skopeo(*args: str) -> float:
    """Run skopeo; the whole process's wall time.  Raises RuntimeError when it fails."""
    t0 = time.perf_counter()
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds


def in_process(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    """``fn(*args)`` timed in this process."""
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def pull_fresh(folder: Path, client: HttpRegistry) -> PullResult:
    """What the pull figures time: a new ImageStore in ``folder``, then the pull."""
    return pull(ImageStore(folder), client, REPO, TAG)


def stored_digest(srv: RegistryServer) -> str:
    """The sha256 of the manifest ``srv`` now serves under ``REPO:TAG``."""
    with HttpRegistry(srv.url) as client:
        return str(sha256_digest(client.get_manifest(REPO, TAG).data))


# -- the measurements ----------------------------------------------------------------------------


def bench_push(lab: Lab, img: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """First and second push of each tool, each pair on a fresh registry; see the module docstring."""
    store, record = img["store"], img["record"]
    times: dict[str, list[float]] = {k: [] for k in ("layerlab", "skopeo", "layerlab_second", "skopeo_second",
                                                     "version", "session")}
    counts: dict[str, list[int]] = {}
    methods: dict[str, dict[str, int]] = {}  # the last round's requests by method, as the registry logged them
    problems: list[str] = []
    for i in range(-args.warmup, args.n):
        order = ("layerlab", "skopeo") if i % 2 == 0 else ("skopeo", "layerlab")
        row: dict[str, float] = {}
        tally: dict[str, int] = {}
        for tool in order:
            srv = lab.server(f"push-{tool}")
            start = log_offset(srv)
            try:
                if tool == "layerlab":
                    t0 = time.perf_counter()
                    client = HttpRegistry(srv.url)
                    row["session"] = time.perf_counter() - t0
                    with client:
                        row["layerlab"], _ = in_process(push, store, record, client, REPO, TAG)
                    middle = log_offset(srv)
                    with HttpRegistry(srv.url) as again:
                        row["layerlab_second"], second = in_process(push, store, record, again, REPO, TAG)
                    tally["layerlab_client"], tally["layerlab_second_client"] = client.requests, again.requests
                    if any(b.action != "exists" for b in second.blobs):
                        problems.append(f"round {i}: layerlab's second push sent blobs again")
                else:
                    argv = ("copy", "--dest-tls-verify=false", "--preserve-digests", f"oci:{img['oci']}:{TAG}",
                            f"docker://{srv.host}/{REPO}:{TAG}")
                    row["skopeo"] = skopeo(*argv)
                    middle = log_offset(srv)
                    row["skopeo_second"] = skopeo(*argv)
                # The registry's own count of each push's requests: the same measure for both tools.
                for key, entries in ((tool, access_log(srv, start, middle)),
                                     (f"{tool}_second", access_log(srv, middle, log_offset(srv)))):
                    tally[f"{key}_log"] = len(entries)
                    methods[key] = log_summary(entries)["methods"]
                digest = stored_digest(srv)
                if digest != str(record.manifest_digest):
                    problems.append(f"round {i}: {tool} stored manifest {digest}, not {record.manifest_digest}")
            finally:
                lab.release(srv)
        row["version"] = skopeo("--version")
        log(f"push round {i + 1 if i >= 0 else 'warm-up'}: layerlab {ms(row['layerlab'])} (again {ms(row['layerlab_second'])}), "
            f"skopeo {ms(row['skopeo'])} (again {ms(row['skopeo_second'])}), skopeo --version {ms(row['version'])}")
        if i >= 0:
            for k, v in row.items():
                times[k].append(v)
            for k, n in tally.items():
                counts.setdefault(k, []).append(n)
    result: dict[str, Any] = {k: stats(v) for k, v in times.items()}
    result.update(counts=counts, methods=methods, problems=problems)
    return result


def bench_pull(lab: Lab, img: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    record = img["record"]
    srv = lab.server("pull-source")
    with HttpRegistry(srv.url) as client:
        push(img["store"], record, client, REPO, TAG)
    out: dict[str, list[float]] = {"layerlab": [], "skopeo": [], "session": []}
    problems: list[str] = []
    requests: list[int] = []
    try:
        for i in range(-args.warmup, args.n):
            order = ("layerlab", "skopeo") if i % 2 == 0 else ("skopeo", "layerlab")
            row: dict[str, float] = {}
            for tool in order:
                dest = lab.folder(f"pull-{tool}")
                try:
                    if tool == "layerlab":
                        t0 = time.perf_counter()
                        session = HttpRegistry(srv.url)
                        row["session"] = time.perf_counter() - t0
                        with session:
                            row["layerlab"], got = in_process(pull_fresh, dest, session)
                            requests.append(session.requests)
                        if got.image_id != record.id or got.digest != record.manifest_digest:
                            problems.append(f"round {i}: layerlab pulled {got.image_id} / {got.digest}")
                    else:
                        row["skopeo"] = skopeo("copy", "--src-tls-verify=false", "--preserve-digests",
                                               "--dest-oci-accept-uncompressed-layers", f"docker://{srv.host}/{REPO}:{TAG}",
                                               f"oci:{dest}:{TAG}")
                        index = json.loads((dest / "index.json").read_text())
                        if index["manifests"][0]["digest"] != str(record.manifest_digest):
                            problems.append(f"round {i}: skopeo wrote manifest {index['manifests'][0]['digest']}")
                finally:
                    shutil.rmtree(dest, ignore_errors=True)
            log(f"pull round {i + 1 if i >= 0 else 'warm-up'}: layerlab {ms(row['layerlab'])}, skopeo {ms(row['skopeo'])}")
            if i >= 0:
                for k, v in row.items():
                    out[k].append(v)
    finally:
        lab.release(srv)
    result: dict[str, Any] = {k: stats(v) for k, v in out.items()}
    result["layerlab_requests"] = requests
    result["problems"] = problems
    return result


def bench_dedup(lab: Lab, img: dict[str, Any]) -> dict[str, Any]:
    srv = lab.server("dedup")
    engine: Any = sim.connect("sim", registries=RegistryConfig())
    try:
        engine.load(io.BytesIO(img["tar"]))
        pushes = []
        for repo in ("bench/a", "bench/b"):
            engine.tag(REF, f"{srv.host}/{repo}:1")
            result = engine.push(f"{srv.host}/{repo}:1")
            pushes.append({"ref": f"{repo}:1", "bytes_sent": result.bytes_sent, "seconds": result.seconds,
                           "actions": dict(Counter(b.action for b in result.blobs))})
        disk = du(srv.data_dir)
    finally:
        engine.close()
        lab.release(srv)
    return {"pushes": pushes, "data_dir": disk, "image_blob_bytes": img["blob_bytes"]}


def mirror_holds(mirror: RegistryServer, record: ImageRecord) -> bool:
    blobs = mirror.data_dir / "docker/registry/v2/blobs/sha256"
    for desc in (record.manifest.config, *record.manifest.layers):
        hex_digest = str(desc.digest).split(":", 1)[1]
        data = blobs / hex_digest[:2] / hex_digest / "data"
        if not data.is_file() or data.stat().st_size != desc.size:
            return False
    return True


def bench_mirror(lab: Lab, img: dict[str, Any]) -> dict[str, Any]:
    record = img["record"]
    upstream = lab.server("upstream")
    with HttpRegistry(upstream.url) as client:
        push(img["store"], record, client, REPO, TAG)
    relay = lab.relay(upstream.port)
    mirror = lab.server("mirror", mirror_of=relay.url)  # the upstream (through the relay) must answer first
    pulls = []
    try:
        for n in (1, 2):
            relay.wait_quiet()
            before, offset = relay.counts(), log_offset(upstream)
            dest = lab.folder(f"mirror-pull-{n}")
            with HttpRegistry(mirror.url) as client:
                seconds, got = in_process(pull_fresh, dest, client)
                to_client = client.bytes_received
            deadline = time.monotonic() + 60
            while not mirror_holds(mirror, record) and time.monotonic() < deadline:
                time.sleep(0.05)  # distribution stores a proxied blob in the background, after serving it
            stored = mirror_holds(mirror, record)
            relay.wait_quiet()
            after = relay.counts()
            pulls.append({"pull": n, "seconds": seconds, "to_client": to_client, "ok": got.image_id == record.id,
                          "mirror_stored_all": stored, "upstream_to_mirror": after[1] - before[1],
                          "mirror_to_upstream": after[0] - before[0], "connections": after[2] - before[2],
                          "upstream_log": log_summary(access_log(upstream, offset))})
            shutil.rmtree(dest, ignore_errors=True)
    finally:
        lab.release(mirror)
        lab.release(upstream)
    return {"pulls": pulls, "image_blob_bytes": img["blob_bytes"]}


def profile_once(lab: Lab, img: dict[str, Any]) -> str:
    srv = lab.server("profile")
    out = io.StringIO()
    try:
        for what in ("push", "pull"):
            prof = cProfile.Profile()
            with HttpRegistry(srv.url) as client:
                if what == "push":
                    prof.runcall(push, img["store"], img["record"], client, REPO, TAG)
                else:
                    prof.runcall(pull, ImageStore(lab.folder("profile-pull")), client, REPO, TAG)
            out.write(f"\nprofile of one layerlab {what} (cProfile, sorted by own time)\n")
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(15)
    finally:
        lab.release(srv)
    return out.getvalue()


# -- report --------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    return None if b <= 0 else a / b


def fx(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def evaluate(res: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for what in ("push", "pull"):
        r = ratio(res[what]["layerlab"]["median"], res[what]["skopeo"]["median"])
        targets.append({"target": f"{what}: layerlab no slower than skopeo (median layerlab/skopeo <= 1.00)",
                        "value": fx(r), "pass": r is not None and r <= 1.0})
    second = res["push"]["layerlab_second"]["median"]
    targets.append({"target": f"second push of the unchanged image under {SECOND_PUSH_TARGET_S * 1000:.0f} ms (median)",
                    "value": ms(second), "pass": second < SECOND_PUSH_TARGET_S})
    return targets


def timing_rows(label: str, s: dict[str, Any]) -> str:
    return f"  {label:44} {ms(s['median']):>11} {ms(s['p90']):>11} {ms(s['min']):>11}"


def render(res: dict[str, Any]) -> str:
    cfg, env, img = res["config"], res["environment"], res["image"]
    out: list[str] = []
    add = out.append
    add("layerlab registry benchmark: layerlab (in-process, sim.registries over HttpRegistry) vs skopeo (a process)")
    add(f"  {env['skopeo']}, {env['registry']} on 127.0.0.1; python {env['python']}, kernel {env['kernel']}, "
        f"{env['cpus']} cpus, load average {env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end")
    add(f"  image: {cfg['big_layers']} x {cfg['big_mb']} MiB random + {cfg['small_layers']} x {cfg['small_kb']} KiB layers, "
        f"{img['blobs']} blobs with the config, {size(img['blob_bytes'])} ({img['blob_bytes']:,} B); "
        f"manifest {img['manifest_digest'][:19]}...; built in {img['build_s']:.2f} s")
    add(f"  {cfg['n']} runs each after {cfg['warmup']} warm-up round(s), the tools interleaved; "
        "a fresh registry for every measured push")
    head = f"  {'':44} {'median':>11} {'p90':>11} {'min':>11}"
    p, q = res["push"], res["pull"]
    for title, block, first, second in (
            ("push (each to a fresh registry)", p, "layerlab", "skopeo"),
            ("pull (each into a fresh folder, from one registry)", q, "layerlab", "skopeo"),
            ("second push of the unchanged image (same registry and repository)", p, "layerlab_second", "skopeo_second")):
        add("")
        add(title)
        add(head)
        add(timing_rows("layerlab (in-process)", block[first]))
        add(timing_rows("skopeo copy (whole process)", block[second]))
        add(f"  {'layerlab / skopeo':44} {fx(ratio(block[first]['median'], block[second]['median'])):>11}")
        rest = block[second]["median"] - p["version"]["median"]
        add(f"  {'layerlab / (skopeo - skopeo --version)':44} {fx(ratio(block[first]['median'], rest)):>11}")
        if block is q and first == "layerlab":
            add(f"  requests per pull: layerlab {summ(q['layerlab_requests'])} (HttpRegistry.requests)")
    c, mt = p["counts"], p["methods"]
    add("")
    add("requests per push: HttpRegistry.requests, and what the registry logged (by method, last round)")
    for label, key in (("first push", ""), ("second push", "_second")):
        add(f"  {label:12} layerlab {summ(c[f'layerlab{key}_client'])} (registry log {summ(c[f'layerlab{key}_log'])}: "
            f"{methods_text(mt[f'layerlab{key}'])}); skopeo: registry log {summ(c[f'skopeo{key}_log'])} "
            f"({methods_text(mt[f'skopeo{key}'])})")
    add("")
    add("for scale (not in any figure above)")
    add(head)
    add(timing_rows("skopeo --version (skopeo's process start)", p["version"]))
    add(timing_rows("HttpRegistry(url) (made before each timed call)", p["session"]))

    d = res["dedup"]
    add("")
    add("cross-repository de-duplication: sim engine.push to bench/a:1, then (tagged) bench/b:1, one registry")
    for row in d["pushes"]:
        actions = ", ".join(f"{v} {k}" for k, v in sorted(row["actions"].items()))
        add(f"  push {row['ref']:12} {size(row['bytes_sent']):>12} sent ({row['bytes_sent']:,} B) in {row['seconds']:.2f} s; blobs: {actions}")
    one, disk = d["image_blob_bytes"], d["data_dir"]
    first, second = d["pushes"][0]["bytes_sent"], d["pushes"][-1]["bytes_sent"]
    add(f"  the second push did not send {size(first - second)} ({1 - second / first:.2%} of the first push's bytes)")
    add(f"  registry data folder (du): {size(disk['allocated'])} allocated, {size(disk['apparent'])} apparent = "
        f"{disk['apparent'] / one:.2f}x one copy of the blobs ({size(one)}); two copies would be {size(2 * one)}: "
        f"{size(2 * one - disk['apparent'])} ({1 - disk['apparent'] / (2 * one):.1%}) saved on disk")

    m = res["mirror"]
    add("")
    add("pull through a mirror twice, into fresh stores (upstream traffic counted by a relay on the mirror->upstream link)")
    add(f"  {'pull':10} {'time':>10} {'to client':>11} {'upstream->mirror':>17} {'mirror->upstream':>17} "
        f"{'upstream requests':>18} {'blob GETs':>9} {'upstream log bodies':>19}")
    for row in m["pulls"]:
        lg = row["upstream_log"]
        add(f"  {('1 (cold)' if row['pull'] == 1 else '2 (warm)'):10} {ms(row['seconds']):>10} {size(row['to_client']):>11} "
            f"{size(row['upstream_to_mirror']):>17} {size(row['mirror_to_upstream']):>17} {lg['requests']:>18} "
            f"{lg['blob_gets']:>9} {size(lg['written']):>19}")
    pulls = m["pulls"]
    up1, up2, one = pulls[0]["upstream_to_mirror"], pulls[1]["upstream_to_mirror"], m["image_blob_bytes"]
    add(f"  upstream->mirror: pull 1 {up1 / one:.2f}x the image's blobs ({size(one)}, {img['blobs']} blobs; "
        f"{pulls[0]['upstream_log']['blob_gets']} blob GETs upstream), pull 2 {size(up2)}: the second pull saved "
        f"{size(up1 - up2)} on the link, {size(one - up2)} against pulling from upstream directly")
    if not all(r["mirror_stored_all"] for r in pulls):
        add("  PROBLEM: the mirror had not stored every blob 60 s after a pull")

    problems = p["problems"] + q["problems"] + [f"mirror pull {r['pull']} got another image" for r in pulls if not r["ok"]]
    add("")
    add("agreement: " + ("both tools stored and pulled the same manifest and image every time" if not problems
                         else f"{len(problems)} PROBLEMS"))
    for line in problems[:20]:
        add("  PROBLEM: " + line)
    if res.get("profile"):
        add(res["profile"].rstrip())
    add("")
    add("targets")
    for t in res["targets"]:
        add(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']}")
    add("  (a report, not a test: the exit status is 0 either way)")
    return "\n".join(out)


def methods_text(methods: dict[str, int]) -> str:
    return ", ".join(f"{n} {m}" for m, n in sorted(methods.items(), key=lambda kv: -kv[1]))


def summ(values: list[int]) -> str:
    """A list of counts that are normally all the same, shortly."""
    distinct = sorted(set(values))
    return str(distinct[0]) if len(distinct) == 1 else f"{min(values)}-{max(values)}"


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("-n", type=int, help="measured runs of each (default 5; --quick 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 x 2 MiB big layers, 3 runs")
    p.add_argument("--big-mb", type=int, help="MiB of random bytes in each big layer (default 20; --quick 2)")
    p.add_argument("--big-layers", type=int, default=3, help="big layers")
    p.add_argument("--small-layers", type=int, default=20, help="small layers")
    p.add_argument("--small-kb", type=int, default=4, help="KiB of random bytes in each small layer")
    p.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    p.add_argument("--profile", action="store_true", help="add a cProfile of one layerlab push and one pull")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()),
                   help="where the run's temporary folder is made")
    p.add_argument("--json", metavar="FILE", help="also write every number as JSON to FILE")
    a = p.parse_args(argv)
    a.n = a.n if a.n is not None else (3 if a.quick else 5)
    a.big_mb = a.big_mb if a.big_mb is not None else (2 if a.quick else 20)
    for name in ("n", "big_layers", "small_layers"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.big_mb < 1 or a.small_kb < 1 or a.warmup < 0:
        p.error("--big-mb and --small-kb must be at least 1, --warmup at least 0")
    for tool in ("skopeo", "docker-registry", "du"):
        if shutil.which(tool) is None:
            p.error(f"{tool} is not installed (apt-get install skopeo docker-registry)")
    return a


def version(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]


def run(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {
        "config": {k: getattr(args, k) for k in ("n", "quick", "big_mb", "big_layers", "small_layers", "small_kb", "warmup")},
        "environment": {"python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
                        "loadavg_start": os.getloadavg(), "skopeo": version("skopeo", "--version"),
                        "registry": version("docker-registry", "--version").replace("github.com/docker/distribution ", "")},
    }
    log(f"building the image ({args.big_layers} x {args.big_mb} MiB + {args.small_layers} x {args.small_kb} KiB) ...")
    img = build_image(lab, args)
    res["image"] = {"blob_bytes": img["blob_bytes"], "blobs": img["blobs"], "build_s": img["build_s"],
                    "manifest_digest": str(img["record"].manifest_digest), "image_id": str(img["record"].id)}
    res["push"] = bench_push(lab, img, args)
    res["pull"] = bench_pull(lab, img, args)
    log("de-duplication across repositories ...")
    res["dedup"] = bench_dedup(lab, img)
    log("pulls through a mirror ...")
    res["mirror"] = bench_mirror(lab, img)
    if args.profile:
        res["profile"] = profile_once(lab, img)
    res["targets"] = evaluate(res)
    res["environment"]["loadavg_end"] = os.getloadavg()
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (a background job)
    signal.signal(signal.SIGTERM, terminate)  # unwind: every registry is stopped by Lab.close
    signal.signal(signal.SIGHUP, terminate)
    lab = Lab(args.work_dir)
    try:
        res = run(lab, args)
    except KeyboardInterrupt:
        left = lab.close()
        log("interrupted: every registry stopped, the temporary folder removed"
            + (f" (WARNING: still running: {left})" if left else ""))
        return 130
    except BaseException:
        lab.close()
        raise
    res["leftover_registry_processes"] = lab.close()
    if res["leftover_registry_processes"]:
        log(f"WARNING: registry processes left behind: {res['leftover_registry_processes']}")
    print(render(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str) + "\n")
        log(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
