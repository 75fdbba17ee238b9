"""Decision and planning prompts in the original's JSON-only template.

The original engine asked its model with one template::

    You are a JSON-only response AI for action selection.

    Example interaction:
    User: <example>
    Assistant: <example json>

    Now respond with ONLY a JSON object:
    <content>
    Your JSON:

Here the template is cut in two at ``<content>``. :func:`shared_prompt` is
everything up to and including "Now respond with ONLY a JSON object:" (rules,
task, action catalogue, the example): it is byte-identical for every worker of
a run, so a server's prefix cache serves it once. :func:`worker_prompt` is the
worker's own part (its recent history, the team summary, its numbered
candidates with their statistics) and ends with "Your JSON:". The request's
full prompt is ``shared + worker``.

The answer to a candidate is :func:`answer_json`: one canonical string per
choice, which the grammar (:mod:`swarm_engine.llm.grammar`) makes the only
possible outputs and which the candidate list shows verbatim, so even a 135M
model has something to copy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from swarm_engine.llm.protocol import Choice

if TYPE_CHECKING:
    from swarm_engine.llm.protocol import DecisionRequest

__all__ = ["HEADER", "ANSWER_CUE", "CONTENT_CUE", "shared_prompt", "worker_prompt", "answer_json",
           "answer_object", "chat_messages", "plan_prompt", "plan_schema", "PLAN_SCHEMA",
           "LABELS", "ANSWERS", "LABEL_HEADER", "LABEL_CUE", "label_of", "label_shared_prompt",
           "label_worker_prompt", "answer_text", "observed_text", "choice_text", "text_shared_prompt",
           "text_worker_prompt", "TEXT_CUE"]

HEADER = "You are a JSON-only response AI for action selection."
CONTENT_CUE = "Now respond with ONLY a JSON object:"
ANSWER_CUE = "Your JSON:"

# A history longer than this is cut to its most recent entries: small models
# lose the thread in long prompts and the worker part is paid for every call.
MAX_HISTORY = 8

_SEPARATORS = (", ", ": ")


def answer_object(choice: Choice) -> dict[str, str]:
    """The canonical answer as a dict: ``tool``, then ``target`` and ``arg``
    when the choice has them (insertion order is the key order)."""
    obj = {"tool": choice.action}
    if choice.target:
        obj["target"] = choice.target
    if choice.arg:
        obj["arg"] = choice.arg
    return obj


def answer_json(choice: Choice) -> str:
    """The exact canonical answer for ``choice``.

    ``{"tool": "ReadLogs", "target": "api-gateway"}``: keys in the fixed order
    tool, target, arg (target and arg only when the choice has them),
    ``json.dumps`` separators ``(", ", ": ")``, non-ASCII kept as is.
    """
    return json.dumps(answer_object(choice), separators=_SEPARATORS, ensure_ascii=False)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _briefing(head: list[str], goal: str, context: str, actions: Sequence[tuple[str, str]],
              rules: str) -> list[str]:
    """``head`` (header and answer rules) plus what every shared prompt says the
    same way: the scenario's extra rules, the task, its context, the actions."""
    lines = list(head)
    for rule in (rules or "").splitlines():
        rule = rule.strip()
        if rule:
            lines.append(rule if rule.startswith("- ") else f"- {rule}")
    lines += ["", f"Task: {_one_line(goal)}"]
    if context and context.strip():
        lines.append(f"Context: {_one_line(context)}")
    lines += ["", "Actions:"]
    for name, description in actions:
        lines.append(f"- {name}: {_one_line(description)}" if description else f"- {name}")
    return lines


def shared_prompt(goal: str, context: str, actions: list[tuple[str, str]], rules: str = "") -> str:
    """The part of a decision prompt that every worker of a run shares.

    Parameters
    ----------
    goal:
        The task (scenario ``task.goal``).
    context:
        Background for the task (scenario ``task.context``); may be empty.
    actions:
        The action catalogue as (name, description) pairs, in scenario order.
    rules:
        Extra rules, one per line; may be empty.

    Returns
    -------
    str
        Ends with "Now respond with ONLY a JSON object:" and a newline, so the
        worker part (:func:`worker_prompt`) follows directly.
    """
    lines = _briefing([HEADER, "", "Rules:",
                       "- Pick exactly one of the numbered candidates.",
                       "- Answer with that candidate's JSON object, copied exactly, and nothing else."],
                      goal, context, actions, rules)
    lines += ["", "Example interaction:", f"User: {_example_user(actions)}",
              f"Assistant: {_example_answer(actions)}", "", CONTENT_CUE, ""]
    return "\n".join(lines)


