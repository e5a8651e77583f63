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
# # 第 3 章 容器、容器存储层与数据卷 / Chapter 3: Containers, the container layer and volumes
#
# > 容器的实质是进程，与直接在宿主执行的进程不同，容器进程运行于自己的命名空间。
#
# > `镜像` 和 `容器` 的关系，可以类比为面向对象编程中 `类` 和 `实例对象` 的关系。……每一个容器在创建的时候，都会在堆栈底层
# > 创建一个可写的数据层，这就是容器数据层（`container layer`）。……**容器数据层 随 容器 的 删除 而 丢失**。……
# > 任何文件写入操作都应该使用**数据卷**、**绑定宿主目录** 等操作，在这些位置的读写会跳过容器存储层。
#
# This notebook follows the seed document's sections **容器 —— `Container`** and **容器存储层**:
#
# * a **container (容器)** is a process in its own namespaces, running on an image's merged layers;
# * one image and several containers are a **class (类)** and its **instances (实例)**: the image's layers are
#   shared and read-only, each container adds its **own writable layer (容器存储层, container layer)**;
# * `diff` shows what a container changed, `commit` turns those changes into a new image layer;
# * removing a container deletes its layer: **the data is lost (丢失)**, and its bytes are freed;
# * a **volume (数据卷)** or a **bind mount (绑定宿主目录)** bypasses the container layer, so its data outlives
#   the container.
#
# `BACKEND = "sim"` runs the model; `BACKEND = "real"` runs every container as a real process in Linux
# namespaces on an overlayfs mount. `LAYERLAB_BACKEND`, when set, overrides the cell below.

# %%
import os

BACKEND = "sim"  # "sim" (the model) or "real" (the Linux kernel: overlayfs + namespaces)
BACKEND = os.environ.get("LAYERLAB_BACKEND") or BACKEND
print("backend:", BACKEND)

# %%
import shutil
import stat
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import sim
from sim.figures import bi, show, use_cjk_font

os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")  # reproducible builds, as in chapter 2

workdir = Path(tempfile.mkdtemp(prefix="layerlab-03-"))  # build context, bind folder and (real) state
if BACKEND == "real":
    engine = sim.connect("real", state_dir=tempfile.mkdtemp(prefix="state-", dir=workdir))
else:
    engine = sim.connect("sim")


