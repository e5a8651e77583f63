# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Layers and whiteouts (分层存储)
#
# Each answer is checked by mounting the layers in a union on the model (or on the kernel with
# `layerlab exercises check --backend real`) and comparing what it shows with your answer.
# Replace every `raise NotImplementedError()` with your answer, then run all cells.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false}
import os

import sim.exercises as ex
from sim.interface import UnionMount
from sim.layers import Layer


def base_layer() -> Layer:
    """Layer 0: /etc with three files, /var/log with a log, /app/static with two assets."""
    layer = Layer()
    layer.add_dir("etc")
    layer.add_file("etc/hostname", b"box\n")
    layer.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    layer.add_file("etc/motd", b"welcome\n")
    layer.add_dir("var")
    layer.add_dir("var/log")
    layer.add_file("var/log/boot.log", b"booted\n")
    layer.add_dir("app")
    layer.add_dir("app/static")
    layer.add_file("app/static/old.css", b"body { color: red }\n")
    layer.add_file("app/static/old.js", b"alert('old')\n")
    return layer.freeze()


def cleanup_layer() -> Layer:
    """Layer 1: deletes /etc/motd, adds /etc/issue, replaces /app/static by an opaque directory."""
    layer = Layer()
    layer.add_dir("etc")
    layer.add_whiteout("etc/motd")
    layer.add_file("etc/issue", b"Layerlab Linux\n")
    layer.add_dir("app")
    layer.add_dir("app/static", opaque=True)
    layer.add_file("app/static/new.css", b"body { color: green }\n")
    return layer.freeze()


LAYERS = [base_layer(), cleanup_layer()]
print("checks run on:", ex.backend_name())

# %% [markdown]
# ## 1. `ls /etc` after a whiteout
#
# Layer 1 holds a whiteout for `etc/motd` and a new file `etc/issue`. Which names does `ls /etc`
# show in the merged view of `LAYERS`? Put them in the list `etc_names`.

# %% nbgrader={"grade": false, "grade_id": "etc_names_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
etc_names = ["hostname", "issue", "passwd"]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "etc_names", "locked": true, "points": 2, "solution": false}
ex.check_listing(etc_names, LAYERS, "/etc")

# %% [markdown]
# ## 2. `ls /app/static` over an opaque directory
#
# Layer 1 makes `app/static` an opaque directory holding `new.css`. What does `ls /app/static` show?

# %% nbgrader={"grade": false, "grade_id": "static_names_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
static_names = ["new.css"]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "static_names", "locked": true, "points": 2, "solution": false}
ex.check_listing(static_names, LAYERS, "/app/static")

# %% [markdown]
# ## 3. What a delete costs
#
# `Layer.size` counts a layer's file bytes. How many bytes of files does the image (both layers)
# store, and how many bytes of files does the merged view show? Compute both with Python from the
# layers (`layer.size`, `layer.items()`) or by hand, into `stored` and `visible`.

# %% nbgrader={"grade": false, "grade_id": "sizes_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
stored = sum(layer.size for layer in LAYERS)
visible = stored - len(b"welcome\n") - len(b"body { color: red }\n") - len(b"alert('old')\n")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "sizes", "locked": true, "points": 2, "solution": false}
ex.check_sizes(stored, visible, LAYERS)

# %% [markdown]
# ## 4. Write the layer that deletes
#
# Build a new `Layer` called `delete_passwd` that, stacked on `LAYERS`, removes `/etc/passwd` and
# `/var/log/boot.log` from the merged view and leaves everything else as it is. It must not store
# any file bytes.

# %% nbgrader={"grade": false, "grade_id": "delete_answer", "locked": false, "solution": true}
delete_passwd = Layer()
### BEGIN SOLUTION
delete_passwd.add_dir("etc")
delete_passwd.add_whiteout("etc/passwd")
delete_passwd.add_dir("var")
delete_passwd.add_dir("var/log")
delete_passwd.add_whiteout("var/log/boot.log")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "delete_layer", "locked": true, "points": 3, "solution": false}
ex.check_layer_effect(delete_passwd, LAYERS, {"/etc": ["hostname", "issue"], "/var/log": []})
### BEGIN HIDDEN TESTS
ex.check_layer_effect(delete_passwd, LAYERS, {"/app/static": ["new.css"], "/var": ["log"]})
### END HIDDEN TESTS

# %% [markdown]
# ## 5. The container layer after copy-up, a delete and an `rm -rf`
#
# A container runs `container_steps` on the union of `LAYERS`. Which entries does its writable
# layer (`mount.upper`) hold afterwards? Fill `upper` with `{"/path": kind}` for every entry,
# where kind is one of `ex.KINDS` ("file", "dir", "opaque dir", "whiteout", ...).

# %% nbgrader={"grade": false, "grade_id": "steps", "locked": true, "solution": false}
def container_steps(mount: UnionMount) -> None:
    fd = mount.open("/etc/hostname", os.O_RDWR)  # opened for writing, nothing written
    mount.close(fd)
    mount.unlink("/etc/passwd")
    mount.unlink("/var/log/boot.log")
    mount.rmdir("/var/log")
    mount.mkdir("/var/log")


# %% nbgrader={"grade": false, "grade_id": "upper_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
upper = {
    "/etc": "dir",
    "/etc/hostname": "file",
    "/etc/passwd": "whiteout",
    "/var": "dir",
    "/var/log": "opaque dir",
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "container_layer", "locked": true, "points": 3, "solution": false}
ex.check_container_layer(upper, LAYERS, container_steps)

# %% [markdown]
# ## 6. Write the property: what an upper layer deletes stays deleted
#
# Write a hypothesis property `deleting_hides(union, ...)`: for any file name and contents it draws,
# a file stored in a lower layer and deleted by an upper layer is not in the merged view. `union` is
# passed in by the check: `with union([lower, upper]) as mount:` mounts the layers (bottom first).
# The check runs your property on the engine, where it must hold, and on two broken runtimes, which
# it must catch: one that ignores whiteouts and one that drops the opaque marker of a directory.
# So delete both ways: `add_whiteout(name)`, and an `add_dir(name, opaque=True)` over a lower
# directory. The strategies are in `hypothesis.strategies` and `sim.testing` (`names()`, ...).

# %% nbgrader={"grade": false, "grade_id": "property_answer", "locked": false, "solution": true}
from hypothesis import given
from hypothesis import strategies as st

from sim.testing import names


### BEGIN SOLUTION
@given(name=names(), data=st.binary(max_size=16))
def deleting_hides(union, name, data):
    lower, upper = Layer(), Layer()
    lower.add_file(name, data)
    lower.add_dir("dir")
    lower.add_file(f"dir/{name}", data)
    upper.add_whiteout(name)
    upper.add_dir("dir", opaque=True)
    with union([lower.freeze(), upper.freeze()]) as mount:
        assert name not in mount.listdir("/")
        assert mount.listdir("/dir") == []
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "deleting_hides", "locked": true, "points": 3, "solution": false}
ex.check_union_property(deleting_hides)
