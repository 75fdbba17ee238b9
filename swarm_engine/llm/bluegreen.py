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
proxy on 127.0.0.1 in this process (:mod:`swarm_engine.llm.proxy`): every
request picks the active backend under a lock and counts itself in flight on it until its response (streamed
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

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from swarm_engine.errors import ConfigError, LlmError, LlmPermanentError
from swarm_engine.llm.process import free_port
from swarm_engine.llm.proxy import HOST, Backend, FrontProxy
from swarm_engine.llm.server import LlamaServer

__all__ = ["BlueGreen", "BlueGreenState", "SwitchReport", "FrontProxy", "Backend", "sanity_check", "COLORS"]

log = logging.getLogger("swarm_engine.llm.bluegreen")

COLORS = ("blue", "green")
SANITY_PROMPT = "The capital of France is"



class BlueGreenState(str, enum.Enum):
    """Where a :class:`BlueGreen` pair stands (the diagram in the module docstring)."""

    STOPPED = "stopped"
    STARTING = "starting"
    ACTIVE = "active"
    SWITCHING = "switching"
    RELEASING = "releasing"


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
