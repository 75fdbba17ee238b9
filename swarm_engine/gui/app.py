"""The dashboard's web app: a JSON API under ``/api`` and the static page.

Every handler turns a :class:`~swarm_engine.errors.SwarmError` into
``400 {"error": "one line"}``, an unknown id into 404 and anything else into
500 with the exception named: the page shows the line and the server stays up.
Handlers that read files or the engine are plain functions, which Starlette
runs in its thread pool, so a slow disk never blocks a live stream.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from swarm_engine._version import __version__
from swarm_engine.errors import ConfigError, SwarmError, one_line
from swarm_engine.eval.stats import wilson
from swarm_engine.gui import catalog, panels
from swarm_engine.gui.jobs import EvalRequest, JobQueue, load_for, validate_request
from swarm_engine.gui.jsonsafe import SafeJSONResponse as JSONResponse
from swarm_engine.gui.live import LiveRuns
from swarm_engine.gui.reports import ReportFolder, compare, filter_runs, histogram
from swarm_engine.gui.sse import sse_response
from swarm_engine.gui.traces import MAX_LIMIT, TraceFiles, run_seed, trace_path
from swarm_engine.settings import load_settings

__all__ = ["GuiState", "create_app", "STATIC"]

log = logging.getLogger("swarm_engine.gui")
STATIC = Path(__file__).resolve().parent / "static"
PROVIDERS = ("none", "llama-server", "llama-cpp", "ollama", "openai")


@dataclass
class GuiState:
    """What one dashboard serves: where it looks and what it runs."""

    catalog: catalog.Catalog
    reports_dir: Path
    learning_root: Path | None = None       # None: the user's store (~/.swarm-engine/learning)
    engine_home: Path | None = None         # None: ~/.swarm-engine (llama pid files and logs)
    default_runs: int = 1000
    default_seed: int = 42
    jobs: JobQueue = field(init=False)
    live: LiveRuns = field(default_factory=LiveRuns)
    stopping: threading.Event = field(default_factory=threading.Event)   # set first on Ctrl-C

    def __post_init__(self) -> None:
        self.jobs = JobQueue(self.reports_dir)
        self.folder = ReportFolder(self.reports_dir)
        self.traces = TraceFiles()

    @classmethod
    def from_settings(cls, extra: list[Path] | None = None, reports_dir: Path | None = None) -> GuiState:
        s = load_settings()
        return cls(catalog=catalog.Catalog(extra), reports_dir=reports_dir or s.reports_dir,
                   default_runs=int(s.get("eval", "runs")) if s.sources.get("eval.runs") != "default" else 1000,
                   default_seed=int(s.get("eval", "seed")))

    def shutdown(self) -> None:
        self.stopping.set()
        self.jobs.shutdown()
        self.live.shutdown()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _guarded(fn: Callable[..., Any]) -> Callable[[Request], Any]:
    """The handler ``fn(request)`` with every failure as a JSON error."""

    async def handler(request: Request) -> Response:
        if request.method == "POST" and request.headers.get("content-type", "").split(";")[0] != "application/json":
            # another web site open in the same browser can send a form or text/plain POST to
            # 127.0.0.1 without asking; a JSON POST from elsewhere needs a CORS preflight,
            # which this server never grants
            return _error(415, "POST requests to the dashboard must be application/json")
        try:
            out = await fn(request)
        except SwarmError as exc:
            return _error(400, one_line(str(exc)))
        except KeyError as exc:
            return _error(404, one_line(str(exc.args[0]) if exc.args else "not found"))
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(500, f"internal error: {type(exc).__name__}: {one_line(str(exc))}")
        return out if isinstance(out, Response) else JSONResponse(out)

    return handler


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"the request body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError("the request body must be a JSON object")
    return data


def _int_query(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    if not text.strip().isdigit() or not lo <= int(text) <= hi:
        raise ConfigError(f"{name}: got {text!r}, expected an int in {lo}..{hi}")
    return int(text)


LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1", "testserver"]


def create_app(state: GuiState, *, local_only: bool = True) -> Starlette:
    """The app serving ``state``; ``app.state.gui`` is it. ``local_only``: answer only
    requests addressed to a loopback name (a DNS-rebinding page gets 400)."""

    def threaded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def call(request: Request) -> Any:
            return await run_in_threadpool(fn, request)
        return _guarded(call)

    def asynced(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        return _guarded(fn)

    # ------------------------------------------------------------------ info, scenarios
    def info(request: Request) -> dict:
        return {"version": __version__, "reports_dir": str(state.reports_dir),
                "places": [{"origin": o, "path": str(p)} for o, p in state.catalog.places()],
                "defaults": {"runs": state.default_runs, "seed": state.default_seed}, "providers": PROVIDERS}

    def scenarios(request: Request) -> dict:
        return {"scenarios": [catalog.describe(e) for e in state.catalog.entries()]}

    def scenario(request: Request) -> dict:
        entry = state.catalog.get(request.path_params["sid"])
        return catalog.describe(entry, request.query_params.get("variant") or None)

    # ------------------------------------------------------------------ evals
    async def start_eval(request: Request) -> Response:
        body = await _body(request)
        entry = await run_in_threadpool(state.catalog.get, str(body.get("scenario", "")))
        req = validate_request(body, entry.path, default_runs=state.default_runs, default_seed=state.default_seed)
        job = await run_in_threadpool(state.jobs.submit, req)
        return JSONResponse(job.info(), status_code=201)

    def evals(request: Request) -> dict:
        return {"evals": [j.info() for j in reversed(list(state.jobs.jobs.values()))]}

    def eval_info(request: Request) -> dict:
        return state.jobs.get(request.path_params["jid"]).info()

    def stop_eval(request: Request) -> dict:
        job = state.jobs.get(request.path_params["jid"])
        job.stop()
        return job.info()

    async def eval_events(request: Request) -> Response:
        return sse_response(state.jobs.get(request.path_params["jid"]).topic, state.stopping)

    # ------------------------------------------------------------------ live runs
    async def start_run(request: Request) -> Response:
        body = await _body(request)
        entry = await run_in_threadpool(state.catalog.get, str(body.get("scenario", "")))
        req = validate_request({**body, "runs": 1}, entry.path, default_runs=1, default_seed=state.default_seed)
        tps = body.get("ticks_per_second", 10)
        if isinstance(tps, bool) or not isinstance(tps, int | float) or not 0 <= tps <= 1000:
            raise ConfigError(f"got {tps!r}, expected a number in 0..1000 (0: as fast as it goes)",
                              path="ticks_per_second")
        sc = await run_in_threadpool(load_for, EvalRequest(entry.path, 1, req.seed, req.variant, req.provider), 1)
        run = state.live.start(sc, req.seed, float(tps))
        return JSONResponse(run.info(), status_code=201)

    def runs(request: Request) -> dict:
        return {"runs": [r.info() for r in reversed(list(state.live.runs.values()))]}

    def run_info(request: Request) -> dict:
        return state.live.get(request.path_params["rid"]).info()

    def run_graph(request: Request) -> dict:
        run = state.live.get(request.path_params["rid"])
        return run.detail(limit=_int_query(request, "limit", 1500, 1, 20000),
                          workers=_int_query(request, "workers", 256, 0, 100000))

    def stop_run(request: Request) -> dict:
        run = state.live.get(request.path_params["rid"])
        run.stop()
        return run.info()

    async def run_speed(request: Request) -> dict:
        run = state.live.get(request.path_params["rid"])
        body = await _body(request)
        tps = body.get("ticks_per_second")
        if isinstance(tps, bool) or not isinstance(tps, int | float) or not 0 <= tps <= 1000:
            raise ConfigError(f"got {tps!r}, expected a number in 0..1000", path="ticks_per_second")
        run.set_speed(float(tps))
        return run.info()

    async def run_events(request: Request) -> Response:
        return sse_response(state.live.get(request.path_params["rid"]).topic, state.stopping)

    # ------------------------------------------------------------------ reports
    def reports(request: Request) -> dict:
        return {"folder": str(state.reports_dir), "reports": state.folder.listing()}

    def _ref(request: Request) -> str:
        ref = request.query_params.get("ref")
        if not ref:
            raise ConfigError("ref: which report (a file name in the reports folder)")
        return ref

    def report(request: Request) -> dict:
        ref = _ref(request)
        rep = state.folder.load(ref)
        runs_: list = rep["runs"] if isinstance(rep.get("runs"), list) else []
        ticks = [float(r.get("ticks", 0)) for r in runs_ if isinstance(r, dict)]
        actions = [float(r.get("actions", 0)) for r in runs_ if isinstance(r, dict)]
        reasons: dict[str, int] = {}
        for r in runs_:
            if isinstance(r, dict):
                reasons[str(r.get("reason"))] = reasons.get(str(r.get("reason")), 0) + 1
        s = rep["summary"]
        return {"ref": ref, "scenario": rep.get("scenario"), "config": rep.get("config_summary"),
                "seed_info": rep.get("seed_info"), "engine": rep.get("engine"), "summary": s,
                "learning": rep.get("learning"), "has_runs": bool(runs_), "run_count": len(runs_),
                "trace": (rep.get("manifest") or {}).get("trace"),
                "reasons": reasons,
                "ci95_check": list(wilson(int(s.get("successes") or 0), int(s.get("runs") or 0))),
                "histograms": {"ticks": histogram(ticks), "actions": histogram(actions)}}

    def report_runs(request: Request) -> dict:
        rep = state.folder.load(_ref(request))
        runs_ = [r for r in rep.get("runs") or [] if isinstance(r, dict)]
        q = request.query_params
        return filter_runs(runs_, status=q.get("status"), reason=q.get("reason"), seed=q.get("seed"),
                           offset=_int_query(request, "offset", 0, 0, 10**9),
                           limit=_int_query(request, "limit", 100, 1, 5000))

    def report_trace(request: Request) -> dict:
        ref = request.path_params["name"]
        rep = state.folder.load(ref)
        path = trace_path(rep, ref, state.reports_dir)
        if request.query_params.get("run") in (None, ""):
            raise ConfigError("run: which run of the report (its index in the run table)")
        run = _int_query(request, "run", 0, 0, 10**9)
        seed = run_seed(rep, ref, run)
        page = state.traces.page(path, seed, offset=_int_query(request, "offset", 0, 0, 10**9),
                                 limit=_int_query(request, "limit", 500, 1, MAX_LIMIT))
        return {"ref": ref, "run": run, **page}

    def compare_reports(request: Request) -> dict:
        refs = request.query_params.getlist("ref")
        return compare([(ref, state.folder.load(ref)) for ref in refs])

    # ------------------------------------------------------------------ learning, servers
    def learning(request: Request) -> dict:
        return panels.learning_keys(state.learning_root)

    def learning_key(request: Request) -> dict:
        return panels.learning_detail(request.path_params["key"], state.learning_root)

    async def learning_rollback(request: Request) -> dict:
        body = await _body(request)
        if body.get("confirm") is not True:
            raise ConfigError("a rollback needs \"confirm\": true (the page asks first)")
        to = body.get("to")
        if to is not None and (isinstance(to, bool) or not isinstance(to, int) or to < 0):
            raise ConfigError(f"got {to!r}, expected a version number (0: no model)", path="to")
        return await run_in_threadpool(panels.rollback, request.path_params["key"], to, state.learning_root)

    def servers(request: Request) -> dict:
        return panels.servers(state.engine_home)

    def server_log(request: Request) -> dict:
        return panels.server_log(request.path_params["name"], _int_query(request, "lines", 100, 0, 100000),
                                 state.engine_home)

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def not_found(request: Request) -> Response:
        return _error(404, f"no such endpoint: {request.method} {request.url.path}")

    routes = [
        Route("/", index),
        Route("/api/info", threaded(info)),
        Route("/api/scenarios", threaded(scenarios)),
        Route("/api/scenarios/{sid}", threaded(scenario)),
        Route("/api/evals", asynced(start_eval), methods=["POST"]),
        Route("/api/evals", threaded(evals)),
        Route("/api/evals/{jid}", threaded(eval_info)),
        Route("/api/evals/{jid}/stop", threaded(stop_eval), methods=["POST"]),
        Route("/api/evals/{jid}/events", asynced(eval_events)),
        Route("/api/runs", asynced(start_run), methods=["POST"]),
        Route("/api/runs", threaded(runs)),
        Route("/api/runs/{rid}", threaded(run_info)),
        Route("/api/runs/{rid}/graph", threaded(run_graph)),
        Route("/api/runs/{rid}/stop", threaded(stop_run), methods=["POST"]),
        Route("/api/runs/{rid}/speed", asynced(run_speed), methods=["POST"]),
        Route("/api/runs/{rid}/events", asynced(run_events)),
        Route("/api/reports", threaded(reports)),
        Route("/api/report", threaded(report)),
        Route("/api/report/runs", threaded(report_runs)),
        Route("/api/reports/{name}/trace", threaded(report_trace)),
        Route("/api/compare", threaded(compare_reports)),
        Route("/api/learning", threaded(learning)),
        Route("/api/learning/{key}", threaded(learning_key)),
        Route("/api/learning/{key}/rollback", asynced(learning_rollback), methods=["POST"]),
        Route("/api/servers", threaded(servers)),
        Route("/api/servers/{name}/log", threaded(server_log)),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS)] if local_only else []
    app = Starlette(routes=routes, middleware=middleware)
    app.state.gui = state
    return app
