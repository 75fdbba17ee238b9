"""Blue-green serving: swap a llama-server (e.g. for a new LoRA adapter) while
requests keep flowing.

llama-server does not key its prompt cache on the LoRA setting (REFERENCE §5),
so a new adapter set gets a new server process rather than a scale change on
the running one. Two named servers take turns (``blue`` and ``green``)::

    Active(blue) --switch(adapter)--> Starting: green loads it, /health, sanity check
                                          |  fails: green stops, blue stays active
                                          v
                                      Switching: new requests go to green
                                          v
                                      Releasing: blue drains (its in-flight requests
                                          finish), then stops
                                          v
                                      Active(green)

Clients need one address that outlives both processes. It is a small reverse
proxy on 127.0.0.1 in this process: every request picks the active backend
under a lock and counts itself in flight on it until its response (streamed
too) is fully written, so "drained" is exact rather than a guessed grace
period, and the switch is one pointer swap. Designs without a proxy were
weighed and rejected: two servers on one port with SO_REUSEPORT (llama-server
does not set it, and the kernel, not we, would pick which process gets a new
connection, so the old one could not be drained); clients re-reading an
endpoint file (every client must cooperate, and requests racing the swap fail
on the stopped server). The proxy costs one loopback hop per request
(measured on 2 cores: /health 1.6 ms through it vs 0.5 ms direct, against
50-5000 ms for a completion). A request that got no
answer at all (refused connection, or a pooled connection the server had
closed) is resent once, to whichever backend is active then.

Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import enum
import http.server
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from swarm_engine.errors import ConfigError, LlmError, LlmPermanentError
from swarm_engine.llm.server import LlamaServer, free_port

__all__ = ["BlueGreen", "BlueGreenState", "SwitchReport", "FrontProxy", "Backend", "sanity_check", "COLORS"]

log = logging.getLogger("swarm_engine.llm.bluegreen")

HOST = "127.0.0.1"
COLORS = ("blue", "green")
SANITY_PROMPT = "The capital of France is"
# hop-by-hop headers (RFC 9110 7.6.1) plus the ones this proxy recomputes
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                  "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length"})


class BlueGreenState(str, enum.Enum):
    """Where a :class:`BlueGreen` pair stands (the diagram in the module docstring)."""

    STOPPED = "stopped"
    STARTING = "starting"
    ACTIVE = "active"
    SWITCHING = "switching"
    RELEASING = "releasing"


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


@dataclass
class SwitchReport:
    """What one :meth:`BlueGreen.switch` did."""

    from_color: str | None
    to_color: str
    version: int | None
    adapter: str | None
    start_seconds: float            # standby launch to healthy and sane
    drain_seconds: float            # switch to the old server's last response
    drained: bool                   # False: the drain timed out and the old server was stopped anyway
    in_flight_at_switch: int        # requests the old server still had when traffic moved
    old_served: int                 # responses the old server relayed in its lifetime
    old_failed: int                 # requests to it that the proxy answered 502

    def as_dict(self) -> dict:
        return asdict(self)


def sanity_check(url: str, adapter: str | Path | None = None, *, prompt: str = SANITY_PROMPT,
                 n_predict: int = 8, timeout: float = 60.0) -> str:
    """Check that the server at ``url`` serves: /health is ok, the adapter (when
    given) is loaded with a non-zero scale, and a short greedy /completion
    returns text. Returns that text.

    Raises
    ------
    LlmPermanentError
        One line naming what failed (a too-strong adapter shows as HTTP 500 here).
    """
    with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as c:
        try:
            r = c.get("/health")
            if r.status_code != 200:
                raise LlmPermanentError(f"{url}/health: HTTP {r.status_code}")
            if adapter is not None:
                want = Path(adapter).resolve()
                r = c.get("/lora-adapters")
                loaded = r.json() if r.status_code == 200 else None
                if not isinstance(loaded, list) or not any(
                        isinstance(a, dict) and a.get("path") and Path(a["path"]).resolve() == want
                        and float(a.get("scale") or 0) != 0 for a in loaded):
                    raise LlmPermanentError(f"{url}: adapter {want} is not loaded (/lora-adapters: {loaded})")
            r = c.post("/completion", json={"prompt": prompt, "n_predict": n_predict, "temperature": 0.0,
                                            "cache_prompt": False})
            if r.status_code != 200:
                raise LlmPermanentError(f"{url}/completion: HTTP {r.status_code}: {r.text[:200]}")
            body = r.json()
        except httpx.HTTPError as exc:
            raise LlmPermanentError(f"{url}: {exc}") from exc
        except ValueError as exc:
            raise LlmPermanentError(f"{url}: not JSON: {exc}") from exc
    text = body.get("content") if isinstance(body, dict) else None
    if not isinstance(text, str) or not (text.strip() or int(body.get("tokens_predicted") or 0) > 0):
        raise LlmPermanentError(f"{url}/completion: no text for the sanity prompt ({str(body)[:200]})")
    return text


@dataclass
class _Slot:
    server: LlamaServer
    backend: Backend
    adapter: str | None
    version: int | None
    started_at: float = field(default_factory=time.time)


class BlueGreen:
    """Two llama-servers behind one stable endpoint; :meth:`switch` swaps them with no failed request.

    Parameters
    ----------
    model:
        The GGUF model both servers load (default: the packaged SmolLM2).
    name:
        Prefix of the two servers' names (``"<name>-blue"``); "" gives plain
        ``blue`` and ``green``. Two pairs in one engine home need two names.
    port:
        The front endpoint's port on 127.0.0.1 (0 = any free port).
    home:
        Engine directory for the servers' pid files and logs (default ``engine_dir()``).
    server_options:
        Keyword arguments for :meth:`LlamaServer.start` (``parallel``,
        ``threads``, ``ctx_size``, ``kvu``, ``server_bin``, ``extra_args``...).
    health_timeout:
        Seconds a new server has to become healthy.
    drain_timeout:
        Seconds the old server gets to finish its in-flight requests.
    replace_running:
        Stop a server already running under one of the pair's names (the
        leftover of a killed owner) instead of refusing to start. The daemon
        sets it: its names are its own, guarded by its lock.
    on_event:
        Called with one line at each step (the daemon logs them).
    """

    def __init__(self, model: str | Path | None = None, *, name: str = "", port: int = 0,
                 home: Path | None = None, server_options: Mapping[str, Any] | None = None,
                 health_timeout: float = 120.0, drain_timeout: float = 120.0,
                 sanity_prompt: str = SANITY_PROMPT, replace_running: bool = False,
                 on_event: Callable[[str], None] | None = None) -> None:
        opts = dict(server_options or {})
        for reserved in ("host", "port", "lora", "timeout"):
            if reserved in opts:
                raise ConfigError(f"blue-green: server option '{reserved}' is managed by the pair")
        if not 0 <= int(port) < 65536:
            raise ConfigError(f"blue-green: port {port}: expected 0..65535")
        self.model = model
        self.name = name
        self.home = home
        self.port = int(port)
        self.server_options = opts
        self.health_timeout = float(health_timeout)
        self.drain_timeout = float(drain_timeout)
        self.sanity_prompt = sanity_prompt
        self.replace_running = replace_running
        self.on_event = on_event
        self.state = BlueGreenState.STOPPED
        self.switches: list[SwitchReport] = []
        self._proxy: FrontProxy | None = None
        self._active: _Slot | None = None
        self._op = threading.Lock()              # one start/switch/stop at a time

    # -- names and facts

    def server_name(self, color: str) -> str:
        return f"{self.name}-{color}" if self.name else color

    @property
    def endpoint(self) -> str:
        """The stable URL clients use."""
        if self._proxy is None:
            raise LlmPermanentError("blue-green pair is not started")
        return self._proxy.url

    @property
    def active_color(self) -> str | None:
        return self._active.backend.name if self._active else None

    @property
    def version(self) -> int | None:
        return self._active.version if self._active else None

    @property
    def adapter(self) -> str | None:
        return self._active.adapter if self._active else None

    def status(self) -> dict:
        """For status files and the CLI: endpoint, state, active color/adapter/version, backends."""
        a = self._active
        st = a.server.state() if a else None
        return {"endpoint": self._proxy.url if self._proxy else None, "state": self.state.value,
                "active_color": a.backend.name if a else None, "adapter_version": a.version if a else None,
                "adapter": a.adapter if a else None, "backend_url": a.backend.url if a else None,
                "pid": st.pid if st else None,
                "served": a.backend.served if a else 0, "switches": len(self.switches)}

    def _event(self, line: str) -> None:
        log.info("%s", line)
        if self.on_event is not None:
            self.on_event(line)

    # -- lifecycle

    def _launch(self, color: str, adapter: str | Path | None, version: int | None) -> _Slot:
        """Start one server with ``adapter``, wait for health, run the sanity check."""
        server = LlamaServer(self.server_name(color), home=self.home)
        st = server.state()
        if server.is_running() and st is not None:
            if not self.replace_running:
                raise LlmPermanentError(f"blue-green: llama-server '{server.name}' is already running (pid "
                                        f"{st.pid}); stop it (swarm llama stop --name {server.name}) or "
                                        f"give the pair another name")
            self._event(f"stopping a leftover llama-server '{server.name}' (pid {st.pid})")
            server.stop()
        adapter_path = str(Path(adapter).expanduser().resolve()) if adapter is not None else None
        if adapter_path is not None and not Path(adapter_path).is_file():
            raise ConfigError(f"blue-green: adapter file not found: {adapter_path}")
        what = Path(adapter_path).name if adapter_path else "no adapter"
        label = f"{color} ({what}{f', v{version}' if version is not None else ''})"
        self._event(f"starting {label}")
        st = server.start(self.model, port=free_port(HOST), host=HOST,
                          lora=[adapter_path] if adapter_path else [], timeout=self.health_timeout,
                          **self.server_options)
        try:
            sanity_check(st.url, adapter_path, prompt=self.sanity_prompt)
        except BaseException as exc:
            server.stop()
            if isinstance(exc, LlmError):
                raise LlmPermanentError(f"blue-green: {label} failed its sanity check: {exc}") from exc
            raise
        self._event(f"{label} is healthy at {st.url}")
        return _Slot(server, Backend(color, st.url), adapter_path, version)

    def start(self, adapter: str | Path | None = None, *, version: int | None = None) -> None:
        """Start the front endpoint and the first server (blue)."""
        with self._op:
            if self.state is not BlueGreenState.STOPPED:
                raise LlmPermanentError("blue-green pair is already started")
            self.state = BlueGreenState.STARTING
            # the front port first: a port clash is the likeliest failure and costs no server start
            try:
                self._proxy = FrontProxy(self.port)
            except BaseException:
                self.state = BlueGreenState.STOPPED
                raise
            try:
                slot = self._launch(COLORS[0], adapter, version)
            except BaseException:
                self._proxy.close(0.0)
                self._proxy = None
                self.state = BlueGreenState.STOPPED
                raise
            self._proxy.set_active(slot.backend)
            self._active = slot
            self.state = BlueGreenState.ACTIVE
            self._event(f"serving {slot.backend.name} at {self._proxy.url}")

    def switch(self, adapter: str | Path | None, *, version: int | None = None) -> SwitchReport:
        """Bring up the standby with ``adapter``, move traffic to it, drain and stop the old one.

        Raises
        ------
        LlmPermanentError
            The standby did not come up healthy and sane: it is stopped and the
            active server keeps serving (nothing changed).
        """
        with self._op:
            if self._active is None or self._proxy is None or self.state is not BlueGreenState.ACTIVE:
                raise LlmPermanentError("blue-green pair is not serving; start it first")
            old = self._active
            color = COLORS[1] if old.backend.name == COLORS[0] else COLORS[0]
            t0 = time.monotonic()
            self.state = BlueGreenState.STARTING
            try:
                new = self._launch(color, adapter, version)
            except BaseException:
                self.state = BlueGreenState.ACTIVE
                raise
            started = time.monotonic() - t0
            self.state = BlueGreenState.SWITCHING
            self._proxy.set_active(new.backend)
            self._active = new
            in_flight = old.backend.in_flight
            self._event(f"traffic moved {old.backend.name} -> {color}; draining {old.backend.name} "
                        f"({in_flight} in flight)")
            self.state = BlueGreenState.RELEASING
            t1 = time.monotonic()
            drained = self._proxy.wait_drained(old.backend, self.drain_timeout)
            drain = time.monotonic() - t1
            if not drained:
                self._event(f"{old.backend.name} did not drain in {self.drain_timeout:g} s; stopping it anyway")
            old.server.stop()
            old.backend.close()
            self.state = BlueGreenState.ACTIVE
            report = SwitchReport(from_color=old.backend.name, to_color=color, version=version,
                                  adapter=new.adapter, start_seconds=round(started, 3),
                                  drain_seconds=round(drain, 3), drained=drained, in_flight_at_switch=in_flight,
                                  old_served=old.backend.served, old_failed=old.backend.failed)
            self.switches.append(report)
            self._event(f"{old.backend.name} stopped; {color} is active")
            return report

    def stop(self) -> None:
        """Stop accepting, drain, stop the server(s). Safe twice."""
        with self._op:
            if self._proxy is not None:
                self._proxy.close(self.drain_timeout)
                self._proxy = None
            if self._active is not None:
                self._active.server.stop()
                self._active.backend.close()
                self._active = None
            self.state = BlueGreenState.STOPPED

    def __enter__(self) -> BlueGreen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
