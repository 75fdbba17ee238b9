"""Blue-green serving: the front proxy against small fake backends (drain,
retry, streaming, sanity checks), then a REAL llama-server pair switched
twice while an LLM eval and a raw request loop run through the endpoint, and
``swarm learn daemon --serve`` following lora/active.json.

The real-server tests skip (with the shared reason) when llama-server or the
default model is missing; CI installs both.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.llm.bluegreen import Backend, BlueGreen, BlueGreenState, FrontProxy, sanity_check
from swarm_engine.llm.models import server_unavailable
from swarm_engine.llm.server import LlamaServer, free_port
from tests.conftest import signal_and_wait, stop_process, wait_for

needs_server = pytest.mark.skipif(server_unavailable() is not None, reason=server_unavailable() or "")


# --- fake backends ------------------------------------------------------------------------------

class _FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeBackend

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        fb = self.server
        if self.path == "/who":
            self._send(200, json.dumps({"name": fb.name}).encode())
        elif self.path == "/health":
            self._send(200, b'{"status":"ok"}')
        elif self.path == "/lora-adapters":
            self._send(200, json.dumps(fb.adapters).encode())
        elif self.path == "/block":
            fb.blocked.set()
            fb.gate.wait(30)
            self._send(200, json.dumps({"name": fb.name, "blocked": True}).encode())
        elif self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.path == "/echo":
            self._send(200, body, self.headers.get("Content-Type", "application/octet-stream"))
        elif self.path == "/completion":
            fb = self.server
            self._send(fb.completion_status, json.dumps(fb.completion).encode())
        else:
            self._send(404, b'{"error":"not found"}')


class FakeBackend(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _FakeHandler)
        self.name = name
        self.gate = threading.Event()
        self.blocked = threading.Event()
        self.adapters: list = []
        self.completion_status = 200
        self.completion = {"content": " Paris", "tokens_predicted": 1}
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.gate.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)


@pytest.fixture
def fakes():
    made: list[FakeBackend] = []

    def make(name: str) -> FakeBackend:
        made.append(FakeBackend(name))
        return made[-1]

    yield make
    for fb in made:
        fb.close()


@pytest.fixture
def proxy():
    p = FrontProxy()
    backends: list[Backend] = []
    p.backends = backends
    yield p
    p.close(1.0)
    for b in backends:
        b.close()


def backend(proxy: FrontProxy, fb: FakeBackend) -> Backend:
    b = Backend(fb.name, fb.url)
    proxy.backends.append(b)
    return b


def test_proxy_without_a_backend_answers_503(proxy):
    with httpx.Client(base_url=proxy.url, trust_env=False) as c:
        r = c.get("/who")
    assert r.status_code == 503 and r.json()["error"]["message"] == "no backend is active"


def test_proxy_relays_bodies_and_streams(proxy, fakes):
    proxy.set_active(backend(proxy, fakes("blue")))
    payload = os.urandom(100_000)
    with httpx.Client(base_url=proxy.url, trust_env=False) as c:
        assert c.get("/who").json() == {"name": "blue"}
        r = c.post("/echo", content=payload, headers={"Content-Type": "application/x-test"})
        assert r.content == payload and r.headers["content-type"] == "application/x-test"
        # a chunked request body (a generator) arrives whole
        r = c.post("/echo", content=iter([b"ab", b"cd", b"ef"]))
        assert r.content == b"abcdef"
        with c.stream("GET", "/stream") as s:
            assert s.headers["transfer-encoding"] == "chunked"
            assert b"".join(s.iter_bytes()) == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
        assert c.get("/nope").status_code == 404
    # a response reaches the client just before its handler counts it
    assert proxy.wait_drained(proxy.active, 10) and proxy.active.served == 5


def test_switch_moves_new_requests_and_drains_the_old_backend_exactly(proxy, fakes):
    blue_fb, green_fb = fakes("blue"), fakes("green")
    blue = backend(proxy, blue_fb)
    proxy.set_active(blue)
    held: dict = {}

    def slow():
        with httpx.Client(base_url=proxy.url, trust_env=False, timeout=30) as c:
            held["r"] = c.get("/block")

    t = threading.Thread(target=slow)
    t.start()
    wait_for(blue_fb.blocked.is_set, "the slow request to reach blue")
    assert proxy.set_active(backend(proxy, green_fb)) is blue
    with httpx.Client(base_url=proxy.url, trust_env=False) as c:
        assert [c.get("/who").json()["name"] for _ in range(3)] == ["green"] * 3
    assert blue.in_flight == 1
    assert proxy.wait_drained(blue, 0.05) is False          # still busy: not drained
    blue_fb.gate.set()
    assert proxy.wait_drained(blue, 30) is True
    t.join(30)
    assert held["r"].status_code == 200 and held["r"].json() == {"name": "blue", "blocked": True}
    assert blue.served == 1 and blue.failed == 0


def test_a_request_that_gets_no_answer_is_resent_to_the_active_backend(proxy, fakes):
    dead = Backend("dead", f"http://127.0.0.1:{free_port()}")     # nothing listens there
    proxy.backends.append(dead)
    proxy.set_active(dead)
    with httpx.Client(base_url=proxy.url, trust_env=False) as c:
        r = c.get("/who")                       # resent once to the same dead backend, then 502
        assert r.status_code == 502 and "unreachable" in r.json()["error"]["message"]
        assert proxy.wait_drained(dead, 10) and dead.failed == 1
        green = backend(proxy, fakes("green"))
        proxy.set_active(green)

    # the race: a request reaches a backend just before the switch and gets no answer
    # (the server hangs up); its resend lands on the backend active by then
    hangup = HangUp(lambda: proxy.set_active(green))
    closing = Backend("closing", hangup.url)
    proxy.backends.append(closing)
    try:
        proxy.set_active(closing)
        with httpx.Client(base_url=proxy.url, trust_env=False) as c:
            r = c.get("/who")
            assert r.status_code == 200 and r.json() == {"name": "green"}
        assert hangup.accepted.is_set()
    finally:
        hangup.close()
    assert proxy.wait_drained(green, 10) and green.served == 1
    assert closing.in_flight == 0 and closing.failed == 0 and closing.served == 0
    assert dead.in_flight == 0 and dead.failed == 1


class HangUp:
    """A port that accepts one connection, runs ``on_accept`` (the switch), then
    closes it without a response: "Server disconnected without sending a response"."""

    def __init__(self, on_accept) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.on_accept = on_accept
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)                    # the request, left unanswered
            self.on_accept()
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def test_sanity_check(fakes, tmp_path):
    fb = fakes("blue")
    assert sanity_check(fb.url) == " Paris"
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    with pytest.raises(LlmPermanentError, match="is not loaded"):
        sanity_check(fb.url, adapter)
    fb.adapters = [{"id": 0, "path": str(adapter), "scale": 0.0}]
    with pytest.raises(LlmPermanentError, match="is not loaded"):     # loaded but switched off
        sanity_check(fb.url, adapter)
    fb.adapters = [{"id": 0, "path": str(adapter), "scale": 1.0}]
    assert sanity_check(fb.url, adapter) == " Paris"
    fb.completion_status = 500
    with pytest.raises(LlmPermanentError, match="/completion: HTTP 500"):
        sanity_check(fb.url)
    fb.completion_status, fb.completion = 200, {"content": "", "tokens_predicted": 0}
    with pytest.raises(LlmPermanentError, match="no text"):
        sanity_check(fb.url)


def test_bluegreen_arguments():
    with pytest.raises(ConfigError, match="'port' is managed"):
        BlueGreen(server_options={"port": 1})
    with pytest.raises(LlmPermanentError, match="not serving"):
        BlueGreen().switch(None)
    BlueGreen().stop()                          # nothing started: a no-op


def test_a_server_of_the_same_name_is_not_clobbered(tmp_path):
    from dataclasses import asdict

    from swarm_engine.llm.process import proc_stat
    from swarm_engine.llm.server import ServerState

    # a "blue" pid file whose process is alive (this test process stands in for it)
    state = ServerState(name="blue", pid=os.getpid(), starttime=proc_stat(os.getpid())[1], host="127.0.0.1",
                        port=1, model="m.gguf", binary="llama-server", argv=[], log="", started_at=0.0)
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "blue.json").write_text(json.dumps(asdict(state)))
    pair = BlueGreen(home=tmp_path)
    with pytest.raises(LlmPermanentError, match=f"llama-server 'blue' is already running \\(pid {os.getpid()}\\)"):
        pair.start()
    assert pair.state is BlueGreenState.STOPPED and LlamaServer("blue", home=tmp_path).is_running()


# --- a real llama-server pair ---------------------------------------------------------------------

SERVER_OPTIONS = {"parallel": 4, "threads": 1, "ctx_size": 4096, "kvu": False}
GREEDY = {"prompt": "The capital of France is", "n_predict": 12, "temperature": 0.0, "cache_prompt": False}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    if server_unavailable():
        pytest.skip(server_unavailable())
    from swarm_engine.llm.lora_gguf import write_lora_adapter
    from swarm_engine.llm.models import default_model_path

    d = tmp_path_factory.mktemp("adapters")
    # v1: B = 0, the base model's own answers; v2: random (std 0.05 changes SmolLM2's greedy output)
    write_lora_adapter(d / "v1.gguf", default_model_path(), zero_b=True)
    write_lora_adapter(d / "v2.gguf", default_model_path(), std=0.05, seed=3)
    return d / "v1.gguf", d / "v2.gguf"


class RequestLoop:
    """Clients that POST /completion (plain and streamed) and GET /health through the endpoint,
    with no retries: every request is logged with its start, end and outcome."""

    def __init__(self, url: str, clients: int = 2) -> None:
        self.url = url
        self.log: list[tuple[float, float, str]] = []       # (start, end, "ok" | what failed)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, trust_env=False, timeout=120) as c:
            n = 0
            while not self._stop.is_set():
                n += 1
                t0 = time.monotonic()
                try:
                    if n % 3 == 0:
                        r = c.get("/health")
                        ok = r.status_code == 200
                    else:
                        body = {"prompt": f"Client {i} says", "n_predict": 4, "stream": n % 3 == 2}
                        r = c.post("/completion", json=body)
                        ok = r.status_code == 200 and ("content" in r.text)
                    what = "ok" if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    what = f"{type(exc).__name__}: {exc}"
                self.log.append((t0, time.monotonic(), what))

    def __enter__(self) -> RequestLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def overlapping(self, t0: float, t1: float) -> list:
        return [x for x in self.log if x[0] < t1 and x[1] > t0]


@needs_server
@pytest.mark.slow
def test_switches_under_an_eval_and_a_request_loop_fail_no_request(tmp_path, adapters, troubleshooting_path):
    from swarm_engine.eval.loader import load_scenario
    from swarm_engine.eval.runner import run_eval

    v1, v2 = adapters
    pair = BlueGreen(home=tmp_path, server_options=SERVER_OPTIONS)
    eval_box: dict = {}
    switched = threading.Event()

    def progress(done: int, ok: int) -> None:
        # stop the eval (as Ctrl-C does) at the first run that ends after both switches
        if switched.is_set():
            raise KeyboardInterrupt

    def run_llm_eval() -> None:
        llm_scenario = troubleshooting_path.parent / "llm" / "troubleshooting_llm.toml"
        sc = load_scenario(llm_scenario, overrides={"llm": {"endpoint": pair.endpoint}})
        eval_box["started"] = time.monotonic()
        eval_box["result"] = run_eval(sc, 50, 42, progress=progress)
        eval_box["ended"] = time.monotonic()

    try:
        pair.start(v1, version=1)
        url = pair.endpoint
        with httpx.Client(base_url=url, trust_env=False, timeout=60) as c:
            text_v1 = c.post("/completion", json=GREEDY).json()["content"]
        eval_thread = threading.Thread(target=run_llm_eval)
        with RequestLoop(url) as loop:
            eval_thread.start()
            wait_for(lambda: pair.status()["served"] >= 6 and len(loop.log) >= 4, "traffic on blue")
            pids = [pair.status()["pid"]]
            windows = []
            for adapter, version in ((v2, 2), (v1, 3)):
                t0 = time.monotonic()
                report = pair.switch(adapter, version=version)
                windows.append((t0, time.monotonic(), report))
                pids.append(pair.status()["pid"])
                assert report.drained and report.old_failed == 0 and report.old_served > 0
                assert not LlamaServer(report.from_color, home=tmp_path).is_running()
                with httpx.Client(base_url=url, trust_env=False, timeout=60) as c:
                    loaded = c.get("/lora-adapters").json()
                    assert isinstance(loaded, list), f"/lora-adapters answered {loaded}"
                    assert [Path(a["path"]) for a in loaded] == [adapter.resolve()]
                    if version == 2:
                        text_v2 = c.post("/completion", json=GREEDY).json()["content"]
                    else:
                        text_v3 = c.post("/completion", json=GREEDY).json()["content"]
                wait_for(lambda: pair.status()["served"] >= 3, f"traffic on v{version}")
            switched.set()
            eval_thread.join(300)
        assert not eval_thread.is_alive()
    finally:
        pair.stop()

    failures = [x for x in loop.log if x[2] != "ok"]
    assert failures == [], failures[:5]
    for t0, t1, report in windows:
        during = loop.overlapping(t0, t1)
        assert during, f"no request overlapped the switch {report.from_color} -> {report.to_color}"
    # the eval ran across both switches and never saw an error (nor needed a retry)
    res = eval_box["result"]
    assert eval_box["started"] < windows[0][0] and eval_box["ended"] > windows[-1][1]
    assert res.stopped and res.runs >= 1
    assert res.llm["invocations"] > 0 and res.llm["errors"] == 0 and res.llm["retries"] == 0
    assert int(res.per_run_llm["llm_errors"].sum()) == 0
    # traffic really moved: v2 answers differently; v3 (the v1 adapter again, a fresh
    # process) answers exactly like v1, untouched by v2's cache
    assert text_v2 != text_v1 and text_v3 == text_v1
    assert len(set(pids)) == 3 and pair.state is BlueGreenState.STOPPED
    for color in ("blue", "green"):
        assert not LlamaServer(color, home=tmp_path).is_running()
    print(f"\n{len(loop.log)} requests, {sum(len(loop.overlapping(a, b)) for a, b, _ in windows)} of them "
          f"during the switches, {len(failures)} failed; eval: {res.runs} runs, "
          f"{res.llm['invocations']} LLM decisions, {res.llm['errors']} errors")


@needs_server
def test_a_standby_that_fails_leaves_the_active_server_serving(tmp_path, adapters):
    v1, _ = adapters
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file at all")
    pair = BlueGreen(home=tmp_path, server_options={"parallel": 1, "threads": 1, "ctx_size": 512},
                     health_timeout=60)
    try:
        pair.start(v1, version=1)
        with pytest.raises(LlmPermanentError):
            pair.switch(broken, version=2)
        assert pair.state is BlueGreenState.ACTIVE and pair.version == 1 and pair.active_color == "blue"
        assert not LlamaServer("green", home=tmp_path).is_running()
        with httpx.Client(base_url=pair.endpoint, trust_env=False, timeout=60) as c:
            assert c.post("/completion", json={"prompt": "Hi", "n_predict": 2}).status_code == 200
    finally:
        pair.stop()


@needs_server
def test_daemon_serves_the_active_adapter_and_switches_when_it_changes(tmp_path, adapters, subprocess_env):
    from swarm_engine.eval.report import write_json_atomic
    from swarm_engine.learn import LearningStore
    from swarm_engine.learn.daemon import read_status

    v1, v2 = adapters
    env = dict(subprocess_env, SWARM_HOME=str(tmp_path))
    store = LearningStore(tmp_path / ".swarm-engine" / "learning")
    key = "served"
    pointer = store.scenario_dir(key) / "lora" / "active.json"

    def activate(version: int, source: Path) -> Path:
        dest = store.lora_dir(key, version) / "adapter.gguf"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes())
        write_json_atomic(pointer, {"version": version, "path": str(dest)})
        return dest

    first = activate(1, v1)
    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "swarm_engine.cli.main", "learn", "daemon", key, "--trigger", "never",
         "--check-seconds", "0.2", "--serve", "--port", str(port), "--parallel", "1", "--threads", "1",
         "--ctx-size", "512"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        st = wait_for(lambda: (s := read_status(store, key)) and s["state"] == "watching" and s, "serving")
        assert st["serving"]["endpoint"] == f"http://127.0.0.1:{port}"
        assert st["serving"]["adapter_version"] == 1 and st["serving"]["active_color"] == "blue"
        with httpx.Client(base_url=st["serving"]["endpoint"], trust_env=False, timeout=60) as c:
            assert [Path(a["path"]) for a in c.get("/lora-adapters").json()] == [first]
            second = activate(2, v2)
            st = wait_for(lambda: (s := read_status(store, key)) and s["serving"]["adapter_version"] == 2 and s,
                          "the switch to v2", timeout=120)
            assert st["serving"]["active_color"] == "green" and st["serving"]["last_error"] is None
            assert [Path(a["path"]) for a in c.get("/lora-adapters").json()] == [second]
        out, err = signal_and_wait(daemon, signal.SIGTERM)
    finally:
        stop_process(daemon)
    assert daemon.returncode == 0, err
    st = read_status(store, key)
    assert st["state"] == "stopped" and not st["alive"]
    home = tmp_path / ".swarm-engine"
    for color in ("blue", "green"):
        assert not LlamaServer(f"learn-{key}-{color}", home=home).is_running()
