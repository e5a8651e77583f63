# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 第 1 章 镜像与分层存储 / Chapter 1: Images and layered storage
#
# This notebook follows the seed document's section **镜像 —— `Image`**: what an image is (a root file
# system, 根文件系统, made with **Union FS 联合文件系统**) and its main feature, **分层存储
# (layered storage)**.
#
# Everything below runs on one of two engines behind the same interface:
#
# * `BACKEND = "sim"`: layerlab's pure-Python model. It runs anywhere and records every step it takes
#   (copy-ups, whiteouts, opaque directories) so we can draw them.
# * `BACKEND = "real"`: a real Linux kernel overlayfs mount (needs Linux and root, or unprivileged user
#   namespaces). The same calls, answered by the kernel; we then look at the files it wrote on disk.
#
# Run the notebook once with each and compare. The environment variable `LAYERLAB_BACKEND`, when set,
# overrides the cell below (that is how the tests run it with both backends).

# %%
import os

BACKEND = "sim"  # "sim" (the model) or "real" (kernel overlayfs)
BACKEND = os.environ.get("LAYERLAB_BACKEND") or BACKEND
print("backend:", BACKEND)

# %%
import io
import stat
import tarfile

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import sim
from sim import Directory, Layer, RegularFile, Symlink, Whiteout
from sim.figures import show

engine = sim.connect(BACKEND)
engine

# %% [markdown]
# ## 1.1 简述 / What an image is
#
# > 对于 Linux 而言，内核启动之后，会挂载 root 文件系统来提供空间支持。Docker 镜像就属于特殊的文件系统，相当于一个
# > root 文件系统。
#
# After the Linux kernel boots it mounts a **root file system (root 文件系统)**. A Docker **image (镜像)** is a
# special file system that plays that role for a container.
#
# > Docker 在设计时，使用 `Union FS` 的技术，将其设计为分层存储的架构。
#
# The image is not one disk image but a **stack of layers (层)** joined by a **union file system (联合文件系统)**:
# on Linux, overlayfs. Each layer is a *changeset* (变更集): files added or changed, files deleted, directories
# replaced. Layers are listed **bottom first (自底向上)**, as in an OCI manifest: `layers[0]` is the base.
#
# We build three layers by hand, the way three build steps would:
#
# | layer | role | what it does |
# |---|---|---|
# | 0 | base 基础层 | a tiny system: `/bin/sh`, `/bin/ls`, `/etc/os-release`, `/var/log/boot.log` |
# | 1 | app 应用层 | adds `/app` and downloads `/tmp/src.tar.gz` to build it |
# | 2 | clean-up 清理层 | deletes `/tmp/src.tar.gz` and replaces `/app/static` wholesale |

# %%
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
base.freeze()  # a built layer never changes again (只读 read-only)

app = Layer()
app.add_dir("app")
app.add_file("app/server.py", b"print('hello from the app')\n", mode=0o755)
app.add_dir("app/static")
app.add_file("app/static/old.css", b"body { color: red }\n")
app.add_file("app/static/old.js", b"alert('old')\n")
app.add_dir("tmp", mode=0o1777)
app.add_file("tmp/src.tar.gz", b"\x1f\x8b" + bytes(range(256)) * 32)  # 8 KiB of sources
app.freeze()

cleanup = Layer()
cleanup.add_dir("tmp", mode=0o1777)
cleanup.add_whiteout("tmp/src.tar.gz")           # rm /tmp/src.tar.gz
cleanup.add_dir("app")
cleanup.add_dir("app/static", opaque=True)       # rm -rf /app/static && mkdir /app/static
cleanup.add_file("app/static/new.css", b"body { color: green }\n")
cleanup.freeze()

layers = [base, app, cleanup]  # bottom first
names = ["base", "app", "clean-up"]


def describe(path, entry):
    if isinstance(entry, Whiteout):
        return f"- /{path}   whiteout 白障"
    if isinstance(entry, Directory):
        marks = (" opaque 不透明" if entry.opaque else "") + (f" redirect -> {entry.redirect}" if entry.redirect else "")
        return f"{'#' if entry.opaque else '+'} /{path}/{marks}"
    if isinstance(entry, Symlink):
        return f"+ /{path} -> {entry.target}"
    return f"+ /{path}   {entry.size} B"


