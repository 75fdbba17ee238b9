"""Training data for LoRA adapters, built from recorded LLM decisions.

``swarm eval --learning`` writes one ``decisions.jsonl`` per session: one line
per decision request of an LLM-managed run (the records of
:class:`swarm_engine.llm.manager.LlmManager` plus ``run``, ``seed`` and
``run_success``). This module turns those lines into chat examples in the
engine's own prompt format (:func:`swarm_engine.llm.prompts.chat_messages`
for the prompt, :func:`~swarm_engine.llm.prompts.answer_json` for the answer).

Labels come from outcomes, not from the model's answers (which a small base
model mostly gets wrong). Within one successful run:

- the *good* candidates of a decision are those whose (action, target, arg)
  was executed with outcome ``ok`` somewhere in that run, the *bad* ones those
  executed only with ``fail`` (``error`` outcomes are transient: neither);
- a decision whose executed action was good is an ``executed`` example (its
  target is what the worker did);
- a decision whose executed action failed while a good candidate was on offer
  is a ``corrected`` example: the target is the good candidate most like the
  failed one (same action and target first, e.g. the right fix for the same
  section), and the failed answer is kept as ``rejected`` (a DPO-style pair);
- a decision that had the run's *winning* step on offer (the last recorded
  step that succeeded: the one that finished the run) and whose worker had
  already read that step's target and argument (in its own history, e.g. a
  log line naming the fix: *evident*, below) is a ``hindsight`` example with
  the winning step as target, whatever the worker did: the text held the answer.

A correction must be *evident* the same way: a good candidate whose target or
argument some history of the run names but this worker's had not yet would be
a guess from information the worker did not have (which service is the root,
which fix), and teaching guesses teaches noise; without an evident good
candidate the decision gives no correction. A part no history of the run ever
names (a fix the environment never spells out) is knowledge to learn from
outcomes and needs no evidence.

This assumes an action's outcome does not depend on when it was tried, which
holds for dependency-graph scenarios: a candidate is only offered once its
prerequisites succeeded. Runs that failed (``run_success`` false) give no
labels; records without the flag are taken as from a successful run. Decisions with a
single candidate teach nothing and are left out.

Every example keeps its ``seed``, so held-out seeds (:func:`split_by_seed`)
never leak into training.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm_engine import fsio
from swarm_engine.errors import StoreError
from swarm_engine.llm import prompts
from swarm_engine.llm.protocol import Choice

__all__ = ["DECISIONS_FILE", "Example", "read_decisions", "load_decisions", "build_examples", "split_by_seed",
           "write_jsonl", "read_jsonl", "choice_of", "summarize"]

log = logging.getLogger("swarm_engine.learn")

DECISIONS_FILE = "decisions.jsonl"

Key = tuple[str, "str | None", "str | None"]


def _key(d: dict | None) -> Key | None:
    if not isinstance(d, dict) or not d.get("action"):
        return None
    return (str(d["action"]), d.get("target") or None, d.get("arg") or None)


def choice_of(d: dict) -> Choice:
    """A record's choice dict (``action``, ``target``, ``arg``) as a :class:`Choice`."""
    return Choice(action=str(d["action"]), target=d.get("target") or None, arg=d.get("arg") or None)


