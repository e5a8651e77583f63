"""The guided tour ``layerlab tour`` prints, chapter by chapter.

Each chapter is a function taking a :class:`Tour` (the engine, the output
stream and a few printing helpers) and printing what happens, step by step,
on whichever backend the tour was started with.  Chapters follow the seed
document ("Docker 基础概念"): append new ones to :data:`CHAPTERS`.

Everything here goes through the public engine interface (chapter 3 also
reads a container's mount, to show its writable layer), so the same steps
run on the model and on the kernel; where only one backend can show
something (the model's event trace, the kernel's char 0/0 device on disk)
the chapter says so instead of pretending.  Chapters 2 and 3 build images
and create volumes in a scratch engine of the same backend
(:func:`scratch_engine`), never in the state folder ``layerlab`` uses.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sim.digest import chain_ids
from sim.errors import LayerFormatError, MountError
from sim.interface import Engine, FileSystem, UnionMount
from sim.layers.layer import Directory, Layer, RegularFile, Symlink, Whiteout
from sim.tour._vms import chapter_vms

if TYPE_CHECKING:
    from sim.containers.core import EngineCore
    from sim.results import BuildResult

__all__ = ["Chapter", "Tour", "CHAPTERS", "run_tour", "build_demo_layers", "tar_listing", "walk", "rm_rf",
           "upper_dir_on_disk", "overlay_xattr", "scratch_engine", "write_context", "build_steps"]

RULE = "=" * 72


@dataclass
class Tour:
    """What a chapter gets: the engine, where to print, and printing helpers."""

    engine: Engine
    backend: str
    out: TextIO

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def chapter(self, number: int, zh: str, en: str) -> None:
        self.print()
        self.print(RULE)
        self.print(f"第 {number} 章  {zh}  ·  Chapter {number}: {en}")
        self.print(RULE)

    def section(self, number: str, zh: str, en: str) -> None:
        self.print()
        self.print(f"--- {number} {zh} / {en} ---")

    def say(self, text: str, indent: int = 2) -> None:
        for line in text.splitlines() or [""]:
            self.print(" " * indent + line)

    def lines(self, lines: Sequence[str], indent: int = 4) -> None:
        for line in lines:
            self.print(" " * indent + line)


@dataclass(frozen=True)
class Chapter:
    zh: str
    en: str
    run: Callable[[Tour], None]


# -- helpers shared by the chapters (and by the notebooks) ---------------------------

def build_demo_layers() -> tuple[Layer, Layer, Layer]:
    """Three image layers, bottom first: a base system, an app, a clean-up.

    * layer 0 (base 基础层): ``/etc/os-release``, ``/bin/sh``, ``/bin/ls``,
      ``/var/log/boot.log``;
    * layer 1 (app 应用层): ``/app/server.py``, ``/app/static/{old.css,old.js}``
      and a downloaded ``/tmp/src.tar.gz`` the build no longer needs;
    * layer 2 (clean-up 清理层): deletes ``/tmp/src.tar.gz`` (a whiteout) and
      replaces ``/app/static`` by an opaque directory holding ``new.css``.
    """
    base = Layer()
    base.add_dir("bin")
    base.add_file("bin/sh", b"\x7fELF" + b"\0" * 2044, mode=0o755)  # a shell-sized stand-in
    base.add_file("bin/ls", b"\x7fELF" + b"\1" * 1020, mode=0o755)
    base.add_dir("etc")
    base.add_file("etc/os-release", b'NAME="Layerlab Linux"\nVERSION_ID=1.0\n')
    base.add_dir("tmp", mode=0o1777)
    base.add_dir("var")
    base.add_dir("var/log")
    base.add_file("var/log/boot.log", b"booted\n")
    base.freeze()

    app = Layer()
    app.add_dir("app")
    app.add_file("app/server.py", b"print('hello from the app')\n", mode=0o755)
    app.add_dir("app/static")
    app.add_file("app/static/old.css", b"body { color: red }\n")
    app.add_file("app/static/old.js", b"alert('old')\n")
    app.add_dir("tmp", mode=0o1777)  # parents are stored with their real metadata, as docker diff does
    app.add_file("tmp/src.tar.gz", b"\x1f\x8b" + bytes(range(256)) * 32)  # 8 KiB of "sources"
    app.freeze()

    cleanup = Layer()
    cleanup.add_dir("tmp", mode=0o1777)
    cleanup.add_whiteout("tmp/src.tar.gz")
    cleanup.add_dir("app")
    cleanup.add_dir("app/static", opaque=True)
    cleanup.add_file("app/static/new.css", b"body { color: green }\n")
    cleanup.freeze()
    return base, app, cleanup


def walk(fs: FileSystem, path: str = "/") -> Iterator[tuple[str, os.stat_result]]:
    """Every object below ``path`` (not ``path`` itself), parents first, names sorted."""
    for name in sorted(fs.listdir(path)):
        child = path.rstrip("/") + "/" + name
        st = fs.lstat(child)
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(fs, child)


def rm_rf(fs: FileSystem, path: str) -> None:
    """``rm -rf path`` with the os-shaped calls."""
    st = fs.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        for name in fs.listdir(path):
            rm_rf(fs, path.rstrip("/") + "/" + name)
        fs.rmdir(path)
    else:
        fs.unlink(path)


def tar_listing(layer: Layer) -> list[str]:
    """``tar tvf`` of a layer's OCI tar, whiteouts and opaque markers annotated."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(layer.tar_bytes()), mode="r:") as tar:
        for info in tar:
            kind = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h"}.get(info.type, "-")
            name = info.name + ("/" if info.isdir() and not info.name.endswith("/") else "")
            if info.issym():
                name += f" -> {info.linkname}"
            elif info.islnk():
                name += f" link to {info.linkname}"
            base = os.path.basename(info.name.rstrip("/"))
            if base == ".wh..wh..opq":
                name += "    <- opaque marker 不透明标记"
            elif base.startswith(".wh."):
                name += f"    <- whiteout 白障 (deletes {base[4:]})"
            out.append(f"{kind}{stat.filemode(info.mode)[1:]} {info.uid}/{info.gid} {info.size:>7} {name}")
    return out


