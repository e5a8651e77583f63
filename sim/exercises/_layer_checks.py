"""Checks for chapter 1 (分层存储 layers and whiteouts): the answer is compared with what a union
mount of the layers shows on the checks' backend, and a wrong answer is explained by the concept it
misses (a whiteout shown as a file, an opaque directory ignored, a lower layer forgotten, copy-up).
Every check raises :class:`AssertionError` with that hint; nothing compares source text."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Mapping, Sequence

from sim.exercises._engine import scratch_engine
from sim.interface import UnionMount
from sim.layers.layer import Directory, Layer, RegularFile, Symlink, Whiteout

__all__ = ["merged_listing", "check_listing", "visible_bytes", "check_sizes", "check_layer_effect",
           "container_layer", "check_container_layer", "KINDS"]

#: The kinds :func:`container_layer` names an entry by.
KINDS = ("file", "dir", "opaque dir", "whiteout", "symlink", "other")


def _rel(path: str, name: str = "") -> str:
    parts = [p for p in path.split("/") if p] + ([name] if name else [])
    return "/".join(parts)


def merged_listing(layers: Sequence[Layer], path: str) -> list[str]:
    """``ls -a`` of ``path`` (without ``.`` and ``..``) in the union of ``layers`` (bottom first),
    sorted, mounted on the checks' backend."""
    with scratch_engine() as engine, engine.union(list(layers)) as mount:
        return sorted(mount.listdir(path))


def _hidden_by(layers: Sequence[Layer], rel: str) -> tuple[str, int] | None:
    """Why ``rel`` stored in some layer does not show: ("whiteout", i) or ("opaque", i), the
    topmost layer that hides it."""
    stored = [i for i, layer in enumerate(layers) if (e := layer.get(rel)) is not None and not isinstance(e, Whiteout)]
    if not stored:
        return None
    below = stored[-1]
    for i in range(len(layers) - 1, below, -1):
        if isinstance(layers[i].get(rel), Whiteout):
            return "whiteout", i
        parts = rel.split("/")
        for n in range(1, len(parts)):
            entry = layers[i].get("/".join(parts[:n]))
            if isinstance(entry, Directory) and entry.opaque:
                return "opaque", i
    return None


def _origin(layers: Sequence[Layer], rel: str) -> int | None:
    for i in range(len(layers) - 1, -1, -1):
        entry = layers[i].get(rel)
        if entry is not None and not isinstance(entry, Whiteout):
            return i
    return None


def check_listing(answer: Iterable[str], layers: Sequence[Layer], path: str) -> None:
    """The names in ``answer`` are exactly what ``ls`` shows at ``path`` in the union of ``layers``.

    Order and duplicates do not count.  On a difference, raises :class:`AssertionError` whose message
    names the concept the answer misses, one sentence per wrong or missing name.
    """
    if isinstance(answer, str) or not isinstance(answer, Iterable):
        raise AssertionError(f"the answer must be a list of names, not {type(answer).__name__}")
    given = {str(name).strip("/") for name in answer}
    truth = set(merged_listing(layers, path))
    hints: list[str] = []
    for name in sorted(given - truth):
        rel = _rel(path, name)
        why = _hidden_by(layers, rel)
        if name.startswith(".wh."):
            hints.append(f"{name}: a whiteout marker is how a layer's tar stores a delete; the merged view never "
                         "shows the marker, only hides the file it names")
        elif why and why[0] == "whiteout":
            hints.append(f"{name}: a whiteout shown as a file: layer {why[1]} deletes /{rel} with a whiteout, so the "
                         "merged view hides it, although a lower layer still stores it")
        elif why and why[0] == "opaque":
            hints.append(f"{name}: an opaque directory ignored: layer {why[1]} made a parent of /{rel} opaque, so "
                         "nothing from the layers below shows through it")
        else:
            hints.append(f"{name}: no layer has /{rel}")
    for name in sorted(truth - given):
        rel = _rel(path, name)
        origin = _origin(layers, rel)
        if origin is not None and origin < len(layers) - 1:
            hints.append(f"{name} is missing: lower layers show through: /{rel} comes from layer {origin} and no "
                         "layer above deletes it (a merged view is every layer, not only the top one)")
        else:
            hints.append(f"{name} is missing: /{rel} is in the merged view (from layer {origin})")
    if hints:
        raise AssertionError("; ".join(hints))