@dataclass
class Example:
    """One chat example: the decision prompt, its candidates and the label.

    Attributes
    ----------
    messages: the system and user messages the model saw.
    choices: the candidates (``action``, ``target``, ``arg`` dicts), in prompt order.
    target: index of the answer to learn.
    good, bad: indices of candidates known to succeed / fail in that run.
    rejected: index of a failed answer to this prompt (a DPO-style pair), or None.
    kind: ``"executed"``, ``"corrected"`` or ``"hindsight"`` (see the module docstring).
    seed, run, session: where the decision was recorded.
    """

    messages: list[dict[str, str]]
    choices: list[dict[str, Any]]
    target: int
    good: list[int]
    bad: list[int] = field(default_factory=list)
    rejected: int | None = None
    kind: str = "executed"
    seed: int | None = None
    run: int | None = None
    session: str = ""
    answer_format: str = "json"          # the record's: "json" (canonical JSON) or "label" (1..9, A..Z)

    def answer_of(self, index: int) -> str:
        """What the model answers for candidate ``index`` in this example's format."""
        if self.answer_format == "label":
            return prompts.label_of(index)
        return prompts.answer_json(choice_of(self.choices[index]))

    @property
    def answer(self) -> str:
        """The answer text of the target candidate (canonical JSON, or its label)."""
        return self.answer_of(self.target)

    @property
    def action(self) -> str:
        return str(self.choices[self.target]["action"])

    def chat(self) -> list[dict[str, str]]:
        """The messages with the answer as the assistant turn (chat JSONL)."""
        return [*self.messages, {"role": "assistant", "content": self.answer}]

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"messages": self.chat(), "choices": self.choices, "target": self.target,
                             "good": self.good, "bad": self.bad, "kind": self.kind, "seed": self.seed,
                             "run": self.run, "session": self.session}
        if self.answer_format != "json":
            d["answer_format"] = self.answer_format
        if self.rejected is not None:
            d["rejected"] = self.answer_of(self.rejected)
            d["rejected_index"] = self.rejected
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Example:
        msgs = [m for m in d["messages"] if m.get("role") != "assistant"]
        return cls(messages=msgs, choices=list(d["choices"]), target=int(d["target"]),
                   good=[int(i) for i in d.get("good", [d["target"]])], bad=[int(i) for i in d.get("bad", [])],
                   rejected=d.get("rejected_index"), kind=str(d.get("kind", "executed")), seed=d.get("seed"),
                   run=d.get("run"), session=str(d.get("session", "")),
                   answer_format=str(d.get("answer_format", "json")))


# ---------------------------------------------------------------- reading

def read_decisions(path: str | os.PathLike, *, on_problem: Callable[[str], None] | None = None) -> list[dict]:
    """The records of one ``decisions.jsonl``; a corrupt line is reported
    (one line naming ``file:line``, to ``on_problem`` and the
    ``swarm_engine.learn`` logger) and skipped."""
    p = Path(path)
    out: list[dict] = []
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        _problem(f"{p}: cannot read ({exc.strerror or exc}); skipped", on_problem)
        return out
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("messages"), list) \
                    or not isinstance(rec.get("choices"), list):
                raise ValueError("not a decision record (needs messages and choices)")
        except ValueError as exc:
            _problem(f"{p}:{n}: corrupt decision record ({exc}); skipped", on_problem)
            continue
        out.append(rec)
    return out


def _problem(line: str, on_problem: Callable[[str], None] | None) -> None:
    log.warning("%s", line)
    if on_problem is not None:
        on_problem(line)


def load_decisions(store: Any, key: str, *,
                   on_problem: Callable[[str], None] | None = None) -> list[dict]:
    """Every decision record of every session of ``key`` in ``store`` (a
    :class:`~swarm_engine.learn.store.LearningStore`), oldest session first;
    each record gains ``session`` (the folder name)."""
    out: list[dict] = []
    for session in store.sessions(key):
        f = session / DECISIONS_FILE
        if not f.is_file():
            continue
        for rec in read_decisions(f, on_problem=on_problem):
            rec.setdefault("session", session.name)
            out.append(rec)
    return out


# ---------------------------------------------------------------- labels

def _closest(good: list[int], keys: list[Key | None], failed: Key | None) -> int:
    """The good candidate most like the failed one: same action and target,
    then same action, then the first."""
    if failed is not None:
        for same in ((0, 1), (0,)):
            for i in good:
                k = keys[i]
                if k is not None and all(k[j] == failed[j] for j in same):
                    return i
    return good[0]


def _evident(key: Key | None, seen: str, revealed: str) -> bool:
    """Whether the worker's history ``seen`` names every part of ``key`` (target,
    argument) that the run's text reveals anywhere (``revealed``): a part no
    history ever names is knowledge to learn (e.g. which fix a section needs),
    not an observation to wait for."""
    return key is not None and all(part in seen for part in key[1:] if part and part in revealed)


def _winner(recs: list[dict]) -> Key | None:
    """The run's winning step: the last recorded step that succeeded."""
    for r in reversed(recs):
        if r.get("outcome") == "ok" and (k := _key(r.get("executed"))) is not None:
            return k
    return None


def _seen(messages: list[dict]) -> str:
    user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    return prompts.observed_text(user)


