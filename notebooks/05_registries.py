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
# # 第 5 章 仓库 / Chapter 5: Repositories and registries
#
# > 仓库 (`Repository`) 是 `Docker Registry` 服务中的一个术语。`Docker Registry` 服务用于集中存储、分发镜像。
#
# A **Docker Registry (镜像注册服务)** stores images in one place and hands them out. This notebook
# follows the seed document's section **仓库 —— `Repository`**: what a registry holds (repositories,
# tags, manifests, layers), `docker push` and `docker pull`, the tag `latest`, the public registry
# (**Docker Hub**, the default) and its mirrors (**加速器**, "accelerators"), and a **private registry
# (私有 Docker Registry)** that wants a login. (The seed's third section; it is chapter 5 here because
# chapters are appended, so the numbers of chapters 1 to 4 never change.)
#
# * `BACKEND = "sim"`: the engine is layerlab's model and the registries are model registries
#   (`sim.registries`: repositories, tags, manifests and blobs by digest, in memory). Runs anywhere.
# * `BACKEND = "real"`: the engine is the Linux one (its image store on disk, builds in namespaces),
#   still talking to the model registries; then a second part starts **real registry servers** on
#   127.0.0.1 (Debian's `docker-registry`, the CNCF Distribution registry: a private one with a login
#   over TLS, a stand-in Docker Hub and a pull-through mirror of it) and does the same against them.
#
# Nothing here reaches a registry beyond this machine: the "Docker Hub" is a model (or a local
# server) seeded with a busybox image. The environment variable `LAYERLAB_BACKEND`, when set,
# overrides the cell below (the tests run this notebook both ways).

# %%
import os

BACKEND = "sim"  # "sim" (the model) or "real" (the Linux engine, then real registry servers on 127.0.0.1)
BACKEND = os.environ.get("LAYERLAB_BACKEND") or BACKEND
print("backend:", BACKEND)

# %%
import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import sim
from sim.errors import AuthenticationError
from sim.figures import bi, show, use_cjk_font
from sim.registries import ModelMirror, ModelRegistry
from sim.registries.config import RegistryConfig

# Reproducible builds: the same Buildfile gives the same DiffIDs, ImageIDs and manifest digests on every run,
# in the model and on the kernel (so a registry sees the same bytes whichever engine pushed them).
os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")

# Everything this notebook starts is registered here and undone, last first, by the final cell:
# engines closed, registry servers stopped, the working folder removed.
cleanup = contextlib.ExitStack()
workdir = Path(tempfile.mkdtemp(prefix="layerlab-05-"))
cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)


@contextlib.contextmanager
def on_error():
    """Run a cell's body; if it raises, undo everything (stop the servers) before the error propagates:
    a failed cell stops the notebook, the final cell never runs, and the servers must not outlive it."""
    try:
        yield
    except BaseException:
        cleanup.close()
        raise


def state(name):
    """Engine options for one "machine": the real engine keeps its image store in a folder of its own."""
    return {"state_dir": str(workdir / name)} if BACKEND == "real" else {}


