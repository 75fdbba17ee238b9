"""The LLM manager: a swarm's asynchronous source of decisions.

Hybrid by design. When the manager is due (every tick, every N ticks, or at
once for a worker that escalates), each idle worker is asked which of the
frontier's top candidates to take next; the worker waits ('continuing') while
its question is in flight and the bandit keeps every other worker busy. In a
later tick's collect phase an answer assigns the chosen node; an answer below
the confidence threshold, an unparseable one or a failed call releases the
worker to the bandit, and its next event records the fallback.

With ``record=True`` every decision request becomes one JSON-ready dict in
:attr:`LlmManager.records` (the training data of ``swarm learn lora``): the
chat messages and choices as the model saw them, its raw answer, and what the
worker then executed with which outcome (the model's choice when applied, the
bandit's fallback otherwise), taken from the worker's next action event.

Manage::

    tick t    manage: ask idle workers -> waiting            (submit, no I/O wait)
    tick t+k  collect: answers -> assign_node / fallback     (poll)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.core.events import EventBatch
from swarm_engine.errors import ConfigError, one_line
from swarm_engine.llm import prompts
from swarm_engine.llm.protocol import Choice, Decision, DecisionRequest, LoraScale, Sampling
from swarm_engine.llm.runner import InvokerRunner

if TYPE_CHECKING:
    from swarm_engine.core.orchestrator import Swarm

__all__ = ["ManagerPolicy", "LlmManager", "deal"]

_OUTCOME = {0: "failed", 1: "ok", 2: "error"}


@dataclass(frozen=True)
class ManagerPolicy:
    """When to ask and how much to show (the scenario's [manager] section)."""

    process_every_tick: bool = False
    process_interval_ticks: int = 5
    immediate_on_escalation: bool = True
    confidence_threshold: float = 0.3
    max_candidates: int = 8          # frontier groups shown to the model
    nodes_per_group: int = 8         # open nodes (e.g. param variants) shown per group
    history: int = 6                 # the worker's own recent actions in its prompt
    idle_wait_s: float = 30.0        # an idle free-running tick waits at most this long for an answer
    # "label": candidates labelled 1..9, A..Z, the answer is one token read from one
    # forward pass (llama-cpp, llama-server); "text": the candidate's line, decoded under
    # a constraint to the candidates' lines (llama-cpp); "json": the canonical JSON
    # answer (every backend); None: the invoker's own ``answer`` attribute, else "json"
    answer: str | None = None
    # True: one tick's asked workers get disjoint candidates (dealt round-robin, best
    # first), so no two of them can choose the same node and no answer is dropped for
    # that. False: every worker sees every candidate; a first choice another worker
    # took falls through to the answer's next open candidate. None (default): False
    # for label and text answers (one forward pass ranks every candidate, so sharing loses
    # nothing, the shared list is a prefix prefilled once per tick, and a worker can
    # pick what its own observation names), True for JSON answers (one choice each)
    distinct: bool | None = None


class LlmManager:
    """Attach with ``swarm.add_source(manager)``; one manager per swarm, one
    runner may serve several swarms (runs) one after another.

    With ``record=True``, :attr:`records` holds one dict per decision request,
    in the order asked::

        {"tick", "worker",
         "messages": prompts.chat_messages(request),   # [system, user]
         "choices": [{"action", "target", "arg"}, ...],
         "answer": raw model text | None,              # None: no answer (failed call, run ended)
         "choice": index into choices | None, "confidence": float | None,
         "applied": bool,                              # the model's choice was assigned
         "fallback": "failed" | "unsure" | "taken" | None,   # why the bandit decided instead
         "error": one line | None,                     # the failed call's message (fallback "failed")
         "executed": {"action", "target", "arg"} | None,   # the worker's next action
         "outcome": "ok" | "fail" | "error" | None,
         "answer_format": "label" | "json"}               # how "answer" is written
    """

    def __init__(self, runner: InvokerRunner, *, goal: str, context: str,
                 actions: Sequence[tuple[str, str]], policy: ManagerPolicy = ManagerPolicy(),
                 sampling: Sampling = Sampling(), lora: tuple[LoraScale, ...] | None = None,
                 rules: str = "", record: bool = False) -> None:
        self.runner = runner
        self.policy = policy
        self.sampling = sampling
        self.lora = lora
        answer = policy.answer or getattr(runner.invoker, "answer", "json")
        if answer not in prompts.ANSWERS:
            raise ConfigError(f"[manager] answer {answer!r}: expected one of {', '.join(prompts.ANSWERS)}")
        self.answer: str = answer
        self.distinct: bool = answer == "json" if policy.distinct is None else bool(policy.distinct)
        shared = {"label": prompts.label_shared_prompt, "text": prompts.text_shared_prompt}.get(
            answer, prompts.shared_prompt)
        self.shared = shared(goal, context, list(actions), rules)
        self._history: dict[int, deque] = {}
        self._released: set[int] = set()
        self._held: set[int] = set()        # idle workers kept out of one tick (shared lists)
        # node -> worker: dealt to a question still in flight; later ticks deal around them
        self._reserved: dict[int, int] = {}
        self.asked = 0
        self.applied = 0
        self.record = bool(record)
        # one dict per decision request (record=True); see _new_record for the keys
        self.records: list[dict] = []
        # id(request) -> (request, record): asked, not answered (the request is kept so its id is not reused)
        self._open: dict[int, tuple[DecisionRequest, dict]] = {}
        self._answered: dict[int, dict] = {}                        # worker -> answered, not yet executed

    # ------------------------------------------------------------------ events
    def on_events(self, events: EventBatch, swarm: Swarm | None = None) -> None:
        """Keep each worker's recent history (rendered lazily, only for prompts)."""
        if swarm is None or events is None:
            return
        b = swarm.environment
        names = b.target_names or str
        args = swarm.rules.args
        for row in events.rows():
            target = names(row["target"]) if row["target"] >= 0 else ""
            arg = args.name(row["arg"]) if row["arg"] >= 0 else ""
            text = ""
            if b.renderer is not None:
                text = b.renderer({"op": int(b.ops[row["action"]]), "target": row["target"], "arg": row["arg"],
                                   "arg_name": arg, "outcome": {"fail": 0, "ok": 1, "error": 2}[row["outcome"]]},
                                  swarm.seed)
            label = " ".join(x for x in (swarm.action_names[row["action"]], target, arg) if x)
            hist = self._history.setdefault(row["worker"], deque(maxlen=self.policy.history))
            hist.append(f"{label} -> {row['outcome']}: {text}")
            rec = self._answered.pop(row["worker"], None)
            if rec is not None:
                rec["executed"] = {"action": swarm.action_names[row["action"]], "target": target or None,
                                   "arg": arg or None}
                rec["outcome"] = row["outcome"]

    # ------------------------------------------------------------------ phases
    def collect(self, swarm: Swarm) -> None:
        """Collect phase: apply finished answers."""
        k = swarm.kernel
        stats = self.runner.stats
        self._released.clear()
        for w in self._held:
            k.set_waiting(w, False)
        self._held.clear()
        for req, dec in self.runner.poll():
            w = req.worker
            for c in req.choices:
                if self._reserved.get(c.node) == w:
                    del self._reserved[c.node]
            rec = self._answer(req, dec)
            if not dec.ok:
                stats.count_failed(dec, seed=int(swarm.seed), tick=int(swarm.tick))
                why = "failed"
            elif dec.confidence is not None and dec.confidence < self.policy.confidence_threshold:
                stats.count_unsure()
                why = "unsure"
            elif (outcome := self._assign_best(k, w, req, dec)) == "applied":
                self.applied += 1
                stats.applied += 1
                if rec is not None:
                    rec["applied"] = True
                continue
            elif outcome == "unsure":
                stats.count_unsure()
                why = "unsure"
            else:
                stats.count_taken()
                why = "taken"
            if rec is not None:
                # the stats count fallbacks; the record says which one this was (the live view shows it)
                rec["fallback"] = why
                if why == "failed":
                    rec["error"] = one_line(dec.message or dec.error or "failed")
            # failed, unsure, or the node was taken meanwhile: the bandit decides
            # this worker's next action (this tick: it is not asked again now)
            k.mark_fallback(w)
            self._released.add(w)

    def _assign_best(self, k, worker: int, request: DecisionRequest, decision: Decision) -> str:
        """Assign the chosen node; when another worker took it while the model
        thought (free-running ticks go on), the next candidate of the same
        answer's distribution that is still open and confident enough given
        that the taken ones are gone: a label answer ranks every candidate in
        one forward pass, so it is not thrown away. The record keeps the
        model's own first choice.

        Returns "applied", "unsure" (the first choice was taken and what is
        left is below the threshold) or "taken" (every confident one was)."""
        if decision.choice is None:
            return "taken"
        if k.assign_node(worker, request.choices[decision.choice].node):
            return "applied"
        probs = decision.probs
        if probs is None or len(probs) != len(request.choices):
            return "taken"
        # what is left is judged by the distribution given that the taken ones are
        # gone (renormalised over the rest), as if the model had been asked without them
        left = 1.0 - float(probs[decision.choice])
        for i in np.argsort(-np.asarray(probs, dtype=np.float64), kind="stable"):
            if i == decision.choice:
                continue
            if left <= 0 or probs[i] / left < self.policy.confidence_threshold:
                return "unsure"
            if k.assign_node(worker, request.choices[int(i)].node):
                return "applied"
            left -= float(probs[i])
        return "taken"

    def manage(self, swarm: Swarm) -> None:
        """Manage phase (before the selector): ask the due, idle workers."""
        k = swarm.kernel
        p = self.policy
        w = k.workers()
        idle = ~w["done"] & ~w["waiting"] & (w["node"] < 0)
        if self._released:
            idle[list(self._released)] = False
        escalated = w["result"] == _kernel.W_ESCALATE
        due = p.process_every_tick or swarm.tick % max(1, p.process_interval_ticks) == 0
        if due:
            ask = np.flatnonzero(idle)
        elif p.immediate_on_escalation:
            ask = np.flatnonzero(idle & escalated)
        else:
            ask = np.zeros(0, np.int64)
        if ask.size:
            choices = self._candidates(swarm)
            if self._reserved and self.distinct:
                # nodes another worker is still asking about are not dealt again
                choices = tuple(c for c in choices if c.node not in self._reserved)
            if self.distinct:
                dealt = deal(choices, len(ask))
            else:
                # a shared list serves at most one worker per candidate: the rest
                # would be asked for an answer that must be dropped. When the list is
                # every open node, the rest also sit this tick out: the bandit could
                # only hand them a node an asked worker is about to choose
                if len(ask) > len(choices) and k.n_open <= len(choices):
                    for x in ask[len(choices):]:
                        k.set_waiting(int(x), True)
                        self._held.add(int(x))
                ask = ask[:len(choices)]
                dealt = [choices] * len(ask)
            # one candidate is no decision: the worker takes it without a model round trip
            # (in internal_diagnosis_llm ~15% of the calls were ParseConfig alone), now,
            # so the bandit cannot hand it a node dealt to a worker that waits for the model
            requests = []
            for x, own in zip(ask, dealt):
                if len(own) > 1:
                    requests.append(self._request(swarm, int(x), own))
                elif len(own) == 1 and k.assign_node(int(x), own[0].node, source=0):
                    self.runner.stats.single += 1
            if requests:
                for r in requests:
                    k.set_waiting(r.worker, True)
                    if self.distinct:
                        self._reserved.update((c.node, r.worker) for c in r.choices)
                if self.record:
                    for r in requests:
                        # asked again before acting: the previous decision led to nothing
                        self._answered.pop(r.worker, None)
                        rec = self._new_record(swarm.tick, r)
                        self.records.append(rec)
                        self._open[id(r)] = (r, rec)
                self.runner.submit(requests)
                self.asked += len(requests)
        if swarm.config.tick_duration_ms == 0 and self.runner.in_flight:
            w = k.workers()
            if not (~w["done"] & ~w["waiting"]).any():
                # nobody can act this tick: wait for an answer rather than spin empty ticks
                self.runner.wait_any(p.idle_wait_s)

    # ------------------------------------------------------------------ records
    @staticmethod
    def _new_record(tick: int, request: DecisionRequest) -> dict:
        return {"tick": int(tick), "worker": int(request.worker), "messages": prompts.chat_messages(request),
                "choices": [{"action": c.action, "target": c.target, "arg": c.arg} for c in request.choices],
                "answer": None, "choice": None, "confidence": None, "applied": False,
                "fallback": None, "error": None, "executed": None, "outcome": None, "answer_format": request.answer}

    def _answer(self, request: DecisionRequest, decision: Decision) -> dict | None:
        """Fill the record of ``request`` with the model's answer; from now on
        the worker's next event is what it executed after this decision."""
        entry = self._open.pop(id(request), None)
        if entry is None:
            return None
        rec = entry[1]
        rec["answer"] = decision.raw or None
        rec["choice"] = decision.choice
        rec["confidence"] = None if decision.confidence is None else float(decision.confidence)
        self._answered[request.worker] = rec
        return rec

    # ------------------------------------------------------------------ prompts
    def _candidates(self, swarm: Swarm) -> tuple[Choice, ...]:
        k = swarm.kernel
        gids, scores = k.selector_scores(limit=4 * self.policy.max_candidates)
        if len(gids) == 0:
            return ()
        order = np.argsort(-scores, kind="stable")[: self.policy.max_candidates]
        # labels run out at 35; text answers are held to as many lines (each is prefilled)
        limit = len(prompts.LABELS) if self.answer in ("label", "text") else None
        g = k.groups()
        names = swarm.environment.target_names or str
        args = swarm.rules.args
        out = []
        for i in order:
            gid = int(gids[i])
            for node in k.group_nodes(gid, self.policy.nodes_per_group):
                a, t, x = k.node_key(node)
                out.append(Choice(action=swarm.action_names[a], target=names(t) if t >= 0 else None,
                                  arg=args.name(x) if x >= 0 else None, node=node,
                                  score=float(scores[i]), visits=int(g["visits"][gid]),
                                  successes=int(g["successes"][gid])))
        return tuple(out[:limit])

    def _request(self, swarm: Swarm, worker: int, choices: tuple[Choice, ...]) -> DecisionRequest:
        k = swarm.kernel
        history = list(self._history.get(worker, ()))
        if self.answer == "label":
            body = prompts.label_worker_prompt(worker, history, choices)
        elif self.answer == "text":
            body = prompts.text_worker_prompt(worker, history)
        else:
            team = (f"tick {swarm.tick}; {k.total_visits} actions so far ({k.total_fail} failed); "
                    f"{k.n_open} open candidates")
            body = prompts.worker_prompt(worker, history, team, choices)
        seed = self.sampling.seed if self.sampling.seed is not None else (swarm.seed * 7919 + worker) & 0x7FFFFFFF
        return DecisionRequest(worker=worker, shared_prompt=self.shared, worker_prompt=body, choices=choices,
                               sampling=Sampling(self.sampling.temperature, self.sampling.max_tokens, seed,
                                                 self.sampling.top_k, self.sampling.top_p),
                               lora=self.lora, slot=worker, answer=self.answer)


def deal(choices: Sequence[Choice], n: int) -> list[tuple[Choice, ...]]:
    """``choices`` (best first) dealt round-robin to ``n`` workers: worker k gets
    choices k, k+n, k+2n, ... (best first again), so the lists are disjoint,
    every worker's best is among the overall top n, and no two workers of a
    tick can choose the same node. A worker left with one choice or none is
    not asked (one candidate is no decision)."""
    return [tuple(choices[k::n]) for k in range(n)] if n > 0 else []


class _Subscriber:
    """Adapts the manager to the event-subscriber protocol of one swarm."""

    def __init__(self, manager: LlmManager, swarm: Swarm) -> None:
        self.manager = manager
        self.swarm = swarm

    def on_events(self, events: EventBatch) -> None:
        self.manager.on_events(events, self.swarm)


def attach(manager: LlmManager, swarm: Swarm) -> None:
    """Wire the manager into a swarm: collect/manage phases and event history."""
    swarm.add_source(manager)
    swarm.subscribe(_Subscriber(manager, swarm))
