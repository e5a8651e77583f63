"""Chapter 3 of the tour: 容器 containers, 容器存储层 the container layer, 数据卷 volumes.

An image built in a scratch engine of the tour's backend, containers run from it: their writable
layers (and, on the kernel, the upper directories on disk), commit, rm, a volume, a bind mount.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sim.tour._common import Tour, scratch_engine, short_id, upper_dir_on_disk, write_context

if TYPE_CHECKING:
    from sim.containers.core import EngineCore

__all__ = ["chapter_containers", "HELLO_CONTEXT"]

#: A build context for chapter 3 (the same as examples/hello, minus its clean-up).
HELLO_CONTEXT: Mapping[str, str] = {
    "Buildfile": """\
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY hello.txt /app/
RUN echo "$GREETING world" > /app/out.txt
CMD ["cat", "/app/out.txt"]
""",
    "hello.txt": "from the build context\n",
}


def _upper_dir(engine: EngineCore, name: str) -> str | None:
    return upper_dir_on_disk(engine._container(name).mount)


def _on_disk(upper: str) -> list[str]:
    """The entries of a kernel upper directory, a whiteout (char 0/0) marked as such."""
    out = []
    for path in sorted(os.path.join(d, f) for d, dirs, files in os.walk(upper) for f in dirs + files):
        st = os.lstat(path)
        rel = os.path.relpath(path, upper)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            rel += " (whiteout, char 0/0)"
        elif stat.S_ISDIR(st.st_mode):
            rel += "/"
        out.append(rel)
    return out


def chapter_containers(t: Tour) -> None:
    with scratch_engine(t) as (engine, folder):
        context = write_context(folder / "hello", HELLO_CONTEXT)
        image = engine.build(context, tag="hello:1").image

        t.section("3.1", "容器的实质是进程", "a container is a process in its own namespaces")
        t.say("run = create (the image's layers + a new empty writable layer) + start (a process in it).")
        result = engine.run("hello:1", 'echo "I am PID $$"; cat /app/out.txt', remove=True)
        t.lines(result.output.splitlines())
        t.say("PID 1 in its own PID namespace, reading the image's files through the union.")

        t.section("3.2", "类与实例", "one image (class 类), three containers (instances 实例)")
        commands = {
            "alpha": "echo alpha was here > /app/out.txt; cat /app/out.txt",
            "beta": "printf '%4096s' x > /tmp/pad.txt && echo beta > /tmp/note && cat /app/out.txt",
            "gamma": "rm /app/hello.txt && ln -s out.txt /app/link && ls /app",
        }
        for name, command in commands.items():
            engine.create("hello:1", command, name=name)
        for name, command in commands.items():
            started = engine.start(name)  # in the foreground: its exit code and output
            assert started is not None
            t.say(f"{name}: {command}")
            t.lines([f"-> {line}" for line in started.output.splitlines()] + [f"-> exit {started.exit_code}"], 6)
        info = {c.name: c for c in engine.containers()}
        cells = [f"{name}: {info[name].upper_size:,} B" for name in commands]
        t.print("    " + "  ".join(f"[ {c:^16} ]" for c in cells) + "   <- instances, a writable layer each")
        t.print("    " + "  ".join(f"  {'|':^16}  " for _ in cells))
        span = len("  ".join(f"[ {c:^16} ]" for c in cells))
        label = f"hello:1: {len(image.diff_ids)} read-only layers, {image.size:,} B, shared"
        t.print("    [" + label.center(span - 2) + "]   <- the image, the class")
        t.say("Each container saw only its own change: beta still reads the image's out.txt.")

        t.section("3.3", "容器存储层", "docker diff: each container's writable layer")
        for name in commands:
            t.say(f"{name}: " + "  ".join(str(c) for c in engine.diff(name)) + f"   ({info[name].upper_size:,} B of files)")
            upper = _upper_dir(engine, name)
            if upper is not None:
                t.say(f"on disk: {upper} holds {', '.join(_on_disk(upper))}", 4)
        t.say(f"df: {engine.df().container_bytes:,} B in container layers; the image's layers are untouched.")

        t.section("3.4", "提交", "commit: a container layer becomes an image layer")
        committed = engine.commit("alpha", "hello:alpha")
        newest = engine.history("hello:alpha")[0]
        t.say(f"commit alpha hello:alpha -> {len(committed.diff_ids)} layers (hello:1 has {len(image.diff_ids)}); "
              f"the new top layer {short_id(newest.layer)} is alpha's")
        t.say(f"run hello:alpha -> {engine.run('hello:alpha', None, remove=True).output.strip()!r}")

        t.section("3.5", "删除容器", "rm: the container layer is lost with the container (随容器删除而丢失)")
        upper = _upper_dir(engine, "beta")
        before = engine.df().container_bytes
        freed = engine.remove("beta")
        after = engine.df().container_bytes
        t.say(f"rm beta -> {freed:,} B freed; container layers {before:,} B -> {after:,} B")
        if upper is not None:
            t.say(f"on disk: {upper} exists: {os.path.exists(upper)}", 4)
        fresh = engine.run("hello:1", "cat /tmp/note", remove=True)
        t.say(f"a new container: cat /tmp/note -> exit {fresh.exit_code}: {fresh.output.strip()}")

        t.section("3.6", "数据卷", "a volume keeps the data; its writes bypass the container layer")
        engine.create_volume("notes")
        engine.run("hello:1", "mkdir -p /data/logs && echo kept > /data/logs/note.txt && printf '%2048s' x > /data/blob",
                   name="writer", volumes={"/data": "notes"})
        changes = [str(c) for c in engine.diff("writer")]
        t.say(f"writer wrote under /data (volume notes): docker diff writer -> {changes}")
        upper_layer = engine._container("writer").mount.upper
        in_layer = [p for p in upper_layer.paths() if p == "data" or p.startswith("data/")]
        t.say(f"under /data the container layer holds {['/' + p for p in in_layer]} (the mount point only); "
              f"the volume holds {engine.volume_info('notes').size:,} B")
        upper = _upper_dir(engine, "writer")
        if upper is not None:
            t.say(f"on disk: {upper}/data holds {sorted(os.listdir(os.path.join(upper, 'data')))}", 4)
        t.say(f"rm writer -> {engine.remove('writer'):,} B freed; the volume keeps {engine.volume_info('notes').size:,} B")
        reader = engine.run("hello:1", "cat /data/logs/note.txt", name="reader", volumes={"/data": "notes"})
        t.say(f"reader, a new container on the same volume: cat /data/logs/note.txt -> {reader.output.strip()!r}")

        t.section("3.7", "绑定宿主目录", "a bind mount: the container writes into a host folder")
        host = folder / "host"
        host.mkdir()
        engine.run("hello:1", "echo from a container > /host/greeting.txt", name="binder", binds={"/host": str(host)})
        t.say(f"on the host: greeting.txt = {(host / 'greeting.txt').read_text().strip()!r}; "
              f"docker diff binder -> {[str(c) for c in engine.diff('binder')]}")
        t.say("Best practice (最佳实践): keep container layers stateless; write data to volumes or bind mounts.")
