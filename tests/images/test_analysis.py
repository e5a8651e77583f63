"""Image analysis (镜像分析): per-layer numbers, wasted bytes, efficiency, trees, contents,
export and the shared-layer report, on hand-built layers, random stacks and a real build."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

import sim
from sim.cli import main
from sim.images.analysis import (
    HistoryStep,
    ImageAnalysis,
    SharedReport,
    WastedPath,
    analyze,
    export_layer,
    file_contents,
    layer_changes,
    shared_layers,
    tree,
)
from sim.images.oci import History
from sim.layers._lowerview import LowerView
from sim.layers.changes import Change, ChangeKind
from sim.layers.layer import Layer, RegularFile
from sim.layers.unionfs import UnionFS
from sim.results import HistoryEntry
from sim.testing import layer_stacks

WEBAPP = Path(__file__).resolve().parents[2] / "examples" / "webapp"


@pytest.fixture(autouse=True)
def _no_sde(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    yield


def layer(*calls: tuple[str, ...] | tuple[str, str, bytes]) -> Layer:
    """A frozen layer from builder calls: ("file", path, data), ("dir", path), ("opaque", path),
    ("link", path, target), ("symlink", path, target), ("wh", path)."""
    out = Layer()
    for call in calls:
        kind, path, *rest = call
        if kind == "file":
            out.add_file(path, rest[0])  # type: ignore[arg-type]
        elif kind == "dir":
            out.add_dir(path)
        elif kind == "opaque":
            out.add_dir(path, opaque=True)
        elif kind == "link":
            out.add_hardlink(path, rest[0])  # type: ignore[arg-type]
        elif kind == "symlink":
            out.add_symlink(path, rest[0])  # type: ignore[arg-type]
        else:
            out.add_whiteout(path)
    return out.freeze()


def wasted_map(report: ImageAnalysis) -> dict[str, WastedPath]:
    return {w.path: w for w in report.wasted}


# -- wasted bytes -----------------------------------------------------------------------------


def test_overwrite_across_three_layers_wastes_two_copies() -> None:
    layers = [
        layer(("file", "app/big", b"a" * 1000), ("file", "app/keep", b"k" * 500)),
        layer(("file", "app/big", b"b" * 2000)),
        layer(("file", "app/big", b"c" * 3000)),
    ]
    report = analyze(layers)
    assert report.total_bytes == 6500
    assert report.wasted_bytes == 3000  # the 1000- and 2000-byte copies; the 3000-byte one is shown
    (big,) = report.wasted
    assert big == WastedPath("/app/big", copies=2, bytes=3000, layers=(0, 1), hidden_by=(1, 2), removed=False)
    assert [r.wasted_bytes for r in report.layers] == [1000, 2000, 0]  # where the waste is stored
    assert [r.hidden_bytes for r in report.layers] == [0, 1000, 2000]  # which layer causes it
    assert [(r.added, r.changed, r.deleted) for r in report.layers] == [(3, 0, 0), (0, 1, 0), (0, 1, 0)]  # app is only implied
    assert report.visible_bytes == 3500


def test_whiteout_of_a_big_file_wastes_its_bytes() -> None:
    layers = [
        layer(("file", "tmp/src.tar.gz", b"x" * 8194), ("file", "etc/os-release", b"id=lab\n")),
        layer(("wh", "tmp/src.tar.gz")),
    ]
    report = analyze(layers)
    assert report.wasted_bytes == 8194
    assert wasted_map(report)["/tmp/src.tar.gz"] == WastedPath(
        "/tmp/src.tar.gz", copies=1, bytes=8194, layers=(0,), hidden_by=(1,), removed=True
    )
    top = report.layers[1]
    assert (top.size, top.files, top.deleted, top.hidden_bytes, top.entries) == (0, 0, 1, 8194, 1)  # the .wh. entry (tmp/ is only implied)
    assert report.files == 1
    assert report.efficiency == 7 / 8201


def test_whiteout_of_a_directory_charges_everything_below_it() -> None:
    layers = [
        layer(("file", "build/obj/a.o", b"a" * 100), ("file", "build/obj/b.o", b"b" * 200), ("file", "build/out", b"o" * 50)),
        layer(("wh", "build")),
    ]
    report = analyze(layers)
    assert report.wasted_bytes == 350
    assert report.layers[1].deleted == 5  # build, build/obj, build/obj/a.o, build/obj/b.o, build/out
    assert sorted(wasted_map(report)) == ["/build/obj/a.o", "/build/obj/b.o", "/build/out"]
    assert report.efficiency == 0.0


def test_opaque_directory_hides_the_files_below_it() -> None:
    layers = [
        layer(("file", "app/static/old.js", b"o" * 400), ("file", "app/static/logo.png", b"p" * 600), ("file", "app/main.py", b"m" * 10)),
        layer(("opaque", "app/static"), ("file", "app/static/new.js", b"n" * 40), ("file", "app/static/logo.png", b"q" * 60)),
    ]
    report = analyze(layers)
    assert report.wasted_bytes == 1000
    got = wasted_map(report)
    assert got["/app/static/old.js"].removed and not got["/app/static/logo.png"].removed
    assert got["/app/static/logo.png"].bytes == 600
    top = report.layers[1]
    assert (top.added, top.changed, top.deleted) == (1, 2, 1)  # new.js; app/static, logo.png; old.js
    assert layer_changes(layers, 1) == [
        Change("/app/static", ChangeKind.CHANGED),
        Change("/app/static/logo.png", ChangeKind.CHANGED),
        Change("/app/static/new.js", ChangeKind.ADDED),
        Change("/app/static/old.js", ChangeKind.DELETED),
    ]
    assert [e.path for e in tree(layers) if e.path.startswith("/app/static/")] == ["/app/static/logo.png", "/app/static/new.js"]


def test_directory_replaced_by_a_file_hides_its_contents() -> None:
    layers = [layer(("file", "opt/tool/bin", b"b" * 70)), layer(("file", "opt/tool", b"now a file"))]
    report = analyze(layers)
    assert report.wasted_bytes == 70
    assert (report.layers[1].changed, report.layers[1].deleted) == (1, 1)  # opt/tool; opt/tool/bin


def test_hard_links_are_counted_once() -> None:
    base = layer(("file", "usr/bin/busybox", b"B" * 1000), ("link", "bin/sh", "usr/bin/busybox"), ("link", "bin/ls", "usr/bin/busybox"))
    assert analyze([base]).total_bytes == 1000
    # One name hidden: the other names keep the inode, nothing is wasted.
    one = analyze([base, layer(("wh", "bin/ls"))])
    assert (one.wasted_bytes, one.wasted, one.efficiency) == (0, (), 1.0)
    assert one.files == 2
    # Every name hidden: the bytes are wasted once, not three times.
    every = analyze([base, layer(("wh", "bin")), layer(("wh", "usr/bin/busybox"))])
    assert every.wasted_bytes == 1000
    got = wasted_map(every)
    assert got["/usr/bin/busybox"].bytes == 1000  # the name whose hiding left the file with none
    assert got["/bin/sh"].bytes == got["/bin/ls"].bytes == 0
    assert sum(w.bytes for w in every.wasted) == 1000
    assert [r.hidden_bytes for r in every.layers] == [0, 0, 1000]


def test_efficiency_is_computed_exactly() -> None:
    layers = [
        layer(("file", "a", b"1" * 600), ("file", "b", b"2" * 400)),  # 1000
        layer(("file", "a", b"3" * 3000)),  # 3000, hides 600
        layer(("file", "c", b"4" * 6000), ("wh", "b")),  # 6000, hides 400
    ]
    report = analyze(layers)
    assert (report.total_bytes, report.wasted_bytes) == (10_000, 1000)
    assert report.efficiency == 0.9 == (10_000 - 1000) / 10_000
    assert analyze([]).efficiency == 1.0 and analyze([layer(("dir", "empty"))]).efficiency == 1.0


def test_files_per_layer_cumulative_and_visible() -> None:
    layers = [
        layer(("file", "a", b"1"), ("file", "b", b"2"), ("symlink", "c", "a")),
        layer(("file", "a", b"3"), ("file", "d", b"4")),
        layer(("wh", "b"), ("wh", "d")),
    ]
    report = analyze(layers)
    assert [r.files for r in report.layers] == [2, 2, 0]
    assert [r.cumulative_files for r in report.layers] == [2, 4, 4]
    assert [r.visible_files for r in report.layers] == [2, 3, 1]
    assert [r.entries for r in report.layers] == [3, 2, 2]


def test_whiteout_of_a_missing_name_and_implied_parents_change_nothing() -> None:
    layers = [layer(("file", "var/lib/x", b"x")), layer(("wh", "ghost"), ("file", "var/lib/y", b"y"))]
    top = analyze(layers).layers[1]
    assert (top.added, top.changed, top.deleted) == (1, 0, 0)  # var and var/lib are only implied


# -- history, JSON ------------------------------------------------------------------------------


def test_history_names_each_layer_in_either_order() -> None:
    layers = [layer(("file", "a", b"a")), layer(("file", "b", b"b"))]
    oci = [History(created_by="FROM scratch base"), History(created_by="ENV X=1", empty_layer=True), History(created_by="COPY b /")]
    newest_first = [
        HistoryEntry("COPY b /", str(layers[1].diff_id), 1, False),
        HistoryEntry("ENV X=1", None, 0, True),
        HistoryEntry("FROM scratch base", str(layers[0].diff_id), 1, False),
    ]
    for history in (oci, newest_first, [h.to_dict() for h in oci]):
        report = analyze(layers, history=history)
        assert [r.created_by for r in report.layers] == ["FROM scratch base", "COPY b /"]
        assert report.history == (HistoryStep("FROM scratch base", 0), HistoryStep("ENV X=1", None), HistoryStep("COPY b /", 1))


def test_json_round_trip() -> None:
    layers = [
        layer(("file", "app/big", b"a" * 1000), ("file", "tmp/t", b"t" * 7)),
        layer(("file", "app/big", b"b" * 10), ("wh", "tmp")),
    ]
    report = analyze(layers, history=[History(created_by="one"), History(created_by="two")], name="demo:1")
    text = report.to_json()
    data = json.loads(text)
    assert data["wasted_bytes"] == 1007 and data["name"] == "demo:1"
    assert data["layers"][1]["diff_id"] == str(layers[1].diff_id)
    again = ImageAnalysis.from_json(text)
    assert again == report
    assert again.to_json() == text
    assert ImageAnalysis.from_json(report.to_json(indent=None)) == report


# -- the merged view -----------------------------------------------------------------------------


def test_tree_shows_the_origin_layer_and_sorts_by_size() -> None:
    layers = [
        layer(("file", "etc/passwd", b"root:x:0:0\n"), ("file", "usr/lib/big.so", b"L" * 5000), ("file", "usr/share/doc", b"d" * 9)),
        layer(("file", "etc/passwd", b"root:x:0:0\nweb:x:1:1\n"), ("symlink", "lib", "usr/lib")),
    ]
    entries = {e.path: e for e in tree(layers)}
    assert entries["/etc/passwd"].layer == 1 and entries["/etc/passwd"].size == 21
    assert entries["/usr/lib/big.so"].layer == 0
    assert entries["/lib"].kind == "symlink" and entries["/lib"].target == "usr/lib"
    assert entries["/usr"].size == 5009  # a directory's size is that of the files below it
    assert [e.path for e in tree(layers, upto=0)] == ["/etc", "/etc/passwd", "/usr", "/usr/lib", "/usr/lib/big.so", "/usr/share", "/usr/share/doc"]
    assert tree(layers, upto=0)[1].size == 11
    assert [e.path for e in tree(layers, sort="size")][:3] == ["/usr", "/usr/lib", "/usr/lib/big.so"]
    assert tree(layers, upto=-2) == tree(layers, upto=0)
    with pytest.raises(IndexError, match="no layer 2"):
        tree(layers, upto=2)


def test_file_contents_in_the_merged_view_and_in_one_layer() -> None:
    layers = [
        layer(("file", "etc/motd", b"v1"), ("file", "srv/data", b"lower")),
        layer(("file", "etc/motd", b"v2"), ("symlink", "etc/link", "../srv/data"), ("wh", "srv/data")),
    ]
    assert file_contents(layers, "/etc/motd") == b"v2"
    assert file_contents(layers, "/etc/motd", upto=0) == b"v1"
    assert file_contents(layers, "/etc/motd", layer=0) == b"v1"
    assert file_contents(layers, "/srv/data", layer=0) == b"lower"  # still stored in layer 0: the wasted bytes
    with pytest.raises(FileNotFoundError, match="whiteout"):
        file_contents(layers, "/srv/data", layer=1)
    with pytest.raises(FileNotFoundError):
        file_contents(layers, "/srv/data")
    with pytest.raises(FileNotFoundError):
        file_contents(layers, "/etc/link")  # follows the link to the deleted file
    with pytest.raises(IsADirectoryError):
        file_contents(layers, "/etc")
    with pytest.raises(OSError, match="symbolic link"):
        file_contents(layers, "/etc/link", layer=1)
    with pytest.raises(NotADirectoryError):
        file_contents(layers, "/etc/motd/x")


@given(layer_stacks(max_layers=4))
def test_property_merged_view_matches_the_union(layers: list[Layer]) -> None:
    """The analysis's merged view is LowerView's (the union's own), at every height; its
    counts are set differences of those views; wasted bytes are exactly the unreachable inodes."""
    previous: set[str] = set()
    report = analyze(layers)
    for n in range(len(layers)):
        view = LowerView(layers[: n + 1]).nodes
        expected = {p: node.layer for p, node in view.items() if p}
        assert {e.path[1:]: e.layer for e in tree(layers, upto=n)} == expected
        current = set(expected)
        r = report.layers[n]
        assert (r.added, r.deleted) == (len(current - previous), len(previous - current))
        previous = current
    top = LowerView(layers).nodes
    reachable = {(n.layer, id(n.entry)): n.entry.size for n in top.values() if isinstance(n.entry, RegularFile)}
    assert report.visible_bytes == sum(reachable.values())
    assert report.wasted_bytes == sum(w.bytes for w in report.wasted) == sum(r.hidden_bytes for r in report.layers)
    assert report.files == sum(isinstance(n.entry, RegularFile) for p, n in top.items() if p)
    assert 0.0 <= report.efficiency <= 1.0
    assert ImageAnalysis.from_json(report.to_json()) == report
    union = UnionFS(layers)
    for path, node in top.items():
        if not path:
            continue
        try:
            want: bytes | type[BaseException] = union.read_bytes("/" + path)
        except OSError as exc:
            want = type(exc)
        try:
            got: bytes | type[BaseException] = file_contents(layers, "/" + path)
        except OSError as exc:
            got = type(exc)
        assert got == want, path


# -- export ---------------------------------------------------------------------------------------


def test_export_layer_writes_the_oci_tar() -> None:
    one = layer(("file", "a/b", b"hello"), ("wh", "gone"), ("opaque", "c"))
    buf = io.BytesIO()
    digest = export_layer(one, buf)
    assert digest == one.diff_id == one.content_id
    again = Layer.from_tar(io.BytesIO(buf.getvalue()))
    assert again == one
    gz = io.BytesIO()
    assert export_layer(one, gz, compression="gzip") == digest
    assert Layer.from_tar(io.BytesIO(gz.getvalue())) == one


# -- several images -----------------------------------------------------------------------------


def test_shared_report_for_three_images_on_one_base() -> None:
    base = layer(("file", "bin/busybox", b"B" * 1000))
    app1 = layer(("file", "srv/one", b"1" * 10))
    app2 = layer(("file", "srv/two", b"2" * 20))
    app3a = layer(("file", "srv/three", b"3" * 30))
    app3b = layer(("file", "srv/three.conf", b"c" * 5))
    report = shared_layers({"one:1": [base, app1], "two:1": [base, app2], "three:1": [base, app3a, app3b]})
    assert report.common_base == (str(base.diff_id),)
    assert report.stored_bytes == 1000 + 10 + 20 + 30 + 5
    assert report.naive_bytes == 3 * 1000 + 10 + 20 + 35
    assert report.saved_bytes == 2000
    by_id = {entry.diff_id: entry for entry in report.layers}
    assert by_id[str(base.diff_id)].images == ("one:1", "two:1", "three:1") and by_id[str(base.diff_id)].shared
    assert not by_id[str(app2.diff_id)].shared
    three = report.image("three:1")
    assert (three.layers, three.total_bytes, three.shared_bytes, three.unique_bytes) == (3, 1035, 1000, 35)
    assert (three.shared_layers, three.unique_layers) == (1, 2)
    assert SharedReport.from_json(report.to_json()) == report
    # The same layer higher in another stack is shared by DiffID, but not part of the common base.
    other = shared_layers({"x": [base, app1], "y": [app2, app1]})
    assert other.common_base == () and {e.diff_id: e.images for e in other.layers}[str(app1.diff_id)] == ("x", "y")


# -- end to end: a real build through the engine --------------------------------------------------


@pytest.fixture(scope="module")
def webapp() -> Iterator[tuple[Any, list[Layer]]]:
    eng: Any = sim.connect("sim")
    eng.build(str(WEBAPP), tag="w:1")
    yield eng, eng._layers(eng._image("w:1"))
    eng.close()


def test_webapp_deleted_assets_show_as_wasted(webapp: tuple[Any, list[Layer]]) -> None:
    eng, layers = webapp
    record = eng._image("w:1")
    report = analyze(layers, history=eng.history("w:1"), name="w:1")
    assert [r.diff_id for r in report.layers] == list(record.diff_ids)
    assert report.total_bytes == sum(layer.size for layer in layers)
    legacy = wasted_map(report)["/var/www/assets/old/legacy.js"]
    assert legacy.removed and legacy.bytes == 11 and legacy.copies == 1
    assert legacy.layers == (3,) and legacy.hidden_by == (5,)
    assert report.layers[5].created_by.startswith("RUN /bin/sh -c rm -rf /var/www/assets/old")
    assert report.layers[5].deleted == 2  # the directory and its one file
    assert report.layers[3].wasted_bytes == 11 and report.layers[5].hidden_bytes == 11
    assert report.wasted_bytes == 11
    assert report.efficiency == (report.total_bytes - 11) / report.total_bytes
    assert report.layers[0].created_by == "layerlab base: host busybox-static"
    assert [h.layer for h in report.history if h.layer is not None] == list(range(len(layers)))
    # contents, tree and export on a stored image
    assert file_contents(layers, "/var/www/VERSION") == b"version 1.2\n"
    assert file_contents(layers, "/var/www/default.html") == file_contents(layers, "/var/www/index.html")
    assert file_contents(layers, "/var/www/assets/old/legacy.js", layer=3)
    origin = {e.path: e.layer for e in tree(layers)}
    assert origin["/etc/httpd.conf"] == 2 and origin["/var/log/httpd/access.log"] == 5
    assert "/var/www/assets/old" not in origin
    for i, one in enumerate(layers):
        assert export_layer(one, io.BytesIO()) == record.diff_ids[i]


def test_webapp_shares_its_base_with_other_images(webapp: tuple[Any, list[Layer]], tmp_path: Path) -> None:
    eng, layers = webapp
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Buildfile").write_text("FROM busybox\nRUN echo hi > /hi\n")
    eng.build(str(context), tag="hi:1")
    images = {ref: eng._layers(eng._image(ref)) for ref in ("w:1", "hi:1", "busybox")}
    report = shared_layers(images)
    assert report.common_base == (str(layers[0].diff_id),)
    assert report.image("busybox").unique_bytes == 0
    assert report.image("hi:1").unique_bytes == 3


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAYERLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LAYERLAB_BACKEND", "sim")
    assert main(["build", str(WEBAPP), "-t", "w:1"]) == 0
    return tmp_path


def test_cli_analyze(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["analyze", "w:1"]) == 0
    out = capsys.readouterr().out
    assert "/var/www/assets/old/legacy.js" in out and "efficiency" in out.lower()
    assert "RUN /bin/sh -c rm -rf /var/www/assets/old" in out
    assert main(["analyze", "w:1", "--json"]) == 0
    report = ImageAnalysis.from_json(capsys.readouterr().out)
    assert report.wasted_bytes == 11 and report.name == "w:1"
    assert main(["analyze", "w:1", "--layer", "2", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    conf = next(e for e in entries if e["path"] == "/etc/httpd.conf")
    assert (conf["layer"], conf["kind"], conf["size"]) == (2, "file", 10)
    assert main(["analyze", "w:1", "--layer", "-1", "--sort", "size"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].endswith(" /bin") and lines[3].endswith(" /bin/busybox")  # title, header, then largest first
    assert main(["analyze", "w:1", "--show", "/var/www/VERSION"]) == 0
    assert capsys.readouterr().out == "version 1.2\n"
    assert main(["analyze", "w:1", "--show", "/var/www/assets/old/legacy.js", "--layer", "3"]) == 0
    assert capsys.readouterr().out
    assert main(["analyze", "w:1", "--show", "/var/www/assets/old/legacy.js"]) == 1
    assert "legacy.js" in capsys.readouterr().err
    target = state / "layer3.tar"
    assert main(["analyze", "w:1", "--export", "3", "-o", str(target)]) == 0
    assert Layer.from_tar(io.BytesIO(target.read_bytes())).get("var/www/assets/old/legacy.js") is not None
    assert main(["analyze", "w:1", "--layer", "99"]) == 2
    assert "no layer 99" in capsys.readouterr().err
    assert main(["analyze", "w:1", "--export", "1"]) == 2  # -o is needed


def test_cli_analyze_shared(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tag", "w:1", "w:2"]) == 0
    capsys.readouterr()
    assert main(["analyze", "--shared", "w:1", "busybox"]) == 0
    out = capsys.readouterr().out
    assert "w:1" in out and "busybox" in out and "common base" in out.lower()
    assert main(["analyze", "--shared", "w:1", "busybox", "--json"]) == 0
    report = SharedReport.from_json(capsys.readouterr().out)
    assert report.image("busybox").unique_bytes == 0 and len(report.common_base) == 1
    assert main(["analyze", "w:1", "busybox"]) == 2  # two images need --shared
    assert main(["analyze", "nope:1"]) == 1
    assert os.path.isdir(state / "state")
