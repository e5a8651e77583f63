"""Chapter 1 of the tour: 分层存储 layered storage.

Three demo layers stacked in a union on the tour's backend: the merged view, what a delete costs,
copy-up, whiteouts, opaque directories, the EXDEV rename and redirect_dir.  Where only one backend
can show something (the model's event trace, the kernel's char 0/0 device on disk) the chapter
says so instead of pretending.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence

from sim.digest import chain_ids
from sim.errors import LayerFormatError, MountError
from sim.interface import FileSystem, UnionMount
from sim.layers.layer import Directory, Layer, RegularFile, Symlink, Whiteout
from sim.tour._common import Tour, upper_dir_on_disk

__all__ = ["chapter_layers", "build_demo_layers", "walk", "rm_rf", "tar_listing", "describe_entry", "overlay_xattr"]


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
