"""Chapter 2 of the tour: 镜像 images.

A Buildfile built layer by layer in a scratch engine of the tour's backend: the build cache,
the layer stack, ``docker history``, layers shared by a second image, ``df`` and the ImageID.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim.tour._common import Tour, scratch_engine, short_id, shorten, write_context

if TYPE_CHECKING:
    from sim.containers.core import EngineCore
    from sim.results import BuildResult

__all__ = ["chapter_images", "build_steps", "SITE_CONTEXT"]

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


def build_steps(result: BuildResult) -> list[str]:
    """One line per build step, as ``docker build`` prints them ("CACHED" when reused)."""
    out = []
    for step in result.steps:
        if step.layer is None:
            what = "base image" if step.instruction.startswith("FROM") else "config only (no layer)"
        else:
            what = f"layer {short_id(step.layer)}, {step.size:,} B of files"
        out.append(f"#{step.number:<3}{'CACHED ' if step.cached else '':<7}{shorten(step.instruction, 50):<52}{what}")
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


def chapter_images(t: Tour) -> None:
    with scratch_engine(t) as (engine, folder):
        context = write_context(folder / "site", SITE_CONTEXT)

        t.section("2.1", "逐层构建", "building an image layer by layer (a Buildfile, the Dockerfile syntax)")
        t.say("Each COPY, ADD or RUN runs on top of the layers so far and freezes what it changed as a new\n"
              "layer (层); the other instructions only change the image's configuration. The Buildfile:")
        t.lines([line for line in SITE_CONTEXT["Buildfile"].splitlines() if line], 6)
        first = engine.build(context, tag="site:1")
        t.lines(build_steps(first))
        t.say(f"=> site:1, ImageID {short_id(first.image.id)}, {len(first.image.diff_ids)} layers")

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
            text = f"layer {i}: {shorten(h.created_by, 40)}"
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
            t.print(f"    {short_id(h.layer):<14}{shorten(h.created_by, 56):<58}{h.size:>9,} B  {h.empty_layer}")

        t.section("2.5", "复用与定制", "a second image on the same base shares layers (reuse, then customise)")
        t.lines([line for line in SITE_CONTEXT["Buildfile.api"].splitlines() if line], 6)
        second = engine.build(context, buildfile="Buildfile.api", tag="api:1")
        t.lines(build_steps(second))
        both = set(first.image.diff_ids) & set(second.image.diff_ids)
        for i, (d, c) in enumerate(zip(second.image.diff_ids, second.image.chain_ids)):
            mark = "shared with site:1, stored once" if d in both else "only in api:1"
            t.print(f"    layer {i}: DiffID {short_id(d)}  ChainID {short_id(c)}  {mark}")

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
        t.say(f"tag site:1 site:latest -> ImageID {short_id(tagged.id)}: a new name, the same image "
              f"({tagged.id == first.image.id}).")