for i, layer in enumerate(layers):
    print(f"layer {i} ({names[i]}), {layer.size} bytes of files")
    for path, entry in layer.items():
        print("    " + describe(path, entry))

# %% [markdown]
# ## 1.2 联合挂载 / The union mount: one merged view
#
# Mounting the layers together gives one tree, the **merged view (合并视图)**. Lookup goes from the top layer
# down: the first layer that has a name wins; a **whiteout (白障)** says "this name is deleted"; an **opaque
# directory (不透明目录)** says "nothing below me exists".
#
# The drawing shows every file path as a column. Each row is a layer, bottom first; the top row is what a
# process in the container sees. Whiteouts are drawn as red hatched boxes, opaque directories as a grey
# band over everything they hide; in the merged row each file takes the colour of the layer it comes from,
# and a dashed box means "hidden".

# %%
COLOURS = ["#8fb3de", "#f4c27a", "#9fd39b", "#d9a6e0", "#f2a3a3"]
CONTAINER_COLOUR = "#e8e86a"



def top_origin(path, stack):
    # Index of the topmost row that supplies ``path`` (the kernel does not say; the layers do).
    for i in reversed(range(len(stack))):
        entry = stack[i].get(path)
        if entry is not None and not isinstance(entry, Whiteout):
            return i
    return None


