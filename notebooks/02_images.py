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
# # 第 2 章 镜像 / Chapter 2: Images
#
# > Docker 在进行镜像构建时，会 **逐层进行构建**，前一层是后一层的基础，每一层构建完成后不会发生改变，后一层上发生的任何改变
# > 不会影响其他层。……分层存储的特征简化了镜像的 **复用** 和 **定制**。
#
# Chapter 1 built layers by hand. Here an **image (镜像)** is built the way Docker builds it: from a **Buildfile**
# (the Dockerfile syntax), **layer by layer (逐层构建)**, each step on top of the previous one. We then look at
# what the engine stored:
#
# * every build step, and the **build cache (构建缓存)** that makes a rebuild reuse them ("CACHED");
# * the **layer stack (层栈)**, bottom first, with each layer's size;
# * `docker history`, including the steps that change only the configuration (`empty_layer`);
# * a second image on the same base that **shares (复用)** layers with the first, and `df`'s shared versus
#   unique bytes;
# * the **ImageID**, which is nothing but the sha256 of the image's configuration JSON.
#
# `BACKEND = "sim"` runs the model (pure Python, anywhere); `BACKEND = "real"` runs the same calls on the Linux
# kernel (overlayfs mounts and namespaces; needs root or unprivileged user namespaces). The environment
# variable `LAYERLAB_BACKEND`, when set, overrides the cell below (the tests run this notebook both ways).

# %%
import os

BACKEND = "sim"  # "sim" (the model) or "real" (the Linux kernel: overlayfs + namespaces)
BACKEND = os.environ.get("LAYERLAB_BACKEND") or BACKEND
print("backend:", BACKEND)

# %%
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import sim
from sim.figures import bi, show, use_cjk_font

# Reproducible builds: with file times clamped to SOURCE_DATE_EPOCH the same Buildfile gives the same
# DiffIDs and ImageIDs on every run, in the model and on the kernel.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")


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


# %%
workdir = Path(tempfile.mkdtemp(prefix="layerlab-02-"))  # build context and (real) state, removed at the end
if BACKEND == "real":
    engine = sim.connect("real", state_dir=tempfile.mkdtemp(prefix="state-", dir=workdir))
else:
    engine = sim.connect("sim")  # images in memory
context = workdir / "webapp"
shutil.copytree(find_examples() / "webapp", context)
engine

# %% [markdown]
# ## 2.1 逐层构建 / Building layer by layer
#
# The build context is a copy of `examples/webapp`: a little web site, its configuration, a tarball of assets,
# and this Buildfile:

# %%
print((context / "Buildfile").read_text())


# %% [markdown]
# Every instruction is a **build step (构建步骤)**. `COPY`, `ADD` and `RUN` change files, so each makes one new
# **layer (层)**: the builder mounts the layers so far, runs the step in a container on top, and freezes that
# container's writable layer. `ARG`, `LABEL`, `USER`, `EXPOSE`, `VOLUME` and `CMD` only change the image's
# configuration and make no layer. The table prints, for each layer, the start of its **DiffID** (sha256 of the
# layer's uncompressed tar) and the bytes of the files the step wrote.

# %%
def print_steps(result):
    for step in result.steps:
        text = short(step.instruction, 58)
        if step.layer is None:
            what = "base image" if step.instruction.startswith("FROM") else "config only (no layer)"
        else:
            what = f"layer {step.layer[7:19]}  {step.size:>5} B of files"
        mark = "CACHED" if step.cached else ""
        print(f"#{step.number:<3}{mark:<7}{text:<60}{what}")
    print(f"=> image {result.image.id[:19]}  tags {list(result.image.tags)}")


first = engine.build(context, tag="webapp:1.2")
print_steps(first)

# %% [markdown]
# ## 2.2 构建缓存 / The build cache: a rebuild reuses every layer
#
# A layer, once built, never changes (只读). The builder remembers each file-changing step under a key made of
# the layers below it, the instruction text and the content it copies; if the key is known, the step is
# **CACHED** and its layer is reused as it is. Building again with nothing changed gives the same image:

# %%
again = engine.build(context, tag="webapp:1.2")
print_steps(again)

