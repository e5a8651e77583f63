# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Repositories and registries (仓库)
#
# Each answer is checked by parsing the references, or by pushing and pulling with the engine (the
# model by default, the kernel's with `layerlab exercises check --backend real`) against model
# registries on this machine, and looking at what crossed each link.
# Replace every `raise NotImplementedError()` with your answer, then run all cells.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false}
import hashlib
import io

import sim.exercises as ex

BUILDFILE = """\
FROM busybox
COPY app.txt /app/app.txt
RUN mkdir -p /app/data && echo ready > /app/data/state
"""
V1 = {"app.txt": "version 1\n"}
V2 = {"app.txt": "version 2\n"}
print("checks run on:", ex.backend_name())

# %% [markdown]
# ## 1. What a reference names
#
# For each reference in `REFERENCES`, give the registry, the repository (its path in that registry)
# and the tag or digest that `docker pull` uses, as `{reference: (registry, repository, tag)}`.

# %% nbgrader={"grade": false, "grade_id": "references", "locked": true, "solution": false}
DIGEST = "sha256:" + "ab" * 32
REFERENCES = ["busybox", "team/app:1.2", "localhost:5000/team/web", f"localhost:5000/team/web@{DIGEST}"]

# %% nbgrader={"grade": false, "grade_id": "parts_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
parts = {
    "busybox": ("docker.io", "library/busybox", "latest"),
    "team/app:1.2": ("docker.io", "team/app", "1.2"),
    "localhost:5000/team/web": ("localhost:5000", "team/web", "latest"),
    f"localhost:5000/team/web@{DIGEST}": ("localhost:5000", "team/web", DIGEST),
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "parts", "locked": true, "points": 2, "solution": false}
ex.check_reference_parts(parts, REFERENCES)

# %% [markdown]
# ## 2. What each push sends
#
# `BUILDFILE` is built with the files `V1` as `localhost:5000/lab/hello` and pushed (push 1); the same
# image is tagged `localhost:5000/lab/web` and pushed (push 2); then `app.txt` becomes `V2`, the image
# is rebuilt as `lab/hello` and pushed again (push 3). How many **layer** blobs does each push upload?
# (busybox has one layer; the registry starts empty.) Put the three numbers in `uploads`.

# %% nbgrader={"grade": false, "grade_id": "uploads_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
uploads = [3, 0, 1]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "uploads", "locked": true, "points": 3, "solution": false}
ex.check_uploads(uploads, BUILDFILE, V1, V2)

# %% [markdown]
# ## 3. Where `latest` points
#
# Version 1 is pushed as `lab/hello:1.0` and `lab/hello:latest`; version 2 is then pushed as
# `lab/hello:latest` only. What does a new machine get when it pulls each of `PULLS`: `"v1"`, `"v2"` or
# `"missing"`? (`@v1` stands for version 1's manifest digest, as `docker push` printed it.)

# %% nbgrader={"grade": false, "grade_id": "pulls", "locked": true, "solution": false}
PULLS = ["localhost:5000/lab/hello", "localhost:5000/lab/hello:1.0", "localhost:5000/lab/hello@v1",
         "localhost:5000/lab/hello:2.0"]

# %% nbgrader={"grade": false, "grade_id": "targets_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
targets = {
    "localhost:5000/lab/hello": "v2",
    "localhost:5000/lab/hello:1.0": "v1",
    "localhost:5000/lab/hello@v1": "v1",
    "localhost:5000/lab/hello:2.0": "missing",
}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "targets", "locked": true, "points": 2, "solution": false}
ex.check_tag_targets(targets, BUILDFILE, V1, V2, PULLS)

# %% [markdown]
# ## 4. A mirror's second pull
#
# Two machines use the same pull-through mirror (加速器) of Docker Hub. The first pulls `busybox`; then
# the second pulls `busybox`. What crosses the Docker Hub → mirror link for the second pull? One of
# `ex.TRAFFIC`; put it in `second_pull`.

# %% nbgrader={"grade": false, "grade_id": "mirror_answer", "locked": false, "solution": true}
print(ex.TRAFFIC)
### BEGIN SOLUTION
second_pull = "the manifest only"
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "mirror", "locked": true, "points": 2, "solution": false}
ex.check_mirror_traffic(second_pull)

# %% [markdown]
# ## 5. Write the property: a registry is content-addressed
#
# A registry names each blob by the sha256 of its bytes, so what it serves under a digest must hash to
# that digest. Write a hypothesis property `content_addressed(registry, ...)`: `registry()` (passed in
# by the check) opens a session on a new, empty registry, with `put_blob(repository, digest, size,
# fileobj)` and `open_blob(repository, digest)` (a context manager whose iteration gives the bytes).
# The check runs your property on the model registry, where it must hold, and on a registry that
# stores a blob under whatever digest the client claims, which it must catch. (A registry refuses a
# wrong digest with an error from `sim.errors`; a property may accept the refusal.)

# %% nbgrader={"grade": false, "grade_id": "registry_property_answer", "locked": false, "solution": true}
from hypothesis import assume, given
from hypothesis import strategies as st

from sim.errors import LayerlabError


### BEGIN SOLUTION
@given(data=st.binary(min_size=1, max_size=64), claimed=st.binary(min_size=1, max_size=64))
def content_addressed(registry, data, claimed):
    assume(data != claimed)
    session = registry()
    digest = "sha256:" + hashlib.sha256(claimed).hexdigest()  # not the digest of data
    try:
        session.put_blob("lab/blobs", digest, len(data), io.BytesIO(data))
    except LayerlabError:
        return  # refused: nothing stored under a digest that is not its own
    with session.open_blob("lab/blobs", digest) as blob:
        served = b"".join(blob)
    assert "sha256:" + hashlib.sha256(served).hexdigest() == digest
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "content_addressed", "locked": true, "points": 3, "solution": false}
ex.check_registry_property(content_addressed)