def visible_bytes(layers: Sequence[Layer]) -> int:
    """The bytes of every regular file the union of ``layers`` shows (hard links counted each time)."""
    total = 0
    with scratch_engine() as engine, engine.union(list(layers)) as mount:
        todo = ["/"]
        while todo:
            folder = todo.pop()
            for name in mount.listdir(folder):
                child = folder.rstrip("/") + "/" + name
                st = mount.lstat(child)
                if stat.S_ISDIR(st.st_mode):
                    todo.append(child)
                elif stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def check_sizes(stored: int, visible: int, layers: Sequence[Layer]) -> None:
    """``stored`` is the sum of the layers' file bytes (what the image carries) and ``visible`` the
    bytes of the files the merged view shows.  Raises :class:`AssertionError` with the hint."""
    true_stored = sum(layer.size for layer in layers)
    true_visible = visible_bytes(layers)
    hints = []
    if stored != true_stored:
        if stored == true_visible:
            hints.append(f"stored is {true_stored} B, not {stored}: a deleted file still costs bytes, because a "
                         "whiteout only hides it and the layer below keeps every byte")
        else:
            hints.append(f"stored is {true_stored} B, not {stored}: every layer's file bytes count, whiteouts none")
    if visible != true_visible:
        if visible == true_stored:
            hints.append(f"visible is {true_visible} B, not {visible}: whited-out files and files under an opaque "
                         "directory are not in the merged view")
        else:
            hints.append(f"visible is {true_visible} B, not {visible}: only the topmost copy of each path shows")
    if hints:
        raise AssertionError("; ".join(hints))


def check_layer_effect(layer: Layer, below: Sequence[Layer], expected: Mapping[str, Iterable[str]],
                       *, max_bytes: int = 0) -> None:
    """Stacked on ``below``, ``layer`` makes ``ls`` show ``expected[path]`` at each path, and it
    stores at most ``max_bytes`` of file data (a delete needs no bytes).  Raises
    :class:`AssertionError` with the hint."""
    if not isinstance(layer, Layer):
        raise AssertionError(f"the answer must be a sim.layers.Layer, not {type(layer).__name__}")
    stack = [*below, layer.freeze() if not layer.frozen else layer]
    for path, names in expected.items():
        shown = merged_listing(stack, path)
        want = sorted(names)
        if shown != want:
            extra, gone = sorted(set(shown) - set(want)), sorted(set(want) - set(shown))
            hint = f"{path} shows {shown}, expected {want}"
            if extra:
                hint += f"; {extra} still show: deleting a lower file takes a whiteout in the upper layer"
            if gone:
                hint += (f"; {gone} are gone too: an opaque directory hides everything below it, a whiteout "
                         "hides one name")
            raise AssertionError(hint)
    if layer.size > max_bytes:
        copied = [p for p, e in layer.items() if isinstance(e, RegularFile)]
        raise AssertionError(f"the layer stores {layer.size} B of files ({copied}): re-adding files copies their "
                             f"bytes into a new layer; a whiteout deletes with 0 B")


def _kind(entry: object) -> str:
    if isinstance(entry, Whiteout):
        return "whiteout"
    if isinstance(entry, Directory):
        return "opaque dir" if entry.opaque else "dir"
    if isinstance(entry, RegularFile):
        return "file"
    if isinstance(entry, Symlink):
        return "symlink"
    return "other"


def container_layer(layers: Sequence[Layer], steps: Callable[[UnionMount], object]) -> dict[str, str]:
    """Run ``steps`` on a container's union of ``layers`` and return its writable layer as
    ``{"/path": kind}`` (kinds in :data:`KINDS`)."""
    with scratch_engine() as engine, engine.union(list(layers)) as mount:
        steps(mount)
        return {"/" + p: _kind(e) for p, e in mount.upper.items()}


def check_container_layer(answer: Mapping[str, str], layers: Sequence[Layer],
                          steps: Callable[[UnionMount], object]) -> None:
    """``answer`` maps every path of the container's writable layer after ``steps`` to its kind.
    Raises :class:`AssertionError` with the hint (copy-up, whiteouts, opaque directories, parents)."""
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of path -> kind, not {type(answer).__name__}")
    given = {"/" + str(p).strip("/"): str(k) for p, k in answer.items()}
    truth = container_layer(layers, steps)
    hints = []
    for path in sorted(set(truth) | set(given)):
        want, got = truth.get(path), given.get(path)
        if want == got:
            continue
        if want is None:
            hints.append(f"{path} is not in the container layer: only what changed is stored, the rest stays below")
        elif got is None and want == "dir":
            hints.append(f"{path} (dir) is missing: copy-up copies a file's parent directories up first")
        elif got is None and want == "file":
            hints.append(f"{path} (file) is missing: copy-up: opening a lower file for writing copies the whole file "
                         "into the container layer, even if nothing is written")
        elif want == "whiteout":
            hints.append(f"{path} is a whiteout, not {got!r}: deleting a lower file records a whiteout in the "
                         "container layer")
        elif want == "opaque dir":
            hints.append(f"{path} is an opaque dir, not {got!r}: a directory removed and made again hides "
                         "everything the lower layers had in it")
        else:
            hints.append(f"{path} is a {want}, not {got!r}")
    if hints:
        raise AssertionError("; ".join(hints))
