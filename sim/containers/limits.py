"""资源限制 (resource limits): ``docker run --memory/--cpus/--cpu-shares/--pids-limit``, parsed and
translated into 控制组 (cgroup) files exactly as Docker and runc do.

:func:`parse_limits` takes what a user types (``"512m"``, ``"1.5"``, ``512``, ``100``) and returns
a :class:`Limits` in Docker's units (bytes, nano-CPUs, shares, pids); whatever Docker refuses is
refused here with :class:`~sim.errors.InvalidLimitError` and Docker's own message, before anything
is created.  :func:`cgroup_v1_files` and :func:`cgroup_v2_files` give the files runc writes for
them, in the order it writes them.  Both backends share this module; only ``realrt`` writes the
files (see ``realrt/containers/cgroups.py`` and ``docs/limits.md``).

The rules, with the code they come from:

- ``--memory``: go-units ``RAMInBytes`` (binary units b, k, m, g, t, p; case-insensitive; an
  optional ``b`` or ``ib``; a fraction is truncated to whole bytes).  ``0`` means no limit; below
  6 MiB the daemon says "Minimum memory limit allowed is 6MB".  Without ``--memory-swap`` the
  daemon sets the swap limit to twice the memory (the container may swap as much as it may use).
- ``--cpus``: a rational number (``big.Rat``: ``1.5``, ``3/2``, ``15e-1``) times 10^9 must be a whole
  number of nano-CPUs ("value is too precise"); ``0`` means no limit; otherwise it must lie in
  0.01 .. number of CPUs ("range of CPUs is from 0.01 to N.00 ...").  The quota is
  ``nano_cpus * 100000 / 10^9`` microseconds per 100 ms period.
- ``--cpu-shares``: an integer; ``0`` means the default (1024); negative is refused by the daemon,
  1 and more than 262144 by runc (the kernel's range is 2 .. 262144).  cgroup v2 has no shares:
  runc converts them to ``cpu.weight = 1 + ((shares - 2) * 9999) / 262142`` (1024 -> 39).
- ``--pids-limit``: an integer; 0 or negative means unlimited (pids.max = "max").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction

from sim.errors import InvalidLimitError

__all__ = [
    "Limits",
    "parse_limits",
    "parse_memory",
    "parse_cpus",
    "parse_cpu_shares",
    "parse_pids_limit",
    "host_cpus",
    "cgroup_v1_files",
    "cgroup_v2_files",
    "cpu_quota_us",
    "shares_to_weight",
    "MIN_MEMORY",
    "CFS_PERIOD_US",
    "MIN_CPU_SHARES",
    "MAX_CPU_SHARES",
]

#: moby ``linuxMinMemory``: "not a kernel limit": room for a container's start-up.
MIN_MEMORY = 6 * 1024 * 1024
#: The CFS period Docker uses for ``--cpus`` (100 ms, in microseconds).
CFS_PERIOD_US = 100_000
#: The kernel's range for ``cpu.shares`` (runc reports the value it reads back when outside).
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262_144
_NANO = 1_000_000_000
_INT64_MAX = 2**63 - 1
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

Number = int | float | str | Fraction


@dataclass(frozen=True)
class Limits:
    """What a container may use, in Docker's API units; ``None`` is "not set" (no file written).

    ``memory`` bytes; ``nano_cpus`` 10^-9 CPUs (``--cpus 1.5`` is 1_500_000_000); ``cpu_shares``
    the relative weight (Docker's default is 1024); ``pids_limit`` at most that many tasks, -1
    for an explicit "max".  Build one with :func:`parse_limits` (it validates); the constructor
    takes values as they are.
    """

    memory: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.memory, self.nano_cpus, self.cpu_shares, self.pids_limit))

    @property
    def cpus(self) -> float | None:
        """``--cpus`` as a number (``nano_cpus / 10^9``)."""
        return None if self.nano_cpus is None else self.nano_cpus / _NANO

    def flags(self) -> tuple[str, ...]:
        """The ``docker run`` flags that set what is set, e.g. ``("--memory", "--cpus")``."""
        names = (("memory", "--memory"), ("nano_cpus", "--cpus"), ("cpu_shares", "--cpu-shares"),
                 ("pids_limit", "--pids-limit"))
        return tuple(flag for field_name, flag in names if getattr(self, field_name) is not None)

    def to_dict(self) -> dict[str, int]:
        """The fields that are set (what a container's saved configuration keeps)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, int] | None) -> Limits:
        known = {"memory", "nano_cpus", "cpu_shares", "pids_limit"}
        return cls(**{k: int(v) for k, v in (data or {}).items() if k in known})


# -- Go's number syntax, as the docker CLI parses flags ------------------------------------------

_GO_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_GO_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[oO]?[0-7]+(?:_[0-7]+)*|0[bB][01]+(?:_[01]+)*"
                     r"|[1-9]\d*(?:_\d+)*|0)\Z")
_RAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+/\d+)\Z")


