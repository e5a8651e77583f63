"""User IDs without privileges: the id maps (sim.containers.userns), how USER and --user resolve
(runc's rules), which mapping the real engine would choose, and what the model's containers see."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from realrt import _idmap
from sim.containers._users import ExecUser, check_user_spec, resolve_group, resolve_user
from sim.containers.userns import (
    HOST_MAPS,
    OVERFLOW_ID,
    IdMaps,
    IdRange,
    parse_subid,
    single_maps,
    subordinate_maps,
)
from sim.engine import SimEngine
from sim.errors import BackendUnavailableError, ConflictError, InvalidSpecError
from sim.layers.layer import Layer
from sim.layers.unionfs import UnionFS

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"# a comment\n"
          b"app:x:1000:1000:app:/home/app:/bin/sh\n"
          b"twin:x:1000:2000::/twin:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = b"root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:root\nnogroup:x:65534:\n"

RANGE = subordinate_maps(1001, 1002, [(200000, 65536)], [(300000, 65536)])


def image(passwd: bytes | None = PASSWD, group: bytes | None = GROUP) -> UnionFS:
    layer = Layer()
    layer.add_dir("etc")
    if passwd is not None:
        layer.add_file("etc/passwd", passwd)
    if group is not None:
        layer.add_file("etc/group", group)
    return UnionFS([layer.freeze()])


# -- the maps ------------------------------------------------------------------------------------


def test_the_three_mappings_and_their_proc_text() -> None:
    assert HOST_MAPS.kind == "host" and not HOST_MAPS.user_namespace
    assert HOST_MAPS.proc_uid_map() == "         0          0 4294967295\n"  # the kernel's columns
    assert HOST_MAPS.uid_to_host(1000) == 1000 and HOST_MAPS.covers(4294967294, 0)

    single = single_maps(1001, 1002)
    assert single.uids == (IdRange(0, 1001, 1),) and single.proc_gid_map() == "         0       1002          1\n"
    assert single.uid_to_host(0) == 1001 and single.uid_to_host(1) is None and single.uid_count == 1

    assert [tuple(r) for r in RANGE.uids] == [(0, 1001, 1), (1, 200000, 65536)]
    assert RANGE.uid_to_host(1000) == 200000 + 999 and RANGE.gid_to_host(1000) == 300000 + 999
    assert RANGE.uid_to_host(65536) == 265535 and RANGE.uid_to_host(65537) is None
    assert RANGE.uid_from_host(200999) == 1000 and RANGE.uid_from_host(5) == OVERFLOW_ID
    assert RANGE.gid_from_host(1002) == 0
    assert RANGE.proc_uid_map() == "         0       1001          1\n         1     200000      65536\n"
    inside, outside, count = RANGE.uids[1]  # rows unpack in /proc's order
    assert (inside, outside, count) == (1, 200000, 65536)
    assert "uid 1-65536 -> host 200000-265535" in RANGE.describe()


def test_several_ranges_follow_each_other_inside() -> None:
    maps = subordinate_maps(1000, 1000, [(100000, 10), (500000, 5)], [(100000, 15)])
    assert [tuple(r) for r in maps.uids] == [(0, 1000, 1), (1, 100000, 10), (11, 500000, 5)]
    assert maps.uid_to_host(12) == 500001 and maps.uid_count == 16


def test_bad_maps_are_refused() -> None:
    with pytest.raises(InvalidSpecError, match="overlap inside"):
        IdMaps(uids=(IdRange(0, 1, 5), IdRange(3, 100, 5)), gids=(IdRange(0, 1, 1),), kind="subordinate")
    with pytest.raises(InvalidSpecError, match="count of at least 1"):
        IdMaps(uids=(IdRange(0, 1, 0),), gids=(IdRange(0, 1, 1),), kind="single")
    with pytest.raises(InvalidSpecError, match="at least one row"):
        IdMaps(uids=(), gids=(IdRange(0, 1, 1),), kind="single")
    with pytest.raises(InvalidSpecError, match="unknown id mapping kind"):
        IdMaps(uids=(IdRange(0, 1, 1),), gids=(IdRange(0, 1, 1),), kind="wide")  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError, match="holds the caller's own id"):
        subordinate_maps(200005, 1, [(200000, 10)], [(5, 5)])


def test_require_names_what_is_missing() -> None:
    single = single_maps(1001, 1002, note="no range for me in /etc/subuid")
    single.require(0, 0)
    with pytest.raises(BackendUnavailableError) as caught:
        single.require(1000, 1000)
    message = str(caught.value)
    for needed in ("map only root", "uid 1000/gid 1000", "/etc/subuid", "/etc/subgid", "newuidmap", "uidmap",
                   "no range for me"):
        assert needed in message
    RANGE.require(65536, 65536)
    with pytest.raises(BackendUnavailableError, match=r"uid 70000/gid 0 is outside .*uids 0-65536, gids 0-65536 are"):
        RANGE.require(70000, 0)


def test_subid_files_are_parsed_as_shadow_does() -> None:
    text = "# ranges\nalice:100000:65536\n\nbob:200000:10\n1001:300000:5\nbroken:line\nalice:400000:0\n" \
           "alice:500000:7\n"
    assert parse_subid(text, name="alice", uid=1000) == ((100000, 65536), (500000, 7))
    assert parse_subid(text, name="carol", uid=1001) == ((300000, 5),)  # by number
    assert parse_subid(text, name=None, uid=42) == ()


# -- which mapping the real engine picks (no privileges: files and PATH only) ----------------------


def test_detect_picks_the_subordinate_mapping_only_with_ranges_and_helpers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("4242:200000:65536\n")
    subgid.write_text("4242:300000:1000\n")
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")

    assert _idmap.detect(rootless=False) is HOST_MAPS
    found = _idmap.detect(rootless=True, uid=4242, gid=4343, subuid=str(subuid), subgid=str(subgid))
    assert found.kind == "subordinate" and found.uid_to_host(1000) == 200999 and found.gid_to_host(1000) == 300999
    assert found.gids[0] == IdRange(0, 4343, 1)

    off = _idmap.detect(rootless=True, uid=4242, gid=4343, subordinate=False, subuid=str(subuid), subgid=str(subgid))
    assert off.kind == "single" and "turned off" in off.note

    subgid.write_text("")
    no_gids = _idmap.detect(rootless=True, uid=4242, gid=4343, subuid=str(subuid), subgid=str(subgid))
    assert no_gids.kind == "single" and f"in {subgid}" in no_gids.note

    subgid.write_text("4242:300000:1000\n")
    monkeypatch.setattr("shutil.which", lambda name: None if name == "newuidmap" else f"/usr/bin/{name}")
    no_tool = _idmap.detect(rootless=True, uid=4242, gid=4343, subuid=str(subuid), subgid=str(subgid))
    assert no_tool.kind == "single" and no_tool.note == "newuidmap is not installed (Debian package uidmap)"

    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    subuid.write_text("4242:4000:1000\n")  # holds the caller's own uid: unusable, said so
    assert "unusable" in _idmap.detect(rootless=True, uid=4242, gid=4343, subuid=str(subuid), subgid=str(subgid)).note


def test_map_text_is_what_the_kernel_takes() -> None:
    assert _idmap.map_text(RANGE.uids) == "0 1001 1\n1 200000 65536\n"


# -- USER and --user: runc's GetExecUser, moby's groups ---------------------------------------------


@pytest.mark.parametrize(("user", "expected"), [
    ("", ExecUser(0, 0, (0, 10), "/root")),
    ("root", ExecUser(0, 0, (0, 10), "/root")),
    ("app", ExecUser(1000, 1000, (1000, 50), "/home/app")),
    ("1000", ExecUser(1000, 1000, (1000, 50), "/home/app")),  # a number finds the first entry with it
    ("twin", ExecUser(1000, 2000, (2000,), "/twin")),
    ("app:staff", ExecUser(1000, 50, (50,), "/home/app")),  # an explicit group is the only one
    ("app:50", ExecUser(1000, 50, (50,), "/home/app")),
    ("1000:1000", ExecUser(1000, 1000, (1000,), "/home/app")),
    ("4242", ExecUser(4242, 0, (0,), "/")),  # no entry: runc's defaults
    ("4242:4343", ExecUser(4242, 4343, (4343,), "/")),  # a number needs no group entry
])
def test_users_resolve_as_runc_resolves_them(user: str, expected: ExecUser) -> None:
    assert resolve_user(user, image()) == expected


def test_unknown_names_give_dockers_errors() -> None:
    with pytest.raises(ConflictError, match="^unable to find user ghost: no matching entries in passwd file$"):
        resolve_user("ghost", image())
    with pytest.raises(ConflictError, match="^unable to find group ghosts: no matching entries in group file$"):
        resolve_user("app:ghosts", image())
    with pytest.raises(ConflictError, match="unable to find user app"):
        resolve_user("app", image(passwd=None))  # no passwd file: only numbers work
    assert resolve_user("7:8", image(passwd=None, group=None)) == ExecUser(7, 8, (8,), "/")
    assert resolve_group("wheel", image()) == 10


@pytest.mark.parametrize("bad", ["a:b:c", "a:", ":", ":staff", "a b", "2147483648", "1:2147483648"])
def test_malformed_users_are_refused_before_anything(bad: str) -> None:
    with pytest.raises(InvalidSpecError):
        check_user_spec(bad)
    engine = sim.connect("sim")
    with pytest.raises(InvalidSpecError):
        engine.create("busybox", "true", user=bad)  # type: ignore[attr-defined]
    assert engine.containers() == []  # type: ignore[attr-defined]


# -- the model's containers ---------------------------------------------------------------------


def _build(engine: SimEngine, tmp_path: Path, text: str) -> None:
    (tmp_path / "Buildfile").write_text(text)
    (tmp_path / "f.txt").write_text("f\n")
    engine.build(tmp_path, tag="users:1")


USERS_BUILDFILE = """\
FROM busybox
RUN echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group \\
    && echo 'staff:x:50:app' >> /etc/group
