"""The one place where httpx's exceptions and a registry's error answers become layerlab's errors.

Transport failures (refused, timed out, reset, an untrusted certificate) become
:class:`~sim.errors.RegistryUnavailableError`.  An error answer is read as the
distribution spec's ``{"errors": [{"code", "message", "detail"}]}`` (at most
:data:`MAX_ERROR_BODY` bytes of it) and mapped by status and code:

=========================================  ==============================================
401, 403                                   :class:`~sim.errors.AuthenticationError`
404 ``MANIFEST_UNKNOWN``/``NAME_UNKNOWN``/
``TAG_UNKNOWN`` (or any 404 of a manifest,
tag or repository request)                 :class:`~sim.errors.ImageNotFoundError`
``BLOB_UNKNOWN`` (or any 404 of a blob)    :class:`~sim.images.blobs.BlobNotFoundError`
405, ``UNSUPPORTED``                       :class:`~sim.errors.UnsupportedOperationError`
``DIGEST_INVALID``, ``SIZE_INVALID``       :class:`~sim.errors.DigestMismatchError`
429, 502, 503, 504                         :class:`~sim.errors.RegistryUnavailableError`
anything else                              :class:`~sim.errors.RegistryError` with ``code`` and ``status``
=========================================  ==============================================

Messages read like docker's (``manifest unknown: <registry>/<repo>:<tag>``).
No message built here contains a credential: only the registry's name, the
request's path and what the registry itself wrote.
"""

from __future__ import annotations

import json
import ssl
from typing import Literal

import httpx

from sim.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    LayerlabError,
    RegistryError,
    RegistryUnavailableError,
    UnsupportedOperationError,
)
from sim.images.blobs import BlobNotFoundError

__all__ = ["MAX_ERROR_BODY", "Missing", "is_certificate_error", "is_tls_error", "read_limited", "response_error",
           "retries_exhausted", "transport_error"]

#: How much of an error answer is read: enough for any real message, bounded against a hostile server.
MAX_ERROR_BODY = 1 << 20

#: What a 404 means for the request that got it.
Missing = Literal["manifest", "blob", "other"]

_NOT_FOUND_IMAGE = {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "TAG_UNKNOWN"}
_UNAVAILABLE = {429, 502, 503, 504}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_certificate_error(exc: BaseException) -> bool:
    """Whether ``exc`` (an httpx error) comes from a certificate that failed verification."""
    return any(isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e)
               for e in _chain(exc))


def is_tls_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from TLS itself (a failed handshake, a certificate): never worth a retry."""
    return any(isinstance(e, ssl.SSLError) for e in _chain(exc)) or is_certificate_error(exc)


def transport_error(exc: httpx.TransportError, *, registry: str, action: str, attempts: int,
                    timeout: float | None = None) -> RegistryUnavailableError:
    """The error for a request (``action``: ``"GET /v2/"``) that never got an answer."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if is_certificate_error(exc):
        reason = next((str(getattr(e, "verify_message", "") or "") for e in _chain(exc)
                       if isinstance(e, ssl.SSLCertVerificationError)), "") or "verification failed"
        return RegistryUnavailableError(
            f"{registry}: the server's certificate is not trusted ({reason}); "
            f"pass the registry's CA file (ca_file=...) to trust it")
    if is_tls_error(exc):
        return RegistryUnavailableError(f"{registry}: the TLS handshake for {action} failed ({exc}); "
                                        f"is it a plain http:// registry?")
    if isinstance(exc, httpx.TimeoutException):
        limit = f" after {timeout:g} s" if timeout is not None else ""
        return RegistryUnavailableError(f"{registry} did not answer {action}: timed out{limit} ({tries})")
    if isinstance(exc, httpx.ConnectError):
        return RegistryUnavailableError(f"{registry} cannot be reached for {action}: {_reason(exc)} ({tries})")
    return RegistryUnavailableError(f"{registry}: {action} failed: {_reason(exc)} ({tries})")


def retries_exhausted(said: LayerlabError, *, registry: str, action: str, attempts: int,
                      status: int) -> RegistryUnavailableError:
    """The error once every attempt of a retryable request got a 429 or 5xx; ``said`` is the last answer's."""
    return RegistryUnavailableError(
        f"{registry} answered {action} with {status} {attempts} times ({attempts} attempts); the last answer: {said}",
        code=getattr(said, "code", None), status=status)


