"""The blue-green pair's front endpoint: a small reverse proxy on 127.0.0.1.

Clients need one address that outlives both servers of a
:class:`~swarm_engine.llm.bluegreen.BlueGreen` pair. Every request picks the
active :class:`Backend` under a lock and counts itself in flight on it until
its response (streamed too) is fully written, so "drained" is exact rather
than a guessed grace period, and a switch is one pointer swap
(:meth:`FrontProxy.set_active`). A request that got no answer at all (refused
connection, or a pooled connection the server had closed) is resent once, to
whichever backend is active then. Its own module because it is plain HTTP
relaying that knows nothing of llama-server: the pair's life cycle is in
:mod:`swarm_engine.llm.bluegreen`.

Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import socket
import threading
import time
from typing import Any

import httpx

from swarm_engine.errors import LlmPermanentError

__all__ = ["FrontProxy", "Backend", "HOST"]

log = logging.getLogger("swarm_engine.llm.proxy")

HOST = "127.0.0.1"
# hop-by-hop headers (RFC 9110 7.6.1) plus the ones this proxy recomputes
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                  "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length"})


class Backend:
    """One upstream server as the proxy sees it: its URL, a connection pool and counters.

    The counters change only under the proxy's lock.
    """

    def __init__(self, name: str, url: str, *, read_timeout: float = 600.0) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, trust_env=False,
                                   timeout=httpx.Timeout(read_timeout, connect=5.0),
                                   limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        self.in_flight = 0
        self.served = 0             # responses fully relayed
        self.failed = 0             # requests answered 502 by the proxy

    def close(self) -> None:
        self.client.close()

    def as_dict(self) -> dict:
        return {"name": self.name, "url": self.url, "in_flight": self.in_flight, "served": self.served,
                "failed": self.failed}


def _read_chunked(rfile) -> bytes:
    out = bytearray()
    while True:
        line = rfile.readline(65537)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass                                     # trailers
            return bytes(out)
        out += rfile.read(size)
        rfile.readline(3)                                # the CRLF after the chunk


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"            # keep-alive towards clients
    # headers and body go out in separate writes; with Nagle on, the client's
    # delayed ACK made every proxied request 40 ms slower (measured: 43 ms vs 0.5 ms)
    disable_nagle_algorithm = True
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:   # the base class's name
        log.debug("proxy: " + format, *args)

    def _relay(self) -> None:
        proxy = self.server.proxy
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP]
        backend = proxy.acquire()
        outcome: str | None = None               # "served" | "failed", counted on release
        try:
            if backend is None:
                self._error(503, "no backend is active")
                return
            for attempt in (0, 1):
                try:
                    request = backend.client.build_request(self.command, self.path, headers=headers,
                                                           content=body)
                    response = backend.client.send(request, stream=True)
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, RuntimeError) as exc:
                    # No answer came back, so resending is safe (llama-server's endpoints change
                    # nothing but caches): a refused connection, a retired backend's closed pool
                    # (RuntimeError), or a pooled connection the server had closed: llama-server
                    # closes the connection after a streamed response without saying so, and
                    # the next request on it gets "Server disconnected without sending a
                    # response" (seen on 53 of 458 direct requests mixing streamed and plain).
                    nxt = proxy.reacquire(backend) if attempt == 0 else None
                    if nxt is None:
                        outcome = "failed"
                        self._error(502, f"backend {backend.name} unreachable: {exc}")
                        return
                    backend = nxt
                except httpx.HTTPError as exc:
                    outcome = "failed"
                    self._error(502, f"backend {backend.name}: {exc}")
                    return
            try:
                self._write_response(response)
                outcome = "served"
            except httpx.HTTPError as exc:
                # the backend broke off mid-response; the status line is already out
                outcome = "failed"
                log.warning("proxy: backend %s broke off a response: %s", backend.name, exc)
                self.close_connection = True
            finally:
                response.close()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True              # the client went away
        finally:
            proxy.release(backend, outcome)

    def _write_response(self, response: httpx.Response) -> None:
        self.send_response_only(response.status_code, response.reason_phrase or None)
        for k, v in response.headers.multi_items():
            if k.lower() not in _HOP:
                self.send_header(k, v)
        no_body = self.command == "HEAD" or response.status_code in (204, 304) or response.status_code < 200
        length = response.headers.get("content-length")
        chunked = not no_body and length is None
        if chunked and self.request_version == "HTTP/1.0":
            chunked = False                       # an HTTP/1.0 client reads to the end of the connection
            self.close_connection = True
        if no_body:
            if length is not None:
                self.send_header("Content-Length", length)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", length)
        if response.headers.get("connection", "").lower() == "close":
            self.close_connection = True
        self.end_headers()
        if no_body:
            return
        for chunk in response.iter_raw():
            if not chunk:
                continue
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _error(self, status: int, message: str) -> None:
        if status >= 502:
            log.warning("proxy: %s %s: %s", self.command, self.path, message)
        body = json.dumps({"error": {"code": status, "message": message, "type": "proxy_error"}}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _relay


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: FrontProxy) -> None:
        self.proxy = proxy
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, opened: bool) -> None:
        with self._conns_lock:
            if opened:
                self._conns[conn] = threading.current_thread()
            else:
                self._conns.pop(conn, None)

    def close_connections(self, timeout: float) -> None:
        """End every client connection (idle keep-alive ones block a handler thread) and join them."""
        with self._conns_lock:
            items = list(self._conns.items())
        for conn, _ in items:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in items:
            thread.join(max(0.0, deadline - time.monotonic()))


class FrontProxy:
    """A reverse proxy on 127.0.0.1 that forwards every request to the active backend.

    Parameters
    ----------
    port:
        0 = a free port chosen by the kernel; see :attr:`port` afterwards.
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Condition()
        self._active: Backend | None = None
        try:
            self._server = _ProxyServer((HOST, int(port)), self)
        except OSError as exc:
            raise LlmPermanentError(f"blue-green proxy: cannot listen on {HOST}:{port}: "
                                    f"{exc.strerror or exc}") from exc
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"bluegreen-proxy-{self.port}", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def active(self) -> Backend | None:
        return self._active

    # the request path: pick under the lock, count, release
    def acquire(self) -> Backend | None:
        with self._lock:
            b = self._active
            if b is not None:
                b.in_flight += 1
            return b

    def release(self, backend: Backend | None, outcome: str | None = None) -> None:
        """A request on ``backend`` is over; ``outcome`` "served" or "failed" is counted."""
        if backend is None:
            return
        with self._lock:
            backend.in_flight -= 1
            if outcome == "served":
                backend.served += 1
            elif outcome == "failed":
                backend.failed += 1
            self._lock.notify_all()

    def reacquire(self, failed: Backend) -> Backend | None:
        """Move a request that got no answer from ``failed`` onto the active backend
        (which may be ``failed`` itself: a fresh connection); None when none is active."""
        with self._lock:
            b = self._active
            if b is None:
                return None
            if b is not failed:
                failed.in_flight -= 1
                b.in_flight += 1
                self._lock.notify_all()
            return b

    def set_active(self, backend: Backend | None) -> Backend | None:
        """Send every new request to ``backend``; returns the previous one (still draining)."""
        with self._lock:
            old, self._active = self._active, backend
            return old

    def wait_drained(self, backend: Backend, timeout: float) -> bool:
        """Wait until no request is in flight on ``backend``; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while backend.in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def close(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``drain_timeout``), close. Safe twice."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        active = self._active
        if active is not None:
            self.wait_drained(active, drain_timeout)
        self._server.close_connections(5.0)
        self._server.server_close()
        self._thread.join(5.0)
