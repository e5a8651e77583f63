"""Image references (镜像引用): ``[domain/]path[:tag][@digest]`` as Docker parses them.

This is distribution/reference (``regexp.go``, ``normalize.go``,
``reference.go``) written anew in Python, with the same grammar, the same
normalisation and the same error messages:

* a name is ``[domain/]path``; path components are ``[a-z0-9]+`` joined by one
  ``.``, one or two ``_``, or any run of ``-``; the path is at most 255
  characters (the domain does not count);
* the first component is a domain (仓库地址) when it is ``localhost``, holds a
  ``.`` or a ``:``, or has upper case letters (``Foo/bar`` is repository ``bar``
  on the host ``Foo``);
* no domain means Docker Hub, ``docker.io``; a one-component path there gets
  ``library/`` (``ubuntu`` is ``docker.io/library/ubuntu``); the legacy host
  ``index.docker.io`` is ``docker.io``;
* no tag and no digest means the tag ``latest``;
* a bare 64-hex string is an image ID, never a name.

``parse_reference("ubuntu")`` gives ``Reference("docker.io", "library/ubuntu",
"latest", None)``; ``str()`` of it is ``docker.io/library/ubuntu:latest`` and
``familiar`` is ``ubuntu:latest`` (what ``docker images`` prints).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.errors import InvalidReferenceError

__all__ = [
    "Reference",
    "parse_reference",
    "validate_tag",
    "validate_repository_path",
    "is_image_id",
    "DEFAULT_DOMAIN",
    "LEGACY_DEFAULT_DOMAIN",
    "OFFICIAL_REPO_PREFIX",
    "DEFAULT_TAG",
    "NAME_TOTAL_LENGTH_MAX",
    "ERR_REFERENCE_INVALID_FORMAT",
    "ERR_NAME_CONTAINS_UPPERCASE",
    "ERR_NAME_EMPTY",
    "ERR_NAME_TOO_LONG",
    "ERR_TAG_INVALID_FORMAT",
    "ERR_DIGEST_INVALID_FORMAT",
    "ERR_DIGEST_INVALID_LENGTH",
    "ERR_DIGEST_UNSUPPORTED",
]

#: Part of the grammar: the host a name without one refers to (Docker Hub).
DEFAULT_DOMAIN = "docker.io"
#: The old name of Docker Hub's index; normalised to :data:`DEFAULT_DOMAIN`.
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
#: Docker Hub's namespace of official images.
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
#: Longest path (the name without its domain).
NAME_TOTAL_LENGTH_MAX = 255

# The error messages of distribution/reference (errors.go) and opencontainers/go-digest.
ERR_REFERENCE_INVALID_FORMAT = "invalid reference format"
ERR_NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
ERR_TAG_INVALID_FORMAT = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT = "invalid checksum digest format"
ERR_DIGEST_INVALID_LENGTH = "invalid checksum digest length"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"

# -- regexp.go ------------------------------------------------------------------------------
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_IDENTIFIER = r"[a-f0-9]{64}"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"

_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + rf"(?:\.{_DOMAIN_NAME_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})"
_DOMAIN_AND_PORT = _HOST + _OPTIONAL_PORT
_PATH_COMPONENT = _ALPHANUMERIC + rf"(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = _PATH_COMPONENT + rf"(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME}"

# re.ASCII: Go's \w is [0-9A-Za-z_]. Python's re, like Go's RE2, prefers the leftmost
# alternative, so the submatches are the ones distribution/reference gets.
_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$", re.ASCII)
_ANCHORED_NAME_RE = re.compile(rf"^(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})$", re.ASCII)
_ANCHORED_TAG_RE = re.compile(rf"^{_TAG}$", re.ASCII)
_ANCHORED_IDENTIFIER_RE = re.compile(rf"^{_IDENTIFIER}$")

# -- go-digest: the algorithms Docker links in, and their hex lengths ---------------------------
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_GO_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def _fail(message: str) -> InvalidReferenceError:
    return InvalidReferenceError(message)


def _validate_digest(value: str) -> None:
    """go-digest's ``Digest.Validate``: the same checks in the same order."""
    i = value.find(":")
    if i <= 0 or i + 1 == len(value):
        raise _fail(ERR_DIGEST_INVALID_FORMAT)
    algorithm, encoded = value[:i], value[i + 1:]
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        if not _GO_DIGEST_RE.match(value):
            raise _fail(ERR_DIGEST_INVALID_FORMAT)
        raise _fail(ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != length:
        raise _fail(ERR_DIGEST_INVALID_LENGTH)
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise _fail(ERR_DIGEST_INVALID_FORMAT)


@dataclass(frozen=True)
class Reference:
    """A normalised reference.  ``tag`` is ``None`` only when a digest pins the image."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/ubuntu``: the name without tag or digest (仓库).

        ``domain`` is empty in one odd case Docker shares: a first component
        that looks like a host (it has a ``.``) but is not a valid one, while the
        whole name is a valid path (``foo_bar.com/x``).
        """
        return f"{self.domain}/{self.path}" if self.domain else self.path

    name = repository

    @property
    def familiar_name(self) -> str:
        """The name as Docker prints it: ``ubuntu``, ``user/app``, ``localhost:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in self.path[len(OFFICIAL_REPO_PREFIX):]:
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.repository

    @property
    def familiar(self) -> str:
        """The short form Docker prints: ``ubuntu:latest``."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag is not None else "") + (f"@{self.digest}" if self.digest is not None else "")

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` and no digest."""
        validate_tag(tag)
        return Reference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        """The full normalised form: ``docker.io/library/ubuntu:latest``."""
        return self.repository + self._suffix()


def validate_tag(tag: str) -> str:
    """Check a bare tag (``docker tag img repo:<tag>``); returns it."""
    if not _ANCHORED_TAG_RE.match(tag):
        raise _fail(ERR_TAG_INVALID_FORMAT)
    return tag


_ANCHORED_REMOTE_NAME_RE = re.compile(rf"^{_REMOTE_NAME}$", re.ASCII)


def validate_repository_path(path: str) -> str:
    """Check a repository's path inside its registry (``library/ubuntu``, no domain, no tag); returns it."""
    if not isinstance(path, str) or not _ANCHORED_REMOTE_NAME_RE.match(path):
        if isinstance(path, str) and path and _ANCHORED_REMOTE_NAME_RE.match(path.lower()):
            raise _fail(ERR_NAME_CONTAINS_UPPERCASE)
        raise _fail(f"{ERR_REFERENCE_INVALID_FORMAT}: {path!r} is not a repository name")
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _fail(ERR_NAME_TOO_LONG)
    return path


def is_image_id(text: str) -> bool:
    """Whether ``text`` is a full image ID in hex (64 lowercase hex digits), with or without ``sha256:``."""
    return bool(_ANCHORED_IDENTIFIER_RE.match(text.removeprefix("sha256:")))


def _split_docker_domain(name: str) -> tuple[str, str]:
    """normalize.go ``splitDockerDomain``: (domain, remainder) with Docker Hub's defaults applied."""
    maybe_domain, sep, maybe_remote = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain == "localhost":  # reserved: always a domain
        domain, remainder = maybe_domain, maybe_remote
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain or maybe_domain.lower() != maybe_domain:
        domain, remainder = maybe_domain, maybe_remote
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _parse(text: str) -> tuple[str, str, str | None, str | None]:
    """reference.go ``Parse`` of a string whose domain is already explicit."""
    match = _REFERENCE_RE.match(text)
    if match is None:
        if text == "":
            raise _fail(ERR_NAME_EMPTY)
        if _REFERENCE_RE.match(text.lower()):
            raise _fail(ERR_NAME_CONTAINS_UPPERCASE)
        raise _fail(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = _ANCHORED_NAME_RE.match(name)
    assert name_match is not None  # the same sub-pattern matched just above
    domain, path = name_match.group(1) or "", name_match.group(2)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _fail(ERR_NAME_TOO_LONG)
    if digest is not None:
        _validate_digest(digest)
    return domain, path, tag, digest


def parse_reference(text: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse and normalise ``text`` as ``docker pull`` does (``ParseNormalizedNamed`` + ``TagNameOnly``).

    ``default_tag`` is added when there is neither tag nor digest; pass
    ``None`` to learn whether the user wrote one (``docker save repo`` saves
    every tag of ``repo``).  Raises :class:`~sim.errors.InvalidReferenceError`
    with Docker's message.
    """
    if not isinstance(text, str):
        raise TypeError(f"a reference is a str, not {type(text).__name__}")
    if _ANCHORED_IDENTIFIER_RE.match(text):
        raise _fail(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        # Docker 25+ (distribution/reference >= 0.5) names the offending path; Docker <= 24 said
        # "invalid reference format: repository name must be lowercase" without it.
        raise _fail(f"{ERR_REFERENCE_INVALID_FORMAT}: repository name ({remote}) must be lowercase")
    domain, path, tag, digest = _parse(f"{domain}/{remainder}")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)
