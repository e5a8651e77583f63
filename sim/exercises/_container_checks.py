"""Checks for chapter 3 (容器 containers, the container layer and volumes): every answer is run as
containers on the checks' engine and judged by what they did (``docker diff``, what a later
container reads, what ``commit`` keeps, the exit status), never by its text.  Every check raises
:class:`AssertionError` whose message names the concept a wrong answer misses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.errors import LayerlabError
from sim.exercises._engine import scratch_engine

if TYPE_CHECKING:
    from sim.containers.core import EngineCore

__all__ = ["container_diff", "check_diff", "Handoff", "check_handoff", "committed_paths", "check_committed",
           "check_exit"]

IMAGE = "busybox"
_KINDS = ("A", "C", "D")


def _run(engine: EngineCore, command: str, volumes: Mapping[str, str] | None = None) -> tuple[str, int, str]:
    """Run ``command`` (``sh -c``) in a new container; its id, exit code and stdout."""
    info = engine.create(IMAGE, command, volumes=volumes)
    result = engine.start(info.id)
    assert result is not None
    return info.id, result.exit_code, result.stdout.decode(errors="replace")


def container_diff(command: str) -> dict[str, str]:
    """``docker diff`` of a ``busybox`` container after ``sh -c command``: path -> ``"A"``, ``"C"``
    or ``"D"``."""
    with scratch_engine() as engine:
        cid, _, _ = _run(engine, command)
        return {c.path: c.kind.value for c in engine.diff(cid)}


def check_diff(answer: Mapping[str, str], command: str) -> None:
    """``answer`` is :func:`container_diff` of ``command``: every changed path and its kind.

    Raises :class:`AssertionError` with one hint per wrong or missing path."""
    if not isinstance(answer, Mapping):
        raise AssertionError(f"the answer must be a dict of path -> 'A', 'C' or 'D', not {type(answer).__name__}")
    given = {"/" + str(p).strip("/"): str(k).upper() for p, k in answer.items()}
    bad = sorted(k for k in given.values() if k not in _KINDS)
    if bad:
        raise AssertionError(f"{bad[0]!r} is not a kind: docker diff says A (added), C (changed) or D (deleted)")
    truth = container_diff(command)
    hints = []
    for path in sorted(set(truth) | set(given)):
        want, got = truth.get(path), given.get(path)
        if want == got:
            continue
        if want is None:
            hints.append(f"{path} is not in the diff: only what the container changed is in its layer; the image's "
                         "files stay below, untouched")
        elif want == "C" and got is None:
            hints.append(f"{path} (C) is missing: adding, changing or deleting an entry changes the directory that "
                         "holds it, so the directory is copied up and listed as changed")
        elif want == "D":
            hints.append(f"{path} is D, not {got!r}: deleting a file of the image records a whiteout; the image "
                         "still stores the file")
        elif want == "A":
            hints.append(f"{path} is A, not {got!r}: it did not exist in the image, so it is added")
        elif want == "C" and got == "A":
            hints.append(f"{path} is C, not A: it already existed in the image; writing to it copies it up, which "
                         "is a change")
        else:
            hints.append(f"{path} is {want}, not {got!r}")
    if hints:
        raise AssertionError("; ".join(hints))


@dataclass(frozen=True)
class Handoff:
    """Two containers run one after the other, the first removed (``rm``) before the second starts:
    ``writer`` saves data at ``path``, ``reader`` prints it (``sh -c`` commands)."""

    writer: str
    reader: str
    path: str


def _volumes(answer: object) -> dict[str, str]:
    if not isinstance(answer, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in answer.items()):
        raise AssertionError("the answer must be a dict of container path -> volume name, e.g. {'/srv': 'mydata'}")
    return dict(answer)


def check_handoff(answer: Mapping[str, str], task: Handoff, expected: str) -> None:
    """Both containers of ``task`` get the volumes ``answer`` (container path -> volume name), and
    the reader prints ``expected`` although the writer was removed.  Raises
    :class:`AssertionError` with the hint."""
    volumes = _volumes(answer)
    with scratch_engine() as engine:
        try:
            writer, _, _ = _run(engine, task.writer, volumes=volumes)
            engine.remove(writer)
            _, _, out = _run(engine, task.reader, volumes=volumes)
        except LayerlabError as exc:
            raise AssertionError(f"the containers could not run with these volumes: {exc}") from None
    if out == expected:
        return
    inside = [p for p in volumes if task.path == p or task.path.startswith(p.rstrip("/") + "/")]
    if not volumes:
        raise AssertionError(f"the reader printed {out!r}: without a volume the data was in the writer's own writable "
                             "layer, and rm deleted that layer with the container")
    if not inside:
        raise AssertionError(f"the reader printed {out!r}: the volume is mounted at {', '.join(volumes)}, but the "
                             f"data is written to {task.path}, which is in the container layer, not in the volume")
    raise AssertionError(f"the reader printed {out!r}, not {expected!r}")


def committed_paths(command: str, candidates: Iterable[str], volumes: Mapping[str, str]) -> list[str]:
    """Which ``candidates`` exist in the image ``commit`` makes of a ``busybox`` container that ran
    ``sh -c command`` with ``volumes`` mounted (sorted)."""
    with scratch_engine() as engine:
        cid, _, _ = _run(engine, command, volumes=dict(volumes))
        engine.commit(cid, "exercise:committed")
        found = []
        for path in sorted(set(candidates)):
            # A new container of the committed image, without the volumes: what the image itself holds.
            result = engine.run("exercise:committed", ["test", "-e", path], remove=True)
            if result.exit_code == 0:
                found.append(path)
        return found


def check_committed(answer: Iterable[str], command: str, candidates: Sequence[str], volumes: Mapping[str, str]) -> None:
    """``answer`` is :func:`committed_paths`: the candidates the committed image holds.  Raises
    :class:`AssertionError` with one hint per wrong or missing path."""
    if isinstance(answer, str) or not isinstance(answer, Iterable):
        raise AssertionError(f"the answer must be a list of paths, not {type(answer).__name__}")
    given = {"/" + str(p).strip("/") for p in answer}
    truth = set(committed_paths(command, candidates, volumes))
    hints = []
    for path in sorted(given - truth):
        mounted = [v for v in volumes if path == v or path.startswith(v.rstrip("/") + "/")]
        if mounted:
            hints.append(f"{path} is not in the image: it was written to the volume at {mounted[0]}, and commit keeps "
                         "only the container's writable layer, never its volumes")
        else:
            hints.append(f"{path} is not in the image: the container deleted it, and commit keeps the delete as a "
                         "whiteout in the new layer")
    for path in sorted(truth - given):
        hints.append(f"{path} is in the image: what the container wrote outside its volumes is in its writable "
                     "layer, and commit turns that layer into an image layer (on top of busybox's, which stay)")
    if hints:
        raise AssertionError("; ".join(hints))


def check_exit(code: int, output: str, command: str) -> None:
    """A ``busybox`` container running ``sh -c command`` ends with exit code ``code`` and prints
    ``output``.  Raises :class:`AssertionError` with the hint."""
    if not isinstance(code, int) or not isinstance(output, str):
        raise AssertionError("the answer is an int (exit code) and a str (what it prints)")
    with scratch_engine() as engine:
        _, true_code, true_out = _run(engine, command)
    hints = []
    if output != true_out:
        hints.append(f"it prints {true_out!r}, not {output!r}: $? is the status of the command just before it")
    if code != true_code:
        hints.append(f"the exit code is {true_code}, not {code}: a container ends when its main process (here sh) "
                     "ends, and its exit code is that process's status: `exit N` sets it, else the last command's")
    if hints:
        raise AssertionError("; ".join(hints))