def describe_entry(path: str, entry: object) -> str:
    """One line for a layer entry: ``+`` added, ``-`` whiteout, ``#`` opaque directory."""
    if isinstance(entry, Whiteout):
        return f"- /{path}    whiteout 白障: deleted here, still stored below"
    if isinstance(entry, Directory):
        flags = []
        if entry.opaque:
            flags.append("opaque 不透明: hides everything below")
        if entry.redirect:
            flags.append(f"redirect -> {entry.redirect}")
        mark = "#" if entry.opaque else ("~" if entry.redirect else "+")
        return f"{mark} /{path}/" + (f"    {'; '.join(flags)}" if flags else "")
    if isinstance(entry, Symlink):
        return f"+ /{path} -> {entry.target}"
    if isinstance(entry, RegularFile):
        return f"+ /{path}    {entry.size} B"
    return f"? /{path}"


def upper_dir_on_disk(mount: UnionMount) -> str | None:
    """The kernel mount's upper directory on the host, or ``None`` for the model."""
    upper = getattr(mount, "upper_dir", None)
    return upper if isinstance(upper, str) else None


def overlay_xattr(path: str, name: str) -> tuple[str, bytes] | None:
    """``(xattr name, value)`` of an overlay marker on disk: ``trusted.overlay.<name>`` as root,
    ``user.overlay.<name>`` for a rootless (``userxattr``) mount; ``None`` when absent."""
    for prefix in ("trusted.overlay.", "user.overlay."):
        try:
            return prefix + name, os.getxattr(path, prefix + name, follow_symlinks=False)
        except OSError:
            continue
    return None