def _example_choices(actions: Sequence[tuple[str, str]]) -> tuple[Choice, Choice]:
    names = [name for name, _ in actions] or ["Act"]
    first, second = names[0], names[1] if len(names) > 1 else names[0]
    return Choice(first, "target-a"), Choice(second, "target-b")


def _example_user(actions: Sequence[tuple[str, str]]) -> str:
    a, b = _example_choices(actions)
    return f"Candidates: 1. {answer_json(a)} 2. {answer_json(b)} Pick the most promising."


def _example_answer(actions: Sequence[tuple[str, str]]) -> str:
    # the example answers with the second candidate so the model learns to
    # choose, not to copy the first line
    return answer_json(_example_choices(actions)[1])


def _stat(choice: Choice) -> str:
    return f"visits={choice.visits} successes={choice.successes} score={choice.score:.3f}"


def worker_prompt(worker: int, history: list[str], team_summary: str, choices: Sequence[Choice], *,
                  max_history: int = MAX_HISTORY) -> str:
    """One worker's part of a decision prompt, appended to :func:`shared_prompt`.

    Parameters
    ----------
    worker:
        The worker's index.
    history:
        The worker's past steps, oldest first, one line each (e.g.
        ``"CheckStatus api-gateway -> ok: degraded"``); only the last
        ``max_history`` are shown.
    team_summary:
        What the rest of the team did or found; may be empty.
    choices:
        The candidates, shown numbered from 1 with their canonical JSON and
        statistics (visits, successes, score).

    Returns
    -------
    str
        Ends with "Your JSON:" (no trailing newline or space).
    """
    lines = [f"Worker {worker}."]
    recent = [_one_line(h) for h in history[-max_history:]] if max_history > 0 else []
    if recent:
        lines.append("Your recent steps (oldest first):")
        lines += [f"- {h}" for h in recent]
    else:
        lines.append("Your recent steps: none yet.")
    if team_summary and team_summary.strip():
        lines.append(f"Team: {_one_line(team_summary)}")
    lines.append("Candidates:")
    for i, choice in enumerate(choices, 1):
        lines.append(f"{i}. {answer_json(choice)} ({_stat(choice)})")
    lines.append(ANSWER_CUE)
    return "\n".join(lines)


# ---------------------------------------------------------------- label answers
#
# answer = "label": the candidates are labelled 1..9 then A..Z and the answer
# is the label alone, ONE token of SmolLM2's vocabulary (checked by the
# backends against the model: "1".."9" and "A".."Z" are single tokens right
# after the chat template's "assistant\n"; " 1" is not, so the label follows
# a line break, never a space). One forward pass gives the logits of every
# label: the choice, its confidence and a ranking, with no sampling loop and
# no JSON to decode.

ANSWERS = ("label", "json", "text")
LABELS = "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LABEL_HEADER = "You choose the next step of one worker of a team."
LABEL_CUE = "Answer with one label."
_LABEL_ANSWER = "Answer:"


def label_of(i: int) -> str:
    """The label of the ``i``-th candidate (0-based): "1".."9", then "A".."Z".

    Raises
    ------
    IndexError
        ``i`` is beyond :data:`LABELS` (callers cut the candidates to its length).
    """
    if not 0 <= i < len(LABELS):
        raise IndexError(f"no label for candidate {i} (at most {len(LABELS)})")
    return LABELS[i]


def answer_text(choices: Sequence[Choice], index: int, answer: str = "json") -> str:
    """What the model answers for ``choices[index]``: its label, its line
    (``text``) or its canonical JSON."""
    if answer == "label":
        return label_of(index)
    if answer == "text":
        return choice_text(choices[index])
    return answer_json(choices[index])


def choice_text(choice: Choice) -> str:
    """A candidate as one line, ``<action> [<target>] [<arg>]``: how the label
    and text prompts show it, and the whole answer of a ``text`` answer."""
    return " ".join(x for x in (choice.action, choice.target, choice.arg) if x)




