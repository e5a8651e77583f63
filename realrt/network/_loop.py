"""pyroute2's synchronous calls refuse to run under a running asyncio loop ("This event loop is
already running"), which is where a Jupyter kernel runs every cell.  :func:`off_loop` runs such a
call on a short-lived thread of its own then, and directly otherwise (no thread per call in
scripts and tests)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = ["off_loop", "loop_safe"]

P = ParamSpec("P")
R = TypeVar("R")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def off_loop(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``function(*args, **kwargs)``, on another thread when this one runs an asyncio loop."""
    if not _loop_running():
        return function(*args, **kwargs)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as exc:  # handed back to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, name="layerlab-netlink")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def loop_safe(method: Callable[P, R]) -> Callable[P, R]:
    """A method whose pyroute2 calls must not run on a thread with a running asyncio loop."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return off_loop(method, *args, **kwargs)

    return wrapper
