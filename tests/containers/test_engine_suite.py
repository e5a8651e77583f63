"""Images and containers: one abstract suite, run on the model and on the kernel.

It follows the seed's chapters: 镜像 (an image is a stack of read-only layers,
built layer by layer and reused), 容器 (a container is an instance of the
image, with its own writable layer, lost with it) and 数据卷 (volumes bypass
the container layer and outlive it).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

import sim
from sim.interface import Engine
from tests.backends import RealBackend, SimBackend

BUILDFILE = """\
FROM busybox
ARG VERSION=1.0
ENV GREETING=hello APP_VERSION=$VERSION
LABEL org.example.title="demo app"
WORKDIR /app
COPY hello.txt ./
COPY conf/ /etc/app/
RUN echo "$GREETING world $APP_VERSION" > /app/out.txt && mkdir -p /var/cache/app && rm -rf /etc/group
EXPOSE 8080
VOLUME /data
CMD ["cat", "/app/out.txt"]
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Buildfile").write_text(BUILDFILE)
    (tmp_path / "hello.txt").write_text("from the context\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.conf").write_text("debug = false\n")
    return tmp_path


class EngineSuite:
    @pytest.fixture
    def eng(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        yield engine
        engine.close()  # type: ignore[attr-defined]

    def test_build_makes_one_layer_per_file_changing_step(self, eng: Engine, context: Path) -> None:
        result = eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        layered = [s for s in result.steps if s.layer]
        assert [s.instruction.split()[0] for s in layered] == ["COPY", "COPY", "RUN"]
        assert len(result.image.diff_ids) == 4  # busybox + 3
        history = eng.history("demo:1")  # type: ignore[attr-defined]
        assert sum(not h.empty_layer for h in history) == 4
        assert history[0].created_by.startswith("CMD")
        assert result.image.config["ExposedPorts"] == ["8080/tcp"] and result.image.config["Volumes"] == ["/data"]

    def test_second_build_is_cached_and_identical(self, eng: Engine, context: Path) -> None:
        first = eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        second = eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        assert [s.cached for s in second.steps if s.layer] == [True, True, True]
        assert second.image.id == first.image.id
        (context / "conf" / "app.conf").write_text("debug = true\n")
        third = eng.build(context, tag="demo:2")  # type: ignore[attr-defined]
        # The first COPY still hits; a miss invalidates every later step, as in Docker.
        assert [s.cached for s in third.steps if s.layer] == [True, False, False]

    def test_a_changed_build_arg_misses_the_cache(self, eng: Engine, tmp_path: Path) -> None:
        (tmp_path / "Buildfile").write_text("FROM busybox\nARG V=1\nRUN echo $V > /v\n")
        eng.build(tmp_path, tag="a")  # type: ignore[attr-defined]
        second = eng.build(tmp_path, tag="b", build_args={"V": "2"})  # type: ignore[attr-defined]
        assert [s.cached for s in second.steps if s.layer] == [False]
        assert eng.run("b", "cat /v", remove=True).stdout == b"2\n"  # type: ignore[attr-defined]

    def test_run_prints_and_returns_the_exit_code(self, eng: Engine, context: Path) -> None:
        eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        result = eng.run("demo:1", remove=True)  # type: ignore[attr-defined]
        assert result.exit_code == 0 and result.stdout == b"hello world 1.0\n"
        assert eng.run("demo:1", "exit 3", remove=True).exit_code == 3  # type: ignore[attr-defined]

    def test_container_layer_diff_commit_and_rm(self, eng: Engine, context: Path) -> None:
        eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        eng.create("demo:1", "echo new > /app/new.txt && rm /app/hello.txt && echo x >> /etc/passwd", name="c1")  # type: ignore[attr-defined]
        assert eng.start("c1").exit_code == 0  # type: ignore[attr-defined]
        changes = {str(c) for c in eng.diff("c1")}  # type: ignore[attr-defined]
        assert {"A /app/new.txt", "D /app/hello.txt", "C /etc/passwd", "C /app", "C /etc"} <= changes
        image = eng.commit("c1", "demo:committed")  # type: ignore[attr-defined]
        assert len(image.diff_ids) == 5
        out = eng.run("demo:committed", "ls /app; cat /app/new.txt", remove=True)  # type: ignore[attr-defined]
        assert out.stdout.split() == [b"new.txt", b"out.txt", b"new"]
        freed = eng.remove("c1")  # type: ignore[attr-defined]
        assert freed > 0
        with pytest.raises(sim.ContainerNotFoundError):
            eng.diff("c1")  # type: ignore[attr-defined]

    def test_volume_keeps_data_the_container_layer_loses(self, eng: Engine, context: Path) -> None:
        eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        eng.create("demo:1", "echo kept > /data/file && echo lost > /tmp/file", name="w", volumes={"/data": "appdata"})  # type: ignore[attr-defined]
        eng.start("w")  # type: ignore[attr-defined]
        upper_paths = [str(c) for c in eng.diff("w")]  # type: ignore[attr-defined]
        assert "A /tmp/file" in upper_paths and not any("/data/file" in p for p in upper_paths)
        eng.remove("w")  # type: ignore[attr-defined]
        again = eng.run("demo:1", "cat /data/file; cat /tmp/file", volumes={"/data": "appdata"}, remove=True)  # type: ignore[attr-defined]
        assert again.stdout == b"kept\n" and again.exit_code == 1
        assert eng.volume_info("appdata").size == 5  # type: ignore[attr-defined]

    def test_image_volume_gets_an_anonymous_volume(self, eng: Engine, context: Path) -> None:
        eng.build(context, tag="demo:1")  # the Buildfile says VOLUME /data  # type: ignore[attr-defined]
        eng.create("demo:1", "echo log > /data/x", name="anon")  # type: ignore[attr-defined]
        eng.start("anon")  # type: ignore[attr-defined]
        assert not any(c.path.startswith("/data/") for c in eng.diff("anon"))  # type: ignore[attr-defined]
        assert len(eng.list_volumes()) == 1  # type: ignore[attr-defined]
        eng.remove("anon", volumes=True)  # type: ignore[attr-defined]
        assert eng.list_volumes() == []  # type: ignore[attr-defined]

    def test_df_counts_shared_layers_once(self, eng: Engine, context: Path) -> None:
        eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        (context / "Buildfile").write_text("FROM busybox\nRUN echo other > /other\n")
        eng.build(context, tag="other:1")  # type: ignore[attr-defined]
        usage = eng.df()  # type: ignore[attr-defined]
        base = eng.inspect_image("busybox").size  # type: ignore[attr-defined]
        assert usage.images == 3 and usage.shared_bytes >= base

    def test_save_load_round_trip(self, eng: Engine, context: Path) -> None:
        built = eng.build(context, tag="demo:1")  # type: ignore[attr-defined]
        buf = io.BytesIO()
        eng.save(["demo:1"], buf)  # type: ignore[attr-defined]
        eng.remove_image("demo:1")  # type: ignore[attr-defined]
        buf.seek(0)
        loaded = eng.load(buf)  # type: ignore[attr-defined]
        assert [i.id for i in loaded] == [built.image.id]

    # -- errors: typed, before any side effect -------------------------------------------

    def test_buildfile_errors_name_file_and_line(self, eng: Engine, context: Path) -> None:
        (context / "Buildfile").write_text("FROM busybox\nRUN true\nADDD x /x\n")
        with pytest.raises(sim.BuildfileError, match=r"Buildfile:3: unknown instruction: ADDD \(did you mean ADD\?\)"):
            eng.build(context)  # type: ignore[attr-defined]

    def test_failing_run_leaves_no_layer(self, eng: Engine, context: Path) -> None:
        before = eng.df()  # type: ignore[attr-defined]
        (context / "Buildfile").write_text("FROM busybox\nRUN echo partial > /p && false\n")
        with pytest.raises(sim.BuildError, match="exit code: 1"):
            eng.build(context, tag="broken:1")  # type: ignore[attr-defined]
        after = eng.df()  # type: ignore[attr-defined]
        assert (after.images, after.layers) == (max(before.images, 1), max(before.layers, 1))

    def test_unknown_image_and_bad_reference(self, eng: Engine) -> None:
        with pytest.raises(sim.ImageNotFoundError):
            eng.run("nothing-here:1")  # type: ignore[attr-defined]
        with pytest.raises(sim.InvalidReferenceError, match="invalid reference format"):
            eng.run("Bad:Ref")  # type: ignore[attr-defined]

    def test_name_conflicts_and_unknown_containers(self, eng: Engine) -> None:
        eng.create("busybox", "true", name="same")  # type: ignore[attr-defined]
        with pytest.raises(sim.ConflictError, match="already in use"):
            eng.create("busybox", "true", name="same")  # type: ignore[attr-defined]
        with pytest.raises(sim.ContainerNotFoundError):
            eng.remove("nope")  # type: ignore[attr-defined]

    def test_image_in_use_is_not_removed(self, eng: Engine) -> None:
        eng.create("busybox", "true", name="user")  # type: ignore[attr-defined]
        with pytest.raises(sim.ConflictError, match="being used by container user"):
            eng.remove_image("busybox")  # type: ignore[attr-defined]


class TestSimEngine(EngineSuite, SimBackend):
    def test_detached_runs_finish_at_once_in_the_model(self, eng: Engine) -> None:
        eng.create("busybox", "echo started; sleep 30", name="bg")  # type: ignore[attr-defined]
        assert eng.start("bg", detach=True) is None  # type: ignore[attr-defined]
        assert eng.wait("bg") == 0 and eng.logs("bg") == b"started\n"  # type: ignore[attr-defined]
        with pytest.raises(sim.ContainerStateError, match="not running"):
            eng.kill("bg")  # type: ignore[attr-defined]


@pytest.mark.real
class TestRealEngine(EngineSuite, RealBackend):
    def test_detached_container_exec_stop_and_rm(self, eng: Engine) -> None:
        eng.create("busybox", "echo started; sleep 30", name="bg")  # type: ignore[attr-defined]
        eng.start("bg", detach=True)  # type: ignore[attr-defined]
        assert [c.state for c in eng.containers(all=False)] == ["running"]  # type: ignore[attr-defined]
        with pytest.raises(sim.ContainerStateError, match="running"):
            eng.remove("bg")  # type: ignore[attr-defined]
        inside = eng.exec("bg", "cat /proc/1/cmdline | tr '\\0' ' '")  # type: ignore[attr-defined]
        assert inside.stdout == b"sleep 30 "  # busybox sh execs its last command: sleep is PID 1
        assert eng.stop("bg", grace=0.5) == 137  # PID 1 ignores SIGTERM: killed after the grace  # type: ignore[attr-defined]
        assert eng.logs("bg") == b"started\n"  # type: ignore[attr-defined]
        eng.remove("bg")  # type: ignore[attr-defined]