layer_steps = [s for s in again.steps if s.layer is not None]
assert all(s.cached for s in layer_steps), "every layer step should come from the cache"
assert again.image.id == first.image.id and again.image.diff_ids == first.image.diff_ids
print(f"\n{len(layer_steps)} layer steps, all CACHED; same ImageID")


# %% [markdown]
# ## 2.3 层栈 / The layer stack
#
# `docker history` lists an image's steps **newest first**; a layer stack is drawn **bottom first (自底向上)**,
# like the `layers` array of an OCI manifest: layer 0 is the base image's busybox. The metadata steps that
# came after a layer are written beside it in grey. The base layer is hundreds of times bigger than the
# others, so the bar chart on the right uses a logarithmic scale.

# %%
def layer_rows(ref):
    """The image's layers, oldest first, each with the metadata-only steps that followed it."""
    rows = []
    for entry in reversed(engine.history(ref)):
        if entry.empty_layer:
            if rows:
                rows[-1][1].append(entry.created_by)
        else:
            rows.append((entry, []))
    return rows


def draw_stack(ax, ref, colour_of=None, edge_of=None, title=None, height=None):
    rows = layer_rows(ref)
    for y, (entry, config) in enumerate(rows):
        colour = colour_of(entry) if colour_of else COLOURS[y % len(COLOURS)]
        edge, width, style = edge_of(entry) if edge_of else ("black", 1, "solid")
        ax.add_patch(Rectangle((0, y), 1, 0.86, facecolor=colour, edgecolor=edge, linewidth=width, linestyle=style))
        ax.text(0.03, y + 0.58, f"layer {y}: {short(entry.created_by)}", fontsize=8, va="center")
        ax.text(0.03, y + 0.24, f"{entry.size:,} B    DiffID {entry.layer[7:19]}", fontsize=7.5, va="center",
                family="monospace")
        if config:
            ax.text(1.03, y + 0.43, "then, config only: " + ", ".join(c.split()[0] for c in config),
                    fontsize=7.5, va="center", color="grey", style="italic")
    ax.set_xlim(0, 1.75 if any(c for _, c in rows) else 1.05)
    ax.set_ylim(-0.2, (height or len(rows)) + 0.1)
    ax.axis("off")
    ax.set_title(title or ref, fontsize=10)
    return rows


fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 1.2]})
count = len(layer_rows("webapp:1.2"))
rows = draw_stack(ax, "webapp:1.2", title=f"webapp:1.2: {count} layers, bottom first ({BACKEND})")
bars.barh([y + 0.43 for y in range(len(rows))], [e.size for e, _ in rows], height=0.6,
          color=[COLOURS[y % len(COLOURS)] for y in range(len(rows))], edgecolor="black")
bars.set_xscale("log")
bars.set_ylim(-0.2, len(rows) + 0.1)
bars.set_yticks([])
bars.set_xlabel("layer size (bytes, log scale)")
bars.set_title("size of each layer", fontsize=10)
show(fig)

info = engine.inspect_image("webapp:1.2")
print(f"image size (docker images SIZE): {info.size:,} B in {len(info.diff_ids)} layers")

# %% [markdown]
# A container of this image sees all the layers merged into one tree (the union of chapter 1). `/var/www`
# has files from three different layers (`COPY site/`, `ADD`, the first `RUN`); `assets/old` is gone:

# %%
# As root: the image says USER nobody, and a rootless engine can map only root into its user namespace.
merged = engine.run("webapp:1.2", "ls -l /var/www /var/www/assets", remove=True, user="root")
print(merged.output)

# %% [markdown]
# ## 2.4 镜像历史 / `docker history` and `empty_layer`
#
# Newest first. The rows with `empty_layer=True` are the configuration steps: they are recorded in the history
# (so you can see how the image was made) but have no layer and cost 0 bytes.

# %%
print(f"{'LAYER':<14}{'CREATED BY':<62}{'SIZE':>10}  empty_layer")
for entry in engine.history("webapp:1.2"):
    layer = entry.layer[7:19] if entry.layer else "-"
    print(f"{layer:<14}{short(entry.created_by, 60):<62}{entry.size:>8} B  {entry.empty_layer}")