def build_examples(records: Iterable[dict], *, min_choices: int = 2) -> list[Example]:
    """Chat examples from decision records (see the module docstring).

    Parameters
    ----------
    records:
        Decision records with ``run``, ``seed``, ``run_success`` and
        optionally ``session``; records of one run must share
        (session, run, seed).
    min_choices:
        Decisions with fewer candidates are left out (nothing to choose).

    Returns
    -------
    list[Example]
        In record order, without duplicates (same prompt and target).
    """
    runs: dict[tuple, list[dict]] = {}
    for rec in records:
        runs.setdefault((rec.get("session", ""), rec.get("run"), rec.get("seed")), []).append(rec)
    out: list[Example] = []
    seen: set[tuple] = set()
    for (session, run, seed), recs in runs.items():
        # a run known to have failed gives no labels; a record without the flag
        # (an older writer) counts as successful: its labels are outcomes anyway
        if any(r.get("run_success") is False for r in recs):
            continue
        ok: set[Key] = set()
        failed: set[Key] = set()
        for r in recs:
            k = _key(r.get("executed"))
            if k is None:
                continue
            if r.get("outcome") == "ok":
                ok.add(k)
            elif r.get("outcome") == "fail":
                failed.add(k)
        failed -= ok
        win = _winner(recs)
        reads = [_seen(r["messages"]) for r in recs]        # what each worker had read when it decided
        revealed = "\n".join(reads)
        for r, read in zip(recs, reads):
            choices = r["choices"]
            if len(choices) < min_choices:
                continue
            keys = [_key(c) for c in choices]
            good = [i for i, k in enumerate(keys) if k in ok]
            if not good:
                continue
            bad = [i for i, k in enumerate(keys) if k in failed]
            executed = _key(r.get("executed"))
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in r["messages"]]
            rejected: int | None = None
            if win in keys and _evident(win, read, revealed):
                # the text held the winning step: it is the answer, whatever the worker did
                target = keys.index(win)
                kind = "executed" if executed == win else "hindsight"
                rejected = keys.index(executed) if executed in failed and executed in keys else None
            elif executed in ok and executed in keys:
                target, kind = keys.index(executed), "executed"
            else:
                evident = [i for i in good if _evident(keys[i], read, revealed)]
                if not evident:
                    continue          # a correction the worker could not have read is a guess
                target, kind = _closest(evident, keys, executed), "corrected"
                rejected = keys.index(executed) if executed in failed and executed in keys else None
                if rejected is None and isinstance(r.get("choice"), int) and r["choice"] in bad:
                    rejected = int(r["choice"])
            sig = (json.dumps(messages, sort_keys=True), target)
            if sig in seen:
                continue
            seen.add(sig)
            out.append(Example(messages=messages, choices=[dict(c) for c in choices], target=target, good=good,
                               bad=bad, rejected=rejected, kind=kind,
                               seed=None if seed is None else int(seed),
                               run=None if run is None else int(run), session=str(session or ""),
                               answer_format=str(r.get("answer_format") or "json")))
    return out


def split_by_seed(examples: Sequence[Example], holdout: float = 0.2) -> tuple[list[Example], list[Example]]:
    """(train, held_out): the examples of the highest ``holdout`` fraction of
    distinct seeds are held out (at least one seed when there are two or more,
    none when ``holdout`` is 0). Examples without a seed always train."""
    seeds = sorted({e.seed for e in examples if e.seed is not None})
    n = 0 if holdout <= 0 or len(seeds) < 2 else min(len(seeds) - 1, max(1, math.ceil(holdout * len(seeds))))
    held = set(seeds[len(seeds) - n:]) if n else set()
    return ([e for e in examples if e.seed not in held], [e for e in examples if e.seed in held])


def summarize(examples: Sequence[Example]) -> dict[str, Any]:
    """Counts for reports: examples, by kind, by target action, pairs, seeds."""
    by_kind: dict[str, int] = {}
    by_action: dict[str, int] = {}
    for e in examples:
        by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
        by_action[e.action] = by_action.get(e.action, 0) + 1
    return {"examples": len(examples), "by_kind": by_kind, "by_action": by_action,
            "pairs": sum(e.rejected is not None for e in examples),
            "seeds": len({e.seed for e in examples if e.seed is not None})}


# ---------------------------------------------------------------- files

def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """One JSON object per line, written atomically (:mod:`swarm_engine.fsio`)."""
    with fsio.atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | os.PathLike, *, on_problem: Callable[[str], None] | None = None) -> list[Example]:
    """Examples written by :func:`write_jsonl` (``Example.to_json`` rows);
    corrupt lines are reported and skipped."""
    p = Path(path)
    out: list[Example] = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StoreError(f"cannot read {p}: {exc.strerror or exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(Example.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            _problem(f"{p}:{n}: corrupt training example ({exc}); skipped", on_problem)
    return out
