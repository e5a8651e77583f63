"""``--security-opt``: which seccomp filter a container's sandbox has (安全选项).

Both backends keep the answer with the container and report it (``ContainerInfo.seccomp``); the
real backend loads Docker's default profile unless it is ``"unconfined"``
(:mod:`realrt.containers._seccomp`).  The model runs no system calls, so there it is only shown.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.errors import InvalidSpecError

__all__ = ["SECCOMP_DEFAULT", "SECCOMP_UNCONFINED", "seccomp_profile"]

#: The name Docker's inspect gives the built-in profile, and the one without a filter.
SECCOMP_DEFAULT = "docker-default"
SECCOMP_UNCONFINED = "unconfined"


def seccomp_profile(security_opt: Iterable[str]) -> str:
    """The seccomp profile ``security_opt`` (``docker run --security-opt`` values) asks for.

    ``seccomp=unconfined`` gives :data:`SECCOMP_UNCONFINED`; ``seccomp=builtin`` or no seccomp
    option the default profile (the last seccomp option wins, as with Docker's flag);
    ``no-new-privileges`` (``=true``) is accepted and changes nothing, the runtime always sets it.
    A profile file, ``no-new-privileges=false``, ``apparmor=``, ``label=`` or anything else raises
    :class:`~sim.errors.InvalidSpecError` before anything is made."""
    if isinstance(security_opt, str):
        raise InvalidSpecError(f"security_opt is a sequence of options, not one string: ({security_opt!r},)")
    profile = SECCOMP_DEFAULT
    for option in security_opt:
        if not isinstance(option, str):
            raise InvalidSpecError(f"invalid --security-opt: {option!r}")
        key, sep, value = option.partition("=")
        if key == "seccomp" and sep:
            if value == "unconfined":
                profile = SECCOMP_UNCONFINED
            elif value == "builtin":
                profile = SECCOMP_DEFAULT
            else:
                raise InvalidSpecError(f"--security-opt {option!r}: only seccomp=unconfined and seccomp=builtin "
                                       "are supported (no profile files)")
        elif key == "no-new-privileges" and value in ("", "true"):
            continue  # always on: the runtime sets PR_SET_NO_NEW_PRIVS for every container
        else:
            raise InvalidSpecError(f"invalid --security-opt: {option!r} (supported: seccomp=unconfined, "
                                   "seccomp=builtin, no-new-privileges)")
    return profile