def find_examples():
    """The repository's examples/ folder, looked for from the notebook's folder upwards."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "examples" / "webapp" / "Buildfile").is_file():
            return folder / "examples"
    raise FileNotFoundError("examples/ not found: start Jupyter inside the layerlab repository")


def short(text, width=44):
    text = text.replace("/bin/sh -c ", "")  # history says "RUN /bin/sh -c ..."; the Buildfile said "RUN ..."
    return text if len(text) <= width else text[: width - 1] + "…"


COLOURS = ["#8fb3de", "#f4c27a", "#9fd39b", "#d9a6e0", "#f2a3a3", "#a6d8d8", "#e0c097", "#c7c7ef"]
CONTAINER_COLOUR = "#e8e86a"

use_cjk_font()  # figures say the Chinese terms only where a font can draw them


context = workdir / "hello"
shutil.copytree(find_examples() / "hello", context)
print((context / "Buildfile").read_text())
image = engine.build(context, tag="hello:1").image
print(f"built hello:1 = {image.id[:19]}, {len(image.diff_ids)} layers")

snapshots = []  # (moment, bytes in container layers, bytes in volumes), drawn at the end


def snapshot(moment):
    usage = engine.df()
    snapshots.append((moment, usage.container_bytes, usage.volume_bytes))
    return usage


# %% [markdown]
# ## 3.1 容器的实质是进程 / A container is a process
#
# `run` = `create` (the image's layers plus a new, empty writable layer) then `start` (a process in that file
# system). The process has its own PID namespace, where it is PID 1, and its own hostname (UTS namespace);
# its root directory is the image's merged tree. On the real backend this is a kernel process in new
# namespaces after `pivot_root`; the model runs the same command in its shell over the modelled tree.

# %%
first_look = engine.run("hello:1", 'echo "I am PID $$ on host $(hostname)"; ls /; cat /app/out.txt', remove=True)
print(first_look.output)
assert first_look.exit_code == 0 and "PID 1 " in first_look.output

# %% [markdown]
# ## 3.2 类与实例 / One image, three containers
#
# Three containers from the one image `hello:1`. Each command changes something different, and each prints
# what it sees afterwards:
#
# * `alpha` overwrites `/app/out.txt`, a file of the image (**copy-up**: the file is copied into alpha's layer
#   first);
# * `beta` writes 4 KiB of new files;
# * `gamma` deletes `/app/hello.txt` (a **whiteout**) and adds a symlink.

# %%
commands = {
    "alpha": "echo alpha was here > /app/out.txt; cat /app/out.txt",
    "beta": "printf '%4096s' x > /tmp/pad.txt && mkdir -p /var/cache/beta && echo beta > /var/cache/beta/note"
            " && ls -l /tmp/pad.txt && cat /app/out.txt",
    "gamma": "rm /app/hello.txt && ln -s out.txt /app/link && ls /app",
}
for name, command in commands.items():
    engine.create("hello:1", command, name=name)
for name in commands:
    result = engine.start(name)
    print(f"--- {name} (exit {result.exit_code})")
    print(result.output.rstrip())
    assert result.exit_code == 0
_ = snapshot("3 containers")


# %% [markdown]
# Each container saw only its own change: `beta` still reads the image's `/app/out.txt`, and `gamma` still has it.
# The image's layers were not touched. The drawing: the image at the bottom (read-only layers, shared by all),
# each container above it with its own writable layer (size and `docker diff`).

# %%
def draw_instances(ref, names, title):
    layers = [h for h in reversed(engine.history(ref)) if not h.empty_layer]
    info = {c.name: c for c in engine.containers()}
    width = 3.3 * len(names)
    fig, ax = plt.subplots(figsize=(width + 3, 3.2 + 0.5 * len(layers)))
    for i, h in enumerate(layers):  # the image: bottom first
        ax.add_patch(Rectangle((0, i * 0.5), width, 0.44, facecolor=COLOURS[i % len(COLOURS)], edgecolor="black"))
        ax.text(width / 2, i * 0.5 + 0.22, f"layer {i}: {short(h.created_by, 60)}   {h.size:,} B",
                ha="center", va="center", fontsize=8)
    ax.text(-0.15, len(layers) * 0.25, f"{bi('image', '镜像')} {ref}\n= {bi('class', '类')}\n"
            f"{bi('read-only', '只读')},\n{bi('shared', '共享')}",
            ha="right", va="center", fontsize=9, fontweight="bold")
    top = len(layers) * 0.5 + 0.8
    for k, name in enumerate(names):
        x = k * 3.3 + 0.15
        changes = [str(c) for c in engine.diff(name)]
        ax.add_patch(Rectangle((x, top), 3.0, 0.7, facecolor=CONTAINER_COLOUR, edgecolor="black", linewidth=1.5))
        ax.text(x + 1.5, top + 0.35, f"{bi('container layer', '容器存储层')}\n{info[name].upper_size:,} B", ha="center",
                va="center", fontsize=8)
        ax.add_patch(Rectangle((x, top + 0.75), 3.0, 0.45, facecolor="white", edgecolor="black"))
        ax.text(x + 1.5, top + 0.97, f"container {name} = {bi('instance', '实例')}", ha="center", va="center", fontsize=8.5,
                fontweight="bold")
        ax.text(x + 0.1, top + 1.3, "\n".join(changes[:6] + (["…"] if len(changes) > 6 else [])), va="bottom",
                fontsize=7.5, family="monospace")
        ax.annotate("", xy=(x + 1.5, len(layers) * 0.5 - 0.02), xytext=(x + 1.5, top - 0.02),
                    arrowprops=dict(arrowstyle="->", color="grey", linewidth=1.5))
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(-0.2, top + 2.6)
    ax.axis("off")
    ax.set_title(title)
    return fig


show(draw_instances("hello:1", list(commands), f"One image, three containers, three writable layers ({BACKEND})"))


# %% [markdown]
# ## 3.3 容器存储层 / `docker diff` and the container layer's bytes
#
# `docker diff` reads a container's writable layer: **A** added, **C** changed (a file copied up and rewritten,
# or a directory whose contents changed), **D** deleted (a whiteout). On the real backend the layer is the
# overlay mount's *upper* directory on the host; we list it from disk. The model holds it as a `Layer`.

# %%
def layer_on_disk(upper_dir):
    """Walk the kernel's upper directory: (path, what) for each entry; a whiteout is a char device 0/0."""
    paths = sorted(os.path.join(folder, name) for folder, dirs, files in os.walk(upper_dir) for name in dirs + files)
    out = []
    for path in paths:
        st = os.lstat(path)
        rel = "/" + os.path.relpath(path, upper_dir)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            out.append((rel, "whiteout (char 0/0)"))
        elif stat.S_ISDIR(st.st_mode):
            out.append((rel + "/", "directory"))
        elif stat.S_ISLNK(st.st_mode):
            out.append((rel, "symlink -> " + os.readlink(path)))
        else:
            out.append((rel, f"{st.st_size} B"))
    return out


