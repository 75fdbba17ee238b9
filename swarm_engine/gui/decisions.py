"""The LLM decisions of a watched run, as what changed each tick.

The manager keeps one record per decision request (``LlmManager.records``,
``record=True``) and fills it in as the answer comes, is applied or falls
back, and the worker acts. :meth:`DecisionFeed.changes` turns that into the
rows the page merges by ``id``: a record's prompt parts and candidates go out
once, with its first row (trimmed: a prompt can be many kB and a run asks
thousands of times); later rows carry only its state. At most ``per_tick``
rows a tick: updates of rows already shown first, then the newest new ones;
new ones beyond that are counted in :attr:`DecisionFeed.not_shown`, never sent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DecisionFeed", "llm_stats", "PER_TICK", "PROMPT_CHARS"]

PER_TICK = 50                 # rows a tick at most: one event stays well under 0.5 MB
PROMPT_CHARS = 4096           # of each prompt part (system, user) a row carries
ANSWER_CHARS = 1024           # of the model's raw answer
_STATE = ("answer", "choice", "confidence", "applied", "fallback", "error", "executed", "outcome")


def _trim(text: Any, limit: int) -> Any:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[:limit] + f"\u2026 [{len(text) - limit} more characters]"


class DecisionFeed:
    """Rows for the records of one run's manager (``records`` is read, never changed)."""

    def __init__(self, records: list[dict], per_tick: int = PER_TICK, prompt_chars: int = PROMPT_CHARS) -> None:
        self.records = records
        self.per_tick = per_tick
        self.prompt_chars = prompt_chars
        self.not_shown = 0                  # new records never sent (over the cap of their tick)
        self._seen = 0                      # records[:_seen] were looked at
        self._open: dict[int, tuple] = {}   # id -> state last sent, while the record may still change
        self._latest: dict[int, int] = {}   # worker -> its newest record's id

    def _state(self, i: int) -> tuple:
        rec = self.records[i]
        return tuple(rec.get(k) for k in _STATE)

    def _row(self, i: int, full: bool) -> dict[str, Any]:
        rec = self.records[i]
        row: dict[str, Any] = {"id": i, "tick": rec["tick"], "worker": rec["worker"],
                               **{k: rec.get(k) for k in _STATE}}
        row["answer"] = _trim(row["answer"], ANSWER_CHARS)
        if full:
            row["prompt"] = [{"role": m.get("role"), "content": _trim(m.get("content"), self.prompt_chars)}
                             for m in rec.get("messages") or ()]
            row["candidates"] = rec.get("choices") or []
            row["answer_format"] = rec.get("answer_format")
        self._open[i] = self._state(i)
        if self._settled(i):
            del self._open[i]
        return row

    def _settled(self, i: int) -> bool:
        """Nothing more will change: the worker acted on it, or asked again (the
        manager asks a worker only once its previous question is answered)."""
        return self.records[i].get("outcome") is not None or self._latest.get(self.records[i]["worker"], i) != i

    def changes(self) -> list[dict[str, Any]]:
        """The rows of what changed since the last call, oldest first."""
        fresh = list(range(self._seen, len(self.records)))
        self._seen = len(self.records)
        for i in fresh:
            self._latest[self.records[i]["worker"]] = i
        rows: list[dict[str, Any]] = []
        for i, last in list(self._open.items()):
            if len(rows) >= self.per_tick:
                break                          # the rest wait for the next tick (their last state is kept)
            if self._state(i) != last:
                rows.append(self._row(i, full=False))
            elif self._settled(i):
                del self._open[i]
        room = self.per_tick - len(rows)
        if len(fresh) > room:
            self.not_shown += len(fresh) - room
            fresh = fresh[len(fresh) - room:] if room > 0 else []
        rows += [self._row(i, full=True) for i in fresh]
        return rows


def llm_stats(runner: Any) -> dict[str, Any]:
    """The few LLM counters the live page shows, from the runner's stats."""
    s = runner.stats.summary()
    return {"calls": s["invocations"], "in_flight": runner.in_flight, "applied": s["applied"],
            "fallbacks": s["fallbacks"], "unsure": s["unsure"], "taken": s["taken"], "failed": s["failed"],
            "single": s["single"], "errors": s["errors"], "decisions_per_sec": s["decisions_per_sec"],
            "latency_ms_p50": s["latency_ms_p50"]}
