"""The docker-like subcommands of ``layerlab``: build, images, history, inspect, tag, rmi,
save, load, run, volume, df, analyze.  Images and volumes persist in the state folder; a
container lives for one ``run`` (use ``--diff`` or ``--commit`` to look at or keep
its writable layer before it goes)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from sim.backends import DEFAULT_BACKEND_VARIABLE, connect
from sim.cli._command import Wrap, command_factory
from sim.interface import Engine

__all__ = ["add_commands"]


def _state_dir(backend: str) -> Path:
    base = os.environ.get("LAYERLAB_STATE_DIR")
    if base:
        return Path(base) / backend if backend == "sim" else Path(base)
    if backend == "sim":
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "layerlab" / "sim"
    return Path("/run/layerlab") if os.geteuid() == 0 else Path(f"/tmp/layerlab-{os.getuid()}")


def config_dir() -> Path:
    """Where logins (config.json), daemon.json and certs.d live: ``$LAYERLAB_CONFIG_DIR``, else
    ``config`` beside a ``$LAYERLAB_STATE_DIR``, else ``~/.config/layerlab``."""
    if os.environ.get("LAYERLAB_CONFIG_DIR"):
        return Path(os.environ["LAYERLAB_CONFIG_DIR"])
    if os.environ.get("LAYERLAB_STATE_DIR"):
        return Path(os.environ["LAYERLAB_STATE_DIR"]) / "config"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "layerlab"


def _engine(args: argparse.Namespace) -> Engine:
    from sim.registries.config import RegistryConfig

    backend = args.backend or os.environ.get(DEFAULT_BACKEND_VARIABLE) or "sim"
    return connect(backend, state_dir=str(_state_dir(backend)), registries=RegistryConfig.load(config_dir()))


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def _json(value: Any) -> str:
    def plain(v: Any) -> Any:
        if is_dataclass(v) and not isinstance(v, type):
            return plain(asdict(v))
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, bytes):
            return v.decode(errors="replace")
        if hasattr(v, "value") and type(v).__module__.startswith("sim"):
            return v.value
        return v

    return json.dumps(plain(value), indent=2, sort_keys=True)


def _pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"layerlab: error: {what} takes KEY=VALUE, got {item!r}")
        out[key] = value
    return out


# -- handlers ------------------------------------------------------------------------------


def _print_step(step: Any) -> None:
    if step.skipped:
        print(f"#{step.number} SKIPPED {step.instruction}", flush=True)
        return
    mark = " CACHED" if step.cached else ""
    layer = f"  -> layer {step.layer[7:19]} ({_size(step.size)})" if step.layer else ""
    print(f"#{step.number}{mark} {step.instruction}{layer}", flush=True)
    if step.output and not step.cached:
        print("    " + step.output.rstrip().replace("\n", "\n    "), flush=True)


def _build(args: argparse.Namespace, eng: Any) -> int:
    result = eng.build(args.context, buildfile=args.file, tag=args.tag, build_args=_pairs(args.build_arg, "--build-arg"),
                       no_cache=args.no_cache, progress=None if args.json else _print_step,  # each step as it ends
                       target=args.target)
    if args.json:
        print(_json(result))
        return 0
    print(f"Successfully built {result.image.id[7:19]}" + (f"\nSuccessfully tagged {args.tag}" if args.tag else ""))
    return 0


def _images(args: argparse.Namespace, eng: Any) -> int:
    infos = eng.images()
    if args.json:
        print(_json(infos))
        return 0
    rows = []
    for info in infos:
        for tag in info.tags or ("<none>:<none>",):
            repo, _, t = tag.rpartition(":")
            digest = (info.digest or "<none>",) if args.digests else ()
            rows.append((repo, t, *digest, info.id[7:19], info.created, _size(info.size)))
    header = ("REPOSITORY", "TAG", *(("DIGEST",) if args.digests else ()), "IMAGE ID", "CREATED", "SIZE")
    print(_table(rows, header))
    return 0


def _history(args: argparse.Namespace, eng: Any) -> int:
    entries = eng.history(args.image)
    if args.json:
        print(_json(entries))
        return 0
    rows = [((e.layer or "<missing>")[7:19] if e.layer else "<missing>", e.created_by[:60], _size(e.size), e.comment)
            for e in entries]
    print(_table(rows, ("LAYER", "CREATED BY", "SIZE", "COMMENT")))
    return 0


def _inspect(args: argparse.Namespace, eng: Any) -> int:
    print(_json([eng.inspect_image(ref) for ref in args.image]))
    return 0


def _tag(args: argparse.Namespace, eng: Any) -> int:
    eng.tag(args.source, args.target)
    return 0


def _rmi(args: argparse.Namespace, eng: Any) -> int:
    for ref in args.image:
        for line in eng.remove_image(ref, force=args.force):
            print(line)
    return 0


def _save(args: argparse.Namespace, eng: Any) -> int:
    # The engine writes the path itself: a tar under a temporary name renamed once complete, or a folder.
    eng.save(args.image, args.output, format=args.format, compression=args.compress)
    return 0


def _load(args: argparse.Namespace, eng: Any) -> int:
    # A path, not an open file: the store reads a tar or an OCI layout folder by it.
    for info in eng.load(args.input):
        print(f"Loaded image: {', '.join(info.tags) or info.id}")
    return 0


def _volume_spec(specs: Sequence[str] | None) -> tuple[dict[str, str], dict[str, str]]:
    volumes: dict[str, str] = {}
    binds: dict[str, str] = {}
    for spec in specs or ():
        source, sep, target = spec.partition(":")
        if not sep:
            raise SystemExit(f"layerlab: error: -v takes NAME:/path or /host/dir:/path, got {spec!r}")
        (binds if source.startswith("/") else volumes)[target] = source
    return volumes, binds


def _network_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", metavar="none|host|NAME", help="网络 the container's network (default none)")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[127.0.0.1:]HOST:CONTAINER",
                   help="publish a container port on the host's loopback (TCP)")


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """The resource flags as typed: the engine parses them as the docker CLI does (sim.containers.limits)."""
    return {"memory": args.memory, "cpus": args.cpus, "cpu_shares": args.cpu_shares, "pids_limit": args.pids_limit}


def _security_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--security-opt", action="append", default=[], metavar="seccomp=unconfined",
                   help="安全选项 seccomp=unconfined: no seccomp filter (default: Docker's default profile)")


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--memory", metavar="BYTES", help="资源限制 memory limit (e.g. 512m; at least 6m)")
    p.add_argument("--cpus", metavar="N", help="number of CPUs (e.g. 1.5): a CFS quota per 100 ms")
    p.add_argument("-c", "--cpu-shares", metavar="N", help="relative CPU weight (default 1024)")
    p.add_argument("--pids-limit", metavar="N", help="most processes at once (0 or -1: unlimited)")


def _run(args: argparse.Namespace, eng: Any) -> int:
    volumes, binds = _volume_spec(args.volume)
    command: Any = args.command or None
    if args.detach:  # a monitor process (real) or the state folder (model) keeps it going after this command
        info = eng.run_detached(args.image, command, remove=args.rm, monitor=True, restart=args.restart,
                                name=args.name, env=_pairs(args.env, "-e"), volumes=volumes, binds=binds,
                                workdir=args.workdir, user=args.user, network=args.network, publish=args.publish,
                                security_opt=args.security_opt, **_limits(args))
        print(info.id)
        return 0
    if args.restart not in (None, "no"):
        from sim.containers._policy import parse_restart_policy
        from sim.errors import InvalidSpecError

        parse_restart_policy(args.restart)  # a malformed policy is named as such first
        raise InvalidSpecError("a restart policy needs a detached run (run -d)")
    info = eng.create(args.image, command, name=args.name, env=_pairs(args.env, "-e"), volumes=volumes, binds=binds,
                      workdir=args.workdir, user=args.user, network=args.network, publish=args.publish,
                      security_opt=args.security_opt, **_limits(args))
    try:
        stdin = sys.stdin.buffer.read() if args.interactive else None
        result = eng.start(info.id, stdin=stdin)
        _write_result(result)
        if args.diff:
            print("\n".join(str(c) for c in eng.diff(info.id)), file=sys.stderr)
        if args.commit:
            committed = eng.commit(info.id, args.commit)
            print(f"committed {committed.id[7:19]} as {args.commit}", file=sys.stderr)
        return int(result.exit_code)
    finally:
        eng.remove(info.id, force=True)


def _create(args: argparse.Namespace, eng: Any) -> int:
    volumes, binds = _volume_spec(args.volume)
    info = eng.create(args.image, args.command or None, name=args.name, env=_pairs(args.env, "-e"),
                      volumes=volumes, binds=binds, workdir=args.workdir, user=args.user, network=args.network,
                      publish=args.publish, security_opt=args.security_opt, **_limits(args))
    print(info.id)
    return 0


def _write_result(result: Any) -> None:
    """The process's output, then (on stderr) what went wrong around it: never one for the other."""
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    sys.stdout.flush()
    for warning in getattr(result, "warnings", ()):
        print(f"WARNING: {warning}", file=sys.stderr)
    sys.stderr.flush()


