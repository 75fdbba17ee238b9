"""Watch a command-line eval in the dashboard (``swarm eval --gui``).

The dashboard is served from a thread of the ``swarm eval`` process itself,
so it sees the eval's progress as the progress bar does (the same callback,
no file or socket between them): each scenario of the eval is listed on the
Live page as an eval of origin ``cli``; its report lands in the dashboard's
reports folder too, so the page links to it when the eval ends; Stop on the
page is Ctrl-C for the command line (the runs finished so far are kept).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm_engine.errors import one_line
from swarm_engine.eval.loader import Scenario
from swarm_engine.eval.runner import EvalResult
from swarm_engine.fsio import write_json
from swarm_engine.gui.app import GuiState
from swarm_engine.gui.jobs import EvalJob, EvalRequest
from swarm_engine.gui.server import Background, serve_in_background

__all__ = ["Dashboard", "WatchedEval"]

LINGER_SECONDS = 0.5            # the page's streams poll every 0.1 s: they get the last events before the server stops


class WatchedEval:
    """One scenario's eval as the dashboard shows it; the command line feeds it."""

    def __init__(self, job: EvalJob) -> None:
        self.job = job
        self.started = time.perf_counter()
        job.state = "running"
        job.topic.publish({"type": "state", "state": "running"})

    @property
    def url_path(self) -> str:
        return f"#/eval/{self.job.id}"

    def progress(self, done: int, ok: int, llm: Any = None) -> None:
        """The progress bar's callback; raises KeyboardInterrupt (the runner's Ctrl-C,
        which keeps the finished runs) once Stop was pressed on the page."""
        self.job.feed(done, ok, self.started, llm)

    @property
    def stopped_from_page(self) -> bool:
        return self.job._stop.is_set()

    def finish(self, result: EvalResult, report: dict, saved: Path | None = None) -> None:
        """The eval ended: its last counts, its report in the dashboard's folder (``saved``
        when that is where ``-o`` wrote it, else a fresh ``cli-`` file), the final event."""
        job = self.job
        folder = job.reports_dir.resolve()
        if saved is not None and saved.resolve().parent == folder:
            name = saved.name
        else:
            name = job.report_file("cli")
            write_json(folder / name, report)
        job.finish(result, report, self.started, name=name)
        job.topic.close()

    def fail(self, message: str) -> None:
        self.job._fail(one_line(message))
        self.job.topic.close()


class Dashboard:
    """The dashboard served by this process while its evals run."""

    def __init__(self, state: GuiState, background: Background) -> None:
        self.state = state
        self.background = background
        self.watched: list[WatchedEval] = []

    @property
    def url(self) -> str:
        return self.background.url

    @classmethod
    def start(cls, paths: list[Path], *, host: str = "127.0.0.1", port: int = 0,
              reports: Path | None = None) -> Dashboard:
        """Serve the dashboard (listing ``paths`` among its scenarios) from a daemon thread."""
        state = GuiState.from_settings(list(paths), reports)
        return cls(state, serve_in_background(state, host=host, port=port, flag="--gui-port"))

    def track(self, scenario: Scenario, runs: int, seed: int) -> WatchedEval:
        request = EvalRequest(path=Path(scenario.path or scenario.id), runs=runs, seed=seed,
                              variant=scenario.variant, provider=scenario.spec.llm.provider)
        watched = WatchedEval(self.state.jobs.watch(request, scenario))
        self.watched.append(watched)
        return watched

    def wait_for_ctrl_c(self, say: Callable[[str], None]) -> None:
        """Keep serving until Ctrl-C (the evals are over; the page can still be browsed)."""
        say(f"swarm eval: the dashboard stays up at {self.url} (Ctrl-C to quit)")
        try:
            while self.background.alive:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass

    def close(self) -> None:
        """Stop serving: open pages first get LINGER_SECONDS to read the last events."""
        for w in self.watched:
            if not w.job.topic.closed:
                w.fail("the command line ended before this eval did")
        if self.watched:
            time.sleep(LINGER_SECONDS)
        self.background.stop()

