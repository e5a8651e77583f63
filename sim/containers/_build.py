"""The build: a Buildfile's steps, in order, into image layers (``docker build``).

Each COPY, ADD or RUN step runs in a container over the layers so far, on the engine the build
was started on (:class:`BuildEngine`), and freezes what it changed as a new layer; the other
instructions only change the image's configuration.  A layer step is cached by its parent chain,
its instruction and the content it copies (:class:`BuildCache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat as _stat
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from sim.containers._container import Container, atomic_write, env_dict, env_list, mkdir_p, snapshot, user_ids
from sim.containers._images import LayerCache
from sim.containers._users import resolve_group
from sim.containers.userns import IdMaps
from sim.digest import chain_ids
from sim.errors import BuildError, BuildfileError, ImageNotFoundError
from sim.images.buildfile import Buildfile, Instruction
from sim.images.oci import ContainerConfig, History, ImageConfig, RootFS, host_platform, rfc3339
from sim.images.store import ImageRecord, ImageStore
from sim.interface import FileSystem, UnionMount
from sim.layers import _paths
from sim.layers.layer import Directory, Layer, RegularFile, Symlink, source_date_epoch
from sim.results import BuildResult, BuildStep, ExecResult, ImageInfo

__all__ = ["Builder", "BuildCache", "BuildEngine", "created_stamp"]


class BuildEngine(Protocol):
    """What a build needs of the engine it runs on (:class:`sim.containers.core.EngineCore` is one)."""

    store: ImageStore
    id_maps: IdMaps

    def union(self, layers: Sequence[Layer], upper: Layer | None = None) -> UnionMount: ...

    def image_info(self, record: ImageRecord) -> ImageInfo: ...

    def _image(self, ref: str) -> ImageRecord: ...

    def _run_in(self, container: Container, argv: tuple[str, ...], *, stdin: bytes | None) -> ExecResult: ...


class BuildCache:
    """Build cache key -> the DiffID of the layer that step made; kept in ``file`` when there is one,
    so the next engine reuses it."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.entries: dict[str, str] = {}
        if file is not None and file.exists():
            try:
                self.entries.update(json.loads(file.read_text()))
            except ValueError:
                pass  # a damaged cache only costs a rebuild

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def put(self, key: str, diff_id: str) -> None:
        self.entries[key] = diff_id
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.file, json.dumps(self.entries, sort_keys=True).encode())


def created_stamp() -> str:
    """When an image or a history step is made: ``SOURCE_DATE_EPOCH`` if set, so builds are reproducible."""
    sde = source_date_epoch()
    return rfc3339(sde if sde is not None else int(time.time()))