def _start(args: argparse.Namespace, eng: Any) -> int:
    if args.detach:
        eng.start(args.container, detach=True, monitor=True)
        print(args.container)
        return 0
    result = eng.start(args.container)
    _write_result(result)
    return int(result.exit_code)


def _exec(args: argparse.Namespace, eng: Any) -> int:
    result = eng.exec(args.container, args.command)
    _write_result(result)
    return int(result.exit_code)


def _ps(args: argparse.Namespace, eng: Any) -> int:
    infos = eng.containers(all=args.all)
    if args.json:
        print(_json(infos))
        return 0
    rows = [(c.id[:12], c.image, " ".join(c.command)[:30], c.status or c.state, str(c.restart_count),
             _size(c.upper_size), c.name) for c in infos]
    print(_table(rows, ("CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "RESTARTS", "SIZE", "NAMES")))
    return 0


def _logs(args: argparse.Namespace, eng: Any) -> int:
    if not args.follow:
        sys.stdout.buffer.write(eng.logs(args.container))
        return 0
    for chunk in eng.follow_logs(args.container):  # until the container's run ends
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    return 0


def _diff(args: argparse.Namespace, eng: Any) -> int:
    changes = eng.diff(args.container)
    print(_json(changes) if args.json else "\n".join(str(c) for c in changes))
    return 0


def _commit(args: argparse.Namespace, eng: Any) -> int:
    print(eng.commit(args.container, args.tag, message=args.message or "").id)
    return 0


def _rm(args: argparse.Namespace, eng: Any) -> int:
    for ref in args.container:
        freed = eng.remove(ref, force=args.force, volumes=args.volumes)
        print(f"{ref} (container layer: {_size(freed)} freed)")
    return 0


def _volume(args: argparse.Namespace, eng: Any) -> int:
    if args.action == "create":
        print(eng.create_volume(args.name).name)
    elif args.action == "ls":
        infos = eng.list_volumes()
        print(_json(infos) if args.json else _table([(v.name, _size(v.size)) for v in infos], ("VOLUME NAME", "SIZE")))
    elif args.action == "rm":
        eng.remove_volume(args.name)
        print(args.name)
    elif args.action == "prune":  # docker volume prune [-a]; the other prunes are in sim.cli._maintenance
        result = eng.volume_prune(all=args.all)
        if result.lines():
            print("\n".join(result.lines()) + "\n")
        print(f"Total reclaimed space: {_size(result.freed_bytes)}")
    return 0


def _df(args: argparse.Namespace, eng: Any) -> int:
    usage = eng.df()
    if args.json:
        print(_json(usage))
        return 0
    print(_table([
        ("Images", str(usage.images), _size(usage.shared_bytes + usage.unique_bytes), f"shared {_size(usage.shared_bytes)}"),
        ("Layers", str(usage.layers), _size(usage.shared_bytes + usage.unique_bytes), f"unique {_size(usage.unique_bytes)}"),
        ("Volumes", str(usage.volumes), _size(usage.volume_bytes), ""),
    ], ("TYPE", "TOTAL", "SIZE", "")))
    if usage.per_image:
        print()
        print(_table([(k, _size(s), _size(u)) for k, (s, u) in sorted(usage.per_image.items())],
                     ("IMAGE", "SHARED SIZE", "UNIQUE SIZE")))
    return 0


def _analyze(args: argparse.Namespace, eng: Any) -> int:
    """``layerlab analyze``: dive's numbers for one image, or the layers several images share."""
    import stat

    from sim.images import analysis

    parser: argparse.ArgumentParser = args.subparser
    if args.shared:
        if args.layer is not None or args.export is not None or args.show is not None:
            parser.error("--shared compares images; --layer, --export and --show look inside one")
        shared = analysis.shared_layers({ref: eng._layers(eng._image(ref)) for ref in args.image})
        if args.json:
            print(shared.to_json())
            return 0
        print(_table([(s.name, str(s.layers), _size(s.total_bytes), _size(s.shared_bytes), _size(s.unique_bytes))
                      for s in shared.images], ("IMAGE", "LAYERS", "SIZE", "SHARED SIZE", "UNIQUE SIZE")))
        print()
        print(_table([(d.diff_id[7:19], _size(d.size), ", ".join(d.images)) for d in shared.layers],
                     ("LAYER", "SIZE", "USED BY")))
        print()
        base = f"{len(shared.common_base)} layer{'s' if len(shared.common_base) != 1 else ''}"
        print(f"Common base (same bottom layers in every image): {base}")
        print(f"Stored once: {_size(shared.stored_bytes)}; without sharing: {_size(shared.naive_bytes)}; "
              f"saved: {_size(shared.saved_bytes)}")
        return 0
    if len(args.image) != 1:
        parser.error("analyze takes one IMAGE; use --shared to compare several")
    if (args.export is None) != (args.output is None):
        parser.error("--export N and -o FILE go together")
    ref = args.image[0]
    layers = eng._layers(eng._image(ref))
    try:
        if args.export is not None:
            index = analysis.layer_index(args.export, len(layers))
            with open(args.output, "wb") as fh:
                digest = analysis.export_layer(layers[index], fh)
            print(f"layer {index} ({digest[7:19]}) written to {args.output}")
            return 0
        if args.show is not None:
            data = analysis.file_contents(layers, args.show, layer=args.layer)
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return 0
        if args.layer is not None:
            entries = analysis.tree(layers, upto=args.layer, sort=args.sort or "path")
            if args.json:
                print(_json(entries))
                return 0
            index = analysis.layer_index(args.layer, len(layers))
            print(f"{ref}: merged view at layer {index} of {len(layers)} (LAYER: where each path comes from)")
            kinds = {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK, "file": stat.S_IFREG}
            print(_table([(stat.filemode(kinds[e.kind] | e.mode), f"{e.uid}:{e.gid}", _size(e.size), str(e.layer),
                           e.path + (f" -> {e.target}" if e.target else "")) for e in entries],
                         ("MODE", "UID:GID", "SIZE", "LAYER", "PATH")))
            return 0
    except IndexError as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"layerlab: error: {args.show}: {exc.strerror}", file=sys.stderr)
        return 1
    report = analysis.analyze(layers, history=eng.history(ref), name=ref)
    if args.json:
        print(report.to_json())
        return 0
    print(f"{ref}: {len(report.layers)} layers, {_size(report.total_bytes)} of files, "
          f"{_size(report.wasted_bytes)} wasted, efficiency {report.efficiency:.4%}")
    print()
    print(_table([(str(r.index), r.diff_id[7:19], _size(r.size), str(r.files), str(r.cumulative_files),
                   f"+{r.added} ~{r.changed} -{r.deleted}", _size(r.wasted_bytes), _size(r.hidden_bytes), r.created_by[:50])
                  for r in report.layers],
                 ("LAYER", "DIFF ID", "SIZE", "FILES", "CUMULATIVE", "CHANGES", "WASTED", "HIDES", "CREATED BY")))
    print()
    if not report.wasted:
        print("No wasted bytes: no layer overwrites or deletes a file of a layer below it.")
        return 0
    print("Wasted files (earlier copies the image cannot show; dive's inefficient files):")
    print(_table([(str(w.copies), _size(w.bytes), ",".join(map(str, w.layers)), ",".join(map(str, w.hidden_by)),
                   w.path + (" (deleted)" if w.removed else "")) for w in report.sorted_wasted(args.sort or "size")],
                 ("COPIES", "WASTED", "STORED IN", "HIDDEN BY", "PATH")))
    return 0


def add_commands(sub: Any, wrap: Wrap) -> None:
    """Register the docker-like subcommands on ``sub``; ``wrap`` turns a handler into one that gets an engine."""
    command = command_factory(sub, wrap)

    p = command("build", _build, "build an image from a Buildfile (镜像构建)", json_flag=True)
    p.add_argument("context", help="the build context folder")
    p.add_argument("-t", "--tag", help="name:tag for the image")
    p.add_argument("-f", "--file", default="Buildfile", help="the Buildfile inside the context")
    p.add_argument("--build-arg", action="append", metavar="KEY=VALUE")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--target", metavar="STAGE", help="build this stage (FROM ... AS STAGE) and the stages it needs")
    p = command("images", _images, "list images (镜像)", json_flag=True)
    p.add_argument("--digests", action="store_true", help="also the manifest digest each image is stored under")
    p = command("history", _history, "an image's layers and steps, newest first", json_flag=True)
    p.add_argument("image")
    p = command("inspect", _inspect, "an image's configuration as JSON")
    p.add_argument("image", nargs="+")
    p = command("tag", _tag, "give an image another name")
    p.add_argument("source")
    p.add_argument("target")
    p = command("rmi", _rmi, "remove images")
    p.add_argument("image", nargs="+")
    p.add_argument("-f", "--force", action="store_true")
    p = command("save", _save, "write images to a tar (docker save format) or an OCI layout")
    p.add_argument("image", nargs="+")
    p.add_argument("-o", "--output", required=True, help="the tar file, or the folder for --format oci-dir")
    p.add_argument("--format", choices=["docker-archive", "oci-archive", "oci-dir"], default="docker-archive",
                   help="docker save's archive (default), an OCI layout tar, or an OCI layout folder")
    p.add_argument("--compress", choices=["gzip"], default=None, help="gzip the layers (the image IDs stay)")
    p = command("load", _load, "read images from a tar or an OCI layout folder")
    p.add_argument("-i", "--input", required=True)
    p = command("run", _run, "run a command in a new container (容器), then remove it (-d: keep it running)")
    p.add_argument("-d", "--detach", action="store_true",
                   help="run in the background and print the container ID (kept until rm, unless --rm)")
    p.add_argument("--rm", action="store_true", help="with -d: remove the container when it exits")
    p.add_argument("--restart", metavar="POLICY", help="with -d: no, on-failure[:N], always or unless-stopped")
    p.add_argument("-v", "--volume", action="append", metavar="NAME:/path or /host:/path", help="数据卷 volume or bind mount")
    p.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    _network_flags(p)
    p.add_argument("-i", "--interactive", action="store_true", help="feed standard input to the process")
    p.add_argument("--name")
    p.add_argument("--diff", action="store_true", help="print the container layer's changes (docker diff) to stderr")
    p.add_argument("--commit", metavar="TAG", help="commit the container layer as a new image before removing it")
    _limit_flags(p)
    _security_flags(p)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = command("create", _create, "create a container (its writable layer is kept until rm)")
    p.add_argument("-v", "--volume", action="append", metavar="NAME:/path or /host:/path")
    p.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--name")
    _network_flags(p)
    _limit_flags(p)
    _security_flags(p)
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = command("start", _start, "run a created container's command to its end (-d: in the background)")
    p.add_argument("-d", "--detach", action="store_true", help="start it in the background (docker start)")
    p.add_argument("container")
    p = command("exec", _exec, "run another command in a container's file system")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = command("ps", _ps, "list containers", json_flag=True)
    p.add_argument("-a", "--all", action="store_true", help="also the stopped ones")
    p = command("logs", _logs, "what a container printed")
    p.add_argument("-f", "--follow", action="store_true", help="go on printing until the container exits")
    p.add_argument("container")
    p = command("diff", _diff, "the container layer's changes (A added, C changed, D deleted)", json_flag=True)
    p.add_argument("container")
    p = command("commit", _commit, "turn a container's writable layer into a new image layer")
    p.add_argument("container")
    p.add_argument("tag", nargs="?")
    p.add_argument("-m", "--message")
    p = command("rm", _rm, "remove containers: their writable layers are gone, volumes stay")
    p.add_argument("container", nargs="+")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true", help="also the anonymous volumes")
    p = command("volume", _volume, "create, list or remove volumes (数据卷)", json_flag=True)
    p.add_argument("action", choices=["create", "ls", "rm", "prune"])
    p.add_argument("name", nargs="?")
    p.add_argument("-a", "--all", action="store_true", help="prune: also named volumes, not only anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="prune: accepted for Docker's command lines (no prompt)")
    command("df", _df, "disk usage: shared and unique layer bytes", json_flag=True)
    p = command("analyze", _analyze, "per-layer sizes, wasted bytes and efficiency of an image (dive-like)", json_flag=True)
    p.add_argument("image", nargs="+", help="the image; several with --shared")
    p.add_argument("--sort", choices=["size", "path"], help="order of the wasted files (default size) or of the --layer tree (default path)")
    p.add_argument("--layer", type=int, metavar="N", help="the merged view at layer N (0 = bottom, -1 = top); with --show: layer N alone")
    p.add_argument("--export", type=int, metavar="N", help="write layer N as an OCI tar to -o FILE")
    p.add_argument("-o", "--output", metavar="FILE", help="where --export writes")
    p.add_argument("--show", metavar="PATH", help="print a file's contents (the merged view, or --layer N alone)")
    p.add_argument("--shared", action="store_true", help="which layers several images share (bytes shared vs unique)")
