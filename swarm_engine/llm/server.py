"""llama-server process control: start, status, logs, stop.

One named server is one process plus two files under ``engine_dir()``::

    ~/.swarm-engine/llama/<name>.json      pid, start time, host, port, model, argv (atomic writes)
    ~/.swarm-engine/llama/<name>.lock      held while starting or stopping
    ~/.swarm-engine/logs/llama-<name>.log  the server's stdout and stderr

Names let two servers coexist (blue/green). The server is launched through a
small ``sh`` wrapper (:mod:`swarm_engine.llm.server_log`) that backgrounds it,
so the server is never a child of the Python process (no zombie, no
ResourceWarning when the CLI exits) and its exit status still lands in the
log, where a failed start's cause is read from. Pid liveness and ports live in
:mod:`swarm_engine.llm.process`, ``PATH[:SCALE]`` in
:mod:`swarm_engine.llm.lora_spec`.

A pid file is stale when its process is gone, is a zombie, or has another
start time than the one recorded (the pid was reused); ``start`` removes a
stale file, ``status`` reports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from swarm_engine import fsio
from swarm_engine.errors import ConfigError, LlmPermanentError, StoreError
from swarm_engine.llm.lora_spec import LoraSpec, parse_lora_spec
from swarm_engine.llm.models import resolve_model, server_binary
from swarm_engine.llm.process import free_port, kill_process, pid_alive, port_in_use, proc_stat
from swarm_engine.llm.server_log import EXIT_RE, LAUNCH_SCRIPT, diagnose, tail_lines
from swarm_engine.settings import engine_dir

__all__ = ["LlamaServer", "ServerState", "ServerStatus", "LoraSpec", "parse_lora", "free_port",
           "start_server", "server_supports"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOG_ROTATE_BYTES = 8 << 20


def parse_lora(spec: str | LoraSpec) -> LoraSpec:
    """Parse ``PATH[:SCALE]`` (:func:`~swarm_engine.llm.lora_spec.parse_lora_spec`)
    and check that llama-server can take the adapter file.

    Raises
    ------
    ConfigError
        A malformed spec, a missing file, or a comma in the path (llama-server
        splits on commas).
    """
    parsed = spec if isinstance(spec, LoraSpec) else parse_lora_spec(spec)
    path, scale = parsed.path, parsed.scale
    path = path.expanduser()
    if "," in str(path):
        raise ConfigError(f"--lora {spec}: llama-server cannot take a path with a comma")
    if not path.is_file():
        raise ConfigError(f"--lora {spec}: adapter file not found: {path}")
    return LoraSpec(path.resolve(), scale)


@dataclass(frozen=True)
class ServerState:
    """What the pid file records about one running server."""

    name: str
    pid: int
    starttime: int | None        # /proc/<pid>/stat field 22 (clock ticks since boot); None off Linux
    host: str
    port: int
    model: str
    binary: str
    argv: list[str]
    log: str
    started_at: float            # time.time() of the launch
    lora: list[dict] = field(default_factory=list)  # [{path, scale}] in server id order

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass
class ServerStatus:
    """``LlamaServer.status()``: the pid file, the process and what the server says."""

    name: str
    running: bool                # a pid file exists and its process is alive
    stale: bool = False          # a pid file exists but its process is gone
    pid: int | None = None
    url: str | None = None
    health: str | None = None    # "ok", "loading", "error <code>", "unreachable"
    model: str | None = None
    slots: list[dict] | None = None       # [{id, n_ctx, is_processing}]
    total_slots: int | None = None
    lora: list[dict] | None = None        # [{id, path, scale}]
    log: str | None = None
    started_at: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --- the build ---------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _help_text(binary: str, library_path: str) -> str:
    env = dict(os.environ, LD_LIBRARY_PATH=library_path)
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout + out.stderr


def server_supports(flag: str, server_bin: str | None = None) -> bool:
    """Whether this llama-server build lists ``flag`` (e.g. "-kvu") in --help."""
    binary, env = server_binary(server_bin)
    text = _help_text(str(binary), env.get("LD_LIBRARY_PATH", ""))
    return re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", text, re.M) is not None


# --- the server --------------------------------------------------------------

class LlamaServer:
    """One named llama-server: its pid file, log and process.

    Parameters
    ----------
    name:
        Letters, digits, ``_.-``; two names are two independent servers.
    home:
        The engine directory (default ``engine_dir()``, i.e. ~/.swarm-engine
        or $SWARM_HOME/.swarm-engine).
    """

    def __init__(self, name: str = "default", *, home: Path | None = None) -> None:
        if not _NAME_RE.match(name):
            raise ConfigError(f"--name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        self.name = name
        self.home = Path(home) if home is not None else engine_dir()
        self.state_path = self.home / "llama" / f"{name}.json"
        self.log_path = self.home / "logs" / f"llama-{name}.log"
        self._lock_path = self.home / "llama" / f"{name}.lock"

    # -- files

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{self._lock_path.parent}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def state(self) -> ServerState | None:
        """The pid file, or None (absent; a corrupt file counts as absent)."""
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return ServerState(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None

    def _remove_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    def is_running(self) -> bool:
        st = self.state()
        return st is not None and pid_alive(st.pid, st.starttime)

    @property
    def url(self) -> str:
        """Base URL of the running server.

        Raises
        ------
        LlmPermanentError
            It is not running.
        """
        st = self.state()
        if st is None or not pid_alive(st.pid, st.starttime):
            raise LlmPermanentError(f"llama-server '{self.name}' is not running (swarm llama start)")
        return st.url

    # -- start

    def build_argv(self, binary: Path, model: Path, *, host: str, port: int, n_gpu_layers: int | None,
                   parallel: int | None, ctx_size: int | None, threads: int | None,
                   lora: Sequence[LoraSpec], kvu: bool | None, metrics: bool,
                   slot_save_path: str | os.PathLike | None, extra_args: Sequence[str]) -> list[str]:
        argv = [str(binary), "-m", str(model), "--host", host, "--port", str(port)]
        for flag, value in (("-ngl", n_gpu_layers), ("-np", parallel), ("-c", ctx_size), ("-t", threads)):
            if value is not None:
                argv += [flag, str(int(value))]
        if lora:
            if any(s.scale is not None for s in lora):
                argv += ["--lora-scaled",
                         ",".join(f"{s.path}:{1.0 if s.scale is None else s.scale:g}" for s in lora)]
            else:
                argv += ["--lora", ",".join(str(s.path) for s in lora)]
        if kvu is not None:
            argv.append("-kvu" if kvu else "-no-kvu")
        if metrics:
            argv.append("--metrics")
        if slot_save_path is not None:
            argv += ["--slot-save-path", str(Path(slot_save_path).expanduser())]
        return argv + [str(a) for a in extra_args]

    def start(self, model: str | os.PathLike | None = None, *, port: int = 8080, host: str = "127.0.0.1",
              n_gpu_layers: int | None = None, parallel: int | None = None, ctx_size: int | None = None,
              threads: int | None = None, lora: Sequence[str | LoraSpec] = (), kvu: bool | None = None,
              metrics: bool = False, slot_save_path: str | os.PathLike | None = None,
              extra_args: Sequence[str] = (), server_bin: str | os.PathLike | None = None,
              timeout: float = 120.0) -> ServerState:
        """Launch the server and wait until /health answers 200.

        Raises
        ------
        LlmPermanentError
            Already running, port in use, missing model or binary, or the
            server exited or stayed unhealthy for ``timeout`` seconds (the
            message ends with the log's last lines).
        ConfigError
            A bad argument (port, LoRA spec, host).
        """
        if not 0 < int(port) < 65536:
            raise ConfigError(f"--port {port}: expected 1..65535")
        for flag, value in (("--parallel", parallel), ("--ctx-size", ctx_size), ("--threads", threads)):
            if value is not None and int(value) < 1 and not (flag == "--ctx-size" and int(value) == 0):
                raise ConfigError(f"{flag} {value}: expected a positive number")
        loras = [parse_lora(s) for s in lora]
        with self._locked():
            old = self.state()
            if old is not None:
                if pid_alive(old.pid, old.starttime):
                    raise LlmPermanentError(
                        f"llama-server '{self.name}' is already running (pid {old.pid}, {old.url}); "
                        f"stop it first: swarm llama stop --name {self.name}")
                self._remove_state()                    # stale: its process is gone
            model_path = resolve_model(model)
            binary, env = server_binary(server_bin)
            if port_in_use(host, int(port)):
                raise LlmPermanentError(f"port {port} on {host} is already in use (pick another with --port)")
            argv = self.build_argv(binary, model_path, host=host, port=int(port), n_gpu_layers=n_gpu_layers,
                                   parallel=parallel, ctx_size=ctx_size, threads=threads, lora=loras,
                                   kvu=kvu, metrics=metrics, slot_save_path=slot_save_path,
                                   extra_args=extra_args)
            log_start = self._open_log(argv)
            pid = self._launch(argv, env)
            st = proc_stat(pid)
            state = ServerState(name=self.name, pid=pid, starttime=st[1] if st else None, host=host,
                                port=int(port), model=str(model_path), binary=str(binary), argv=argv,
                                log=str(self.log_path), started_at=time.time(),
                                lora=[{"path": str(s.path), "scale": 1.0 if s.scale is None else s.scale}
                                      for s in loras])
            try:
                fsio.write_text(self.state_path, json.dumps(asdict(state), indent=1))
            except OSError as exc:
                kill_process(pid, state.starttime, 5.0)
                raise StoreError(f"{self.state_path}: {exc.strerror or exc}") from exc
            try:
                self._wait_healthy(state, timeout, log_start)
            except BaseException:
                kill_process(pid, state.starttime, 5.0)
                self._remove_state()
                raise
            return state

    def _open_log(self, argv: list[str]) -> int:
        """Rotate a big log, append a header; returns where this run's lines start."""
        try:
            if self.log_path.exists() and self.log_path.stat().st_size > _LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
            with open(self.log_path, "ab") as f:
                start = f.tell()
                f.write(f"[swarm] {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
            return start
        except OSError as exc:
            raise StoreError(f"{self.log_path}: {exc.strerror or exc}") from exc

    def _launch(self, argv: list[str], env: dict[str, str]) -> int:
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", LAUNCH_SCRIPT, "sh", str(self.log_path), *argv],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env, start_new_session=True)
            out, _ = proc.communicate(timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LlmPermanentError(f"cannot launch {argv[0]}: {exc}") from exc
        try:
            return int(out.decode().split()[0])
        except (ValueError, IndexError) as exc:
            raise LlmPermanentError(f"cannot launch {argv[0]}: the launcher printed {out!r}") from exc

    def _wait_healthy(self, state: ServerState, timeout: float, log_start: int) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if not pid_alive(state.pid, state.starttime):
                    self._await_exit_line(log_start)
                    raise LlmPermanentError(self._failure(state, log_start, None))
                try:
                    if client.get(state.url + "/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise LlmPermanentError(self._failure(state, log_start, timeout))
                time.sleep(0.1)

    def _await_exit_line(self, log_start: int, wait: float = 1.0) -> None:
        """The wrapper appends the exit status right after the server dies."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if any(EXIT_RE.search(line) for line in tail_lines(self.log_path, 3, log_start)):
                return
            time.sleep(0.02)

    def _failure(self, state: ServerState, log_start: int, timeout: float | None) -> str:
        lines = tail_lines(self.log_path, 12, log_start)
        text = "\n".join(lines)
        head = (f"llama-server '{self.name}' was not healthy after {timeout:g} s" if timeout is not None
                else diagnose(text, state.host, state.port, state.model))
        tail = "\n".join("  | " + ln for ln in lines[-8:])
        return f"{head}; log {self.log_path}:\n{tail}"

    # -- status, logs

    def status(self, *, timeout: float = 2.0) -> ServerStatus:
        """The pid file, whether its process lives, and /health, /props, /slots, /lora-adapters."""
        st = self.state()
        if st is None:
            return ServerStatus(name=self.name, running=False, log=str(self.log_path))
        alive = pid_alive(st.pid, st.starttime)
        out = ServerStatus(name=self.name, running=alive, stale=not alive, pid=st.pid, url=st.url,
                           model=st.model, log=st.log, started_at=st.started_at)
        if not alive:
            return out
        with httpx.Client(base_url=st.url, timeout=timeout, trust_env=False) as c:
            try:
                r = c.get("/health")
                out.health = "ok" if r.status_code == 200 else (
                    "loading" if r.status_code == 503 else f"error {r.status_code}")
            except httpx.HTTPError:
                out.health = "unreachable"
                return out
            props = _get_json(c, "/props")
            if isinstance(props, dict):
                out.model = props.get("model_path") or out.model
                out.total_slots = props.get("total_slots")
            slots = _get_json(c, "/slots")
            if isinstance(slots, list):
                out.slots = [{"id": s.get("id"), "n_ctx": s.get("n_ctx"),
                              "is_processing": s.get("is_processing")} for s in slots if isinstance(s, dict)]
            lora = _get_json(c, "/lora-adapters")
            if isinstance(lora, list):
                out.lora = lora
        return out

    def logs(self, n: int = 50) -> list[str]:
        """The log's last n lines ([] when there is no log)."""
        return tail_lines(self.log_path, n)

    def follow(self, n: int = 50, *, poll: float = 0.2, stop_when_dead: bool = True) -> Iterator[str]:
        """The last n lines, then each new line as it is written (Ctrl-C to end).

        Ends by itself when ``stop_when_dead`` and no server is running."""
        yield from self.logs(n)
        try:
            f = open(self.log_path, "rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(0, os.SEEK_END)
            buf = b""
            while True:
                chunk = f.read()
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for ln in lines:
                        yield ln.decode("utf-8", "replace")
                    continue
                if stop_when_dead and not self.is_running():
                    if buf:
                        yield buf.decode("utf-8", "replace")
                    return
                time.sleep(poll)

    # -- stop

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, wait ``timeout`` seconds, then SIGKILL; remove the pid file.

        Returns False when no server was running (a stale pid file is removed)."""
        with self._locked():
            st = self.state()
            if st is None:
                return False
            was_alive = pid_alive(st.pid, st.starttime)
            if was_alive:
                kill_process(st.pid, st.starttime, timeout)
            self._remove_state()
            return was_alive


def _get_json(client: httpx.Client, path: str) -> object:
    try:
        r = client.get(path)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


@contextlib.contextmanager
def start_server(model: str | os.PathLike | None = None, *, name: str | None = None,
                 home: Path | None = None, port: int | None = None, **kwargs) -> Iterator[LlamaServer]:
    """Start a server for a test or a benchmark and stop it afterwards.

    ``port`` defaults to a free one, ``name`` to one unique to this process
    and port; other keyword arguments go to ``LlamaServer.start``.
    """
    port = port or free_port(kwargs.get("host", "127.0.0.1"))
    server = LlamaServer(name or f"tmp-{os.getpid()}-{port}", home=home)
    server.start(model, port=port, **kwargs)
    try:
        yield server
    finally:
        server.stop()