def _origin(mount: UnionMount, layers: Sequence[Layer], path: str) -> str:
    origin = getattr(mount, "origin", None)
    if origin is not None:
        return str(origin(path))
    rel = path.lstrip("/")
    for i in reversed(range(len(layers))):  # the kernel does not say; the topmost layer holding it does
        entry = layers[i].get(rel)
        if entry is not None and not isinstance(entry, Whiteout):
            return f"layer {i}"
    return "upper"


def _merged_view(t: Tour, mount: UnionMount, layers: Sequence[Layer]) -> None:
    for path, st in walk(mount):
        is_dir = stat.S_ISDIR(st.st_mode)
        size = "" if is_dir else f"{st.st_size} B"
        name = path + ("/" if is_dir else "")
        t.print(f"    {stat.filemode(st.st_mode)} {name:<24} {size:>8}   from {_origin(mount, layers, path)}")


def _show_upper(t: Tour, mount: UnionMount) -> None:
    upper = mount.upper
    if len(upper) == 0:
        t.say("(the container layer is empty)", 4)
    for path, entry in upper.items():
        t.say(describe_entry(path, entry), 4)


def _explain_oserror(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"OSError {name} ({os.strerror(exc.errno or 0)})"


# -- chapter 1: 分层存储 layered storage ---------------------------------------------

def chapter_layers(t: Tour) -> None:
    layers = build_demo_layers()
    base, app, cleanup = layers
    names = ["base 基础层", "app 应用层", "clean-up 清理层"]

    t.section("1.1", "镜像由层组成", "an image is a stack of layers (bottom first, 自底向上)")
    t.say("Each layer is a changeset: files added, files deleted (whiteouts), directories made opaque.\n"
          "A layer never changes once built (只读层 read-only); the next layer only records differences.")
    for i, layer in enumerate(layers):
        t.print(f"  layer {i}: {names[i]}")
        t.lines([describe_entry(p, e) for p, e in layer.items()], 6)

    t.section("1.2", "联合挂载后的视图", "the merged view (Union FS 联合文件系统)")
    t.say("Mounted together, the layers look like one root file system (根文件系统):\n"
          "upper layers win, whiteouts hide, an opaque directory hides everything below it.")
    with t.engine.union(layers) as mount:
        _merged_view(t, mount, layers)
        visible = sum(st.st_size for _, st in walk(mount) if stat.S_ISREG(st.st_mode))
        t.say(f"/tmp is {sorted(mount.listdir('/tmp'))}: src.tar.gz is gone (whiteout in layer 2).")
        t.say(f"/app/static is {sorted(mount.listdir('/app/static'))}: old.css and old.js are hidden "
              "(opaque directory in layer 2).")

    t.section("1.3", "删除的文件依然占用空间", "a deleted file still costs bytes (层大小 layer size, DiffID, ChainID)")
    t.say("Deleting in a later layer only marks the file as deleted (标记为已删除); the earlier layer\n"
          "keeps it and the image carries it forever. Layer sizes count file bytes; the DiffID is the\n"
          "sha256 of the layer's uncompressed tar; the ChainID names the stack up to that layer.")
    diff_ids = [layer.diff_id for layer in layers]
    chains = chain_ids(diff_ids)
    for i, layer in enumerate(layers):
        t.print(f"    layer {i}  size {layer.size:>6} B   DiffID {diff_ids[i].short}   ChainID {chains[i].short}"
                f"   {names[i]}")
    total = sum(layer.size for layer in layers)
    hidden = app["tmp/src.tar.gz"]
    assert isinstance(hidden, RegularFile)
    t.say(f"image size {total} B, visible in the merged view {visible} B: /tmp/src.tar.gz still costs "
          f"{hidden.size} B in layer 1.")
    t.say("The clean-up layer's tar holds only markers (这就是删除 this is all a delete is):")
    t.lines(tar_listing(cleanup), 4)
    t.say(f"Reuse 复用: another image built on the same base shares ChainID {chains[0].short} and stores\n"
          "layer 0 once; customise 定制 by adding layers on top.")

    t.section("1.4", "容器存储层：写时复制", "the container layer: copy-up (写时复制 copy-on-write)")
    t.say("A container adds one writable layer (容器存储层) on top. Opening a lower file for writing\n"
          "copies it up first: O_RDWR copies it even if nothing is ever written.")
    with t.engine.union(layers) as box:
        fd = box.open("/etc/os-release", os.O_RDWR)
        box.close(fd)
        t.say("open('/etc/os-release', O_RDWR); close()  ->  the container layer now holds:")
        _show_upper(t, box)
        box.write_bytes("/etc/os-release", b'NAME="Layerlab Linux"\nVERSION_ID=1.1\n')
        base_copy = base["etc/os-release"]
        assert isinstance(base_copy, RegularFile)
        t.say(f"after a write the container reads {box.read_bytes('/etc/os-release').splitlines()[-1]!r};\n"
              f"layer 0 still holds {base_copy.data.splitlines()[-1]!r} (read-only).")

        t.section("1.5", "白障", "a whiteout (deleting a lower file)")
        box.unlink("/bin/ls")
        t.say(f"unlink('/bin/ls')  ->  /bin is now {sorted(box.listdir('/bin'))}; the container layer holds:")
        _show_upper(t, box)
        upper_dir = upper_dir_on_disk(box)
        if upper_dir is not None:
            st = os.lstat(os.path.join(upper_dir, "bin/ls"))
            t.say(f"on disk {upper_dir}/bin/ls is a character device {os.major(st.st_rdev)}/{os.minor(st.st_rdev)} "
                  f"(S_ISCHR={stat.S_ISCHR(st.st_mode)}): that is the kernel's whiteout.")
        else:
            t.say("on disk (overlay form) this whiteout is a character device 0/0; in a tar, a file '.wh.ls'.")
        ls = base["bin/ls"]
        assert isinstance(ls, RegularFile)
        t.say(f"layer 0 still stores bin/ls ({ls.size} B).")

        t.section("1.6", "不透明目录", "an opaque directory (rm -rf, then mkdir again)")
        rm_rf(box, "/var/log")
        box.mkdir("/var/log")
        box.write_bytes("/var/log/new.log", b"fresh\n")
        t.say(f"rm -rf /var/log; mkdir /var/log; echo fresh > /var/log/new.log  ->  /var/log is "
              f"{sorted(box.listdir('/var/log'))}")
        t.say("boot.log does not come back: the new directory is opaque. The container layer holds:")
        _show_upper(t, box)
        if upper_dir is not None:
            found = overlay_xattr(os.path.join(upper_dir, "var/log"), "opaque")
            t.say(f"on disk var/log carries the xattr {found[0]} = {found[1]!r}." if found else
                  "on disk var/log carries no opaque xattr (unexpected).")

        t.section("1.7", "重命名下层目录", "renaming a lower directory: EXDEV")
        try:
            box.rename("/app", "/srv")
        except OSError as exc:
            t.say(f"rename('/app', '/srv')  ->  {_explain_oserror(exc)}")
            t.say("Without redirect_dir the union cannot move a directory whose contents live below;\n"
                  "tools such as mv then fall back to copying the whole tree.")
        else:
            t.say("rename('/app', '/srv') succeeded (unexpected without redirect_dir)")

        t.section("1.8", "事件记录", "the event trace (what the union did)")
        if box.events:
            t.lines([str(event) for event in box.events])
        else:
            t.say("The kernel keeps no trace of its copy-ups; the container layer above is the evidence.\n"
                  "Run `layerlab tour --backend sim` to see the model's step-by-step trace.")

        t.section("1.9", "容器层的 tar", "the container layer as a tar (what `docker commit` would store)")
        t.lines(tar_listing(box.upper))

    t.section("1.10", "重定向目录", "redirect_dir=True: the rename works")
    try:
        with t.engine.union(layers, redirect_dir=True) as moved:
            moved.rename("/app", "/srv")
            t.say(f"rename('/app', '/srv')  ->  ok; /srv is {sorted(moved.listdir('/srv'))}, "
                  f"'/app' exists: {moved.exists('/app')}")
            t.say("The container layer holds an empty directory that redirects to the lower one:")
            _show_upper(t, moved)
            upper_dir = upper_dir_on_disk(moved)
            if upper_dir is not None:
                found = overlay_xattr(os.path.join(upper_dir, "srv"), "redirect")
                t.say(f"on disk srv carries the xattr {found[0]} = {found[1]!r}." if found else
                      "on disk srv carries no redirect xattr (unexpected).")
            if moved.events:
                t.say("events:")
                t.lines([str(event) for event in moved.events])
            try:
                moved.upper.tar_bytes()
            except LayerFormatError:
                t.say("An OCI tar cannot express a redirect (LayerFormatError): Docker then diffs the merged\n"
                      "tree against the lower layers instead (the naive differ).")
    except MountError as exc:
        t.say(f"the kernel refused redirect_dir=on here: {exc}")


# -- helpers for the chapters that build images and run containers -------------------

#: A build context for chapter 2: a little web site (the notebooks use examples/webapp).
SITE_CONTEXT: Mapping[str, str] = {
    "Buildfile": """\
# the layerlab tour, chapter 2: a little web site
FROM busybox
LABEL org.opencontainers.image.title="site"
COPY site/ /var/www/
COPY conf/httpd.conf /etc/httpd.conf
RUN mkdir -p /var/cache/site && printf '%4096s' x > /var/cache/site/build.tmp
RUN rm /var/cache/site/build.tmp && echo built > /var/www/VERSION
USER nobody
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
""",
    "Buildfile.api": """\
# a second image on the same base: the same site and configuration, then its own last step
FROM busybox
COPY site/ /var/www/
COPY conf/httpd.conf /etc/httpd.conf
RUN echo '{"status": "ok"}' > /var/www/health.json
CMD ["httpd", "-f", "-p", "9090", "-h", "/var/www"]
""",
    "site/index.html": "<h1>hello from layerlab</h1>\n",
    "site/style.css": "h1 { color: teal }\n",
    "conf/httpd.conf": "port=8080\n",
}

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

#: The timestamp the image chapters build with, unless ``SOURCE_DATE_EPOCH`` is already set.
TOUR_EPOCH = "1700000000"


@contextlib.contextmanager
def scratch_engine(t: Tour) -> Iterator[tuple[EngineCore, Path]]:
    """A fresh engine of the tour's backend and a temporary folder, both gone afterwards.

    The image chapters build images and create volumes; they must not leave them in the
    state folder of the user's ``layerlab`` commands.  The real engine keeps its state in
    the temporary folder; the model keeps it in memory.  ``SOURCE_DATE_EPOCH`` is set
    (unless it already is) so the builds are reproducible: the same IDs on both backends.
    """
    folder = Path(tempfile.mkdtemp(prefix="layerlab-tour-"))
    saved = os.environ.get("SOURCE_DATE_EPOCH")
    if not saved:
        os.environ["SOURCE_DATE_EPOCH"] = TOUR_EPOCH
    cls: Any = type(t.engine)
    options: dict[str, Any] = {}
    if getattr(t.engine, "state_dir", None) is not None:  # the real engine always has one
        options["state_dir"] = str(folder / "state")
    if hasattr(t.engine, "rootless"):
        options["rootless"] = t.engine.rootless
    engine: EngineCore = cls(**options)
    try:
        yield engine, folder
    finally:
        try:
            engine.close()
        finally:
            if saved is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)
            else:
                os.environ["SOURCE_DATE_EPOCH"] = saved
            shutil.rmtree(folder, ignore_errors=True)