def find_examples():
    """The repository's examples/ folder, looked for from the notebook's folder upwards."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "examples" / "hello" / "Buildfile").is_file():
            return folder / "examples"
    raise FileNotFoundError("examples/ not found: start Jupyter inside the layerlab repository")


use_cjk_font()  # figures say the Chinese terms only where a font can draw them


# %% [markdown]
# ## 5.1 简介 / A registry holds repositories, a repository holds tags
#
# > 一个 `Docker Registry` 服务中可以包含多个仓库 (`Repository`)；
# > 一个仓库 (`Repository`) 中可以包含多个标签 (`Tag`)；
# > 一个标签 (`Tag`) 对应一个镜像。
#
# | level | 中文 | what it is |
# |---|---|---|
# | registry | 注册服务器 (`Docker Registry`) | a server: `docker.io`, `localhost:5000` |
# | repository | 仓库 | usually one piece of software: `library/busybox`, `lab/hello` |
# | tag | 标签 | usually a version: `1`, `2`, `latest`; **mutable**, it can be moved |
# | manifest | 清单 | the image itself, named by its sha256 **digest**; **immutable** |
# | layer | 层 | the blobs a manifest lists (bottom first), also by digest, stored once |
#
# > 通过 `<仓库名>:<标签>` 的形式来指定需要的镜像，如果不给出标签，则将以 `latest` 作为默认标签。
#
# A reference names an image as `<registry>/<repository>:<tag>`. Leave out the registry and it is Docker
# Hub (`docker.io`, with `library/` for one-word names); leave out the tag and it is `latest`. So
# `busybox` is `docker.io/library/busybox:latest`. The engine below also knows a private registry,
# `localhost:5000` (a model one, with one account); the model Docker Hub comes with every engine.

# %%
private = ModelRegistry("localhost:5000", accounts={"student": "s3cret"})  # 私有仓库 with one account
with on_error():
    engine = sim.connect(BACKEND, registries=RegistryConfig(models=(private,)), **state("builder"))
    cleanup.callback(engine.close)
hub = engine.registries.hub  # the model Docker Hub (docker.io), seeded with library/busybox:latest

pulled = engine.pull("busybox")
print(f"busybox -> {pulled.registry}/{pulled.repository}:{pulled.reference}")
print("\n".join(pulled.lines()))
print(f"{pulled.bytes_received:,} B received: the manifest ({pulled.manifest_bytes} B), the config, one layer")
assert (pulled.registry, pulled.repository, pulled.reference) == ("docker.io", "library/busybox", "latest")

# %% [markdown]
# ## 5.2 公开 Docker Registry / Docker Hub, the default registry
#
# > `Docker Registry` 公开服务是开放给用户使用、允许用户管理镜像的 `Registry` 服务。最常使用的公开服务是官方的
# > `Docker Hub`，这也是默认的 `Registry`。
#
# `docker search` asks a registry for its repositories (`GET /v2/_catalog`); `GET /v2/<name>/tags/list` lists
# a repository's tags; `GET /v2/<name>/manifests/<tag>` answers with the manifest and its digest
# (`Docker-Content-Digest`); every layer is then fetched by digest from `/v2/<name>/blobs/<digest>`,
# and checked against it before it is kept.

# %%
print("search on docker.io:", engine.search("", server="docker.io"))
print("tags of library/busybox:", engine.registry_tags("busybox"))
for name, repo in hub.repositories().items():
    for tag, digest in repo.tags.items():
        manifest = json.loads(hub.manifest(digest))
        print(f"{name}:{tag} -> manifest {digest[:19]}... -> config {manifest['config']['digest'][:19]}..., "
              f"layers {[layer['digest'][:19] + '...' for layer in manifest['layers']]}")
print("docker images --digests:")
for image in engine.images():
    print(f"  {image.tags[0]:<16} {image.digest}  IMAGE ID {image.id[7:19]}")
assert engine.images()[0].digest == str(pulled.digest)  # the digest the registry gave is the one kept

# %% [markdown]
# ## 5.3 私有 Docker Registry / A private registry, a login, a push
#
# > 可以在本地搭建私有的 `Docker Registry`。
#
# `examples/hello` built as `localhost:5000/lab/hello` (no tag: `latest`). Its registry has an account, so a
# push before `docker login` is refused, and so is a login with a wrong password: both with the typed error
# `sim.errors.AuthenticationError` (HTTP 401, code `UNAUTHORIZED`, as Distribution answers). The login is
# checked against the registry before it is kept. A push then sends the blobs first (each skipped when the
# registry has it, `HEAD /v2/<name>/blobs/<digest>`) and the manifest last.

# %%
examples = find_examples()
context_1, context_2 = workdir / "hello-1", workdir / "hello-2"  # version 1 and version 2 of the same program
shutil.copytree(examples / "hello", context_1)
shutil.copytree(examples / "hello", context_2)
(context_2 / "hello.txt").write_text("version 2 of the build context\n")

v1 = engine.build(context_1, tag="localhost:5000/lab/hello").image
print(f"built {v1.tags[0]}: ImageID {v1.id[7:19]}, manifest digest {v1.digest[:19]}..., {len(v1.diff_ids)} layers")

for attempt, call in [("push before docker login", lambda: engine.push("localhost:5000/lab/hello")),
                      ("login with a wrong password", lambda: engine.login("localhost:5000", "student", "wrong"))]:
    try:
        call()
        raise AssertionError(f"{attempt}: the registry let it through")
    except AuthenticationError as exc:
        print(f"{attempt}: {type(exc).__name__} (code {exc.code}, HTTP {exc.status}): {exc}")
print("docker login localhost:5000 -u student:", engine.login("localhost:5000", "student", "s3cret"))

pushed_1 = engine.push("localhost:5000/lab/hello")
print("\n".join(pushed_1.lines()))
print(f"{pushed_1.bytes_sent:,} B sent")
assert str(pushed_1.digest) == v1.digest  # the registry names the image by the digest it has here

# %% [markdown]
# ### Pull it on another machine
#
# A second engine (another "machine", with its own image store) logs in and pulls the same reference. The
# manifest's digest and the ImageID arrive unchanged: content addressing makes "the same image" a checkable
# fact, not a promise. Then it runs it.

# %%
with on_error():
    other = sim.connect(BACKEND, registries=RegistryConfig(models=(private,)), **state("other"))
    cleanup.callback(other.close)
other.login("localhost:5000", "student", "s3cret")
got = other.pull("localhost:5000/lab/hello")
print("\n".join(got.lines()))
print(f"same manifest digest: {got.digest == pushed_1.digest}; same ImageID: {str(got.image_id) == v1.id}")
print("docker run localhost:5000/lab/hello ->", other.run("localhost:5000/lab/hello", remove=True).stdout.decode().strip())
assert got.digest == pushed_1.digest and str(got.image_id) == v1.id

# %% [markdown]
# ## 5.4 同一层只存一次 / A second repository: mounted, not sent, stored once
#
# The same image pushed to a second repository, `lab/web`. The engine remembers which repositories of the
# registry hold each blob, so it asks for a **cross-repository mount** (`POST /v2/lab/web/blobs/uploads/?mount=<digest>&from=lab/hello`)
# instead of uploading: `Mounted from lab/hello`, and only the manifest crosses the link. The registry stores
# each blob once however many repositories link it (as Distribution's storage does).

# %%
engine.tag("localhost:5000/lab/hello", "localhost:5000/lab/web")
pushed_web = engine.push("localhost:5000/lab/web")
print("\n".join(pushed_web.lines()))
stats = private.stats()
print(f"{pushed_web.bytes_sent:,} B sent (the manifest only)\nstored once: localhost:5000 keeps {stats.stored_bytes:,} B; "
      f"without de-duplication the two repositories would take {stats.linked_bytes:,} B")
assert {b.action for b in pushed_web.blobs} == {"mounted"} and pushed_web.bytes_sent == pushed_web.manifest_size
assert stats.stored_bytes < stats.linked_bytes

# %% [markdown]
# The registry as a graph: registry → repositories → tags → manifests → layers. Here two tags reach one
# manifest node: one image, stored once. A layer two manifests list is **shared** (orange, from 5.5 on):
# the same bytes under the same digest, stored once. (Each manifest also names a config blob, not drawn.)

# %%
KIND_COLOURS = dict(registry="#c7c7ef", repository="#8fb3de", tag="#f4e27a", manifest="#9fd39b", layer="#dddddd")
SHARED_COLOUR = "#f4a261"
LEVELS = [("registry", "注册服务器"), ("repository", "仓库"), ("tag", "标签"), ("manifest", "清单"), ("layer", "层")]


def registry_graph(registry):
    """registry -> repositories -> tags -> manifests -> layers, as a networkx DiGraph.

    Nodes carry ``level`` (0-4), ``kind`` and ``label``; an untagged manifest hangs from its repository by an
    edge marked ``untagged``. Layers are nodes by digest, so a layer several manifests list is one node."""
    g = nx.DiGraph()
    root = ("registry", registry.name)
    g.add_node(root, level=0, kind="registry", label=registry.name)
    for name, repo in registry.repositories().items():
        rnode = ("repository", name)
        g.add_node(rnode, level=1, kind="repository", label=name)
        g.add_edge(root, rnode)
        tags_of = {d: sorted(t for t, m in repo.tags.items() if m == d) for d in repo.manifests}
        for digest in sorted(repo.manifests, key=lambda d: tags_of[d] or ["~"]):  # tagged first, untagged last
            mnode = ("manifest", digest)
            g.add_node(mnode, level=3, kind="manifest", label=f"manifest\n{digest[7:19]}")
            for tag in tags_of[digest]:
                tnode = ("tag", name, tag)
                g.add_node(tnode, level=2, kind="tag", label=f"{name.split('/')[-1]}:{tag}")
                g.add_edge(rnode, tnode)
                g.add_edge(tnode, mnode)
            if not tags_of[digest]:
                g.add_edge(rnode, mnode, untagged=True)
            for layer in json.loads(registry.manifest(digest))["layers"]:
                lnode = ("layer", layer["digest"])
                g.add_node(lnode, level=4, kind="layer", label=f"{layer['digest'][7:19]}\n{layer['size'] / 1024:,.1f} KiB")
                g.add_edge(mnode, lnode)
    return g


def _margins(edges, pos, boxes, dpi):
    """For each edge, the gap (in points) from each end's centre to the edge of its label box, plus 2 pt."""
    out = ([], [])
    for u, v in edges:
        (ux, uy), (vx, vy) = pos[u], pos[v]
        dx, dy = vx - ux, vy - uy
        norm = max((dx * dx + dy * dy) ** 0.5, 1e-9)
        for side, node in zip(out, (u, v)):
            half_w, half_h = boxes[node].width / 2, boxes[node].height / 2
            t = min(half_w / abs(dx / norm) if dx else float("inf"), half_h / abs(dy / norm) if dy else float("inf"))
            side.append(t * 72 / dpi + 2)
    return out


