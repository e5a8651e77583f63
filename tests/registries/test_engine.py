"""The registry commands of both engines (pull, push, tag, login, logout, search, images --digests)
over model registries, and an image crossing from one backend to the other with the same digests."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.errors import AuthenticationError, ImageNotFoundError, RegistryConfigError, UnsupportedOperationError
from sim.registries import ModelMirror, ModelRegistry
from sim.registries.config import RegistryConfig
from tests.backends import require_real

BUILDFILE = "FROM busybox\nCOPY note.txt /note.txt\nRUN echo built > /built.txt && rm /bin/true\nCMD [\"cat\", \"/note.txt\"]\n"

Maker = Callable[..., Any]


@pytest.fixture(params=["sim", pytest.param("real", marks=pytest.mark.real)])
def make(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Maker]:
    """``make(config)``: an engine of this backend with those registry settings (closed afterwards)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    made: list[Any] = []

    def factory(config: RegistryConfig | None = None, backend: str | None = None) -> Any:
        kind = backend or request.param
        if kind == "sim":
            engine = sim.connect("sim", registries=config)
        else:
            engine = require_real(state_dir=str(tmp_path_factory.mktemp("state")))
            engine.close()  # type: ignore[attr-defined]
            engine = sim.connect("real", state_dir=engine.state_dir, registries=config)  # type: ignore[attr-defined]
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        engine.close()
        journal = getattr(engine, "journal", None)
        assert journal is None or list(journal.records()) == [], "the real engine left a mount, cgroup or process"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Buildfile").write_text(BUILDFILE)
    (tmp_path / "note.txt").write_text("pushed and pulled\n")
    return tmp_path


def test_pull_from_the_model_hub_then_run(make: Maker) -> None:
    engine = make()
    result = engine.pull("busybox")
    assert result.registry == "docker.io" and result.repository == "library/busybox"
    assert [i.tags for i in engine.images()] == [("busybox:latest",)]
    assert engine.images()[0].digest == str(result.digest)
    assert engine.run("busybox", ["echo", "hi"], remove=True).stdout == b"hi\n"


def test_push_to_a_private_registry_and_pull_it_back_elsewhere(make: Maker, context: Path) -> None:
    private = ModelRegistry("localhost:5000")
    config = RegistryConfig(models=(private,))
    builder = make(config)
    built = builder.build(context, tag="localhost:5000/lab/app:1").image
    pushed = builder.push("localhost:5000/lab/app:1")
    assert {b.action for b in pushed.blobs} == {"uploaded"}
    assert builder.push("localhost:5000/lab/app:1").bytes_sent == pushed.manifest_size  # unchanged: manifest only
    puller = make(config)
    pulled = puller.pull("localhost:5000/lab/app:1")
    assert pulled.digest == pushed.digest and str(pulled.image_id) == built.id
    assert puller.run("localhost:5000/lab/app:1", remove=True).stdout == b"pushed and pulled\n"
    assert puller.registry_tags("localhost:5000/lab/app") == ["1"]