class Builder:
    """One build: steps in order, each a container over the layers so far."""

    def __init__(self, engine: BuildEngine, cache: BuildCache, layer_cache: LayerCache, buildfile: Buildfile,
                 context: Path, build_args: dict[str, str], no_cache: bool,
                 progress: Callable[[BuildStep], None] | None = None) -> None:
        self.engine = engine
        self.cache = cache
        self.layer_cache = layer_cache
        self.progress = progress
        self.buildfile = buildfile
        self.context = context
        self.build_args = build_args
        self.no_cache = no_cache

    def run(self, tag: str | None) -> BuildResult:
        bf = self.buildfile
        meta_env: dict[str, str] = {}
        for ins in bf.meta_args:
            for key, value in ins.expanded(meta_env, filename=bf.filename).pairs:
                meta_env[key] = self.build_args.get(key, value or "")
        layers: list[Layer] = []
        config = ContainerConfig()
        history: list[History] = []
        args: dict[str, str] = {}
        steps: list[BuildStep] = []
        started = False
        for number, raw in enumerate(bf.instructions, start=1):
            if not started and raw.kind == "ARG":
                continue
            env = {**env_dict(config.env), **args}
            ins = raw.expanded(env, filename=bf.filename) if raw.kind not in ("RUN", "CMD", "ENTRYPOINT") else raw
            text = f"{ins.kind} {' '.join(ins.args)}"
            if ins.kind == "FROM":
                started = True
                source = raw.expanded(meta_env, filename=bf.filename).image
                if source == "scratch":
                    layers, config, history = [], ContainerConfig(), []
                else:
                    try:
                        base = self.engine._image(source)
                    except ImageNotFoundError:
                        raise bf.error(raw, f"pull access denied for {source}, repository does not exist") from None
                    layers = list(self.layer_cache.layers(base))
                    config, history = base.config.config, list(base.config.history)
                self._done(steps, BuildStep(number, text, False, None, 0))
                continue
            if ins.kind in ("COPY", "ADD", "RUN"):
                step = self._layer_step(number, ins, layers, config, env, text)
                self._done(steps, step)
                history.append(History(created=created_stamp(), created_by=self._created_by(ins)))
                continue
            config = self._metadata(ins, config, args)
            history.append(History(created=created_stamp(), created_by=self._created_by(ins), empty_layer=True))
            self._done(steps, BuildStep(number, text, False, None, 0))
        if not started:
            raise BuildfileError("no FROM instruction", filename=bf.filename)
        image_config = ImageConfig(
            architecture=host_platform().architecture, os="linux",
            rootfs=RootFS(diff_ids=tuple(layer.diff_id for layer in layers)),
            config=config, history=tuple(history), created=created_stamp(),
        )
        record = self.engine.store.add(layers, image_config, tags=[tag] if tag else [])
        return BuildResult(self.engine.image_info(record), tuple(steps))

    def _done(self, steps: list[BuildStep], step: BuildStep) -> None:
        steps.append(step)
        if self.progress is not None:
            self.progress(step)

    def _created_by(self, ins: Instruction) -> str:
        if ins.kind == "RUN":
            body = " ".join(ins.args) if ins.form == "shell" else shlex.join(ins.args)
            return f"RUN /bin/sh -c {body}" if ins.form == "shell" else f"RUN {body}"
        return f"{ins.kind} {' '.join(ins.args)}"

    def _metadata(self, ins: Instruction, config: ContainerConfig, args: dict[str, str]) -> ContainerConfig:
        kind = ins.kind
        if kind == "ENV":
            env = env_dict(config.env)
            for key, value in ins.pairs:
                env[key] = value or ""
            return replace(config, env=env_list(env))
        if kind == "ARG":
            for key, value in ins.pairs:
                args[key] = self.build_args.get(key, value or "")
            return config
        if kind == "WORKDIR":
            return replace(config, working_dir=_paths_join(config.working_dir or "/", ins.args[0]))
        if kind == "USER":
            return replace(config, user=ins.args[0])
        if kind == "LABEL":
            labels = dict(config.labels)
            labels.update({k: v or "" for k, v in ins.pairs})
            return replace(config, labels=labels)
        if kind in ("CMD", "ENTRYPOINT"):
            argv = ("/bin/sh", "-c", ins.args[0]) if ins.form == "shell" else tuple(ins.args)
            return replace(config, cmd=argv) if kind == "CMD" else replace(config, entrypoint=argv)
        if kind == "VOLUME":
            return replace(config, volumes=tuple(sorted({*config.volumes, *ins.args})))
        if kind == "EXPOSE":
            ports = [p if "/" in p else f"{p}/tcp" for p in ins.args]
            return replace(config, exposed_ports=tuple(sorted({*config.exposed_ports, *ports})))
        raise self.buildfile.error(ins, f"{kind} is not supported by this builder")

    def _content_key(self, ins: Instruction) -> str:
        if ins.kind == "RUN":
            return ""
        digest = hashlib.sha256()
        for src in ins.sources:
            for path in sorted(self._context_paths(ins, src)):
                st = path.lstat()
                digest.update(str(path.relative_to(self.context)).encode() + b"\0")
                digest.update(f"{st.st_mode:o}".encode())
                if path.is_file() and not path.is_symlink():
                    digest.update(path.read_bytes())
                elif path.is_symlink():
                    digest.update(os.readlink(path).encode())
        return digest.hexdigest()

    def _context_paths(self, ins: Instruction, src: str) -> list[Path]:
        base = (self.context / src.lstrip("/")).resolve()
        if base != self.context.resolve() and self.context.resolve() not in base.parents:
            raise self.buildfile.error(ins, f"forbidden path outside the build context: {src}")
        if not base.exists() and not base.is_symlink():
            raise self.buildfile.error(ins, f'failed to compute cache key: "{src}" not found')
        if base.is_dir():
            return [base, *base.rglob("*")]
        return [base]

    def _layer_step(self, number: int, ins: Instruction, layers: list[Layer], config: ContainerConfig,
                    env: dict[str, str], text: str) -> BuildStep:
        parent = chain_ids([layer.diff_id for layer in layers])[-1] if layers else "scratch"
        key = hashlib.sha256(
            "\0".join([parent, text, ins.form, repr(sorted(ins.flags.items())), self._content_key(ins),
                       config.working_dir, config.user, repr(sorted(env.items()))]).encode()  # ENV and ARG values
        ).hexdigest()
        cached = None if self.no_cache else self.cache.get(key)
        layer = self.layer_cache.by_diff_id(cached) if cached is not None else None
        if layer is not None:
            layers.append(layer)
            return BuildStep(number, text, True, cached, layer.size)
        mount = self.engine.union(layers)
        output = b""
        try:
            fake = Container(id="build-" + key[:12], name="build-" + key[:12], image=None,  # type: ignore[arg-type]
                             mounted=mount, volumes={}, binds={}, command=(), env=env_list({**env_dict(config.env), **env}),
                             workdir=config.working_dir or "/", user=config.user, hostname="buildkitsandbox")
            if ins.kind == "RUN":
                argv = ("/bin/sh", "-c", ins.args[0]) if ins.form == "shell" else tuple(ins.args)
                result = self.engine._run_in(fake, argv, stdin=None)
                output = result.stdout + result.stderr
                if result.exit_code != 0:
                    raise BuildError(
                        f"{self.buildfile.filename}:{ins.line}: process \"{self._created_by(ins)[4:]}\" did not "
                        f"complete successfully: exit code: {result.exit_code}\n{output.decode(errors='replace')}"
                    )
            else:
                self._copy(ins, mount, config)
            layer = snapshot(mount.upper)
        finally:
            mount.unmount()
        layers.append(layer)
        self.layer_cache.add(layer)
        self.cache.put(key, layer.diff_id)
        return BuildStep(number, text, False, layer.diff_id, layer.size, output.decode(errors="replace"))

    def _copy(self, ins: Instruction, fs: UnionMount, config: ContainerConfig) -> None:
        dest = ins.dest
        if not dest.startswith("/"):
            dest = _paths_join(config.working_dir or "/", dest)
        uid = gid = 0
        if ins.chown:
            user, _, group = ins.chown.partition(":")
            uid = int(user) if user.isdigit() else user_ids(user, fs)[0]
            gid = int(group) if group.isdigit() else (uid if not group else resolve_group(group, fs))
            self.engine.id_maps.require(uid, gid)  # a rootless engine without a range owns only uid 0
        sources = ins.sources
        many = len(sources) > 1 or dest.endswith("/")
        for src in sources:
            paths = self._context_paths(ins, src)
            base = paths[0]
            if ins.kind == "ADD" and base.is_file() and _is_tar(base):
                target = dest
                mkdir_p(fs, target)
                with open(base, "rb") as fh:
                    _apply_layer(fs, target, Layer.from_tar(fh))
                continue
            if base.is_dir():
                target_root = dest
                mkdir_p(fs, target_root)
                for path in paths[1:]:
                    rel = path.relative_to(base)
                    self._put(fs, path, _paths_join(target_root, str(rel)), uid, gid, ins.chmod)
            else:
                target = _paths_join(dest, base.name) if many or _is_dir(fs, dest) else dest
                mkdir_p(fs, "/" + _paths.parent_of(target.lstrip("/")))
                self._put(fs, base, target, uid, gid, ins.chmod)

    @staticmethod
    def _put(fs: UnionMount, source: Path, target: str, uid: int, gid: int, chmod: int | None) -> None:
        st = source.lstat()
        if source.is_symlink():
            try:
                fs.unlink(target)
            except FileNotFoundError:
                pass
            fs.symlink(os.readlink(source), target)
            return
        if source.is_dir():
            mkdir_p(fs, target)
            fs.chmod(target, chmod if chmod is not None else _stat.S_IMODE(st.st_mode))
            return
        fs.write_bytes(target, source.read_bytes())
        fs.chmod(target, chmod if chmod is not None else _stat.S_IMODE(st.st_mode))
        fs.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))
        if (uid, gid) != (0, 0):
            _chown(fs, target, uid, gid)


def _chown(fs: UnionMount, path: str, uid: int, gid: int) -> None:
    chown = getattr(fs, "chown", None)
    if chown is None:
        raise BuildError("--chown needs a file system with chown")
    chown(path, uid, gid)


def _is_dir(fs: FileSystem, path: str) -> bool:
    try:
        return _stat.S_ISDIR(fs.stat(path).st_mode)
    except OSError:
        return False


def _is_tar(path: Path) -> bool:
    head = path.read_bytes()[:512]
    return head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


def _paths_join(base: str, path: str) -> str:
    if path.startswith("/"):
        return path
    return base.rstrip("/") + "/" + path


def _apply_layer(fs: FileSystem, target: str, layer: Layer) -> None:
    """ADD of a local tar: unpack it (through the file system, so copy-ups happen) under ``target``."""
    for path, entry in layer.items():
        where = _paths_join(target, path)
        if isinstance(entry, Directory):
            mkdir_p(fs, where, entry.mode)
        elif isinstance(entry, RegularFile):
            fs.write_bytes(where, entry.data)
            fs.chmod(where, entry.mode)
            fs.utime(where, ns=(entry.mtime_ns, entry.mtime_ns))
        elif isinstance(entry, Symlink):
            fs.symlink(entry.target, where)
