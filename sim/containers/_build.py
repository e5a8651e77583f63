"""The build: a Buildfile's steps, in order, into image layers (``docker build``).

Each COPY, ADD or RUN step runs in a container over the layers so far, on the engine the build
was started on (:class:`BuildEngine`), and freezes what it changed as a new layer; the other
instructions only change the image's configuration.  A layer step is cached by its parent chain,
its instruction and the content it copies (:class:`BuildCache`).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shlex
import stat as _stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from sim.containers._container import Container, env_dict, env_list, mkdir_p, snapshot, user_ids
from sim.containers._copy_from import SourceTree, content_key, copy_into, owners
from sim.containers._images import LayerCache
from sim.containers._users import resolve_group
from sim.containers.userns import IdMaps
from sim.digest import chain_ids
from sim.errors import BuildError, DigestMismatchError, ImageNotFoundError, InvalidReferenceError, LayerFormatError
from sim.images._durable import atomic_write
from sim.images._faults import fault_point
from sim.images._stages import (
    Stage,
    StageRef,
    copy_from,
    find_target,
    needed_stages,
    resolve_base,
    resolve_copy_from,
    split_stages,
)
from sim.images.buildfile import Buildfile, Flags, Instruction, expand
from sim.images.oci import ContainerConfig, History, ImageConfig, RootFS, host_platform, rfc3339
from sim.images.store import BlobNotFoundError, ImageRecord, ImageStore
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
    so the next engine reuses it.

    Several engines may build at once on one state folder: each change re-reads the file and
    rewrites it under an exclusive ``flock`` of ``.<file>.lock``, atomically, so no engine's
    entries are lost and a reader never sees half a file.  An entry only names a layer: the layer
    itself is a blob of the image store, and an entry whose blob is gone is a miss."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.entries: dict[str, str] = {}
        self._reload()

    def _reload(self) -> None:
        """The file is the truth (another engine may have added or pruned entries): read it again."""
        if self.file is None:
            return
        try:
            found = json.loads(self.file.read_bytes())
        except (OSError, ValueError):
            found = {}  # none yet, or damaged: a damaged cache only costs a rebuild
        if not isinstance(found, dict):
            found = {}
        self.entries = {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}

    @contextmanager
    def _changing(self) -> Iterator[None]:
        if self.file is None:
            yield
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.file.with_name(f".{self.file.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # drops the lock

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def put(self, key: str, diff_id: str) -> None:
        with self._changing():
            self._reload()  # what other engines added meanwhile
            self.entries[key] = diff_id
            self._write()

    def remove(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (``builder prune``); other engines' entries stay."""
        gone = set(keys)
        with self._changing():
            self._reload()
            self.entries = {k: d for k, d in self.entries.items() if k not in gone}
            self._write()

    def _write(self) -> None:
        if self.file is not None:
            atomic_write(self.file, json.dumps(self.entries, sort_keys=True).encode(), fault="build-cache")


def created_stamp() -> str:
    """When an image or a history step is made: ``SOURCE_DATE_EPOCH`` if set, so builds are reproducible."""
    sde = source_date_epoch()
    return rfc3339(sde if sde is not None else int(time.time()))


@dataclass(frozen=True)
class _Built:
    """A finished stage: what a later stage starts from (FROM name) or copies from (COPY --from)."""

    label: str
    layers: tuple[Layer, ...]
    config: ContainerConfig
    history: tuple[History, ...]


