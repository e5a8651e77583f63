"""The rules of a container's lifecycle both backends share: restart policies, signals, the STATUS text.

``docker run --restart``: ``no`` (the default), ``on-failure[:N]`` (restart after a non-zero exit, at
most N times when N is given), ``always`` and ``unless-stopped`` (restart after every exit).  A manual
``stop`` or ``kill`` is never followed by a restart (Docker restarts such an ``always`` container only
when its daemon restarts; layerlab has no daemon, see docs/containers.md).  Between two runs the engine
waits as moby does: 100 ms, doubled after each restart, back to 100 ms once a run lasted 10 s.
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass

from sim.errors import InvalidSpecError

__all__ = ["RestartPolicy", "NO_RESTART", "parse_restart_policy", "parse_signal", "restart_delay", "status_text", "human_duration",
           "SIGKILL", "SIGTERM"]

SIGKILL = int(_signal.SIGKILL)
SIGTERM = int(_signal.SIGTERM)

#: moby's restart manager: the first delay, its ceiling, and how long a run must last to reset it.
_FIRST_DELAY, _MAX_DELAY, _RESET_AFTER = 0.1, 60.0, 10.0


@dataclass(frozen=True)
class RestartPolicy:
    """``name`` is ``no``, ``on-failure``, ``always`` or ``unless-stopped``; ``max_retries`` is
    on-failure's N (0: no limit), always 0 for the others."""

    name: str = "no"
    max_retries: int = 0

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.name == "on-failure" and self.max_retries else self.name

    def should_restart(self, exit_code: int, restart_count: int, *, stopped_by_user: bool) -> bool:
        """Whether a run that ended with ``exit_code`` is followed by another (``restart_count``
        restarts so far).  A manual stop or kill never is."""
        if stopped_by_user or self.name == "no":
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.max_retries == 0 or restart_count < self.max_retries)
        return True


NO_RESTART = RestartPolicy()


def parse_restart_policy(text: str | None) -> RestartPolicy:
    """``--restart``'s value as the docker CLI and moby's validation read it; :class:`InvalidSpecError`
    for an unknown name, a malformed or negative count, or a count on a policy other than on-failure."""
    if text is None or text == "":
        return NO_RESTART
    name, sep, count = text.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise InvalidSpecError(f"invalid restart policy {text!r}: use no, on-failure[:N], always or unless-stopped")
    if not sep:
        return RestartPolicy(name)
    if name != "on-failure":
        raise InvalidSpecError(f"invalid restart policy {text!r}: maximum retry count cannot be used with "
                               f"restart policy '{name}'")
    try:
        retries = int(count, 10)
    except ValueError:
        raise InvalidSpecError(f"invalid restart policy {text!r}: maximum retry count must be an integer") from None
    if retries < 0:
        raise InvalidSpecError(f"invalid restart policy {text!r}: maximum retry count cannot be negative")
    return RestartPolicy(name, retries)


def parse_signal(value: int | str) -> int:
    """A signal as ``docker kill -s`` takes it: a number (``9``) or a name with or without ``SIG``
    (``KILL``, ``sigterm``); :class:`InvalidSpecError` ("Invalid signal") otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    elif isinstance(value, str) and value.strip():
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        found = getattr(_signal.Signals, name, None) if name.isidentifier() else None
        if found is None:
            raise InvalidSpecError(f"Invalid signal: {value}")
        number = int(found)
    else:
        raise InvalidSpecError(f"Invalid signal: {value!r}")
    if number not in {int(s) for s in _signal.Signals}:
        raise InvalidSpecError(f"Invalid signal: {value}")
    return number


def restart_delay(previous: float, ran_for: float) -> float:
    """The wait before the next run: moby's doubling backoff (``previous`` is the last wait, 0 before
    the first restart), reset when the run that just ended lasted at least 10 s."""
    if previous <= 0 or ran_for >= _RESET_AFTER:
        return _FIRST_DELAY
    return min(previous * 2, _MAX_DELAY)


def human_duration(seconds: float) -> str:
    """go-units' ``HumanDuration``, which ``docker ps`` prints: "Less than a second", "1 second",
    "About a minute", "3 hours", "2 weeks" ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(state: str, exit_code: int | None, now: float, started_at: float | None,
                finished_at: float | None) -> str:
    """``docker ps``'s STATUS as moby's ``State.String`` writes it: ``Created``, ``Up 5 seconds``,
    ``Restarting (1) 2 seconds ago``, ``Exited (0) 3 seconds ago``."""
    if state == "running":
        return f"Up {human_duration(now - (started_at or now))}"
    if state in ("exited", "restarting") and exit_code is not None:
        when = f" {human_duration(now - finished_at)} ago" if finished_at is not None else ""
        return f"{state.capitalize()} ({exit_code}){when}"
    return state.capitalize()
