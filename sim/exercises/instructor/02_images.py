# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Images and builds (镜像)
#
# Each answer is checked by building it with the engine (the model by default, the kernel with
# `--backend real`) and looking at what the build made: layers, CACHED steps, history, DiffIDs, sizes.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false}
import sim.exercises as ex

FILES = {
    "app.py": "print('hello')\n",
    "requirements.txt": "httpx\n",
    "conf/app.ini": "port=8080\n",
}
print("checks run on:", ex.backend_name())

# %% [markdown]
# ## 1. How many layers?
#
# How many layers (`rootfs.diff_ids`, the base image's included) does the image built from
# `COUNT_ME` have? The base image `busybox` has one layer. Put the number in `n_layers`.

# %% nbgrader={"grade": false, "grade_id": "count_me", "locked": true, "solution": false}
COUNT_ME = """\
FROM busybox
LABEL maintainer="teacher"
ENV APP_HOME=/app
COPY app.py /app/app.py
RUN mkdir -p /app/data
USER nobody
COPY conf/ /app/conf/
CMD ["sh", "-c", "cat /app/app.py"]
"""

# %% nbgrader={"grade": false, "grade_id": "n_layers_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
n_layers = 4
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "n_layers", "locked": true, "points": 2, "solution": false}
ex.check_layer_count(n_layers, COUNT_ME, FILES)

# %% [markdown]
# ## 2. Which steps stay CACHED?
#
# `CACHE_ME` is built, then `app.py` is edited and the same Buildfile built again. Which of its
# layer steps (numbered from 1 for `FROM`) does the second build report as CACHED? List their numbers
# in `cached`.

# %% nbgrader={"grade": false, "grade_id": "cache_me", "locked": true, "solution": false}
CACHE_ME = """\
FROM busybox
COPY requirements.txt /app/requirements.txt
RUN mkdir -p /app/deps && cp /app/requirements.txt /app/deps/
COPY app.py /app/app.py
RUN echo built > /app/VERSION
"""
EDIT = {"app.py": "print('hello, again')\n"}

# %% nbgrader={"grade": false, "grade_id": "cached_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
cached = [2, 3]
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "cached", "locked": true, "points": 2, "solution": false}
ex.check_cached_steps(cached, CACHE_ME, FILES, EDIT)

# %% [markdown]
# ## 3. Write the Buildfile that gives this history
#
# Write a Buildfile `my_buildfile`, `FROM busybox`, whose `docker history` (oldest first, after the
# base image's entry) is `TARGET`: `(created_by, empty_layer)` pairs. The hidden check also builds the
# teacher's Buildfile and compares the DiffIDs, so the layers must hold the same bytes.

# %% nbgrader={"grade": false, "grade_id": "target", "locked": true, "solution": false}
TARGET = [
    ("ENV APP_HOME=/app", True),
    ("COPY conf/app.ini /etc/app.ini", False),
    ("RUN /bin/sh -c mkdir -p /app && echo 1.0 > /app/VERSION", False),
    ("WORKDIR /app", True),
]

# %% nbgrader={"grade": false, "grade_id": "history_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
my_buildfile = """\
FROM busybox
ENV APP_HOME=/app
COPY conf/app.ini /etc/app.ini
RUN mkdir -p /app && echo 1.0 > /app/VERSION
WORKDIR /app
"""
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "history", "locked": true, "points": 3, "solution": false}
ex.check_history(my_buildfile, FILES, TARGET)
### BEGIN HIDDEN TESTS
REFERENCE = """\
FROM busybox
ENV APP_HOME=/app
COPY conf/app.ini /etc/app.ini
RUN mkdir -p /app && echo 1.0 > /app/VERSION
WORKDIR /app
"""
ex.check_history(my_buildfile, FILES, TARGET, reference=REFERENCE)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. A smaller image that does the same work
#
# `BIG` makes a 64 KiB scratch file in one step and deletes it in the next. Write `small`, a
# Buildfile whose image is smaller but still prints `ok` for `cat /app/status`.

# %% nbgrader={"grade": false, "grade_id": "big", "locked": true, "solution": false}
BIG = """\
FROM busybox
RUN mkdir -p /app /tmp/build && printf '%65536s' x > /tmp/build/scratch.bin
RUN rm -rf /tmp/build && echo ok > /app/status
"""

# %% nbgrader={"grade": false, "grade_id": "small_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
small = """\
FROM busybox
RUN mkdir -p /app /tmp/build && printf '%65536s' x > /tmp/build/scratch.bin && rm -rf /tmp/build && echo ok > /app/status
"""
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "smaller", "locked": true, "points": 3, "solution": false}
ex.check_smaller_image(small, FILES, BIG, ["cat", "/app/status"], "ok\n")

# %% [markdown]
# ## 5. Layers stored once
#
# Both Buildfiles in `TWO_IMAGES` are built in one engine (which already has `busybox`). How many
# distinct layers (DiffIDs) does `docker system df` count afterwards, busybox's included? Put it in
# `n_stored`.

# %% nbgrader={"grade": false, "grade_id": "two_images", "locked": true, "solution": false}
TWO_IMAGES = {
    "web": """\
FROM busybox
COPY requirements.txt /app/requirements.txt
COPY app.py /app/app.py
RUN echo web > /app/ROLE
""",
    "worker": """\
FROM busybox
COPY requirements.txt /app/requirements.txt
COPY conf/ /app/conf/
COPY app.py /app/app.py
""",
}

# %% nbgrader={"grade": false, "grade_id": "stored_answer", "locked": false, "solution": true}
### BEGIN SOLUTION
n_stored = 5
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "stored", "locked": true, "points": 2, "solution": false}
ex.check_stored_layers(n_stored, TWO_IMAGES, FILES)

# %% [markdown]
# ## 6. Write the property: the cache never serves a stale `COPY`
#
# Write a hypothesis property `copy_is_fresh(build, ...)`. `build(buildfile, files)` (passed in by the
# check) builds `buildfile` in one engine, so its cache carries over from one example to the next,
# with `files` (`{"name": "text"}`) as the build context; it returns the image: `.id`, `.diff_ids`,
# `.cached` (the numbers of the CACHED steps, `FROM` is 1) and `.read(path)`, the bytes of one of its
# files. For any text the property draws, a Buildfile that `COPY`s a file must give an image holding
# that text. The check runs it on the engine, where it must hold, and on a builder whose cache is keyed
# by the Buildfile's text alone, which it must catch.

# %% nbgrader={"grade": false, "grade_id": "cache_property_answer", "locked": false, "solution": true}
from hypothesis import given
from hypothesis import strategies as st


### BEGIN SOLUTION
@given(text=st.text(alphabet="abcxyz\n", min_size=1, max_size=12))
def copy_is_fresh(build, text):
    image = build("FROM busybox\nCOPY notes.txt /app/notes.txt\n", {"notes.txt": text})
    assert image.read("/app/notes.txt") == text.encode()
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "copy_is_fresh", "locked": true, "points": 3, "solution": false}
ex.check_build_property(copy_is_fresh)
