"""Every error layerlab raises on purpose.

Each class also inherits the built-in exception a Python programmer would
catch for the same mistake, so ``except ValueError`` keeps working::

    LayerlabError
    ├── LayerFormatError (ValueError)         a layer's bytes or tree break the format
    │   ├── UnsafeLayerError                  ... in a way that could touch the host
    │   └── UnsupportedEntryError             ... with an entry type the model omits
    ├── FrozenLayerError (TypeError)          mutating a frozen Layer
    ├── TargetNotEmptyError (FileExistsError) to_directory() into a non-empty folder
    ├── UnknownBackendError (LookupError)     connect("nope")
    ├── BackendUnavailableError (RuntimeError) the backend cannot run on this machine
    ├── MountError (OSError)                  the kernel refused an overlay mount
    ├── BuildfileError (ValueError)           a Buildfile does not parse ("Buildfile:3: ...")
    ├── BuildError (RuntimeError)             a build step failed (RUN exit code, missing COPY source)
    ├── InvalidReferenceError (ValueError)    "invalid reference format", uppercase repository ...
    ├── NotFoundError (LookupError)
    │   ├── ImageNotFoundError                no image by that reference or ID
    │   ├── ContainerNotFoundError            no container by that name or ID
    │   ├── VolumeNotFoundError               no volume by that name
    │   └── NetworkNotFoundError              no network by that name
    ├── ConflictError (RuntimeError)          a name in use, an image used by a container ...
    │   └── ContainerStateError               removing a running container, exec in a stopped one
    ├── InvalidLimitError (ValueError)        --memory 1k, --cpus -1, malformed sizes
    ├── InvalidSpecError (ValueError)         a host, VM, container or workload the resource model refuses
    ├── InvalidNetworkError (ValueError)      a bad network name, a public or overlapping subnet, a bad -p spec
    ├── DigestMismatchError (ValueError)      a blob's size or sha256 is not what was promised
    ├── RegistryError (RuntimeError)          a registry refused a request (its error code and message)
    │   ├── AuthenticationError (PermissionError)  no credentials, a wrong password, access denied
    │   ├── RegistryUnavailableError (ConnectionError)  down, 5xx after retries, an untrusted certificate
    │   └── UnsupportedOperationError         a push or delete sent to a pull-through mirror
    ├── RegistryConfigError (ValueError)      a malformed login, config.json or mirror list
    └── UnsupportedCommandError (NotImplementedError)  the model's shell cannot run this program

File-system calls (``open``, ``stat``, ``rename`` ...) do not use this tree:
like ``os`` they raise plain :class:`OSError` with the kernel's errno, so code
written against ``os`` runs unchanged on either backend.
"""

from __future__ import annotations

__all__ = [
    "LayerlabError",
    "LayerFormatError",
    "UnsafeLayerError",
    "UnsupportedEntryError",
    "FrozenLayerError",
    "TargetNotEmptyError",
    "UnknownBackendError",
    "BackendUnavailableError",
    "MountError",
    "BuildfileError",
    "BuildError",
    "InvalidReferenceError",
    "NotFoundError",
    "ImageNotFoundError",
    "ContainerNotFoundError",
    "VolumeNotFoundError",
    "NetworkNotFoundError",
    "ConflictError",
    "ContainerStateError",
    "InvalidLimitError",
    "InvalidSpecError",
    "InvalidNetworkError",
    "DigestMismatchError",
    "RegistryError",
    "AuthenticationError",
    "RegistryUnavailableError",
    "UnsupportedOperationError",
    "RegistryConfigError",
    "UnsupportedCommandError",
]


class LayerlabError(Exception):
    """Root of every error layerlab raises on purpose."""


class LayerFormatError(LayerlabError, ValueError):
    """A layer (tar, directory or in-memory build) violates the layer format."""


class UnsafeLayerError(LayerFormatError):
    """A layer entry would resolve outside the layer root (``../``, absolute, link escapes)."""


class UnsupportedEntryError(LayerFormatError):
    """An entry type the model does not represent (sparse, contiguous or unknown tar types; a character
    device 0/0 in a tar, which is the overlay whiteout marker).  FIFOs and devices are represented;
    sockets are skipped."""


