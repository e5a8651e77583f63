"""A fault-injecting HTTP proxy in front of a real registry, for the client's tests.

:class:`FaultyProxy` listens on ``127.0.0.1:<free port>`` and forwards every
request to ``upstream`` (an ``http://`` registry) with httpx, streaming bodies
both ways and keeping status and headers (a ``Location`` that points at the
upstream is rewritten to point at the proxy, so upload sessions go through it
too).  Faults are plain attributes, switched at any time from the test:

* ``flip_blob_byte``: flip one byte in the middle of every blob ``GET`` body;
* ``truncate_blobs = N``: blob bodies are cut to N bytes (``Content-Length`` says N), then the
  connection is closed;
* ``extend_blobs = b"..."``: appended to every blob body (``Content-Length`` grows to match);
* ``cut_after = N``: once, close the connection after N body bytes of the first blob longer than N (``Content-Length``
  still the whole), so a resumed ``Range`` request then succeeds;
* ``fail_next = N`` with ``fail_status``: answer the next N requests with that status (only
  requests of method ``fail_only`` when that is set);
* ``manifest_override = (data, content_type)``: answer manifest ``GET``/``HEAD`` with these;
  ``chunked_manifests`` sends them without ``Content-Length`` (chunked);
* ``ignore_range``: drop ``Range`` from forwarded requests (the upstream answers 200 from 0);
* ``page_tags``: answer ``tags/list?n=&last=`` page by page with ``Link: <...>; rel="next"``, as
  newer registries do (distribution 2.8 ignores ``n`` there and sends every tag at once);
* :meth:`down`: stop answering: the listener is closed and open connections are cut.

Counters: ``requests`` ((method, path) of every request) and ``blob_bytes_sent``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx

__all__ = ["FaultyProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length"}
_PIECE = 64 * 1024


class _Cut(Exception):
    """Private: the fault says to drop the connection now."""


class FaultyProxy:
    """A proxy to ``upstream`` with switchable faults; a context manager (``with FaultyProxy(url) as p``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.flip_blob_byte = False
        self.truncate_blobs: int | None = None
        self.extend_blobs = b""
        self.cut_after: int | None = None
        self.fail_next = 0
        self.fail_status = 500
        self.fail_only: str | None = None
        self.page_tags = False
        self.manifest_override: tuple[bytes, str] | None = None
        self.chunked_manifests = False
        self.ignore_range = False
        self.requests: list[tuple[str, str]] = []
        self.blob_bytes_sent = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._http = httpx.Client(trust_env=False, timeout=30.0, follow_redirects=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def start(self) -> FaultyProxy:
        # A short poll interval: shutdown() (down(), close()) waits for it.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), name="faulty-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop answering: close the listener (new connections are refused) and cut open ones."""
        if self._down:
            return
        self._down = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        with self._lock:
            for conn in list(self._open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.down()
        self._http.close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- what the handler asks

    def _record(self, method: str, path: str) -> bool:
        """Count the request; True when it must be failed with ``fail_status``."""
        with self._lock:
            self.requests.append((method, path))
            if self.fail_next > 0 and self.fail_only in (None, method):
                self.fail_next -= 1
                return True
            return False

    def _take_cut(self, length: int) -> int | None:
        """The armed cut, used up by the first blob long enough to be cut."""
        with self._lock:
            if self.cut_after is None or length <= self.cut_after:
                return None
            cut, self.cut_after = self.cut_after, None
            return cut

    def _rewrite_location(self, value: str) -> str:
        return self.url + value[len(self.upstream):] if value.startswith(self.upstream) else value


def _handler(proxy: FaultyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: pytest shows failures, not every request

        def handle(self) -> None:
            try:
                super().handle()
            except OSError:
                pass  # the client went away (or down() cut it): nothing to answer

        def setup(self) -> None:
            super().setup()
            with proxy._lock:
                proxy._open.add(self.connection)

        def finish(self) -> None:
            with proxy._lock:
                proxy._open.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def do_GET(self) -> None:
            self._forward()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _request_body(self) -> Iterator[bytes]:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                piece = self.rfile.read(min(_PIECE, left))
                if not piece:
                    return
                left -= len(piece)
                yield piece

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self) -> None:
            try:
                self._serve()
            except (_Cut, ConnectionError, OSError):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def _serve(self) -> None:
            method, path = self.command, self.path
            if proxy._record(method, path):
                for _ in self._request_body():
                    pass  # read what was sent, so the client sees the answer, not a reset
                error = {"errors": [{"code": "UNKNOWN", "message": "injected fault", "detail": None}]}
                self._send(proxy.fail_status, [("Content-Type", "application/json")], json.dumps(error).encode())
                return
            override = proxy.manifest_override
            if override is not None and method in ("GET", "HEAD") and "/manifests/" in path:
                self._send_manifest(*override)
                return
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            url = httpx.URL(path)
            if proxy.page_tags and method == "GET" and url.path.endswith("/tags/list") and "n" in url.params:
                self._page_tags(url, headers)
                return
            if proxy.ignore_range:
                headers = [(k, v) for k, v in headers if k.lower() != "range"]
            if self.headers.get("Content-Length"):
                headers.append(("Content-Length", self.headers["Content-Length"]))
            has_body = method in ("POST", "PUT", "PATCH")
            request = proxy._http.build_request(method, proxy.upstream + path, headers=headers,
                                                content=self._request_body() if has_body else None)
            try:
                response = proxy._http.send(request, stream=True)
            except httpx.TransportError as exc:
                self._send(502, [("Content-Type", "text/plain")], f"upstream unreachable: {exc}".encode())
                return
            try:
                self._relay(method, path, response)
            finally:
                response.close()

        def _page_tags(self, url: httpx.URL, headers: list[tuple[str, str]]) -> None:
            answer = proxy._http.get(proxy.upstream + url.path, headers=headers)
            if answer.status_code != 200:
                self._send(answer.status_code, [("Content-Type", "application/json")], answer.content)
                return
            doc = answer.json()
            n, last = int(url.params["n"]), url.params.get("last", "")
            rest = [t for t in sorted(doc.get("tags") or []) if t > last]
            page, more = rest[:n], len(rest) > n
            extra = [("Link", f'<{url.path}?n={n}&last={page[-1]}>; rel="next"')] if more else []
            body = json.dumps({"name": doc.get("name"), "tags": page}).encode()
            self._send(200, [("Content-Type", "application/json"), *extra], body)

        def _send_manifest(self, data: bytes, content_type: str) -> None:
            if not proxy.chunked_manifests:
                self._send(200, [("Content-Type", content_type)], data)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD":
                return
            for i in range(0, len(data), _PIECE):
                piece = data[i:i + _PIECE]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def _relay(self, method: str, path: str, response: httpx.Response) -> None:
            headers = [(k, proxy._rewrite_location(v) if k.lower() == "location" else v)
                       for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
            is_blob = (method == "GET" and "/blobs/" in path and "/uploads/" not in path
                       and response.status_code in (200, 206))
            declared = response.headers.get("content-length")
            if not is_blob or declared is None:
                body = b"" if method == "HEAD" else response.read()
                if method == "HEAD" and declared is not None:
                    headers.append(("Content-Length", declared))  # a blob's size: keep it for HEAD
                    self.send_response(response.status_code)
                    for key, value in headers:
                        self.send_header(key, value)
                    self.end_headers()
                    return
                self._send(response.status_code, headers, body)
                return
            self._relay_blob(response, headers, int(declared))

        def _relay_blob(self, response: httpx.Response, headers: list[tuple[str, str]], length: int) -> None:
            cut = proxy._take_cut(length)
            truncate = proxy.truncate_blobs
            extra = proxy.extend_blobs
            declared = length if truncate is None else min(truncate, length)
            declared += len(extra)
            self.send_response(response.status_code)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            middle = length // 2
            sent = 0  # bytes of the upstream body passed on so far
            for chunk in response.iter_raw():
                if truncate is not None and sent + len(chunk) > truncate:
                    chunk = chunk[:max(0, truncate - sent)]
                if proxy.flip_blob_byte and sent <= middle < sent + len(chunk):
                    i = middle - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                if cut is not None and sent + len(chunk) >= cut:
                    self._write_blob(chunk[:cut - sent])
                    raise _Cut()
                self._write_blob(chunk)
                sent += len(chunk)
                if truncate is not None and sent >= truncate:
                    break
            if extra:
                self._write_blob(extra)
            if truncate is not None:
                self.wfile.flush()
                raise _Cut()  # "then close": the connection is not reused

        def _write_blob(self, data: bytes) -> None:
            self.wfile.write(data)
            with proxy._lock:
                proxy.blob_bytes_sent += len(data)

    return Handler
