"""The model and the kernel agree on user IDs: one Buildfile with USER, the same commands, the same answers.

The model is told which user namespace to model (the real engine's ``id_maps``), then both build
the same image (the same DiffIDs: the files a user creates are that user's in both) and run the
same commands as the image's USER and as ``--user`` values: ``id``, ``id -u``, ``id -g``, ``HOME``,
``/proc/self/uid_map`` and the owners of files in the layers.  Unknown users and groups fail
alike; a rootless engine without a subordinate range refuses the same steps with the same words.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from realrt import _idmap
from sim.engine import SimEngine
from sim.errors import BackendUnavailableError, ConflictError
from tests.backends import require_real

pytestmark = pytest.mark.real

BUILDFILE = """\
FROM busybox
RUN echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group \\
    && echo 'staff:x:50:app' >> /etc/group && mkdir -p /home/app
COPY --chown=app:staff f.txt /f.txt
USER app
RUN touch /tmp/made-by-app && mkdir /tmp/app-dir && echo made > /tmp/app-dir/file
CMD ["id"]
"""

SCRIPT = ("id; id -u; id -g; id -G; echo $HOME; cat /proc/self/uid_map /proc/self/gid_map; "
          "for f in /f.txt /tmp/made-by-app /tmp/app-dir /tmp/app-dir/file; do set -- $(ls -lnd $f); "
          "echo $f $1 $3:$4; done")

USERS = [None, "0", "root", "1000", "1000:1000", "app", "app:staff", "app:0", "nobody", "65534:50", "4242:4343"]


@pytest.fixture(params=[pytest.param("root", marks=pytest.mark.root_only), "rootless"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """(the real engine, the model modelling its user namespace), with the Buildfile's context ready."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    (tmp_path / "Buildfile").write_text(BUILDFILE)
    (tmp_path / "f.txt").write_text("copied\n")
    state = tempfile.mkdtemp(prefix="layerlab-parity-")
    try:
        real: Any = require_real(rootless=request.param == "rootless", state_dir=state)
        model = SimEngine(id_maps=real.id_maps)
        try:
            yield real, model
        finally:
            model.close()
            real.close()
            assert list(real.journal.records()) == []
            _idmap.remove_tree(state, real.id_maps)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _outcome(engine: Any, call: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        result = getattr(engine, call)(*args, **kwargs)
    except (BackendUnavailableError, ConflictError) as exc:
        return type(exc).__name__, str(exc)
    if call == "build":
        return "ok", result.image.diff_ids
    return "ok", (result.exit_code, result.stdout.decode(), result.stderr.decode())


def test_user_ids_agree(pair: tuple[Any, Any], tmp_path: Path) -> None:
    real, model = pair
    built = [_outcome(e, "build", tmp_path, tag="users:1") for e in (real, model)]
    assert built[0] == built[1]
    if built[0][0] != "ok":  # a rootless engine without a range: both refused the COPY --chown=app:staff
        assert not real.id_maps.covers(1000, 1000) and "map only root" in built[0][1]
        for engine in (real, model):
            assert engine.run("busybox", "id -u; cat /proc/self/uid_map", remove=True).stdout == \
                b"0\n" + real.id_maps.proc_uid_map().encode()
        return
    for user in USERS:
        options = {} if user is None else {"user": user}
        runs = [_outcome(e, "run", "users:1", SCRIPT, remove=True, **options) for e in (real, model)]
        assert runs[0] == runs[1], user
        assert runs[0][0] == "ok" and runs[0][1][0] == 0, runs[0]
    as_app = _outcome(real, "run", "users:1", SCRIPT, remove=True)[1][1].splitlines()
    assert as_app[:5] == ["uid=1000(app) gid=1000(app) groups=50(staff),1000(app)", "1000", "1000", "1000 50",
                          "/home/app"]
    assert as_app[-4:] == ["/f.txt -rw-r--r-- 1000:50", "/tmp/made-by-app -rw-r--r-- 1000:1000",
                           "/tmp/app-dir drwxr-xr-x 1000:1000", "/tmp/app-dir/file -rw-r--r-- 1000:1000"]
    cmd = [_outcome(e, "run", "users:1", remove=True) for e in (real, model)]  # the image's CMD, as USER app
    assert cmd[0] == cmd[1] == ("ok", (0, "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n", ""))
    for user, words in (("ghost", "unable to find user ghost: no matching entries in passwd file"),
                        ("app:ghosts", "unable to find group ghosts: no matching entries in group file")):
        failed = [_outcome(e, "run", "users:1", "id", user=user, remove=True) for e in (real, model)]
        assert failed[0] == failed[1] == ("ConflictError", words)
    assert os.path.isdir(real.state_dir)