info = {c.name: c for c in engine.containers()}
for name in commands:
    mount = engine._container(name).mount  # the container's union mount; .upper is its writable layer
    print(f"--- {name}: docker diff")
    for change in engine.diff(name):
        print("   ", change)
    print(f"    container layer: {info[name].upper_size:,} B of files ({len(mount.upper)} entries)")
    if BACKEND == "real":
        print(f"    on disk, {mount.upper_dir}:")
        for rel, what in layer_on_disk(mount.upper_dir):
            print(f"        {rel:<26} {what}")
    assert info[name].upper_size == mount.upper.size

usage = engine.df()
print(f"\ndf: {usage.containers} containers, {usage.container_bytes:,} B in their writable layers")

# %% [markdown]
# ## 3.4 提交 / `commit`: a container layer becomes an image layer
#
# `docker commit` freezes a container's writable layer and puts it on top of the image's layers as a new
# image. This is how changes made in a container can be kept, though the seed's best practice is to keep
# container layers stateless (无状态化) and describe images in a Buildfile instead.

# %%
committed = engine.commit("alpha", "hello:alpha")
print(f"hello:alpha = {committed.id[:19]}: {len(committed.diff_ids)} layers (hello:1 has {len(image.diff_ids)})")
newest = engine.history("hello:alpha")[0]
print(f"newest history entry: {newest.created_by!r}, layer {newest.layer[7:19]}, {newest.size:,} B")
assert committed.diff_ids[:-1] == image.diff_ids  # the image's layers, shared, plus alpha's layer
print(engine.run("hello:alpha", None, remove=True).output.rstrip(), " <- the image's CMD, in a new container")

# %% [markdown]
# ## 3.5 删除容器 / `rm`: the container layer is lost
#
# > 容器数据层的生命周期跟容器一样——**容器数据层 随 容器 的 删除 而 丢失**
#
# Removing `beta` deletes its writable layer: `remove` returns the bytes freed, `df` counts them no more and, on
# the real backend, the upper directory is gone from the disk. A new container from the same image starts with
# an empty layer: beta's files do not come back.

# %%
beta_mount = engine._container("beta").mount
beta_dir = getattr(beta_mount, "upper_dir", None)  # real: the upper directory on the host
before = engine.df()
freed = engine.remove("beta")
after = snapshot("rm beta")
print(f"engine.remove('beta') freed {freed:,} B")
print(f"container layers: {before.container_bytes:,} B -> {after.container_bytes:,} B")
assert freed == info["beta"].upper_size > 4096 - 1
assert before.container_bytes - after.container_bytes == freed
if beta_dir is not None:
    print(f"{beta_dir} exists: {os.path.exists(beta_dir)}")
    assert not os.path.exists(beta_dir)

fresh = engine.run("hello:1", "ls /tmp; cat /var/cache/beta/note", remove=True)
print(f"a new container: exit {fresh.exit_code}: {fresh.output.strip()!r}")
assert fresh.exit_code != 0 and "pad.txt" not in fresh.output
print("beta's data is lost (丢失)")

# %% [markdown]
# ## 3.6 数据卷 / A volume keeps the data
#
# A **named volume** is storage outside every container layer, mounted at a path in the container. `writer`
# writes under `/data` (the volume `notes`); then `writer` is removed, and `reader`, a new container, mounts the
# same volume and finds the data.

# %%
engine.create_volume("notes")
writer = engine.run(
    "hello:1",
    "mkdir -p /data/logs && echo 'kept across containers' > /data/logs/note.txt"
    " && printf '%2048s' x > /data/blob && echo written",
    name="writer", volumes={"/data": "notes"},
)
print("writer:", writer.output.strip())
writer_changes = [str(c) for c in engine.diff("writer")]
writer_mount = engine._container("writer").mount
print("docker diff writer:", writer_changes)
print("volume notes:", engine.volume_info("notes"))
_ = snapshot("writer wrote /data")


# %% [markdown]
# The writes under the mount point went to the volume, **not** to the container layer (在这些位置的读写会跳过容器存储层).
# The only trace in `writer`'s layer is the mount point directory `/data` itself, which the engine creates (as
# Docker does) so there is somewhere to mount the volume. The cell asserts it three ways: `docker diff`, the
# writable layer's entries, and (on the real backend) the upper directory on disk.

# %%
def under(path, point="/data"):
    return path == point or path.startswith(point + "/")