class Builder:
    """One build: the needed stages in order, each step a container over the layers so far."""

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

    def run(self, tag: str | None, target: str | None = None) -> BuildResult:
        """Build the stage ``target`` names (the last stage when None) and every stage it needs;
        store it (tagged ``tag``) and return it with one :class:`BuildStep` per instruction.

        Every reference is resolved and every image looked up before the first step runs: an unknown
        ``--target``, a ``COPY --from`` naming a later stage and a missing base image are
        BuildfileErrors, a ``COPY --from`` image that is not here an ImageNotFoundError (a build
        never pulls).  The stages the target does not need are not run; their steps come back with
        ``skipped=True``.  Only the target stage's layers are in the image.
        """
        with self.engine.store.lease():  # step layers are stored before the image that keeps them
            return self._run(tag, target)

    def _run(self, tag: str | None, target: str | None) -> BuildResult:
        bf = self.buildfile
        meta_env: dict[str, str] = {}
        for ins in bf.meta_args:
            for key, value in ins.expanded(meta_env, filename=bf.filename).pairs:
                meta_env[key] = self.build_args.get(key, value or "")
        stages = split_stages(bf)
        goal = find_target(bf, stages, target)
        bases: dict[int, tuple[str, StageRef]] = {}
        sources: dict[tuple[int, int], tuple[str, StageRef]] = {}
        uses: dict[int, frozenset[int]] = {}
        for stage in stages:
            image = stage.from_ins.expanded(meta_env, filename=bf.filename).image
            bases[stage.index] = (image, resolve_base(stages, stage, image))
            for k, raw in enumerate(stage.instructions):
                value = copy_from(raw)
                if value is not None:
                    value = expand(value, meta_env, filename=bf.filename, line=raw.line)
                    sources[stage.index, k] = (value, resolve_copy_from(bf, stages, stage, raw, value))
            used = {ref.stage for key, (_, ref) in sources.items() if key[0] == stage.index}
            used.add(bases[stage.index][1].stage)
            uses[stage.index] = frozenset(i for i in used if i is not None)
        needed = needed_stages(goal, uses)
        images = self._images(stages, needed, bases, sources)
        steps: list[BuildStep] = []
        built: dict[int, _Built] = {}
        for stage in stages:
            if stage.index not in needed:
                for k, raw in enumerate(stage.instructions):
                    text = raw.raw or f"{raw.kind} {' '.join(raw.args)}"
                    self._done(steps, BuildStep(stage.first + k + 1, text, False, None, 0, skipped=True))
                continue
            built[stage.index] = self._stage(stage, bases[stage.index], sources, built, images, meta_env, steps)
        final = built[goal.index]
        image_config = ImageConfig(
            architecture=host_platform().architecture, os="linux",
            rootfs=RootFS(diff_ids=tuple(layer.diff_id for layer in final.layers)),
            config=final.config, history=final.history, created=created_stamp(),
        )
        record = self.engine.store.add(list(final.layers), image_config, tags=[tag] if tag else [])
        return BuildResult(self.engine.image_info(record), tuple(steps))

    def _images(self, stages: tuple[Stage, ...], needed: frozenset[int], bases: dict[int, tuple[str, StageRef]],
                sources: dict[tuple[int, int], tuple[str, StageRef]]) -> dict[str, ImageRecord]:
        """Every image the needed stages start from or copy from, looked up before any step runs."""
        bf = self.buildfile
        found: dict[str, ImageRecord] = {}
        for stage in stages:
            if stage.index not in needed:
                continue
            image, base = bases[stage.index]
            if base.stage is None and image != "scratch" and image not in found:
                try:
                    found[image] = self.engine._image(image)
                except ImageNotFoundError:
                    raise bf.error(stage.from_ins, f"pull access denied for {image}, repository does not exist") from None
            for k, raw in enumerate(stage.instructions):
                value, ref = sources.get((stage.index, k), ("", StageRef(0, None)))
                if ref.image is None or value in found:
                    continue
                try:
                    found[value] = self.engine._image(value)
                except ImageNotFoundError:
                    raise ImageNotFoundError(
                        f"{bf.filename}:{raw.line}: COPY --from={value}: no stage is named {value!r} and there is "
                        f"no image {value} here (a build does not pull: pull it first)"
                    ) from None
                except InvalidReferenceError as exc:
                    raise bf.error(raw, f"COPY --from={value}: neither a stage nor an image reference: {exc}") from None
        return found

    def _stage(self, stage: Stage, base: tuple[str, StageRef], sources: dict[tuple[int, int], tuple[str, StageRef]],
               built: dict[int, _Built], images: dict[str, ImageRecord], meta_env: dict[str, str],
               steps: list[BuildStep]) -> _Built:
        """Run one stage's steps, in order, from its base; ARGs and ENVs are this stage's own."""
        bf = self.buildfile
        image, ref = base
        layers: list[Layer]
        if ref.stage is not None:
            parent = built[ref.stage]
            layers, config, history = list(parent.layers), parent.config, list(parent.history)
        elif image == "scratch":
            layers, config, history = [], ContainerConfig(), []
        else:
            record = images[image]
            layers = list(self.layer_cache.layers(record))
            config, history = record.config.config, list(record.config.history)
        name = f" AS {stage.name}" if stage.name is not None else ""
        self._done(steps, BuildStep(stage.first + 1, f"FROM {image}{name}", False, None, 0))
        args: dict[str, str] = {}
        trees: dict[str, SourceTree] = {}
        for k, raw in enumerate(stage.instructions[1:], start=1):
            number = stage.first + k + 1
            env = {**env_dict(config.env), **args}
            ins = raw.expanded(env, filename=bf.filename) if raw.kind not in ("RUN", "CMD", "ENTRYPOINT") else raw
            text = f"{ins.kind} {' '.join(ins.args)}"
            tree = None
            if (stage.index, k) in sources:
                value, source = sources[stage.index, k]
                ins = replace(ins, flags=Flags({**ins.flags, "from": value}))
                text = f"COPY --from={value} {' '.join(ins.args)}"
                tree = trees.get(value)
                if tree is None:
                    if source.stage is not None:
                        tree = SourceTree(built[source.stage].layers, f"stage {built[source.stage].label}")
                    else:
                        tree = SourceTree(self.layer_cache.lower_view(images[value]), f"image {value}")
                    trees[value] = tree
            if ins.kind in ("COPY", "ADD", "RUN"):
                step = self._layer_step(number, ins, layers, config, env, text, tree)
                self._done(steps, step)
                history.append(History(created=created_stamp(), created_by=self._created_by(ins)))
                continue
            config = self._metadata(ins, config, args, meta_env)
            history.append(History(created=created_stamp(), created_by=self._created_by(ins), empty_layer=True))
            self._done(steps, BuildStep(number, text, False, None, 0))
        return _Built(stage.label, tuple(layers), config, tuple(history))

    def _done(self, steps: list[BuildStep], step: BuildStep) -> None:
        steps.append(step)
        if self.progress is not None:
            self.progress(step)

    def _created_by(self, ins: Instruction) -> str:
        if ins.kind == "RUN":
            body = " ".join(ins.args) if ins.form == "shell" else shlex.join(ins.args)
            return f"RUN /bin/sh -c {body}" if ins.form == "shell" else f"RUN {body}"
        if ins.kind == "COPY" and "from" in ins.flags:
            return f"COPY --from={ins.flags['from']} {' '.join(ins.args)}"
        return f"{ins.kind} {' '.join(ins.args)}"

    def _metadata(self, ins: Instruction, config: ContainerConfig, args: dict[str, str],
                  meta_env: dict[str, str]) -> ContainerConfig:
        kind = ins.kind
        if kind == "ENV":
            env = env_dict(config.env)
            for key, value in ins.pairs:
                env[key] = value or ""
            return replace(config, env=env_list(env))
        if kind == "ARG":
            for key, value in ins.pairs:  # --build-arg, else this ARG's default, else the global ARG's
                args[key] = self.build_args.get(key, value if value is not None else meta_env.get(key, ""))
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
                    env: dict[str, str], text: str, tree: SourceTree | None = None) -> BuildStep:
        parent = chain_ids([layer.diff_id for layer in layers])[-1] if layers else "scratch"
        if tree is not None:
            for src in ins.sources:
                if tree.lookup(src) is None:
                    raise self.buildfile.error(ins, f'failed to compute cache key: "{src}" not found in {tree.label}')
        content = content_key(tree, ins.sources) if tree is not None else self._content_key(ins)
        key = hashlib.sha256(
            "\0".join([parent, text, ins.form, repr(sorted(ins.flags.items())), content,
                       config.working_dir, config.user, repr(sorted(env.items()))]).encode()  # ENV and ARG values
        ).hexdigest()
        cached = None if self.no_cache else self.cache.get(key)
        layer = self._cached_layer(cached) if cached is not None else None
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
            elif tree is not None:
                self._copy_from(ins, mount, config, tree)
            else:
                self._copy(ins, mount, config)
            layer = snapshot(mount.upper)
            fault_point("build.step-ran", number)
        finally:
            mount.unmount()
        layers.append(layer)
        self.layer_cache.add(layer)
        # The layer is a blob before the cache names it: an engine killed before the next step
        # leaves a cache entry the next build can use (a blob first written, then named).
        self.engine.store.content.put(layer.tar_bytes(), digest=layer.diff_id)
        self.cache.put(key, layer.diff_id)
        fault_point("build.step-done", number)
        return BuildStep(number, text, False, layer.diff_id, layer.size, output.decode(errors="replace"))

    def _cached_layer(self, diff_id: str) -> Layer | None:
        """The layer a cache entry names: one an image keeps, else the step blob an earlier build
        stored (verified against its digest on read); None when neither is there (a miss)."""
        layer = self.layer_cache.by_diff_id(diff_id)
        if layer is not None:
            return layer
        content = self.engine.store.content
        if not content.has(diff_id):  # inside the build's lease: a blob found stays until the build ends
            return None
        try:
            layer = Layer.from_tar(io.BytesIO(content.get(diff_id)))
        except (BlobNotFoundError, DigestMismatchError, LayerFormatError):
            return None  # collected meanwhile, or damaged: run the step again
        if layer.diff_id != diff_id:
            return None
        self.layer_cache.add(layer)
        return layer

    def _owner(self, ins: Instruction, fs: UnionMount) -> tuple[int, int] | None:
        """``--chown`` as (uid, gid), names looked up in the step's own /etc/passwd and /etc/group."""
        if not ins.chown:
            return None
        user, _, group = ins.chown.partition(":")
        uid = int(user) if user.isdigit() else user_ids(user, fs)[0]
        gid = int(group) if group.isdigit() else (uid if not group else resolve_group(group, fs))
        self.engine.id_maps.require(uid, gid)  # a rootless engine without a range owns only uid 0
        return uid, gid

    def _copy_from(self, ins: Instruction, fs: UnionMount, config: ContainerConfig, tree: SourceTree) -> None:
        dest = ins.dest if ins.dest.startswith("/") else _paths_join(config.working_dir or "/", ins.dest)
        owner = self._owner(ins, fs)
        if owner is None:
            for uid, gid in sorted(owners(tree, ins.sources)):
                self.engine.id_maps.require(uid, gid)  # files keep their owners: the engine must map them
        copy_into(fs, tree, ins.sources, dest, owner=owner, chmod=ins.chmod,
                  where=f"{self.buildfile.filename}:{ins.line}")

    def _copy(self, ins: Instruction, fs: UnionMount, config: ContainerConfig) -> None:
        dest = ins.dest
        if not dest.startswith("/"):
            dest = _paths_join(config.working_dir or "/", dest)
        uid, gid = self._owner(ins, fs) or (0, 0)
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