def write_context(folder: Path, files: Mapping[str, str]) -> Path:
    """Write a build context (relative path -> text) into ``folder``; returns it."""
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def _short(text: str, width: int = 56) -> str:
    text = text.replace("/bin/sh -c ", "")  # history says "RUN /bin/sh -c ..."; the Buildfile said "RUN ..."
    return text if len(text) <= width else text[: width - 3] + "..."


def _id(digest: str | None) -> str:
    return digest[7:19] if digest else "-"


def build_steps(result: BuildResult) -> list[str]:
    """One line per build step, as ``docker build`` prints them ("CACHED" when reused)."""
    out = []
    for step in result.steps:
        if step.layer is None:
            what = "base image" if step.instruction.startswith("FROM") else "config only (no layer)"
        else:
            what = f"layer {_id(step.layer)}, {step.size:,} B of files"
        out.append(f"#{step.number:<3}{'CACHED ' if step.cached else '':<7}{_short(step.instruction, 50):<52}{what}")
    return out


def _layer_entries(engine: EngineCore, ref: str) -> list[Any]:
    """The image's history entries that made a layer, oldest first."""
    return [h for h in reversed(engine.history(ref)) if not h.empty_layer]


def _saved_config(engine: EngineCore, ref: str) -> bytes:
    """The image's config bytes, read back from ``docker save``'s archive."""
    buf = io.BytesIO()
    engine.save([ref], buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as archive:
        manifest_file = archive.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)[0]
        config_file = archive.extractfile(manifest["Config"])
        assert config_file is not None
        return config_file.read()