def label_shared_prompt(goal: str, context: str, actions: list[tuple[str, str]], rules: str = "") -> str:
    """:func:`shared_prompt` for label answers: the same rules, task and action
    catalogue, an example answered with a label; identical for every worker
    and first in every request. Ends with a newline."""
    lines = _briefing([LABEL_HEADER, "", "Rules:",
                       "- Pick exactly one of the labelled candidates.",
                       "- Answer with its label alone."],
                      goal, context, actions, rules)
    a, b = _example_choices(actions)
    lines += ["", "Example:", f"Candidates: 1 {choice_text(a)}; 2 {choice_text(b)}", "Answer: 2", "", LABEL_CUE,
              ""]
    return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _head_tail(text: str, limit: int) -> str:
    """``text`` on one line, cut in the middle to ``limit`` characters: an
    observation's head names the step and its tail often the conclusion
    (a log's last line, a "Fix: ..." hint), so both are kept."""
    text = _one_line(text)
    if len(text) <= limit:
        return text
    head = (limit - 5) * 2 // 5
    tail = limit - 5 - head
    return text[:head].rstrip() + " ... " + text[len(text) - tail:].lstrip()


def label_worker_prompt(worker: int, history: list[str], choices: Sequence[Choice], *, max_history: int = 3,
                        max_chars: int = 60, last_chars: int = 240) -> str:
    """One worker's part for label answers, short on purpose (every token of it
    is prefilled per worker and decision).

    The candidates come first, one per line as ``<label> <action> <target>
    [<arg>]`` with ``(tried N, ok M)`` when the group was tried, best first:
    when a tick's workers are shown the same candidates (label answers, see
    :class:`~swarm_engine.llm.manager.ManagerPolicy`), that block is a prefix
    they share and the in-process backend prefills it once per tick. Then the
    worker's last ``max_history`` steps: the newest cut to ``last_chars``
    characters (head and tail kept: it is what a reader acts on), older ones to
    ``max_chars``. Ends with "Answer:" (no trailing space).

    Raises
    ------
    IndexError
        More candidates than :data:`LABELS`.
    """
    lines = ["Candidates:"]
    for i, c in enumerate(choices):
        stat = f" (tried {c.visits}, ok {c.successes})" if c.visits else ""
        lines.append(f"{label_of(i)} {choice_text(c)}{stat}")
    recent = list(history[-max_history:]) if max_history > 0 else []
    cut = [_short(h, max_chars) for h in recent[:-1]] + [_head_tail(h, last_chars) for h in recent[-1:]]
    lines.append(f"Worker {worker}. Last steps: " + ("; ".join(cut) if cut else "none."))
    lines.append(_LABEL_ANSWER)
    return "\n".join(lines)


# ---------------------------------------------------------------- text answers
#
# answer = "text": every candidate's line (``ApplyFix db-primary
# grow_connection_pool``) is scored as the answer, by the sum of its tokens'
# log-probabilities after the prompt, and the softmax over the lines is the
# distribution the choice, its confidence and the fall-through read. The
# prompt does not list the candidates: the lines are what is scored, and a
# list in the prompt is text the model copies from instead of what it read.
# What a small model does well is continue what its context just said: when
# a step it read names the next one ("Fix: ApplyFix db-primary
# grow_connection_pool"), that line is by far the likeliest. One prefill of
# the worker part plus the lines' tokens, batched.

TEXT_CUE = "Answer with the next step."


def text_shared_prompt(goal: str, context: str, actions: list[tuple[str, str]], rules: str = "") -> str:
    """The shared part for text answers: the rules, task and action catalogue
    of the other formats and an example whose answer is the step its last
    step named. Identical for every worker; ends with a newline."""
    lines = _briefing([LABEL_HEADER, "", "Rules:",
                       "- Answer with the next step: an action and its target, nothing else.",
                       "- When what you read names the next step, that is the answer."],
                      goal, context, actions, rules)
    a, b = _example_choices(actions)
    lines += ["", "Example:", f"Last steps: {choice_text(a)} -> ok: the next step is {choice_text(b)}",
              f"Answer: {choice_text(b)}", "", TEXT_CUE, ""]
    return "\n".join(lines)