def _reason(exc: BaseException) -> str:
    # The innermost OS error says it best ("Connection refused"); httpx's own text otherwise.
    for e in reversed(_chain(exc)):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    return str(exc) or type(exc).__name__


def read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a streamed ``response``'s body, and whether there was more."""
    out = bytearray()
    try:
        for chunk in response.iter_bytes():
            out += chunk
            if len(out) > limit:
                return bytes(out[:limit]), True
    except httpx.HTTPError:
        pass  # an error body cut short still says what it can
    return bytes(out), False


def _errors_of(body: bytes) -> list[tuple[str | None, str]]:
    """``(code, message)`` of each entry of a distribution error body; ``[]`` when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    entries = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return []
    out: list[tuple[str | None, str]] = []
    for entry in entries:
        if isinstance(entry, dict):
            code = entry.get("code")
            message = entry.get("message")
            out.append((code if isinstance(code, str) and code else None,
                        message if isinstance(message, str) else ""))
    return out


def _plain(response: httpx.Response, body: bytes) -> str:
    """The first line of a text/plain error body (Go's "Client sent an HTTP request to an HTTPS server."),
    after the status it came with; "" for anything else."""
    if not response.headers.get("content-type", "").startswith("text/plain"):
        return ""
    line = body[:200].decode("utf-8", "replace").strip().splitlines()
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return f"{reason}: {line[0]}" if line else ""


def _words(code: str) -> str:
    # How docker's errcode prints a code: MANIFEST_UNKNOWN -> "manifest unknown".
    return code.lower().replace("_", " ")


def _text(code: str | None, message: str, where: str, status: int, reason: str) -> str:
    if code is None:
        return f"{where}: {message or f'HTTP {status} {reason}'.strip()}"
    said = message.strip()
    if said and said.lower() != _words(code):
        return f"{_words(code)}: {said}: {where}"
    return f"{_words(code)}: {where}"


def response_error(response: httpx.Response, *, registry: str, where: str, missing: Missing = "other",
                   body: bytes | None = None) -> LayerlabError:
    """The typed error for an error answer; reads (at most 1 MiB of) the body unless ``body`` is given.

    ``where`` names what was asked for (``127.0.0.1:5000/app:1``); ``missing``
    says which not-found error a 404 without a known code becomes.
    """
    status = response.status_code
    if body is None:
        body, _ = read_limited(response, MAX_ERROR_BODY)
    entries = _errors_of(body) or [(None, _plain(response, body))]
    code, message = entries[0]
    text = "; ".join(_text(c, m, where, status, response.reason_phrase) for c, m in entries)
    codes = {c for c, _ in entries if c}
    if status in (401, 403):
        if code is None:
            text = (f"unauthorized: {registry} wants credentials for {where}" if status == 401
                    else f"denied: {registry} refused access to {where}")
        return AuthenticationError(text, code=code or ("UNAUTHORIZED" if status == 401 else "DENIED"), status=status)
    if status == 400 and b"HTTP request to an HTTPS server" in body:
        # Go's TLS listener answers plain HTTP with this: the host needs https and a trusted CA.
        return RegistryUnavailableError(
            f"{registry} speaks only HTTPS, and no CA certificate for it is trusted here: put it in the config "
            f"folder's certs.d/{registry}/ca.crt (or pass ca_file=)", code="TLS_REQUIRED", status=status)
    if codes & {"DIGEST_INVALID", "SIZE_INVALID"}:
        return DigestMismatchError(text)
    if "BLOB_UNKNOWN" in codes or (status == 404 and missing == "blob"):
        return BlobNotFoundError(text if code else f"blob unknown: {where}")
    if status == 404 and (codes & _NOT_FOUND_IMAGE or missing == "manifest"):
        return ImageNotFoundError(text if code else f"manifest unknown: {where}")
    if status == 405 or "UNSUPPORTED" in codes:
        return UnsupportedOperationError(text if code else f"unsupported: {registry} does not allow this: {where}",
                                         code=code or "UNSUPPORTED", status=status)
    if status in _UNAVAILABLE:
        return RegistryUnavailableError(text, code=code, status=status)
    return RegistryError(text, code=code, status=status)