class FrozenLayerError(LayerlabError, TypeError):
    """A frozen Layer is immutable; build a new one instead."""


class TargetNotEmptyError(LayerlabError, FileExistsError):
    """``Layer.to_directory`` writes only into an empty or missing folder."""


class UnknownBackendError(LayerlabError, LookupError):
    """``connect`` was given a backend name no registry entry has."""


class BackendUnavailableError(LayerlabError, RuntimeError):
    """The backend exists but this machine cannot run it (no root, no user namespaces...)."""


class MountError(LayerlabError, OSError):
    """The kernel refused to mount an overlay; ``errno`` is the kernel's."""


class BuildfileError(LayerlabError, ValueError):
    """A Buildfile does not parse; ``str()`` reads ``<file>:<line>: <message>``."""

    def __init__(self, message: str, *, filename: str = "Buildfile", line: int | None = None) -> None:
        self.filename = filename
        self.line = line
        self.message = message
        super().__init__(f"{filename}:{line}: {message}" if line is not None else f"{filename}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_buildfile_error, (self.message, self.filename, self.line))


def _rebuild_buildfile_error(message: str, filename: str, line: int | None) -> BuildfileError:
    return BuildfileError(message, filename=filename, line=line)


class BuildError(LayerlabError, RuntimeError):
    """A build step failed; nothing of the failed step is kept."""


class InvalidReferenceError(LayerlabError, ValueError):
    """An image reference breaks the distribution/reference grammar."""


class NotFoundError(LayerlabError, LookupError):
    """Something named by the user does not exist."""


class ImageNotFoundError(NotFoundError):
    """No image by that reference or ID."""


class ContainerNotFoundError(NotFoundError):
    """No container by that name or ID."""


class VolumeNotFoundError(NotFoundError):
    """No volume by that name."""


class NetworkNotFoundError(NotFoundError):
    """No network by that name."""


class ConflictError(LayerlabError, RuntimeError):
    """The request conflicts with what exists (a name in use, an image in use)."""


class ContainerStateError(ConflictError):
    """The container is in the wrong state for this (running, stopped, created)."""


class InvalidLimitError(LayerlabError, ValueError):
    """A resource limit is malformed or out of range."""


class InvalidSpecError(LayerlabError, ValueError):
    """A host, VM, container or workload the resource model cannot simulate (no cores, a memory
    limit below the request, an unknown placement policy ...), refused before anything runs."""


class InvalidNetworkError(LayerlabError, ValueError):
    """A network request the network model refuses before changing anything: a name outside
    ``[a-zA-Z0-9][a-zA-Z0-9_.-]*`` or a reserved one, a subnet that is not private, too large,
    too small or overlapping another network's, a ``-p`` spec layerlab cannot publish."""


class DigestMismatchError(LayerlabError, ValueError):
    """Content does not match the size or digest it was promised under."""


class RegistryError(LayerlabError, RuntimeError):
    """A registry answered with an error.  ``code`` is the distribution API's error code
    (``MANIFEST_UNKNOWN``, ``DENIED`` ...) or ``None`` when it gave none; ``status`` the HTTP status."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_registry_error, (type(self), str(self), self.code, self.status))


def _rebuild_registry_error(cls: type[RegistryError], message: str, code: str | None, status: int | None) -> RegistryError:
    return cls(message, code=code, status=status)


class AuthenticationError(RegistryError, PermissionError):
    """The registry wants credentials, or refused the ones given (401 / 403)."""


class RegistryUnavailableError(RegistryError, ConnectionError):
    """The registry cannot be reached: refused, timed out, answering 5xx after the retries, or
    presenting a certificate no trusted CA signed."""


class UnsupportedOperationError(RegistryError):
    """The registry does not do this at all: a push or a delete sent to a pull-through mirror."""


class RegistryConfigError(LayerlabError, ValueError):
    """Malformed registry settings: a login (empty user, ``:`` in it), a ``config.json`` that is
    not Docker's shape, an engine's mirror list naming something that is not a registry URL."""


class UnsupportedCommandError(LayerlabError, NotImplementedError):
    """The model's shell does not implement this program; the real backend can run it."""