def text_worker_prompt(worker: int, history: list[str], *, max_history: int = 3, max_chars: int = 60,
                       last_chars: int = 240) -> str:
    """One worker's part for text answers: its last ``max_history`` steps and
    "Answer:". The newest step and the newest one that succeeded (what the
    worker last learned: a failed step after it must not push it out) are cut
    to ``last_chars`` characters, head and tail kept; the others to
    ``max_chars``."""
    recent = list(history[-max_history:]) if max_history > 0 else []
    learned = max((i for i, h in enumerate(recent) if " -> ok" in h), default=-1)
    cut = [_head_tail(h, last_chars) if i in (learned, len(recent) - 1) else _short(h, max_chars)
           for i, h in enumerate(recent)]
    return f"Worker {worker}. Last steps: " + ("; ".join(cut) if cut else "none.") + "\n" + _LABEL_ANSWER


def observed_text(worker_prompt: str) -> str:
    """The worker's own history in a worker prompt of either format (the
    ``Last steps:`` line of a label prompt, the ``- ...`` lines of a JSON one),
    without the candidate list: what the worker had read when it decided."""
    return "\n".join(line for line in worker_prompt.splitlines()
                     if line.startswith("- ") or line.startswith("Worker ") and "Last steps:" in line)


def chat_messages(request: DecisionRequest) -> list[dict[str, str]]:
    """The request as chat messages: the shared part as the system message
    (first, so prefix caches hit), the worker part as the user message."""
    return [{"role": "system", "content": request.shared_prompt},
            {"role": "user", "content": request.worker_prompt}]


# dependency_graph.type = "llm": the model plans edges between the scenario's
# actions once per run. Treat as read-only; plan_schema() returns fresh copies.
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["from", "to", "confidence"],
                "additionalProperties": False,
            },
        },
        "start": {"type": "array", "items": {"type": "string"}},
        "terminal": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["edges", "start", "terminal"],
    "additionalProperties": False,
}


def plan_schema(action_names: Sequence[str] | None = None) -> dict[str, Any]:
    """A fresh copy of :data:`PLAN_SCHEMA`; with ``action_names`` every action
    field is restricted to those names (an ``enum``), so a constrained backend
    cannot invent actions."""
    schema = json.loads(json.dumps(PLAN_SCHEMA))
    if action_names:
        names = {"type": "string", "enum": list(dict.fromkeys(action_names))}
        props = schema["properties"]
        props["edges"]["items"]["properties"]["from"] = dict(names)
        props["edges"]["items"]["properties"]["to"] = dict(names)
        props["start"]["items"] = dict(names)
        props["terminal"]["items"] = dict(names)
    return schema


def plan_prompt(task: str, actions: Sequence[tuple[str, str]]) -> str:
    """A JSON-only prompt asking for a dependency graph over ``actions``.

    The answer follows :data:`PLAN_SCHEMA`: ``edges`` (``from`` must succeed
    before ``to`` is worth trying; ``confidence`` 0..1), ``start`` (actions
    with no prerequisite) and ``terminal`` (actions that complete the task).
    """
    names = [name for name, _ in actions]
    example = {"edges": [{"from": "A", "to": "B", "confidence": 0.9},
                         {"from": "B", "to": "C", "confidence": 0.7}],
               "start": ["A"], "terminal": ["C"]}
    lines = [HEADER, "", "Plan the order in which actions should be tried for a task.",
             "Each edge means: after \"from\" succeeds, \"to\" becomes worth trying; "
             "confidence is between 0 and 1.",
             "\"start\" lists the actions to try first; \"terminal\" lists the actions that complete the task.",
             "Use only the action names listed below.", "",
             "Example interaction:",
             "User: Task: example. Actions: A, B, C",
             f"Assistant: {json.dumps(example, separators=_SEPARATORS)}", "",
             CONTENT_CUE,
             f"Task: {_one_line(task)}", "Actions:"]
    for name, description in actions:
        lines.append(f"- {name}: {_one_line(description)}" if description else f"- {name}")
    lines.append(f"Allowed names: {', '.join(names)}")
    lines.append(ANSWER_CUE)
    return "\n".join(lines)