diff_paths = [c.split(" ", 1)[1] for c in writer_changes]
assert [p for p in diff_paths if under(p)] == ["/data"], writer_changes
upper_paths = ["/" + p for p in writer_mount.upper.paths()]
assert [p for p in upper_paths if under(p)] == ["/data"], upper_paths
assert writer_mount.upper.size == 0, "no file bytes at all entered writer's container layer"
if BACKEND == "real":
    on_disk = os.listdir(os.path.join(writer_mount.upper_dir, "data"))
    print(f"on disk, {writer_mount.upper_dir}/data holds {on_disk}")
    assert on_disk == []
volume_bytes = engine.volume_info("notes").size
assert volume_bytes == len("kept across containers\n") + 2048
print(f"under /data the container layer holds only the mount point; the volume holds {volume_bytes:,} B")

# %%
freed = engine.remove("writer")
print(f"engine.remove('writer') freed {freed} B of container layer; the volume keeps {engine.volume_info('notes').size:,} B")
_ = snapshot("rm writer")

reader = engine.run("hello:1", "cat /data/logs/note.txt; ls -l /data", name="reader", volumes={"/data": "notes"})
print("reader:\n" + reader.output.rstrip())
assert reader.exit_code == 0 and "kept across containers" in reader.output
print("\nvolumes:", engine.list_volumes())
if BACKEND == "real":
    folder = Path(engine.state_dir) / "volumes" / "notes" / "_data"
    print("on the host the volume is the folder", folder, "->", sorted(p.name for p in folder.iterdir()))
_ = snapshot("reader")

# %% [markdown]
# ## 3.7 绑定宿主目录 / A bind mount writes to the host
#
# A **bind mount** puts a host folder into the container. The container's writes land directly in that
# folder on the host, again bypassing the container layer.

# %%
host_dir = workdir / "host-folder"
host_dir.mkdir()
result = engine.run("hello:1", "echo written by a container > /host/greeting.txt", name="binder",
                    binds={"/host": str(host_dir)})
print("on the host:", {p.name: p.read_text() for p in host_dir.iterdir()})
assert (host_dir / "greeting.txt").read_text() == "written by a container\n"
print("docker diff binder:", [str(c) for c in engine.diff("binder")])
assert [str(c) for c in engine.diff("binder") if under(c.path, "/host")] == ["A /host"]
print("engine.remove('binder') freed", engine.remove("binder"), "B; the file stays on the host:",
      (host_dir / "greeting.txt").exists())

# %% [markdown]
# ## 3.8 生命周期 / Where the bytes were, step by step
#
# `df` after each step: bytes in container layers come and go with their containers; the volume's bytes stay.

# %%
moments = [m for m, _, _ in snapshots]
x = range(len(moments))
fig, ax = plt.subplots(figsize=(9, 3.2))
ax.bar([i - 0.2 for i in x], [c for _, c, _ in snapshots], width=0.4, color=CONTAINER_COLOUR, edgecolor="black",
       label=bi("container layers", "容器存储层"))
ax.bar([i + 0.2 for i in x], [v for _, _, v in snapshots], width=0.4, color="#8fb3de", edgecolor="black",
       label=bi("volumes", "数据卷"))
for i, (_, c, v) in enumerate(snapshots):
    ax.text(i - 0.2, c, f"{c:,}", ha="center", va="bottom", fontsize=8)
    ax.text(i + 0.2, v, f"{v:,}", ha="center", va="bottom", fontsize=8)
ax.set_xticks(list(x), moments)
ax.set_xlabel("moment in the walk-through above")
ax.set_ylabel("size (bytes)")
ax.legend(fontsize=8)
ax.set_title(f"Container layers are lost with their containers; volumes keep their data ({BACKEND})")
show(fig)

# %% [markdown]
# ## 小结 / Summary
#
# | 中文 | English | in layerlab |
# |---|---|---|
# | 容器 | container | `engine.create(image, command)`, `engine.start(name)`, `engine.run(...)` |
# | 类 / 实例 | class / instance | one image, many containers |
# | 容器存储层 | container (writable) layer | `engine._container(name).mount.upper`; `ContainerInfo.upper_size` |
# | 变更 | changes | `engine.diff(name)`: A / C / D |
# | 提交 | commit | `engine.commit(name, tag)`: the layer becomes an image layer |
# | 随容器删除而丢失 | lost with the container | `engine.remove(name)` returns the bytes freed |
# | 数据卷 | volume | `engine.create_volume(name)`, `volumes={"/data": name}` |
# | 绑定宿主目录 | bind mount | `binds={"/host": "/a/host/folder"}` |
#
# `layerlab tour --chapter 3` prints the same story in a terminal.

# %%
engine.close()  # unmounts every container still there (reader, alpha, gamma)
shutil.rmtree(workdir, ignore_errors=True)
print("closed; removed", workdir)