# %% [markdown]
# > 比如在后一层上进行文件删除操作，**仅是在当前层把被删除文件标记为已删除** ……但在前一层上，文件依旧在，而且会一直跟随镜像存在。
#
# The last `RUN` deletes `/var/www/assets/old`, which the `ADD` layer unpacked. `docker save` writes the image
# as the tars that were hashed; opening them shows the delete is only a **whiteout (白障)** in the newer layer,
# while the older layer still carries the file:

# %%
saved = io.BytesIO()
engine.save(["webapp:1.2"], saved)
saved.seek(0)
with tarfile.open(fileobj=saved) as archive:
    manifest = json.load(archive.extractfile("manifest.json"))[0]
    config_bytes = archive.extractfile(manifest["Config"]).read()
    layer_blobs = [archive.extractfile(path).read() for path in manifest["Layers"]]


def members(blob):
    """(path, size, is a directory) for each entry of a layer tar."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as layer_tar:
        return [(m.name.rstrip("/"), m.size, m.isdir()) for m in layer_tar.getmembers()]


for i, blob in enumerate(layer_blobs):
    for name, size, _ in members(blob):
        folder, _, base = name.rpartition("/")
        if base.startswith(".wh.") and base != ".wh..wh..opq":
            hidden = f"{folder}/{base[4:]}" if folder else base[4:]
            print(f"layer {i}: {name}   <- whiteout 白障: deletes /{hidden}")
            for j in range(i):
                for path, size, is_dir in members(layer_blobs[j]):
                    if path == hidden or path.startswith(hidden + "/"):
                        what = "directory" if is_dir else f"{size} B"
                        print(f"layer {j}: {path + '/' * is_dir:<32} {what:>9}   <- still stored below, shipped with the image")

# %% [markdown]
# ## 2.5 复用与定制 / A second image on the same base shares layers
#
# `Buildfile.api` below describes a different image: the same site and configuration, then its own last step.
# Its first steps are exactly those of `webapp` (same base, same instructions, same copied content), so the
# builder reuses those layers (**复用 reuse**) and only the last step makes a new one (**定制 customise**).

# %%
(context / "Buildfile.api").write_text("""\
# A second image on the same base: the same site and configuration, then its own last step.
FROM busybox
COPY site/ /var/www/
COPY conf/httpd.conf /etc/httpd.conf
RUN echo '{"status": "ok"}' > /var/www/health.json
CMD ["httpd", "-f", "-p", "9090", "-h", "/var/www"]
""")
second = engine.build(context, buildfile="Buildfile.api", tag="api:1")
print_steps(second)

shared = [d for d in second.image.diff_ids if d in first.image.diff_ids]
print(f"\napi:1 has {len(second.image.diff_ids)} layers; {len(shared)} of them are webapp:1.2's layers")
assert second.image.diff_ids[:3] == first.image.diff_ids[:3]  # busybox, COPY site/, COPY conf

# %% [markdown]
# Drawn side by side: a layer with the same DiffID in both images is the same layer, stored once (coloured,
# with a thick green frame); the layers only one image has are grey with a dashed frame. A layer's identity in a
# stack is its **ChainID** (the DiffIDs from the bottom up to it, hashed): the shared layers also have equal
# ChainIDs, so everything above them is built on identical ground.

# %%
both = set(first.image.diff_ids) & set(second.image.diff_ids)
palette = {d: COLOURS[i % len(COLOURS)] for i, d in enumerate(first.image.diff_ids)}


def colour_of(entry):
    return palette[entry.layer] if entry.layer in both else "#eeeeee"


def edge_of(entry):
    return ("green", 3, "solid") if entry.layer in both else ("grey", 1.2, "dashed")


height = max(len(first.image.diff_ids), len(second.image.diff_ids))
fig, axes = plt.subplots(1, 2, figsize=(15, 5))
draw_stack(axes[0], "webapp:1.2", colour_of, edge_of, height=height)
draw_stack(axes[1], "api:1", colour_of, edge_of, height=height)
fig.suptitle(f"Two images, {len(both)} shared layers (green frame) stored once; grey: only in one image ({BACKEND})")
show(fig)

for i, (a, b) in enumerate(zip(first.image.chain_ids, second.image.chain_ids)):
    print(f"layer {i}: ChainID {a[7:19]} vs {b[7:19]}  {'same' if a == b else 'different'}")

# %% [markdown]
# ## 2.6 磁盘占用 / `df`: shared versus unique bytes
#
# `docker system df -v` counts every layer once, however many images use it, and splits the bytes into
# **shared** (layers two or more images use) and **unique** (layers one image alone uses). The `busybox` base
# image is an image too, so its one layer is shared by all three. The check below recomputes the split from
# `history` and the image list, independently of `df`.

# %%
usage = engine.df()
images = engine.images()
print(f"{usage.images} images, {usage.layers} layers stored")
print(f"shared {usage.shared_bytes:>10,} B   unique {usage.unique_bytes:>8,} B")
print(f"\n{'IMAGE':<18}{'SIZE':>12}{'SHARED':>12}{'UNIQUE':>10}")
for image in images:
    name = image.tags[0] if image.tags else image.id[:19]
    shared_b, unique_b = usage.per_image[name]
    print(f"{name:<18}{image.size:>12,}{shared_b:>12,}{unique_b:>10,}")

# The same split, recomputed from the images' own histories.
users, sizes = {}, {}
for image in images:
    for entry in engine.history(image.id):
        if entry.layer:
            users.setdefault(entry.layer, set()).add(image.id)
            sizes[entry.layer] = entry.size
assert usage.layers == len(sizes)
assert usage.shared_bytes == sum(sizes[d] for d, u in users.items() if len(u) > 1)
assert usage.unique_bytes == sum(sizes[d] for d, u in users.items() if len(u) == 1)
naive = sum(image.size for image in images)
print(f"\nthe images add up to {naive:,} B; stored once, the layers take {usage.shared_bytes + usage.unique_bytes:,} B")

names = [image.tags[0] for image in images]
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 3.2), gridspec_kw={"width_ratios": [1.2, 1]})
stored = usage.shared_bytes + usage.unique_bytes
left.barh(["if each image kept\nits own copy", "stored once\n(what df counts)"], [naive, stored],
          color=["#dddddd", "#9fd39b"], edgecolor="black")
for y, value in enumerate([naive, stored]):
    left.text(value * 1.01, y, f"{value:,} B", va="center", fontsize=8)
left.set_xlim(0, naive * 1.3)
left.set_xlabel("size on disk (bytes)")
left.set_title(bi("all images: sharing stores each layer once", "复用"), fontsize=10)
right.barh(names, [usage.per_image[n][1] for n in names], color="#f2a3a3", edgecolor="black")
for y, n in enumerate(names):
    right.text(usage.per_image[n][1] * 1.01, y, f"{usage.per_image[n][1]:,} B", va="center", fontsize=8)
right.set_xlim(0, max(v[1] for v in usage.per_image.values()) * 1.3 or 1)
right.set_xlabel("unique size (bytes)")
right.set_ylabel("image")
right.set_title(bi("unique bytes: only this image's layers", "独有"), fontsize=10)
fig.suptitle(f"df: {usage.shared_bytes:,} B shared, {usage.unique_bytes:,} B unique ({BACKEND})", y=1.02)
fig.tight_layout()
show(fig)

# %% [markdown]
# ## 2.7 ImageID = sha256(config)
#
# An image is its **configuration** (a JSON document: environment, command, user, labels, `rootfs.diff_ids`
# and the history) plus the layers it names. The **ImageID** is the sha256 of the configuration's bytes, so
# it changes when any layer or any setting changes, and a **tag (标签)** is only a name pointing at it. The
# configuration bytes come from the `docker save` archive opened above.

# %%
config = json.loads(config_bytes)
computed = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
print("sha256(config bytes) =", computed)
print("ImageID              =", first.image.id)
assert computed == first.image.id
print("ImageID == sha256(config)")

print("\nconfig.rootfs.diff_ids (bottom first):")
for d in config["rootfs"]["diff_ids"]:
    print("   ", d[:19], "...")
print("config.history (oldest first):")
for h in config["history"]:
    print(f"    {short(h['created_by'], 60):<62} {'empty_layer' if h.get('empty_layer') else ''}")
print("config.config:", {k: v for k, v in config["config"].items() if k in ("User", "Cmd", "ExposedPorts", "Labels")})

tagged = engine.tag("webapp:1.2", "webapp:latest")
print(f"\nwebapp:latest -> {tagged.id[:19]}: a new name, the same image")
assert tagged.id == first.image.id

# %%
# 多阶段构建 / Multi-stage builds: compile with the tools in one stage, ship only the result from another.
# Both Buildfiles make the same program; the toolchain (a busybox copy here) and the sources stay behind in
# the "build" stage, whose layers are not in the image. The "test" stage is not needed, so it is skipped.
program = workdir / "program"
program.mkdir(exist_ok=True)
(program / "main.txt").write_text("print('hello')\n")
compile_step = "RUN mkdir -p /src/obj /out && cp /bin/busybox /src/obj/toolchain && cat main.txt main.txt > /out/app"
(program / "Buildfile.single").write_text(
    f"FROM busybox\nWORKDIR /src\nCOPY main.txt ./\n{compile_step}\n"
    "RUN mkdir -p /usr/local/bin && cp /out/app /usr/local/bin/app\nCMD [\"cat\", \"/usr/local/bin/app\"]\n")
(program / "Buildfile.multi").write_text(
    f"FROM busybox AS build\nWORKDIR /src\nCOPY main.txt ./\n{compile_step}\n"
    "FROM busybox AS test\nRUN cat /no/such/file\n"
    "FROM busybox\nCOPY --from=build /out/app /usr/local/bin/app\nCMD [\"cat\", \"/usr/local/bin/app\"]\n")
single = engine.build(program, buildfile="Buildfile.single", tag="program:single").image
multi = engine.build(program, buildfile="Buildfile.multi", tag="program:multi")
for step in multi.steps:
    mark = "SKIPPED" if step.skipped else ""
    print(f"#{step.number:<3}{mark:<8}{short(step.instruction, 60)}")
assert engine.run("program:multi", remove=True).stdout == engine.run("program:single", remove=True).stdout
saved = single.size - multi.image.size
print(f"\nsingle-stage: {len(single.diff_ids)} layers {single.size:>10,} B")
print(f"multi-stage:  {len(multi.image.diff_ids)} layers {multi.image.size:>10,} B")
print(f"the same program, {saved:,} B ({saved / single.size:.0%}) smaller: only the last stage's layers ship")
assert saved > 0 and [s.number for s in multi.steps if s.skipped] == [5, 6]

# %% [markdown]
# ## 2.8 模型与内核一致 / The model and the kernel agree
#
# With `BACKEND = "real"` the same two builds are replayed in the model and the DiffIDs and ImageIDs compared:
# the same Buildfile and context give the same bytes on both backends. With `BACKEND = "sim"` there is nothing
# to compare against.

# %%
if BACKEND == "real":
    model = sim.connect("sim")
    for result, buildfile, tag in [(first, "Buildfile", "webapp:1.2"), (second, "Buildfile.api", "api:1")]:
        twin = model.build(context, buildfile=buildfile, tag=tag).image
        assert twin.diff_ids == result.image.diff_ids, (twin.diff_ids, result.image.diff_ids)
        assert twin.id == result.image.id, (twin.id, result.image.id)
        print(f"{tag:<11} model and kernel: same {len(twin.diff_ids)} DiffIDs, same ImageID {twin.id[:19]}")
    model.close()
else:
    print("run with BACKEND = 'real' to compare the model with the kernel")

# %% [markdown]
# ## 小结 / Summary
#
# | 中文 | English | in layerlab |
# |---|---|---|
# | 镜像 | image | `engine.inspect_image(ref)`: config + layers |
# | 逐层构建 | building layer by layer | `engine.build(context)`: one layer per `COPY`/`ADD`/`RUN` |
# | 构建缓存 | build cache | `BuildStep.cached` ("CACHED") |
# | 镜像历史 | history | `engine.history(ref)`, newest first, `empty_layer` for config steps |
# | 复用 / 定制 | reuse / customise | equal DiffIDs and ChainIDs, stored once |
# | 磁盘占用 | disk usage | `engine.df()`: shared and unique bytes |
# | 镜像 ID | ImageID | sha256 of the config bytes |
# | 标签 | tag | `engine.tag(src, dst)`: a name for an ImageID |
#
# `layerlab tour --chapter 2` prints the same story in a terminal. Chapter 3 starts containers from an image.

# %%
engine.close()  # unmounts whatever is still mounted (real: the kernel mounts)
shutil.rmtree(workdir, ignore_errors=True)
print("closed; removed", workdir)