def _flag_error(value: object, flag: str, reason: str) -> InvalidLimitError:
    return InvalidLimitError(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def _go_parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)`` for decimal input; ValueError carries Go's message."""
    if not _GO_FLOAT.match(text):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": value out of range')
    return value


def _go_parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)`` (pflag's int64): 0x, 0o, 0b and leading-0 octal prefixes."""
    if not _GO_INT.match(text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
        body = "0o" + body[1:]
    value = sign * int(body, 0)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def _ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes`` (v0.5): the number, an optional space, an optional binary suffix."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] != " ":
        num, sfx = text[:sep + 1], text[sep + 1:]
    else:
        num, sfx = text[:sep], text[sep + 1:]
    size = _go_parse_float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if sfx:
        low = sfx.lower()
        if len(sfx) > 3 or (low[0] == "b" and len(low) > 1) or (low[0] != "b" and low[0] not in _BINARY):
            raise ValueError(f"invalid suffix: '{low if len(sfx) <= 3 else sfx}'")
        if low[0] != "b":
            if (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
                raise ValueError(f"invalid suffix: '{low}'")
            size *= _BINARY[low[0]]
    if size >= 2**63:
        raise ValueError(f"invalid size: '{text}'")
    return int(size)


def _integer(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLimitError(f"{what} must be an integer or a string, got {value!r}")
    return value


# -- the four flags ----------------------------------------------------------------------------------


def parse_memory(value: int | str | None) -> int | None:
    """``-m/--memory``: bytes, or ``None`` when unset or 0 (no limit)."""
    if isinstance(value, str):
        try:
            value = _ram_in_bytes(value)
        except ValueError as exc:
            raise _flag_error(value, "-m, --memory", str(exc)) from None
    memory = _integer(value, "memory")
    if memory is None or memory == 0:
        return None
    if memory < MIN_MEMORY:  # moby verifyPlatformContainerResources (negative numbers too)
        raise InvalidLimitError("Minimum memory limit allowed is 6MB")
    return memory


def host_cpus() -> int:
    """What Go's ``runtime.NumCPU()`` gives the daemon: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_cpus(value: Number | None, *, cpus_available: int | None = None) -> int | None:
    """``--cpus``: nano-CPUs, or ``None`` when unset or 0 (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidLimitError(f"cpus must be a number or a string, got {value!r}")
    if isinstance(value, float):
        text = repr(value)  # 0.1 -> "0.1", as a user would type it
    elif isinstance(value, (int, Fraction)):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidLimitError(f"cpus must be a number or a string, got {value!r}")
    if not _RAT.match(text) or (("/" in text) and int(text.split("/")[1]) == 0):
        raise _flag_error(value, "--cpus", f"failed to parse {text} as a rational number")
    nano = Fraction(text) * _NANO
    if nano.denominator != 1:
        raise _flag_error(value, "--cpus", "value is too precise")
    nano_cpus = int(nano)
    if nano_cpus == 0:
        return None
    n = cpus_available if cpus_available is not None else host_cpus()
    # The daemon refuses < 0 and > NumCPU; below 0.01 the kernel refuses the quota (< 1 ms), which
    # the daemon leaves to runc to fail at start: refused here, with the daemon's message.
    if nano_cpus < _NANO // 100 or nano_cpus > n * _NANO:
        raise InvalidLimitError(f"range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available")
    return nano_cpus


def _parse_int_flag(value: int | str | None, flag: str) -> int | None:
    if isinstance(value, str):
        try:
            return _go_parse_int(value)
        except ValueError as exc:
            raise _flag_error(value, flag, str(exc)) from None
    return _integer(value, flag.split()[-1].lstrip("-").replace("-", "_"))


def parse_cpu_shares(value: int | str | None) -> int | None:
    """``-c/--cpu-shares``: the weight, or ``None`` when unset or 0 (the default, 1024)."""
    shares = _parse_int_flag(value, "-c, --cpu-shares")
    if shares is None or shares == 0:
        return None
    if shares < 0:  # moby getCPUResources
        raise InvalidLimitError(f"invalid CPU shares ({shares}): value must be a positive integer")
    if shares < MIN_CPU_SHARES:  # runc reads back what the kernel clamped it to
        raise InvalidLimitError(f"the minimum allowed cpu-shares is {MIN_CPU_SHARES}")
    if shares > MAX_CPU_SHARES:
        raise InvalidLimitError(f"the maximum allowed cpu-shares is {MAX_CPU_SHARES}")
    return shares


def parse_pids_limit(value: int | str | None) -> int | None:
    """``--pids-limit``: the limit, -1 for 0 or negative (unlimited: "max"), ``None`` when unset."""
    limit = _parse_int_flag(value, "--pids-limit")
    if limit is None:
        return None
    return -1 if limit <= 0 else limit  # moby getPidsLimit


def parse_limits(memory: int | str | None = None, cpus: Number | None = None, cpu_shares: int | str | None = None,
                 pids_limit: int | str | None = None, *, cpus_available: int | None = None) -> Limits:
    """``docker run``'s resource flags as :class:`Limits`; :class:`InvalidLimitError` with Docker's
    message for what Docker refuses.  Strings are parsed as the docker CLI parses its flags;
    integers are taken as the API's units (bytes, shares, pids).  ``cpus_available`` defaults to
    the CPUs this process may use (the daemon checks ``--cpus`` against its host)."""
    return Limits(memory=parse_memory(memory), nano_cpus=parse_cpus(cpus, cpus_available=cpus_available),
                  cpu_shares=parse_cpu_shares(cpu_shares), pids_limit=parse_pids_limit(pids_limit))


# -- translation into cgroup files ------------------------------------------------------------------


def cpu_quota_us(nano_cpus: int) -> int:
    """The CFS quota per :data:`CFS_PERIOD_US` for ``nano_cpus`` (moby: ``NanoCPUs * period / 1e9``)."""
    return nano_cpus * CFS_PERIOD_US // _NANO


def shares_to_weight(shares: int) -> int:
    """runc's ``ConvertCPUSharesToCgroupV2Value``: shares 2..262144 onto weight 1..10000 (1024 -> 39)."""
    return 1 + ((shares - 2) * 9999) // 262142


def cgroup_v1_files(limits: Limits, *, swap: bool = True) -> dict[tuple[str, str], str]:
    """``{(controller, file): content}`` in the order runc (cgroup v1, ``fs`` driver) writes them.

    ``swap``: the host accounts swap (``memory.memsw.*`` exists); the daemon then limits memory
    plus swap to twice ``--memory``, and drops that limit (with a warning) otherwise."""
    files: dict[tuple[str, str], str] = {}
    if limits.memory is not None:
        files[("memory", "memory.limit_in_bytes")] = str(limits.memory)
        if swap:
            files[("memory", "memory.memsw.limit_in_bytes")] = str(2 * limits.memory)
    if limits.cpu_shares is not None:
        files[("cpu", "cpu.shares")] = str(limits.cpu_shares)
    if limits.nano_cpus is not None:
        files[("cpu", "cpu.cfs_period_us")] = str(CFS_PERIOD_US)
        files[("cpu", "cpu.cfs_quota_us")] = str(cpu_quota_us(limits.nano_cpus))
    if limits.pids_limit is not None:
        files[("pids", "pids.max")] = "max" if limits.pids_limit < 0 else str(limits.pids_limit)
    return files


def cgroup_v2_files(limits: Limits, *, swap: bool = True) -> dict[str, str]:
    """``{file: content}`` in the order runc (cgroup v2, ``fs2``) writes them.

    The swap limit of cgroup v2 counts swap alone: ``memory.swap.max`` = (2 x memory) - memory."""
    files: dict[str, str] = {}
    if limits.memory is not None:
        if swap:
            files["memory.swap.max"] = str(limits.memory)
        files["memory.max"] = str(limits.memory)
    if limits.cpu_shares is not None:
        files["cpu.weight"] = str(shares_to_weight(limits.cpu_shares))
    if limits.nano_cpus is not None:
        files["cpu.max"] = f"{cpu_quota_us(limits.nano_cpus)} {CFS_PERIOD_US}"
    if limits.pids_limit is not None:
        files["pids.max"] = "max" if limits.pids_limit < 0 else str(limits.pids_limit)
    return files