def draw_stack(layers, names, mount, upper=None, title=""):
    # One row per layer (bottom first), then the container layer, then the merged view.
    stack = list(layers) + ([upper] if upper is not None else [])
    labels = [f"layer {i}: {n}\n{layer.size} B" for i, (layer, n) in enumerate(zip(layers, names))]
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(layers))]
    if upper is not None:
        labels.append(f"container layer\n{upper.size} B")
        colours.append(CONTAINER_COLOUR)
    cols = sorted({p for layer in stack for p, e in layer.items() if not isinstance(e, Directory)})
    x = {p: i for i, p in enumerate(cols)}

    def span(prefix):
        inside = [x[p] for p in cols if p == prefix or p.startswith(prefix + "/")]
        return (min(inside), max(inside)) if inside else None

    merged_y = len(stack) + 0.4
    fig, ax = plt.subplots(figsize=(1.25 * len(cols) + 2.5, 0.9 * (len(stack) + 2)))
    for y, (layer, label, colour) in enumerate(zip(stack, labels, colours)):
        ax.add_patch(Rectangle((-0.5, y - 0.45), len(cols), 0.9, facecolor=colour, alpha=0.15, edgecolor="grey"))
        ax.text(-0.6, y, label, ha="right", va="center", fontsize=9)
        for path, entry in layer.items():
            if isinstance(entry, Directory) and entry.opaque and span(path):
                lo, hi = span(path)
                ax.add_patch(Rectangle((lo - 0.48, y - 0.42), hi - lo + 0.96, 0.84, facecolor="#bbbbbb",
                                       hatch="..", edgecolor="black", alpha=0.6))
                ax.text((lo + hi) / 2, y + 0.3, f"opaque /{path}/", ha="center", va="center", fontsize=7,
                        style="italic", bbox=dict(facecolor="white", edgecolor="none", pad=1))
            elif isinstance(entry, Whiteout) and span(path):
                lo, hi = span(path)
                ax.add_patch(Rectangle((lo - 0.4, y - 0.3), hi - lo + 0.8, 0.6, facecolor="white",
                                       hatch="xx", edgecolor="red", linewidth=1.5))
                ax.text((lo + hi) / 2, y, f"whiteout\n{path.rsplit('/', 1)[-1]}", ha="center", va="center",
                        fontsize=7, color="red", fontweight="bold",
                        bbox=dict(facecolor="white", edgecolor="none", pad=1))
            elif not isinstance(entry, Directory):
                size = f"{entry.size} B" if isinstance(entry, RegularFile) else f"-> {entry.target}"
                ax.add_patch(Rectangle((x[path] - 0.4, y - 0.3), 0.8, 0.6, facecolor=colour, edgecolor="black"))
                ax.text(x[path], y, f"{path.rsplit('/', 1)[-1]}\n{size}", ha="center", va="center", fontsize=7)
    # the merged view, as the mount (model or kernel) reports it
    ax.add_patch(Rectangle((-0.5, merged_y - 0.45), len(cols), 0.9, facecolor="white", edgecolor="black", linewidth=1.5))
    ax.text(-0.6, merged_y, "merged view\n(what the\ncontainer sees)", ha="right", va="center", fontsize=9,
            fontweight="bold")
    for path in cols:
        try:
            mount.lstat("/" + path)
            visible = True
        except OSError:  # ENOENT, or ENOTDIR below a replaced directory
            visible = False
        if visible:
            i = top_origin(path, stack)
            colour = colours[i] if i is not None else "white"
            ax.add_patch(Rectangle((x[path] - 0.4, merged_y - 0.3), 0.8, 0.6, facecolor=colour, edgecolor="black",
                                   linewidth=1.5))
            ax.text(x[path], merged_y, path.rsplit("/", 1)[-1], ha="center", va="center", fontsize=7)
        else:
            ax.add_patch(Rectangle((x[path] - 0.4, merged_y - 0.3), 0.8, 0.6, facecolor="none", edgecolor="grey",
                                   linestyle="--"))
            ax.text(x[path], merged_y, "hidden", ha="center", va="center", fontsize=7, color="grey")
    ax.set_xticks(range(len(cols)), ["/" + p for p in cols], rotation=35, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.55, len(cols) - 0.45)
    ax.set_ylim(-0.6, merged_y + 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("file (path in the merged view)")
    ax.set_title(title or f"{len(layers)} layers, bottom first ({BACKEND} backend)")
    return fig


image = engine.union(layers)  # no writes yet: this is the image as a container would first see it
show(draw_stack(layers, names, image, title=f"The image: 3 layers and the merged view ({BACKEND})"))


# %% [markdown]
# Walking the merged view with `os`-shaped calls (`listdir`, `lstat`) gives the same picture as text.
# `/tmp/src.tar.gz` is gone (whiteout in layer 2) and `/app/static` shows only `new.css` (opaque in layer 2),
# yet `/app/server.py` from layer 1 is still there: `/app` itself is merged, only `/app/static` is opaque.

# %%
def walk(fs, path="/"):
    for name in sorted(fs.listdir(path)):
        child = path.rstrip("/") + "/" + name
        st = fs.lstat(child)
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(fs, child)


for path, st in walk(image):
    where = top_origin(path.lstrip("/"), layers)
    size = "" if stat.S_ISDIR(st.st_mode) else f"{st.st_size} B"
    print(f"{stat.filemode(st.st_mode)}  {path:<22} {size:>7}   from layer {where}")
print("/tmp        ->", sorted(image.listdir("/tmp")))
print("/app/static ->", sorted(image.listdir("/app/static")))

# %% [markdown]
# ## 1.3 特点：分层存储 / Layered storage: a delete does not shrink the image
#
# > 比如在后一层上进行文件删除操作，**仅是在当前层把被删除文件标记为已删除**，在容器运行的时候不会显示已删除的文件。
# > 但在前一层上，文件依旧在，而且会一直跟随镜像存在。
#
# Deleting a file in a later layer only **marks it deleted (标记为已删除)** in that layer. The earlier layer is
# immutable, so the file is still stored there and travels with the image forever. That is why
# `RUN rm /tmp/src.tar.gz` in its own Dockerfile step saves nothing: clean up in the same step that
# downloads.
#
# Each layer is identified by its **DiffID**: the sha256 of its uncompressed tar. A stack of layers is
# identified by its **ChainID**, which hashes the DiffIDs from the bottom up, so two images that share a
# base share the base's ChainID, and it is stored once (**复用 reuse**).

# %%
diff_ids = [layer.diff_id for layer in layers]
chains = sim.chain_ids(diff_ids)
for i, layer in enumerate(layers):
    print(f"layer {i} {names[i]:<9} size {layer.size:>6} B   DiffID {diff_ids[i].short}   ChainID {chains[i].short}")

visible = sum(st.st_size for _, st in walk(image) if stat.S_ISREG(st.st_mode))
stored = sum(layer.size for layer in layers)
print(f"\nstored in the image: {stored} B; visible in the merged view: {visible} B")
print("/tmp/src.tar.gz is deleted, but layer 1 still holds", app["tmp/src.tar.gz"].size, "bytes of it")

fig, ax = plt.subplots(figsize=(8, 2.4))
left = 0
for i, layer in enumerate(layers):
    ax.barh(0, layer.size, left=left, color=COLOURS[i], edgecolor="black", label=f"layer {i} ({names[i]}): {layer.size} B")
    if i == 1:  # the part of layer 1 that nobody can see any more
        hidden = app["tmp/src.tar.gz"].size
        ax.barh(0, hidden, left=left + layer.size - hidden, color="none", edgecolor="red", hatch="xx",
                label=f"/tmp/src.tar.gz, whited out: {hidden} B")
    left += layer.size
ax.barh(1, visible, color="white", edgecolor="black", hatch="//")
ax.text(visible + 100, 1, f"{visible} B", va="center", fontsize=8)
ax.set_yticks([0, 1], ["stored", "visible"])
ax.set_xlabel("size (bytes)")
ax.set_ylabel("bytes counted")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
ax.set_title("A whiteout hides src.tar.gz but does not remove its bytes")
show(fig)


# %% [markdown]
# How does a layer *say* "deleted"? In the OCI tar that is shipped and hashed, a whiteout is an empty
# file named `.wh.<name>` and an opaque directory holds a marker file `.wh..wh..opq`. Here is layer 2's
# tar next to layer 1's, which still contains the whole `src.tar.gz`:

# %%
def tar_listing(layer):
    with tarfile.open(fileobj=io.BytesIO(layer.tar_bytes()), mode="r:") as tar:
        for info in tar:
            kind = "d" if info.isdir() else "-"
            note = ""
            if info.name.endswith(".wh..wh..opq"):
                note = "   <- opaque marker 不透明标记"
            elif "/.wh." in "/" + info.name:
                note = "   <- whiteout 白障"
            print(f"  {kind}{stat.filemode(info.mode)[1:]} {info.size:>6} {info.name}{note}")


print("layer 1 (app):")
tar_listing(app)
print("layer 2 (clean-up):")
tar_listing(cleanup)

# %% [markdown]
# ## 1.4 容器存储层与写时复制 / The container layer and copy-up
#
# A container runs on the image plus one more, writable layer: the **container storage layer
# (容器存储层)**, the overlay's *upper* directory. The image layers stay read-only. The first time a process
# opens a lower file for writing, the union copies the file up into the container layer (**copy-up,
# 写时复制 copy-on-write**). Opening with `O_RDWR` is enough, even if nothing is ever written.

# %%
image.unmount()
box = engine.union(layers)  # a fresh container on the same image

print("container layer before:", box.upper.paths())
fd = box.open("/etc/os-release", os.O_RDWR)
box.close(fd)  # nothing written
print("container layer after open(O_RDWR) + close():")
for path, entry in box.upper.items():
    print("    " + describe(path, entry))

box.write_bytes("/etc/os-release", b'NAME="Layerlab Linux"\nVERSION_ID=1.1\n')
print("the container reads:", box.read_bytes("/etc/os-release").splitlines()[-1])
print("layer 0 still has:  ", base["etc/os-release"].data.splitlines()[-1])

# %% [markdown]
# The model keeps a trace of what it did; the kernel keeps none (its evidence is the upper directory on
# disk, which we read back as `box.upper` above and look at directly below).

# %%
if box.events:
    for event in box.events:
        print(event)
else:
    print(f"the {BACKEND} backend keeps no event trace; box.upper (read from the upper directory) is the evidence")

# %% [markdown]
# ## 1.5 白障 / A whiteout in the container layer
#
# Deleting a file that lives in a lower layer cannot touch that layer. The union writes a **whiteout
# (白障)** into the container layer instead. In the overlay form on disk a whiteout is a **character device
# with device number 0/0**; in a tar it becomes `.wh.<name>`.

# %%
box.unlink("/bin/ls")
print("/bin now:", sorted(box.listdir("/bin")))
print("container layer:", [describe(p, e) for p, e in box.upper.items() if p.startswith("bin")])
print("layer 0 still stores bin/ls:", base["bin/ls"].size, "bytes")

if BACKEND == "real":
    upper_dir = box.upper_dir  # the kernel mount's upper directory on the host
    st = os.lstat(os.path.join(upper_dir, "bin", "ls"))
    print(f"\non disk: {upper_dir}/bin/ls")
    print(f"  {stat.filemode(st.st_mode)}  S_ISCHR={stat.S_ISCHR(st.st_mode)}  "
          f"device {os.major(st.st_rdev)}/{os.minor(st.st_rdev)}  <- the kernel's whiteout")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
else:
    print("\n(the model holds a Whiteout entry; written to disk it becomes a char 0/0 device: "
          "run with BACKEND = 'real' to see the kernel make one)")


# %% [markdown]
# ## 1.6 不透明目录 / An opaque directory
#
# `rm -rf /var/log && mkdir /var/log` removes a directory that lives in a lower layer and creates a new one
# with the same name. The new directory must not show the old contents, so the union marks it **opaque
# (不透明)**. On disk that is the extended attribute `trusted.overlay.opaque = "y"` (`user.overlay.opaque`
# for an unprivileged mount); in a tar, the marker `.wh..wh..opq`.

# %%
def rm_rf(fs, path):
    if stat.S_ISDIR(fs.lstat(path).st_mode):
        for name in fs.listdir(path):
            rm_rf(fs, path.rstrip("/") + "/" + name)
        fs.rmdir(path)
    else:
        fs.unlink(path)


rm_rf(box, "/var/log")
box.mkdir("/var/log")
box.write_bytes("/var/log/new.log", b"fresh\n")
print("/var/log now:", sorted(box.listdir("/var/log")), "(boot.log does not come back)")
print("container layer entry:", describe("var/log", box.upper["var/log"]))

if BACKEND == "real":
    prefix = "user.overlay." if getattr(engine, "rootless", False) else "trusted.overlay."
    value = os.getxattr(os.path.join(box.upper_dir, "var", "log"), prefix + "opaque")
    print(f"on disk: os.getxattr(<upper>/var/log, {prefix + 'opaque'!r}) = {value!r}")
    assert value == b"y"

# %% [markdown]
# The whole picture, with the container layer drawn above the image layers:

# %%
show(draw_stack(layers, names, box, upper=box.upper, title=f"Image layers + container layer ({BACKEND})"))

# %% [markdown]
# This is what `docker commit` would turn into a new image layer: the container layer as an OCI tar,
# with the whiteout and the opaque marker in their tar form.

# %%
tar_listing(box.upper)


# %% [markdown]
# ## 1.7 模型与内核一致 / The model and the kernel agree
#
# With `BACKEND = "real"` we replay the same steps on the model and compare the two container layers
# entry by entry (paths, kinds, opaque flags, file contents). With `BACKEND = "sim"` there is nothing to
# compare against, so the cell only says so.

# %%
def shape(layer):
    out = {}
    for path, entry in layer.items():
        if isinstance(entry, Directory):
            out[path] = ("dir", entry.opaque)
        elif isinstance(entry, RegularFile):
            out[path] = ("file", entry.data)
        else:
            out[path] = (entry.kind,)
    return out


if BACKEND == "real":
    with sim.connect("sim").union(layers) as model:
        model.close(model.open("/etc/os-release", os.O_RDWR))
        model.write_bytes("/etc/os-release", b'NAME="Layerlab Linux"\nVERSION_ID=1.1\n')
        model.unlink("/bin/ls")
        rm_rf(model, "/var/log")
        model.mkdir("/var/log")
        model.write_bytes("/var/log/new.log", b"fresh\n")
        assert shape(model.upper) == shape(box.upper), (shape(model.upper), shape(box.upper))
        print("model and kernel wrote the same container layer:", sorted(shape(box.upper)))
else:
    print("run with BACKEND = 'real' to compare the model with the kernel")
box.unmount()

# %% [markdown]
# ## 小结 / Summary
#
# | 中文 | English | in layerlab |
# |---|---|---|
# | 镜像 | image | a list of `Layer`s, bottom first |
# | 分层存储 | layered storage | `engine.union(layers)` |
# | 联合文件系统 | union file system | the model's `UnionFS`, or kernel overlayfs |
# | 只读层 | read-only layer | `Layer.freeze()` |
# | 容器存储层 | container (writable) layer | `mount.upper` |
# | 写时复制 | copy-up / copy-on-write | `open(..., O_RDWR)` copies the file up |
# | 白障 | whiteout | char 0/0 on disk, `.wh.<name>` in a tar |
# | 不透明目录 | opaque directory | `trusted.overlay.opaque=y`, `.wh..wh..opq` |
# | 复用 | reuse | equal ChainIDs are stored once |
#
# `layerlab tour --backend sim` (or `real`) prints the same story in a terminal, including renaming a lower
# directory (`EXDEV`, then `redirect_dir=True`).
