"""The distribution HTTP API over httpx: :class:`HttpRegistry`, the real twin of the model's sessions.

One :class:`HttpRegistry` is one session with one registry at ``http(s)://host:port``:
one keep-alive ``httpx.Client`` (HTTP/1.1, no proxies from the environment,
TLS verified against ``ca_file`` when given, else against httpx's default
trust store, certifi's bundle).
It implements :class:`~sim.registries.api.RegistryClient` and keeps its
contracts: bytes are handed out as the registry sent them (the caller
verifies digests), errors are typed (:mod:`realrt.registries._errors` maps
them, in one place), a manifest over :data:`~sim.registries.api.MAX_MANIFEST_BYTES`
is refused before more of it is read.

Authentication follows the registry's ``WWW-Authenticate`` challenge on a 401:
``Basic`` resends with the credentials (and sends them on every later request);
``Bearer`` fetches a token from the challenge's realm (with the credentials
when there are any, anonymously otherwise) and caches it per scope.

Retries are bounded: up to ``retries`` more attempts, ``backoff * 2**n``
seconds apart, for refused connections, timeouts, resets and 429/5xx answers,
on requests that are safe to repeat (GET, HEAD, DELETE, the upload-start POST)
and on PUT/PATCH only while their body can be rewound (bytes, or a seekable
source, which is seeked back); a body partly read from a pipe is never sent twice.
Request bodies, blob readers and header parsers live in :mod:`realrt.registries._wire`.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

import httpx

from realrt.registries._challenge import Challenge, parse_challenges
from realrt.registries._errors import (
    MAX_ERROR_BODY,
    Missing,
    is_tls_error,
    read_limited,
    response_error,
    retries_exhausted,
    transport_error,
)
from realrt.registries._wire import (
    Body,
    HttpBlob,
    check_count,
    check_digest,
    content_length,
    content_range,
    next_link,
    upload_end,
)
from sim.digest import Digest, sha256_digest
from sim.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    LayerlabError,
    RegistryConfigError,
    RegistryError,
)
from sim.images.oci import DocumentTooLargeError, ImageFormatError, MediaTypeError
from sim.images.reference import is_image_id, validate_repository_path, validate_tag
from sim.registries.api import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, BlobReader, ManifestResponse, RegistryClient
from sim.registries.auth import Credentials

__all__ = ["HttpRegistry", "MAX_PAGE_BYTES"]

#: A tags or catalog page (or a token answer) larger than this is refused.
MAX_PAGE_BYTES = 16 << 20
_MAX_PAGES = 10_000
_TRANSIENT = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


class HttpRegistry(RegistryClient):
    """A session with the registry at ``url`` (``http(s)://host:port``) over the distribution API.

    ``name`` is how references spell the registry (default ``host:port``);
    ``credentials`` are offered when the registry asks; ``ca_file`` is the PEM
    file of the CA to trust for https (default: httpx's trust store, certifi);
    ``retries``/``backoff``/``timeout`` bound every request (see the module's
    docstring). Bad settings raise :class:`~sim.errors.RegistryConfigError`
    before any connection is made.

    Counters, plain ints for tests and benchmarks: ``requests`` (HTTP requests
    sent, token fetches and retries included), ``retried`` (retries made),
    ``bytes_received`` and ``bytes_sent`` (bodies only, not headers).
    """

    def __init__(self, url: str, *, name: str | None = None, credentials: Credentials | None = None,
                 ca_file: str | os.PathLike[str] | None = None, retries: int = 3, backoff: float = 0.1,
                 timeout: float = 30.0, kind: str = "registry") -> None:
        self._base = self._check_url(url)
        host = self._base.host
        default = f"[{host}]" if ":" in host else host
        if self._base.port is not None:
            default += f":{self._base.port}"
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise RegistryConfigError(f"a registry name is a host[:port], got {name!r}")
        if credentials is not None and not isinstance(credentials, Credentials):
            raise RegistryConfigError("credentials must be a sim.registries.auth.Credentials")
        self.retries = check_count(retries, "retries", minimum=0)
        for value, what, least in ((backoff, "backoff", ">= 0"), (timeout, "timeout", "> 0")):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (least == "> 0" and value == 0):
                raise RegistryConfigError(f"{what} must be a number of seconds {least}, got {value!r}")
        if not isinstance(kind, str) or not kind:
            raise RegistryConfigError(f"kind must be a non-empty string, got {kind!r}")
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=os.fspath(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise RegistryConfigError(f"cannot load the CA file {os.fspath(ca_file)!s}: {exc}") from exc
        self.name = name or default
        self.kind = kind
        self.url = str(self._base)
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self._credentials = credentials
        self.requests = self.retried = self.bytes_received = self.bytes_sent = 0
        self._lock = threading.Lock()  # counters and the token cache are shared by threads of one session
        self._tokens: dict[str, str] = {}
        self._basic = False
        # trust_env=False: no proxy or CA settings from the environment; identity encoding: blob
        # bytes arrive exactly as stored.
        self._http = httpx.Client(verify=verify, timeout=self.timeout, http1=True, http2=False, trust_env=False,
                                  follow_redirects=False,
                                  headers={"User-Agent": "layerlab", "Accept-Encoding": "identity"})

    @staticmethod
    def _check_url(url: object) -> httpx.URL:
        if not isinstance(url, str):
            raise RegistryConfigError(f"a registry URL is a string http(s)://host:port, got {url!r}")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise RegistryConfigError(f"not a registry URL (http(s)://host:port): {exc}") from exc
        if parsed.userinfo:
            # Never echo it: the URL holds a password.
            raise RegistryConfigError("a registry URL must not hold a login; pass credentials=Credentials(...)")
        if parsed.scheme not in ("http", "https") or not parsed.host or parsed.path not in ("", "/") \
                or parsed.query or parsed.fragment:
            raise RegistryConfigError(f"a registry URL is http(s)://host:port and nothing more, got {url!r}")
        return parsed.copy_with(path="/")

    def _add(self, counter: str, n: int) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def close(self) -> None:
        """Close the connection pool; idempotent."""
        self._http.close()

    def __enter__(self) -> HttpRegistry:
        return self

    # -- sending: retries, then authentication on top

    def _may_retry(self, attempt: int, retry: bool, body: Body | None) -> bool:
        return retry and attempt < self.retries and (body is None or body.can_resend())

    def _exchange(self, method: str, url: httpx.URL, headers: dict[str, str], body: Body | None, *,
                  follow: bool, retry: bool) -> httpx.Response:
        """Send one request (again on transient failures, see the module's docstring); a streamed answer."""
        action = f"{method} {url.path}"
        attempt = 0
        while True:
            request = self._http.build_request(method, url, headers=headers,
                                               content=body.content() if body is not None else None)
            self._add("requests", 1)
            try:
                response = self._http.send(request, stream=True, follow_redirects=follow)
            except httpx.TransportError as exc:
                transient = isinstance(exc, _TRANSIENT) and not is_tls_error(exc)
                if not (transient and self._may_retry(attempt, retry, body)):
                    raise transport_error(exc, registry=self.name, action=action, attempts=attempt + 1,
                                          timeout=self.timeout) from exc
            else:
                status = response.status_code
                if status < 500 and status != 429:
                    return response
                if not self._may_retry(attempt, retry, body):
                    if not retry or (body is not None and not body.can_resend()):
                        return response  # never retryable: the caller maps the answer itself
                    said = self._fail(response, f"{self.name}{url.path}")
                    raise retries_exhausted(said, registry=self.name, action=action, attempts=attempt + 1,
                                            status=status)
                response.close()
            time.sleep(self.backoff * 2 ** attempt)
            attempt += 1
            self._add("retried", 1)

    def _same_origin(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (self._base.scheme, self._base.host, self._base.port)

    def _basic_header(self) -> str:
        assert self._credentials is not None
        pair = f"{self._credentials.username}:{self._credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _authorization(self, url: httpx.URL, key: str) -> str | None:
        if not self._same_origin(url):
            return None  # credentials and tokens go to this registry only
        with self._lock:
            token = self._tokens.get(key)
        if token is not None:
            return f"Bearer {token}"
        if self._basic and self._credentials is not None:
            return self._basic_header()
        return None

    def _request(self, method: str, target: str | httpx.URL, *, scopes: Sequence[str] = (),
                 headers: dict[str, str] | None = None, body: Body | None = None, follow: bool = False,
                 retry: bool = True) -> httpx.Response:
        """One request with authentication: on a 401, answer the challenge once and send it again."""
        url = self._base.join(target)
        key = " ".join(sorted(scopes))
        fresh = False
        while True:
            sent = dict(headers or {})
            authorization = self._authorization(url, key)
            if authorization is not None:
                sent["Authorization"] = authorization
            response = self._exchange(method, url, sent, body, follow=follow, retry=retry)
            if response.status_code != 401:
                return response
            challenge = response.headers.get("www-authenticate", "")
            self._fail(response, f"{self.name}{url.path}")  # the body is read (and counted), then dropped
            if fresh:
                raise self._refused()
            if body is not None and not body.can_resend():
                raise AuthenticationError(f"unauthorized: {self.name} asked for credentials in the middle of an "
                                          f"upload whose source cannot be read again", code="UNAUTHORIZED", status=401)
            self._answer(challenge, scopes, key, carried=sent.get("Authorization", ""))
            fresh = True

    def _refused(self, service: str = "") -> AuthenticationError:
        who = f"the credentials of user {self._credentials.username!r}" if self._credentials else "anonymous access"
        return AuthenticationError(f"unauthorized: {service or self.name} refused {who}", code="UNAUTHORIZED",
                                   status=401)

    def _answer(self, header: str, scopes: Sequence[str], key: str, *, carried: str = "") -> None:
        # Threads share the learnt scheme: only a request that itself carried Basic proves it refused.
        challenges = parse_challenges(header, source=self.name)
        by_scheme = {c.scheme: c for c in reversed(challenges)}
        if "bearer" in by_scheme:
            token = self._fetch_token(by_scheme["bearer"], scopes)
            with self._lock:
                self._tokens[key] = token
        elif "basic" in by_scheme:
            if self._credentials is None:
                raise AuthenticationError(f"unauthorized: {self.name} requires a login and none was given",
                                          code="UNAUTHORIZED", status=401)
            if carried.startswith("Basic "):
                raise self._refused()
            self._basic = True
        else:
            offered = ", ".join(c.scheme for c in challenges) or "no challenge"
            raise AuthenticationError(f"unauthorized: {self.name} wants authentication this client does not speak "
                                      f"({offered})", code="UNAUTHORIZED", status=401)

    def _fetch_token(self, challenge: Challenge, scopes: Sequence[str]) -> str:
        realm = challenge.get("realm") or ""
        try:
            url = httpx.URL(realm)
        except (httpx.InvalidURL, TypeError, ValueError):
            url = httpx.URL("invalid:")
        if url.scheme not in ("http", "https") or not url.host or url.userinfo:
            raise AuthenticationError(f"unauthorized: {self.name} names a token service that is not an http(s) URL",
                                      code="UNAUTHORIZED", status=401)
        wanted = list(dict.fromkeys([*(challenge.get("scope") or "").split(), *scopes]))
        query: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.get("service"):
            query.append(("service", challenge.get("service") or ""))
        query += [("scope", s) for s in wanted]
        headers: dict[str, str] = {}
        if self._credentials is not None:
            query.append(("account", self._credentials.username))
            headers["Authorization"] = self._basic_header()
        url = url.copy_merge_params(httpx.QueryParams(query))
        response = self._exchange("GET", url, headers, None, follow=False, retry=True)
        try:
            if response.status_code in (401, 403):
                self._fail(response, f"the token service of {self.name}")
                raise self._refused(f"the token service of {self.name}")
            if response.status_code != 200:
                raise self._fail(response, f"the token service of {self.name}")
            doc = self._json(response, f"the token service of {self.name}")
        finally:
            response.close()
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"unauthorized: the token service of {self.name} answered without a token",
                                      code="UNAUTHORIZED", status=401)
        return token

    # -- answers

    def _read(self, response: httpx.Response, limit: int, what: str) -> bytes:
        """The whole body, refused once it grows over ``limit`` (before reading the rest)."""
        declared = content_length(response)
        if declared is not None and declared > limit:
            raise DocumentTooLargeError(f"{what} is {declared} bytes; the limit is {limit}")
        out = bytearray()
        try:
            for chunk in response.iter_bytes():
                self._add("bytes_received", len(chunk))
                out += chunk
                if len(out) > limit:
                    raise DocumentTooLargeError(f"{what} is over the limit of {limit} bytes")
        except httpx.TransportError as exc:
            raise transport_error(exc, registry=self.name, action=f"reading {what}", attempts=1,
                                  timeout=self.timeout) from exc
        return bytes(out)

    def _done(self, response: httpx.Response) -> None:
        """Read (and count) an unwanted short body, then close: httpcore drops a connection closed mid-answer."""
        self._add("bytes_received", len(read_limited(response, MAX_ERROR_BODY)[0]))
        response.close()

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        data = self._read(response, MAX_PAGE_BYTES, what)
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{what}: the registry's answer is not JSON", status=response.status_code) from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"{what}: the registry's answer is not a JSON object", status=response.status_code)
        return doc

    def _fail(self, response: httpx.Response, where: str, missing: Missing = "other") -> LayerlabError:
        """The mapped error for an unexpected answer (counting the error body it reads)."""
        body, _ = read_limited(response, MAX_ERROR_BODY)
        self._add("bytes_received", len(body))
        response.close()
        return response_error(response, registry=self.name, where=where, missing=missing, body=body)

    def _call(self, method: str, target: str | httpx.URL, *, ok: tuple[int, ...], where: str,
              missing: Missing = "other", scopes: Sequence[str] = (), headers: dict[str, str] | None = None,
              body: Body | None = None) -> httpx.Response:
        """:meth:`_request`, then an answer with a status in ``ok`` (still open) or the mapped error."""
        response = self._request(method, target, scopes=scopes, headers=headers, body=body)
        if response.status_code not in ok:
            raise self._fail(response, where, missing)
        return response

    def _location(self, response: httpx.Response, where: str) -> httpx.URL:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"{where}: the registry answered {response.status_code} without a Location",
                                status=response.status_code)
        return self._base.join(location)

    def _where(self, repository: str, reference: str | None = None) -> str:
        if reference is None:
            return f"{self.name}/{repository}"
        return f"{self.name}/{repository}{'@' if ':' in reference else ':'}{reference}"

    # -- the API root and discovery

    def ping(self) -> None:
        """``GET /v2/``: returns if the registry answers 200 to this session (credentials included)."""
        self._done(self._call("GET", "/v2/", ok=(200,), where=self.name))

    def tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of ``repository``, sorted, following ``Link: <...>; rel="next"`` page by page."""
        validate_repository_path(repository)
        return self._pages(f"/v2/{repository}/tags/list", "tags", page_size, scopes=(f"repository:{repository}:pull",),
                           where=self._where(repository), missing="manifest")

    def catalog(self, *, page_size: int | None = None) -> list[str]:
        """Every repository name, sorted, following the catalog's pages."""
        return self._pages("/v2/_catalog", "repositories", page_size, scopes=("registry:catalog:*",),
                           where=f"{self.name}/_catalog", missing="other")

    def _pages(self, path: str, field: str, page_size: int | None, *, scopes: tuple[str, ...], where: str,
               missing: Missing) -> list[str]:
        if page_size is not None:
            check_count(page_size, "page_size", minimum=1)
        target: httpx.URL | None = self._base.join(path)
        if page_size is not None:
            target = self._base.join(path).copy_merge_params({"n": str(page_size)})
        names: set[str] = set()
        seen: set[str] = set()
        while target is not None and str(target) not in seen:
            # A server pointing back at a page it sent, or paging without end, must not loop forever.
            if len(seen) >= _MAX_PAGES:
                raise RegistryError(f"{where}: the registry sent more than {_MAX_PAGES} pages", status=200)
            seen.add(str(target))
            response = self._call("GET", target, ok=(200,), where=where, missing=missing, scopes=scopes)
            try:
                doc = self._json(response, where)
            finally:
                response.close()
            page = doc.get(field)
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(n, str) for n in page):
                raise RegistryError(f"{where}: the registry's {field!r} is not a list of names", status=200)
            names.update(page)
            following = next_link(response.headers.get_list("link"))
            target = self._base.join(following) if following else None
        return sorted(names)

    # -- manifests

    def get_manifest(self, repository: str, reference: str, *, accept: Sequence[str] = MANIFEST_ACCEPT) -> ManifestResponse:
        """The manifest's exact bytes, ``Content-Type`` (without parameters) and claimed digest.

        Refuses with :class:`~sim.images.oci.DocumentTooLargeError` a declared
        or streamed size over ``MAX_MANIFEST_BYTES``, before reading more.
        """
        validate_repository_path(repository)
        if ":" in reference:
            if not is_image_id(reference):
                raise ImageNotFoundError(f"manifest unknown: {reference} is not a sha256 digest")
        else:
            validate_tag(reference)
        if isinstance(accept, str) or not accept or not all(isinstance(a, str) and a and not {"\r", "\n"} & set(a) for a in accept):
            raise MediaTypeError(f"accept must be a non-empty list of media types, got {accept!r}")
        where = self._where(repository, reference)
        response = self._call("GET", f"/v2/{repository}/manifests/{reference}", ok=(200,), where=where,
                              missing="manifest", scopes=(f"repository:{repository}:pull",),
                              headers={"Accept": ", ".join(accept)})
        try:
            data = self._read(response, MAX_MANIFEST_BYTES, f"the manifest {where}")
        finally:
            response.close()
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        claimed = response.headers.get("docker-content-digest")
        digest: Digest | None = None
        if claimed:
            if not is_image_id(claimed) or not claimed.startswith("sha256:"):
                raise RegistryError(f"{where}: the registry claims a digest that is not sha256: {claimed!r}",
                                    code="DIGEST_INVALID", status=200)
            digest = Digest(claimed)
        return ManifestResponse(data, media_type, digest)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        """``PUT`` under a tag or its digest; 201 expected. Returns the digest the registry confirmed,
        which must be the sha256 of ``data`` (else :class:`~sim.errors.DigestMismatchError`)."""
        validate_repository_path(repository)
        if not isinstance(data, (bytes, bytearray)):
            raise ImageFormatError(f"a manifest is bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_MANIFEST_BYTES:
            raise DocumentTooLargeError(f"manifest invalid: {len(data)} bytes is over the {MAX_MANIFEST_BYTES}-byte limit")
        digest = sha256_digest(data)
        if ":" in reference:
            if check_digest(reference) != digest:
                raise DigestMismatchError(f"digest invalid: the manifest's sha256 is {digest}, not {reference}")
        else:
            validate_tag(reference)
        if not isinstance(media_type, str) or not media_type or any(c in media_type for c in "\r\n"):
            raise MediaTypeError(f"a manifest needs its media type as Content-Type, got {media_type!r}")
        where = self._where(repository, reference)
        response = self._call("PUT", f"/v2/{repository}/manifests/{reference}", ok=(201,), where=where,
                              missing="manifest", scopes=(f"repository:{repository}:pull,push",),
                              headers={"Content-Type": media_type}, body=Body(self._add, data=data))
        self._done(response)
        claimed = response.headers.get("docker-content-digest")
        if claimed and claimed != digest:
            raise DigestMismatchError(f"{where}: the registry stored the manifest as {claimed}, but its sha256 is {digest}")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        """``DELETE`` by digest; 202 expected (a registry with deletes disabled answers 405: UnsupportedOperationError)."""
        validate_repository_path(repository)
        d = check_digest(digest)
        self._done(self._call("DELETE", f"/v2/{repository}/manifests/{d}", ok=(202,), where=self._where(repository, d),
                              missing="manifest", scopes=(f"repository:{repository}:pull,push",)))

    # -- blobs

    def stat_blob(self, repository: str, digest: str) -> int | None:
        """``HEAD``: the blob's size (its ``Content-Length``), or ``None`` on 404."""
        validate_repository_path(repository)
        d = check_digest(digest)
        where = f"{self.name}/{repository}@{d}"
        response = self._request("HEAD", f"/v2/{repository}/blobs/{d}", scopes=(f"repository:{repository}:pull",),
                                 follow=True)
        if response.status_code not in (200, 404):
            raise self._fail(response, where, "blob")
        self._done(response)
        if response.status_code == 404:
            return None
        size = content_length(response)
        if size is None:
            raise RegistryError(f"{where}: the registry's HEAD answer has no Content-Length", status=200)
        return size

    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> BlobReader:
        """``GET`` the blob, streamed (redirects followed), from ``offset`` with ``Range`` when it is > 0.

        A 206 must start at ``offset`` (its ``Content-Range``); a 200, or a 416
        for an offset past the end, is read from 0 (``reader.offset == 0``).
        ``reader.size`` is the whole blob's size as the registry declared it.
        """
        validate_repository_path(repository)
        d = check_digest(digest)
        where = f"{self.name}/{repository}@{d}"
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else {}
        response = self._request("GET", f"/v2/{repository}/blobs/{d}", scopes=(f"repository:{repository}:pull",),
                                 headers=headers, follow=True)
        status = response.status_code
        if status == 416 and offset > 0:
            self._done(response)
            return self.open_blob(repository, d)
        if status in (200, 206):
            try:
                span = content_range(response) if status == 206 else (0, content_length(response))
                if span is None or span[0] != offset and status == 206:
                    raise RegistryError(f"{where}: asked for bytes from {offset}, the registry sent "
                                        f"{response.headers.get('content-range')!r}", status=206)
            except RegistryError:
                response.close()
                raise
            return HttpBlob(response, offset=span[0], size=span[1], where=where, registry=self.name, count=self._add,
                            timeout=self.timeout)
        raise self._fail(response, where, "blob")

    def put_blob(self, repository: str, digest: str, size: int, source: IO[bytes], *, chunk_size: int | None = None) -> None:
        """Upload ``size`` bytes of ``source`` as ``digest``, streamed in pieces (never the whole blob
        in memory): one ``PUT`` when ``chunk_size`` is ``None``, else ``PATCH`` chunks and a closing
        ``PUT``. On any failure the upload session is cancelled (``DELETE``, best effort)."""
        validate_repository_path(repository)
        d = check_digest(digest)
        check_count(size, "a blob's size", minimum=0)
        if chunk_size is not None:
            check_count(chunk_size, "chunk_size", minimum=1)
        scopes = (f"repository:{repository}:pull,push",)
        where = f"{self.name}/{repository}@{d}"
        start = self._call("POST", f"/v2/{repository}/blobs/uploads/", ok=(202,), where=where, scopes=scopes)
        self._done(start)
        location = self._location(start, where)
        try:
            if chunk_size is None:
                body = Body(self._add, source=source, length=size)
                final = location.copy_merge_params({"digest": d})
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                done = self._call("PUT", final, ok=(201,), where=where, scopes=scopes, headers=headers, body=body)
            else:
                offset = 0
                while offset < size:
                    n = min(chunk_size, size - offset)
                    headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{offset + n - 1}",
                               "Content-Length": str(n)}
                    answer = self._call("PATCH", location, ok=(202,), where=where, scopes=scopes, headers=headers,
                                        body=Body(self._add, source=source, length=n))
                    self._done(answer)
                    location = self._location(answer, where)
                    self._check_progress(answer, offset + n, where)
                    offset += n
                done = self._call("PUT", location.copy_merge_params({"digest": d}), ok=(201,), where=where,
                                  scopes=scopes, headers={"Content-Length": "0"}, body=Body(self._add, data=b""))
            self._done(done)
            claimed = done.headers.get("docker-content-digest")
            if claimed and claimed != d:
                raise DigestMismatchError(f"{where}: the registry stored the upload as {claimed}")
        except BaseException:
            self._cancel(location, scopes)
            raise

    @staticmethod
    def _check_progress(answer: httpx.Response, received: int, where: str) -> None:
        end = upload_end(answer)
        # No Range to check against: the closing PUT's digest check still guards the bytes.
        if end is not None and end != received - 1:
            raise RegistryError(f"{where}: after {received} bytes the registry reports the upload at "
                                f"{answer.headers.get('range')!r}", code="BLOB_UPLOAD_INVALID", status=answer.status_code)

    def _cancel(self, location: httpx.URL, scopes: Sequence[str]) -> None:
        """Best effort: cancel an upload session; never raises (the error that caused it matters more)."""
        try:
            self._done(self._request("DELETE", location, scopes=scopes, retry=False))
        except Exception:
            pass  # a failed cancel only leaves a session the registry expires itself

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """``POST ?mount=&from=``: True on 201; on 202 the session it opened is cancelled and False returned."""
        validate_repository_path(repository)
        validate_repository_path(from_repository)
        d = check_digest(digest)
        where = f"{self.name}/{repository}@{d}"
        scopes = (f"repository:{repository}:pull,push", f"repository:{from_repository}:pull")
        target = self._base.join(f"/v2/{repository}/blobs/uploads/").copy_merge_params(
            {"mount": str(d), "from": from_repository})
        response = self._call("POST", target, ok=(201, 202), where=where, scopes=scopes)
        self._done(response)
        if response.status_code == 201:
            return True
        self._cancel(self._location(response, where), scopes)
        return False