def layered_layout(g):
    """One row per level, the registry on top; in each row, nodes ordered by the mean x of their parents
    (one barycentre pass, the first step of a Sugiyama layout: fewer crossing edges)."""
    rows = {}
    for node, level in g.nodes(data="level"):
        rows.setdefault(level, []).append(node)
    pos = {}
    for level in sorted(rows):
        row = rows[level]
        if level:
            row.sort(key=lambda n: sum(pos[p][0] for p in g.predecessors(n)) / g.in_degree(n))
        for i, node in enumerate(row):
            pos[node] = ((i + 1) / (len(row) + 1), -level)
    return pos


def draw_registry(registry, title):
    g = registry_graph(registry)
    pos = layered_layout(g)
    shared = {n for n in g if g.nodes[n]["kind"] == "layer" and g.in_degree(n) > 1}
    fig, ax = plt.subplots(figsize=(12, 7))
    texts = {}
    for kind, colour in [*KIND_COLOURS.items(), ("shared", SHARED_COLOUR)]:
        nodes = [n for n in g if (n in shared if kind == "shared" else g.nodes[n]["kind"] == kind and n not in shared)]
        texts.update(nx.draw_networkx_labels(g, pos, labels={n: g.nodes[n]["label"] for n in nodes}, font_size=8, ax=ax,
                                             bbox=dict(boxstyle="round,pad=0.4", facecolor=colour, edgecolor="#444444")))
    ys = [y for _, y in pos.values()]
    ax.set_xlim(-0.15, 1.0)
    ax.set_ylim(min(ys) - 0.4, max(ys) + 0.4)
    for level, (en, zh) in enumerate(LEVELS):
        ax.text(-0.14, -level, bi(en, zh), fontsize=9, ha="left", va="center", color="#333333")
    fig.canvas.draw()  # lay the label boxes out, so each arrow can stop at the edge of its box
    boxes = {n: t.get_bbox_patch().get_window_extent() for n, t in texts.items()}
    pixels = {n: ax.transData.transform(p) for n, p in pos.items()}
    for dashed in (False, True):
        edges = [(u, v) for u, v, d in g.edges(data=True) if bool(d.get("untagged")) == dashed]
        if edges:
            source, target = _margins(edges, pixels, boxes, fig.dpi)
            nx.draw_networkx_edges(g, pos, edgelist=edges, ax=ax, arrows=True, arrowstyle="-|>", arrowsize=12,
                                   node_size=0, min_source_margin=source, min_target_margin=target,
                                   edge_color="#666666", style="dashed" if dashed else "solid",
                                   connectionstyle="arc3,rad=0.25" if dashed else "arc3")
    handles = [Patch(facecolor=c, edgecolor="#444444", label=k) for k, c in KIND_COLOURS.items()]
    handles += [Patch(facecolor=SHARED_COLOUR, edgecolor="#444444", label="shared layer (listed by >1 manifest, stored once)"),
                Line2D([0], [0], color="#666666", linestyle="--", label="untagged manifest (no tag names it)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(title)
    ax.axis("off")
    return fig


graph = registry_graph(private)
print(f"{private.name}: {sum(1 for n in graph if n[0] == 'repository')} repositories, "
      f"{sum(1 for n in graph if n[0] == 'manifest')} manifest(s), {sum(1 for n in graph if n[0] == 'layer')} distinct layers")
show(draw_registry(private, "localhost:5000 after pushing one image to two repositories"))

# %% [markdown]
# ## 5.5 `latest` 标签 / Moving `latest`: what the old image becomes
#
# `latest` is not "the newest": it is only the tag used when none is given, and a push moves it. Version 2 of
# the program is built and pushed as `localhost:5000/lab/hello` (so, `latest`). In the registry `latest` now
# names the new manifest; the old manifest is still there, **untagged**, and can be pulled by its digest
# (`name@sha256:...`, which never moves). `lab/web:latest` still names it. On the other machine, the next
# `docker pull` moves its local `latest` too, and its copy of version 1 becomes a dangling image
# (`<none>:<none>`), still known by ImageID and digest.

# %%
v2 = engine.build(context_2, tag="localhost:5000/lab/hello").image
pushed_2 = engine.push("localhost:5000/lab/hello")
print("\n".join(pushed_2.lines()))
repo = private.repositories()["lab/hello"]
print(f"latest moved: lab/hello:latest -> {repo.tags['latest'][:19]}... (was {pushed_1.digest[:19]}...)")
print(f"tags of lab/hello: {engine.registry_tags('localhost:5000/lab/hello')}; manifests kept: {len(repo.manifests)}")
assert repo.tags == {"latest": pushed_2.digest} and pushed_1.digest in repo.manifests

old = engine.pull(f"localhost:5000/lab/hello@{pushed_1.digest}")
print(f"the old image: untagged in lab/hello, still pullable by digest -> ImageID {str(old.image_id)[7:19]} "
      f"(version 1: {str(old.image_id) == v1.id})")
assert str(old.image_id) == v1.id

other.pull("localhost:5000/lab/hello")  # the other machine follows latest
print("docker images --digests on the other machine:")
for image in other.images():
    print(f"  {(image.tags or ('<none>:<none>',))[0]:<34} {image.digest[:19]}...  IMAGE ID {image.id[7:19]}")
dangling = [i for i in other.images() if not i.tags]
assert [i.id for i in dangling] == [v1.id]
show(draw_registry(private, "localhost:5000 after latest moved to version 2"))

# %% [markdown]
# ## 5.6 国内镜像加速器 / A mirror of Docker Hub
#
# > 因为网络原因国内的云服务商提供了针对 `Docker Hub` 的镜像服务 (`Registry Mirror`)，这些镜像服务被称为**加速器**。
#
# A **mirror (加速器)** is a pull-through cache in front of one upstream registry. Docker's
# `registry-mirrors` setting sends **Docker Hub pulls only** to it, first; when the mirror fails or lacks the
# image, the engine asks the hub itself. The first pull through the mirror fetches every blob from the
# upstream and keeps it; the next pull, from any machine, gets the blobs from the mirror's cache. Tag
# lookups still go upstream first (a tag can move; a digest cannot). Pushes go to the registry, never a
# mirror.
#
# Two machines configured with the same mirror pull `busybox`; every registry counts the bytes it sends.

# %%
mirror = ModelMirror("localhost:5001", hub.client())  # a pull-through cache of the model Docker Hub
mirror_config = RegistryConfig(mirrors=("localhost:5001",), models=(hub, mirror))
traffic = []
for name in ("machine A", "machine B"):
    with on_error():
        machine = sim.connect(BACKEND, registries=mirror_config, **state(name.replace(" ", "-")))
        cleanup.callback(machine.close)
    hub_before, mirror_before = hub.stats(), mirror.stats()
    result = machine.pull("busybox")
    row = {"machine": name, "hub_to_mirror": hub.stats().bytes_out - hub_before.bytes_out,
           "mirror_to_machine": mirror.stats().bytes_out - mirror_before.bytes_out, "manifest": result.manifest_bytes,
           **{origin: sum(b.bytes for b in result.blobs if b.origin == origin) for origin in ("upstream", "cache")}}
    traffic.append(row)
    print(f"{name}: pull busybox via {result.registry}: " + ", ".join(f"{b.kind} {b.bytes:,} B from {b.origin}" for b in result.blobs))
    print(f"   docker.io -> mirror {row['hub_to_mirror']:,} B; mirror -> {name} {row['mirror_to_machine']:,} B")
    assert result.registry == "localhost:5001" and row["mirror_to_machine"] == row["manifest"] + row["upstream"] + row["cache"]
first, second = traffic
assert first["cache"] == 0 and second["upstream"] == 0 and second["hub_to_mirror"] == second["manifest"]
print("second machine: every blob from the mirror's cache; only the tag's manifest went upstream "
      f"({second['hub_to_mirror']} B instead of {first['hub_to_mirror']:,} B)")

# %%
KiB = 1024
fig, ax = plt.subplots(figsize=(9, 4.8))
x = range(len(traffic))
width = 0.36
hub_link = [row["hub_to_mirror"] / KiB for row in traffic]
ax.bar([i - width / 2 for i in x], hub_link, width, color="#8fb3de", label=bi("Docker Hub → mirror link", "上游"))
bottom = [0.0] * len(traffic)
for key, colour, label in [("upstream", "#f4a261", "mirror → machine: blobs the mirror fetched upstream for this pull"),
                           ("cache", "#9fd39b", bi("mirror → machine: blobs from the mirror's cache", "缓存")),
                           ("manifest", "#c7c7ef", "mirror → machine: the manifest (tag asked upstream)")]:
    heights = [row[key] / KiB for row in traffic]
    ax.bar([i + width / 2 for i in x], heights, width, bottom=bottom, color=colour, label=label)
    bottom = [b + h for b, h in zip(bottom, heights)]
for i, row in enumerate(traffic):
    ax.text(i - width / 2, row["hub_to_mirror"] / KiB, f"{row['hub_to_mirror']:,} B", ha="center", va="bottom", fontsize=8)
    ax.text(i + width / 2, row["mirror_to_machine"] / KiB, f"{row['mirror_to_machine']:,} B", ha="center", va="bottom", fontsize=8)
ax.set_xticks(list(x), [f"{row['machine']}\n(pull {n} through the mirror)" for n, row in enumerate(traffic, start=1)])
ax.set_xlabel("pull of busybox")
ax.set_ylabel("bytes crossing the link (KiB)")
ax.set_title(bi("Where each byte came from: two pulls through a mirror", "加速器"))
ax.set_ylim(0, max(bottom + hub_link) * 1.25)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
show(fig)

# %% [markdown]
# ## 5.7 真实的仓库服务 / The same against real registry servers (`BACKEND = "real"`)
#
# Three real servers on 127.0.0.1 (`realrt.registries.server.RegistryServer`: Debian's `docker-registry`
# with a generated config, each in a folder of `workdir`, on a port the kernel picks):
#
# * a **private registry** with an account: htpasswd (bcrypt) over TLS, its certificate from a CA
#   generated for it; the engines trust that CA the way Docker does, from `certs.d/<host>/ca.crt`;
# * a stand-in **Docker Hub** (plain HTTP), seeded with the same busybox image the model hub holds;
#   the engines' `endpoints` map `docker.io` to it;
# * a **mirror** (`proxy.remoteurl` = the stand-in hub), the engines' `registry-mirrors`.
#
# The real engine logs in, builds version 1 of `examples/hello`, pushes it over HTTPS and another real
# engine pulls it back; the model builds the same context; `docker images --digests` shows the same manifest
# digest on both. Every server is registered with `cleanup`, and each cell stops them all if it fails.

# %%
servers = []
if BACKEND == "real":
    from realrt.registries.server import RegistryServer

    with on_error():
        real_hub = cleanup.enter_context(RegistryServer(workdir / "srv-hub"))
        real_mirror = cleanup.enter_context(RegistryServer(workdir / "srv-mirror", mirror_of=real_hub.url))
        real_private = cleanup.enter_context(RegistryServer(workdir / "srv-private", accounts={"student": "s3cret"}))
        servers = [real_hub, real_mirror, real_private]
    for role, server in zip(("Docker Hub (stand-in)", "mirror 加速器", "private 私有仓库"), servers):
        print(f"{role:22} {server.url:28} pid {server.pid}  mirror of: {server.mirror_of or '-'}")
else:
    print("BACKEND is 'sim': no real servers; set BACKEND = 'real' to start three on 127.0.0.1")

# %%
if BACKEND == "real":
    with on_error():
        config_dir = workdir / "docker-config"  # config.json (logins) and certs.d, as ~/.docker and /etc/docker
        (config_dir / "certs.d" / real_private.host).mkdir(parents=True)
        shutil.copy(real_private.ca_file, config_dir / "certs.d" / real_private.host / "ca.crt")
        real_config = RegistryConfig(mirrors=(real_mirror.url,), endpoints={"docker.io": real_hub.url}, config_dir=config_dir)

        engine.tag("busybox", f"{real_hub.host}/library/busybox:latest")  # seed the stand-in hub over HTTP
        engine.push(f"{real_hub.host}/library/busybox:latest")

        builder = sim.connect("real", registries=real_config, state_dir=str(workdir / "real-builder"))
        cleanup.callback(builder.close)
        base = builder.pull("busybox")  # docker.io -> the real mirror -> the stand-in hub
        print(f"real: pull busybox via {base.registry} (the mirror) -> {base.digest}")
        try:
            builder.login(real_private.host, "student", "wrong")
            raise AssertionError("the real registry took a wrong password")
        except AuthenticationError as exc:
            print(f"real: login with a wrong password: {type(exc).__name__} (code {exc.code}, HTTP {exc.status})")
        print("real: docker login", real_private.host, "->", builder.login(real_private.host, "student", "s3cret"))
        ref = f"{real_private.host}/lab/hello:1"
        built = builder.build(context_1, tag=ref).image
        real_pushed = builder.push(ref)
        print("\n".join(real_pushed.lines()))

        puller = sim.connect("real", registries=real_config, state_dir=str(workdir / "real-puller"))
        cleanup.callback(puller.close)
        puller.login(real_private.host, "student", "s3cret")
        real_pulled = puller.pull(ref)
        assert real_pulled.digest == real_pushed.digest and str(real_pulled.image_id) == built.id
        print("real registry: pushed and pulled back with the same digest", real_pulled.digest)

        model = sim.connect("sim")  # the model builds the same context
        cleanup.callback(model.close)
        model.pull("busybox")
        twin = model.build(context_1, tag="lab/hello:1").image
        print(f"{'':16}{'REPOSITORY':<30}{'TAG':<5}{'DIGEST':<73}IMAGE ID")
        for who, image in [("kernel (pulled)", puller.inspect_image(ref)), ("model (built)", twin)]:
            repository, _, tag = image.tags[0].rpartition(":")
            print(f"{who:<16}{repository:<30}{tag:<5}{image.digest:<73}{image.id[7:19]}")
        assert twin.digest == str(real_pulled.digest) == v1.digest and twin.id == built.id
        print("model and kernel: the same manifest digest for the same image")
        print("search on the real private registry:", builder.search("", server=real_private.host))
else:
    print("BACKEND is 'sim': the model registries above are all there is")

# %%
if BACKEND == "real":
    with on_error():
        cached = sorted(p.parent.name[:12] for p in (real_mirror.data_dir / "docker/registry/v2/blobs").rglob("data"))
        print(f"the mirror cached {len(cached)} blobs while serving the first pull: {cached}")
        real_hub.stop()  # the upstream goes away ...
        late = sim.connect("real", registries=real_config, state_dir=str(workdir / "real-late"))
        cleanup.callback(late.close)
        again = late.pull("busybox")  # ... and a new machine still gets busybox, from the mirror's cache
        assert again.registry == real_mirror.host and again.digest == base.digest
        print(f"the mirror answered with its upstream stopped: {again.bytes_received:,} B from {again.registry}, "
              f"digest {again.digest}")
else:
    print("BACKEND is 'sim': the mirror above is the model's (ModelMirror)")

# %% [markdown]
# ## 小结 / Summary
#
# | 中文 | English | in layerlab |
# |---|---|---|
# | 注册服务器 | registry (`Docker Registry`) | `ModelRegistry`, `realrt.registries.server.RegistryServer` |
# | 仓库 | repository | `registry.repositories()`, `engine.search(term, server=...)` |
# | 标签 | tag (mutable; `latest` by default) | `engine.tag(src, dst)`, `engine.registry_tags(repo)` |
# | 清单 / 摘要 | manifest / digest (immutable) | `ImageInfo.digest`, `name@sha256:...` |
# | 推送 / 拉取 | push / pull | `engine.push(ref)`, `engine.pull(ref)`: `PushResult`, `PullResult` |
# | 跨仓库挂载 | cross-repository mount | `Mounted from ...`, `RegistryStats.stored_bytes` vs `linked_bytes` |
# | 公开仓库 / Docker Hub | public registry | `engine.registries.hub` (a model, `docker.io`) |
# | 加速器 | registry mirror | `ModelMirror`, `RegistryConfig(mirrors=...)`, `RegistryServer(mirror_of=...)` |
# | 私有仓库 / 登录 | private registry / login | `ModelRegistry(accounts=...)`, `engine.login(...)`, `AuthenticationError` |
#
# `layerlab tour --chapter 5` prints the same story in a terminal.

# %%
cleanup.close()  # last registered first: engines closed, registry servers stopped (SIGTERM, reaped), workdir removed
assert not any(server.running for server in servers) and not workdir.exists()
print(f"stopped {len(servers)} registry servers; removed {workdir}")
