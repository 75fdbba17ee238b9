"""``swarm-bench --suite gui``: what watching an eval in the dashboard costs it (issue #15: under 5%).

Three ways to run the same troubleshooting eval, interleaved, best of
``settings.repeat``, in one process (so a neighbour's load falls on every
row alike):

- *unwatched*: one ``run_eval`` call, as ``swarm eval`` makes it;
- *page*: the dashboard's own eval (``EvalJob.evaluate``: chunks of about a
  third of a second, a progress event per kernel return);
- *command line*: ``swarm eval --gui``'s path (``run_eval`` with the
  :class:`~swarm_engine.gui.watch.WatchedEval` progress callback).

Each watched row has a reader draining its event stream the way the page's
server-sent-event connection does (``sse.event_stream``, polling every 0.1 s in
an asyncio loop on another thread), and its runs must equal the unwatched
ones. The ratio is watched / unwatched wall time to the EvalResult.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from swarm_engine.bench.equivalence import MismatchError
from swarm_engine.bench.measure import spread
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import troubleshooting
from swarm_engine.eval.merge import ARRAY_FIELDS
from swarm_engine.eval.runner import EvalResult, run_eval
from swarm_engine.gui.jobs import EvalJob, EvalRequest
from swarm_engine.gui.sse import event_stream
from swarm_engine.gui.topic import Topic
from swarm_engine.gui.watch import WatchedEval

__all__ = ["run", "table", "LIMIT"]

LIMIT = 1.05                 # the bar: a watched eval at most 5% slower


def _drain(topic: Topic, counts: list[int]) -> None:
    async def read() -> None:
        async for _ in event_stream(topic):
            counts[0] += 1
    asyncio.run(read())


def _job(sc, runs: int, seed: int, folder: Path) -> EvalJob:
    return EvalJob(id="bench", request=EvalRequest(Path(sc.path or sc.id), runs, seed), scenario=sc,
                   reports_dir=folder)


def _watched(job: EvalJob, body: Callable[[], EvalResult]) -> tuple[float, EvalResult, int]:
    counts = [0]
    reader = threading.Thread(target=_drain, args=(job.topic, counts), daemon=True)
    reader.start()
    t0 = time.perf_counter()
    result = body()
    elapsed = time.perf_counter() - t0
    job.topic.close()
    reader.join(10)
    return elapsed, result, counts[0]


def _same(a: EvalResult, b: EvalResult, what: str) -> None:
    for f in ARRAY_FIELDS:
        if f != "wall" and not np.array_equal(getattr(a, f), getattr(b, f)):
            raise MismatchError(f"gui: {what}: column {f} differs from the unwatched eval")


def run(settings: Settings, say: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    """Measure the three rows; see the module docstring. Returns a JSON-ready dict."""
    wl = troubleshooting(settings.scenario)
    sc, seed = wl.scenario, settings.seed
    runs = 4 * settings.runs
    folder = Path(tempfile.mkdtemp(prefix="swarm-bench-gui-"))
    run_eval(sc, min(runs, 10_000), seed)                       # warm-up
    times: dict[str, list[float]] = {"unwatched": [], "page": [], "command line": []}
    events: dict[str, int] = {}
    for k in range(settings.repeat):
        say(f"gui: repeat {k + 1}/{settings.repeat}: {runs:,} runs unwatched, from the page, from the command line")
        t0 = time.perf_counter()
        base = run_eval(sc, runs, seed)
        times["unwatched"].append(time.perf_counter() - t0)
        page = _job(sc, runs, seed, folder)
        t, res, events["page"] = _watched(page, partial(page.evaluate, time.perf_counter()))
        _same(base, res, "page")
        times["page"].append(t)
        cli = _job(sc, runs, seed, folder)
        t, res, events["command line"] = _watched(cli, partial(run_eval, sc, runs, seed,
                                                               progress=WatchedEval(cli).progress))
        _same(base, res, "command line")
        times["command line"].append(t)
    best = min(times["unwatched"])
    rows = [{"how": how, "seconds": spread(ts), "ratio_best": min(ts) / best,
             "events": events.get(how, 0)} for how, ts in times.items()]
    return {"scenario_id": sc.id, "runs": runs, "seed": seed, "repeat": settings.repeat, "rows": rows,
            "limit": LIMIT, "identical_runs": runs}


def table(r: dict[str, Any]) -> Table:
    """The suite's table: each way's time and its ratio to the unwatched eval."""
    t = Table(title=f"gui: the troubleshooting eval of {r['runs']:,} runs, watched and not (best of {r['repeat']})",
              title_justify="left", caption_justify="left")
    for col in ("Eval", "Seconds (median, min-max)", "Best / unwatched best", "Events read"):
        t.add_column(col, justify="left" if col == "Eval" else "right")
    for row in r["rows"]:
        s = row["seconds"]
        over = row["ratio_best"] > r["limit"]
        t.add_row(row["how"], f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})",
                  f"[red]{row['ratio_best']:.3f}[/]" if over else f"{row['ratio_best']:.3f}",
                  f"{row['events']:,}" if row["how"] != "unwatched" else "-")
    t.caption = (f"page: the dashboard's own eval (chunks of ~0.33 s); command line: swarm eval --gui's progress "
                 f"callback. Bar: {r['limit']:.2f}. Every watched row's runs identical to the unwatched eval.")
    return t
