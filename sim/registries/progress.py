"""Progress of blob transfers: a rich bar per blob on a terminal, nothing otherwise.

:class:`TransferProgress` is what push and pull report to; :class:`Quiet`
ignores it (scripts, notebooks, tests) and :class:`Bars` draws one rich
progress bar per blob, as ``docker pull`` does.  :func:`for_stream` picks
between them by whether the stream is a terminal.
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

__all__ = ["TransferProgress", "Quiet", "Bars", "for_stream"]


class TransferProgress:
    """Callbacks for one push or pull; a context manager around the whole transfer."""

    def start(self, digest: str, total: int, done: int = 0, *, what: str = "") -> None:
        """A blob of ``total`` bytes starts (``done`` already there: a resumed download)."""

    def advance(self, digest: str, n: int) -> None:
        """``n`` more bytes of ``digest`` crossed the link."""

    def finish(self, digest: str, status: str) -> None:
        """The blob is done: ``status`` is what happened ("Pushed", "Layer already exists", "Pull complete" ...)."""

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


class Quiet(TransferProgress):
    """Reports nothing."""


class Bars(TransferProgress):
    """One rich bar per blob (short digest, bytes, speed), drawn on ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(TextColumn("{task.fields[name]}"), TextColumn("{task.description}"), BarColumn(),
                                  DownloadColumn(), TransferSpeedColumn(), console=Console(file=stream),
                                  transient=False)
        self._tasks: dict[str, object] = {}

    def __enter__(self) -> Bars:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def start(self, digest: str, total: int, done: int = 0, *, what: str = "") -> None:
        short = digest.removeprefix("sha256:")[:12]
        self._tasks[digest] = self._progress.add_task(what or "Downloading", total=total, completed=done, name=short)

    def advance(self, digest: str, n: int) -> None:
        task = self._tasks.get(digest)
        if task is not None:
            self._progress.advance(task, n)  # type: ignore[arg-type]

    def finish(self, digest: str, status: str) -> None:
        task = self._tasks.get(digest)
        if task is None:
            self.start(digest, 0, what=status)
            task = self._tasks[digest]
        self._progress.update(task, description=status)  # type: ignore[arg-type]


def for_stream(stream: TextIO) -> TransferProgress:
    """Bars on a terminal, :class:`Quiet` otherwise (a pipe, a file, a notebook)."""
    isatty = getattr(stream, "isatty", None)
    return Bars(stream) if callable(isatty) and isatty() else Quiet()
