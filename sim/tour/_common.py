"""What every chapter of the tour shares: the :class:`Tour` it prints through, :class:`Chapter`,
and the helpers more than one chapter uses (a scratch engine to build and run in, a build context
on disk, short IDs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sim.interface import Engine, UnionMount

if TYPE_CHECKING:
    from sim.containers.core import EngineCore

__all__ = ["Chapter", "Tour", "upper_dir_on_disk", "scratch_engine", "write_context", "shorten", "short_id",
           "TOUR_EPOCH"]

RULE = "=" * 72


@dataclass
class Tour:
    """What a chapter gets: the engine, where to print, and printing helpers."""

    engine: Engine
    backend: str
    out: TextIO

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def chapter(self, number: int, zh: str, en: str) -> None:
        self.print()
        self.print(RULE)
        self.print(f"第 {number} 章  {zh}  ·  Chapter {number}: {en}")
        self.print(RULE)

    def section(self, number: str, zh: str, en: str) -> None:
        self.print()
        self.print(f"--- {number} {zh} / {en} ---")

    def say(self, text: str, indent: int = 2) -> None:
        for line in text.splitlines() or [""]:
            self.print(" " * indent + line)

    def lines(self, lines: Sequence[str], indent: int = 4) -> None:
        for line in lines:
            self.print(" " * indent + line)


@dataclass(frozen=True)
class Chapter:
    zh: str
    en: str
    run: Callable[[Tour], None]


def upper_dir_on_disk(mount: UnionMount) -> str | None:
    """The kernel mount's upper directory on the host, or ``None`` for the model."""
    upper = getattr(mount, "upper_dir", None)
    return upper if isinstance(upper, str) else None


#: The timestamp the image chapters build with, unless ``SOURCE_DATE_EPOCH`` is already set.
TOUR_EPOCH = "1700000000"


@contextlib.contextmanager
def scratch_engine(t: Tour) -> Iterator[tuple[EngineCore, Path]]:
    """A fresh engine of the tour's backend and a temporary folder, both gone afterwards.

    The image chapters build images and create volumes; they must not leave them in the
    state folder of the user's ``layerlab`` commands.  The real engine keeps its state in
    the temporary folder; the model keeps it in memory.  ``SOURCE_DATE_EPOCH`` is set
    (unless it already is) so the builds are reproducible: the same IDs on both backends.
    """
    folder = Path(tempfile.mkdtemp(prefix="layerlab-tour-"))
    saved = os.environ.get("SOURCE_DATE_EPOCH")
    if not saved:
        os.environ["SOURCE_DATE_EPOCH"] = TOUR_EPOCH
    cls: Any = type(t.engine)
    options: dict[str, Any] = {}
    if getattr(t.engine, "state_dir", None) is not None:  # the real engine always has one
        options["state_dir"] = str(folder / "state")
    if hasattr(t.engine, "rootless"):
        options["rootless"] = t.engine.rootless
    engine: EngineCore = cls(**options)
    try:
        yield engine, folder
    finally:
        try:
            engine.close()
        finally:
            if saved is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)
            else:
                os.environ["SOURCE_DATE_EPOCH"] = saved
            shutil.rmtree(folder, ignore_errors=True)


def write_context(folder: Path, files: Mapping[str, str]) -> Path:
    """Write a build context (relative path -> text) into ``folder``; returns it."""
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def shorten(text: str, width: int = 56) -> str:
    text = text.replace("/bin/sh -c ", "")  # history says "RUN /bin/sh -c ..."; the Buildfile said "RUN ..."
    return text if len(text) <= width else text[: width - 3] + "..."


def short_id(digest: str | None) -> str:
    return digest[7:19] if digest else "-"