COPY --chown=app:staff f.txt /f.txt
USER app
RUN touch /tmp/made-by-app
"""


def test_the_model_runs_user_and_shows_its_maps(tmp_path: Path) -> None:
    engine = SimEngine()
    _build(engine, tmp_path, USERS_BUILDFILE)
    script = "id; id -u; id -g; id -G; echo $HOME; cat /proc/self/uid_map /proc/self/gid_map; " \
             "set -- $(ls -ln /tmp/made-by-app); echo $3:$4; set -- $(ls -ln /f.txt); echo $3:$4"
    out = engine.run("users:1", script, remove=True).stdout.decode().splitlines()
    assert out == ["uid=1000(app) gid=1000(app) groups=50(staff),1000(app)", "1000", "1000", "1000 50", "/home/app",
                   "         0          0 4294967295", "         0          0 4294967295", "1000:1000", "1000:50"]
    assert engine.run("users:1", "id", user="app:staff", remove=True).stdout == b"uid=1000(app) gid=50(staff) groups=50(staff)\n"
    assert engine.run("users:1", "id -u; id -g", user="0", remove=True).stdout == b"0\n0\n"
    with pytest.raises(ConflictError, match="unable to find user ghost"):
        engine.run("users:1", "id", user="ghost", remove=True)
    written = engine.run("users:1", "echo 0 0 1 > /proc/self/uid_map", remove=True)  # a map is written once
    assert written.exit_code != 0 and b"Operation not permitted" in written.stderr


def test_the_model_modelling_a_rootless_engine(tmp_path: Path) -> None:
    engine = SimEngine(id_maps=RANGE)
    _build(engine, tmp_path, USERS_BUILDFILE)
    out = engine.run("users:1", "id -u; cat /proc/self/uid_map", remove=True).stdout.decode()
    assert out == "1000\n" + RANGE.proc_uid_map()

    single = SimEngine(id_maps=single_maps(1001, 1002))
    with pytest.raises(BackendUnavailableError, match="map only root"):
        _build(single, tmp_path, USERS_BUILDFILE)  # the COPY --chown=app:staff: a single mapping has no uid 1000
    assert single.run("busybox", "cat /proc/self/uid_map", remove=True).stdout == b"         0       1001          1\n"
    with pytest.raises(BackendUnavailableError, match="/etc/subuid"):
        single.run("busybox", "id", user="nobody", remove=True)
    with pytest.raises(TypeError):
        SimEngine(id_maps=((0, 0, 1),))  # type: ignore[arg-type]