# -- chapter 2: 镜像 images ---------------------------------------------------------------

def chapter_images(t: Tour) -> None:
    with scratch_engine(t) as (engine, folder):
        context = write_context(folder / "site", SITE_CONTEXT)

        t.section("2.1", "逐层构建", "building an image layer by layer (a Buildfile, the Dockerfile syntax)")
        t.say("Each COPY, ADD or RUN runs on top of the layers so far and freezes what it changed as a new\n"
              "layer (层); the other instructions only change the image's configuration. The Buildfile:")
        t.lines([line for line in SITE_CONTEXT["Buildfile"].splitlines() if line], 6)
        first = engine.build(context, tag="site:1")
        t.lines(build_steps(first))
        t.say(f"=> site:1, ImageID {_id(first.image.id)}, {len(first.image.diff_ids)} layers")

        t.section("2.2", "构建缓存", "the build cache: a rebuild reuses every layer (CACHED)")
        again = engine.build(context, tag="site:1")
        t.lines(build_steps(again))
        layer_steps = [s for s in again.steps if s.layer is not None]
        all_cached = all(s.cached for s in layer_steps)
        t.say(f"{len(layer_steps)} layer steps, {'all' if all_cached else 'not all'} CACHED; "
              f"same ImageID: {again.image.id == first.image.id}")

        t.section("2.3", "层栈", "the layer stack, bottom first (自底向上), with sizes")
        entries = _layer_entries(engine, "site:1")
        width = 62
        t.print("    +" + "-" * (width + 2) + "+")
        for i in reversed(range(len(entries))):
            h = entries[i]
            text = f"layer {i}: {_short(h.created_by, 40)}"
            size = f"{h.size:,} B"
            t.print(f"    | {text:<{width - len(size)}}{size} |")
        t.print("    +" + "-" * (width + 2) + "+")
        info = engine.inspect_image("site:1")
        t.say(f"image size {info.size:,} B; each layer is named by its DiffID (sha256 of its tar).")
        made = next(s for s in first.steps if "build.tmp" in s.instruction and s.layer is not None)
        t.say(f"Step #{made.number} wrote {made.size:,} B of files into /var/cache/site/build.tmp; the next RUN deletes\n"
              "it, which only adds a whiteout on top: the bytes stay in the layer below (标记为已删除).")

        t.section("2.4", "镜像历史", "docker history: newest first; empty_layer = a configuration step")
        t.print(f"    {'LAYER':<14}{'CREATED BY':<58}{'SIZE':>11}  EMPTY_LAYER")
        for h in engine.history("site:1"):
            t.print(f"    {_id(h.layer):<14}{_short(h.created_by, 56):<58}{h.size:>9,} B  {h.empty_layer}")

        t.section("2.5", "复用与定制", "a second image on the same base shares layers (reuse, then customise)")
        t.lines([line for line in SITE_CONTEXT["Buildfile.api"].splitlines() if line], 6)
        second = engine.build(context, buildfile="Buildfile.api", tag="api:1")
        t.lines(build_steps(second))
        both = set(first.image.diff_ids) & set(second.image.diff_ids)
        for i, (d, c) in enumerate(zip(second.image.diff_ids, second.image.chain_ids)):
            mark = "shared with site:1, stored once" if d in both else "only in api:1"
            t.print(f"    layer {i}: DiffID {_id(d)}  ChainID {_id(c)}  {mark}")

        t.section("2.6", "磁盘占用", "df: shared versus unique bytes (docker system df -v)")
        usage = engine.df()
        images = engine.images()
        t.print(f"    {'IMAGE':<18}{'SIZE':>12}{'SHARED':>12}{'UNIQUE':>10}")
        for image in sorted(images, key=lambda i: i.tags[0] if i.tags else i.id):
            name = image.tags[0] if image.tags else image.id[:19]
            shared, unique = usage.per_image[name]
            t.print(f"    {name:<18}{image.size:>12,}{shared:>12,}{unique:>10,}")
        naive = sum(image.size for image in images)
        t.say(f"{usage.images} images, {usage.layers} layers stored: {usage.shared_bytes:,} B shared, "
              f"{usage.unique_bytes:,} B unique.\nThe images add up to {naive:,} B; each layer stored once, they take "
              f"{usage.shared_bytes + usage.unique_bytes:,} B.")

        t.section("2.7", "镜像 ID", "ImageID = sha256(config bytes); a tag is only a name")
        config_bytes = _saved_config(engine, "site:1")
        config = json.loads(config_bytes)
        computed = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        t.say(f"docker save -> the config blob, {len(config_bytes)} B of JSON: rootfs.diff_ids "
              f"({len(config['rootfs']['diff_ids'])} layers), history ({len(config['history'])} steps), env, cmd, user.")
        t.say(f"sha256(config) = {computed[:19]}...\nImageID        = {first.image.id[:19]}...   "
              f"equal: {computed == first.image.id}")
        tagged = engine.tag("site:1", "site:latest")
        t.say(f"tag site:1 site:latest -> ImageID {_id(tagged.id)}: a new name, the same image "
              f"({tagged.id == first.image.id}).")


# -- chapter 3: 容器 containers, 容器存储层 the container layer, 数据卷 volumes ------------------

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
              f"the new top layer {_id(newest.layer)} is alpha's")
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


#: The chapters, in the seed document's order.  Later chapters (the registry) are appended here.
CHAPTERS: list[Chapter] = [
    Chapter("分层存储", "Layered storage", chapter_layers),
    Chapter("镜像", "Images", chapter_images),
    Chapter("容器", "Containers, the container layer and volumes", chapter_containers),
    Chapter("容器和虚拟机", "Containers and virtual machines", chapter_vms),
]


def run_tour(engine: Engine, backend: str, out: TextIO, chapters: Sequence[int] | None = None) -> None:
    """Print the chapters numbered in ``chapters`` (1-based; all when ``None``)."""
    tour = Tour(engine, backend, out)
    tour.print(f"layerlab tour -- backend {backend!r} ({engine!r})")
    tour.print("学习 Docker 的实际工作原理 / how Docker really works, step by step")
    for number, chapter in enumerate(CHAPTERS, start=1):
        if chapters is not None and number not in chapters:
            continue
        tour.chapter(number, chapter.zh, chapter.en)
        chapter.run(tour)
    tour.print()