@pytest.mark.real
def test_an_image_crosses_backends_with_the_same_digests(context: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Built by the model, pushed, pulled and run by the kernel, pushed back and pulled by the model."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    private = ModelRegistry("localhost:5000")
    config = RegistryConfig(models=(private,))
    model = sim.connect("sim", registries=config)
    real = require_real(state_dir=str(tmp_path / "state"))
    real.close()  # type: ignore[attr-defined]
    real = sim.connect("real", state_dir=str(tmp_path / "state"), registries=config)
    try:
        built = model.build(context, tag="localhost:5000/lab/app:1").image  # type: ignore[attr-defined]
        pushed = model.push("localhost:5000/lab/app:1")  # type: ignore[attr-defined]
        pulled = real.pull("localhost:5000/lab/app:1")  # type: ignore[attr-defined]
        assert pulled.digest == pushed.digest and str(pulled.image_id) == built.id
        assert real.run("localhost:5000/lab/app:1", remove=True).stdout == b"pushed and pulled\n"  # type: ignore[attr-defined]
        real.tag("localhost:5000/lab/app:1", "localhost:5000/lab/from-real:1")  # type: ignore[attr-defined]
        back = real.push("localhost:5000/lab/from-real:1")  # type: ignore[attr-defined]
        assert back.digest == pushed.digest
        assert model.pull("localhost:5000/lab/from-real:1").digest == pushed.digest  # type: ignore[attr-defined]
    finally:
        model.close()  # type: ignore[attr-defined]
        real.close()  # type: ignore[attr-defined]


def test_retag_latest_leaves_the_old_image_by_digest(make: Maker, context: Path) -> None:
    private = ModelRegistry("localhost:5000")
    engine = make(RegistryConfig(models=(private,)))
    engine.pull("busybox")
    engine.tag("busybox", "localhost:5000/lab/app:latest")
    old = engine.push("localhost:5000/lab/app:latest")
    engine.build(context, tag="localhost:5000/lab/app:latest")
    new = engine.push("localhost:5000/lab/app:latest")
    repo = private.repositories()["lab/app"]
    assert repo.tags == {"latest": new.digest}
    assert old.digest in repo.manifests  # untagged, still pullable by digest
    assert engine.pull(f"localhost:5000/lab/app@{old.digest}").digest == old.digest


def test_login_checks_then_keeps_the_credentials(make: Maker, tmp_path: Path) -> None:
    private = ModelRegistry("localhost:5000", accounts={"student": "s3cret"})
    engine = make(RegistryConfig(models=(private,), config_dir=tmp_path / "cfg"))
    engine.pull("busybox")
    engine.tag("busybox", "localhost:5000/lab/app:1")
    with pytest.raises(AuthenticationError):
        engine.push("localhost:5000/lab/app:1")
    with pytest.raises(AuthenticationError):
        engine.login("localhost:5000", "student", "wrong")
    assert not (tmp_path / "cfg" / "config.json").exists()  # a refused login is not saved
    assert engine.login("localhost:5000", "student", "s3cret") == "Login Succeeded"
    config = tmp_path / "cfg" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "localhost:5000" in json.loads(config.read_text())["auths"]
    assert "s3cret" not in config.read_text()  # base64, as Docker keeps it: never in the clear
    engine.push("localhost:5000/lab/app:1")
    assert engine.logout("localhost:5000") is True and engine.logout("localhost:5000") is False
    with pytest.raises(AuthenticationError):
        engine.push("localhost:5000/lab/app:1")


def test_search_lists_the_catalog(make: Maker) -> None:
    private = ModelRegistry("localhost:5000")
    engine = make(RegistryConfig(models=(private,)))
    engine.pull("busybox")
    for name in ("lab/web", "lab/db", "other/tool"):
        engine.tag("busybox", f"localhost:5000/{name}:1")
        engine.push(f"localhost:5000/{name}:1")
    assert engine.search("lab", server="localhost:5000") == ["lab/db", "lab/web"]
    assert engine.search(server="docker.io") == ["library/busybox"]


def test_docker_hub_pulls_go_through_the_mirror_and_fall_back(make: Maker) -> None:
    hub = ModelRegistry("docker.io")
    from sim.containers._distribution import seed_hub

    seed_hub(hub)
    mirror = ModelMirror("127.0.0.1:5001", hub.client())
    engine = make(RegistryConfig(mirrors=("127.0.0.1:5001",), models=(hub, mirror)))
    first = engine.pull("busybox")
    assert first.registry == "127.0.0.1:5001" and {b.origin for b in first.blobs} == {"upstream"}
    assert mirror.stats().upstream_bytes > 0
    with pytest.raises(UnsupportedOperationError):  # a push never goes to the mirror
        mirror.client().put_manifest("library/busybox", "x", b"{}", "application/json")
    broken = ModelMirror("127.0.0.1:5002", ModelRegistry("empty").client())
    fallback = make(RegistryConfig(mirrors=("127.0.0.1:5002",), models=(hub, broken)))
    assert fallback.pull("busybox").registry == "docker.io"  # the mirror lacks it: the hub answers


def test_an_offline_setup_maps_docker_io_to_a_local_registry(make: Maker) -> None:
    local = ModelRegistry("localhost:5000")
    hub = ModelRegistry("docker.io")
    from sim.containers._distribution import seed_hub

    seed_hub(local)  # the local registry holds library/busybox
    engine = make(RegistryConfig(endpoints={"docker.io": "localhost:5000"}, models=(local, hub)))
    assert engine.pull("busybox").registry == "localhost:5000"  # docker.io, served by the local registry
    assert local.stats().bytes_out > 0 and hub.stats().bytes_out == 0


@pytest.mark.parametrize("config", [
    {"mirrors": ("http://10.1.2.3:5000",)},
    {"mirrors": ("ftp://127.0.0.1:5000",)},
    {"endpoints": {"docker.io": "nowhere"}},
    {"mirrors": ("http://127.0.0.1:5000/v2/path",)},
])
def test_bad_registry_settings_are_refused_when_made(config: dict[str, Any]) -> None:
    with pytest.raises(RegistryConfigError):
        RegistryConfig(**config)


def test_an_unknown_host_is_refused_before_any_traffic(make: Maker) -> None:
    engine = make()
    with pytest.raises(RegistryConfigError, match="no route to registry"):
        engine.pull("registry.invalid/lab/app:1")
    with pytest.raises(ImageNotFoundError):
        engine.pull("lab/never-pushed")
    assert engine.images() == []


def test_daemon_json_names_mirrors_and_endpoints(tmp_path: Path) -> None:
    (tmp_path / "daemon.json").write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:5001"],
                                                       "registry-endpoints": {"docker.io": "http://127.0.0.1:5000"}}))
    config = RegistryConfig.load(tmp_path)
    assert config.mirrors == ("http://127.0.0.1:5001",) and config.endpoints == {"docker.io": "http://127.0.0.1:5000"}
    (tmp_path / "daemon.json").write_text("[1, 2]")
    with pytest.raises(RegistryConfigError):
        RegistryConfig.load(tmp_path)
    assert RegistryConfig.load(tmp_path / "none").mirrors == ()


def test_the_cli_pulls_pushes_logs_in_and_lists_digests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from sim.cli import main

    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LAYERLAB_BACKEND", raising=False)
    assert main(["pull", "busybox"]) == 0
    assert "Pull complete" in capsys.readouterr().out
    assert main(["images", "--digests"]) == 0
    out = capsys.readouterr().out
    assert "DIGEST" in out and "sha256:" in out
    assert main(["tag", "busybox", "lab/copy:2"]) == 0
    assert main(["push", "lab/copy:2"]) == 0
    assert "Mounted from library/busybox" in capsys.readouterr().out  # the hub already holds the layer
    assert main(["search", "copy"]) == 0
    assert capsys.readouterr().out.split() == ["NAME", "lab/copy"]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("pw\n"))
    assert main(["login", "-u", "student", "--password-stdin"]) == 0  # the model hub has no accounts
    printed = capsys.readouterr()
    assert "Login Succeeded" in printed.out and "pw" not in printed.out + printed.err
    config = tmp_path / "config" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert main(["logout"]) == 0
    assert "Removing login credentials for docker.io" in capsys.readouterr().out
    assert main(["pull", "registry.invalid/x"]) == 1
    assert "no route to registry" in capsys.readouterr().err
    assert os.listdir(tmp_path / "sim" / "images" / "ingest") == []
