# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Containers, the container layer and volumes (容器)
#
# Each answer is checked by running containers of `busybox` on the engine (the model by default,
# the kernel with `layerlab exercises check --backend real`) and looking at what they did:
# `docker diff`, what a later container reads, what `commit` keeps, the exit status.
# Replace every `raise NotImplementedError()` with your answer, then run all cells.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false}
import os
import stat

import sim.exercises as ex
from sim.layers import Layer

print("checks run on:", ex.backend_name())

# %% [markdown]
# ## 1. What `docker diff` shows
#
# A `busybox` container runs `SCRIPT`. The `busybox` image has `/etc/passwd`, `/etc/group` and an
# empty `/tmp`, and no `/work`. Fill `diff` with every line `docker diff` prints,
# as `{"/path": "A" | "C" | "D"}`.

# %% nbgrader={"grade": false, "grade_id": "script", "locked": true, "solution": false}
SCRIPT = "echo guest:x:1000:1000::/tmp:/bin/sh >> /etc/passwd; rm /etc/group; mkdir /work; echo hi > /work/notes"

# %% nbgrader={"grade": false, "grade_id": "diff_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
diff = {
    "/etc": "C",
    "/etc/passwd": "C",
    "/etc/group": "D",
    "/work": "A",
    "/work/notes": "A",
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "diff", "locked": true, "points": 3, "solution": false}
ex.check_diff(diff, SCRIPT)

# %% [markdown]
# ## 2. Keep the data when the container goes
#
# `TASK.writer` saves a counter in `/var/lib/app/count`; the container is then removed (`docker rm`)
# and a new one runs `TASK.reader`. Give both the `volumes` (`{"/container/path": "volume name"}`)
# that make the reader print `1`.

# %% nbgrader={"grade": false, "grade_id": "task", "locked": true, "solution": false}
TASK = ex.Handoff(
    writer="mkdir -p /var/lib/app && echo 1 > /var/lib/app/count",
    reader="cat /var/lib/app/count 2>/dev/null || echo lost",
    path="/var/lib/app/count",
)

# %% nbgrader={"grade": false, "grade_id": "volumes_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
volumes = {"/var/lib/app": "appdata"}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "handoff", "locked": true, "points": 2, "solution": false}
ex.check_handoff(volumes, TASK, "1\n")

# %% [markdown]
# ## 3. What `commit` keeps
#
# A container with the volume `uploads` mounted at `/srv/uploads` runs `WORK`, then is committed to
# a new image. Which of `CANDIDATES` exist in a container of the committed image (without the volume)?
# List them in `kept`.

# %% nbgrader={"grade": false, "grade_id": "work", "locked": true, "solution": false}
WORK = "mkdir -p /srv/app && echo v2 > /srv/app/version && echo photo > /srv/uploads/cat.jpg && rm /etc/group"
MOUNTS = {"/srv/uploads": "uploads"}
CANDIDATES = ["/srv/app/version", "/srv/uploads/cat.jpg", "/etc/group", "/etc/passwd", "/bin/sh"]

# %% nbgrader={"grade": false, "grade_id": "kept_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
kept = ["/srv/app/version", "/etc/passwd", "/bin/sh"]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "committed", "locked": true, "points": 2, "solution": false}
ex.check_committed(kept, WORK, CANDIDATES, MOUNTS)

# %% [markdown]
# ## 4. A container is its process
#
# What does a container running `EXITS` print, and what is its exit code (`docker wait`)? Put them in
# `printed` and `code`.

# %% nbgrader={"grade": false, "grade_id": "exits", "locked": true, "solution": false}
EXITS = "false; echo $?; test -d /etc && echo dir; exit 7"

# %% nbgrader={"grade": false, "grade_id": "exit_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
printed = "1\ndir\n"
code = 7
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "exit", "locked": true, "points": 2, "solution": false}
ex.check_exit(code, printed, EXITS)

# %% [markdown]
# ## 5. Write the property: copy-up keeps the mode
#
# When a container writes to a file of the image, the union file system first copies the file into
# the container layer (copy-up); the copy must keep the file's metadata. Write a hypothesis property
# `copy_up_keeps_mode(union, ...)`: for any mode it draws, a file stored with that mode in a lower
# layer and then opened for writing (or appended to) by the container keeps that mode. `union` is
# passed in by the check: `with union([lower]) as mount:` mounts the layer under an empty container
# layer, and `mount` has the `os`-shaped calls (`open`, `write`, `close`, `stat`, ...). The check runs
# your property on the engine, where it must hold, and on a copy-up that resets the mode to 0644,
# which it must catch.

# %% nbgrader={"grade": false, "grade_id": "mode_property_answer", "locked": false, "solution": true}
from hypothesis import given
from hypothesis import strategies as st


### BEGIN SOLUTION
@given(mode=st.sampled_from([0o755, 0o700, 0o640, 0o600, 0o444]), data=st.binary(max_size=16))
def copy_up_keeps_mode(union, mode, data):
    lower = Layer()
    lower.add_dir("usr")
    lower.add_file("usr/tool", b"#!/bin/sh\n", mode=mode)
    with union([lower.freeze()]) as mount:
        fd = mount.open("/usr/tool", os.O_WRONLY | os.O_APPEND)
        mount.write(fd, data)
        mount.close(fd)
        assert stat.S_IMODE(mount.stat("/usr/tool").st_mode) == mode
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "copy_up_keeps_mode", "locked": true, "points": 3, "solution": false}
ex.check_copy_up_property(copy_up_keeps_mode)
