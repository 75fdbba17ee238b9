"""Decision and planning prompts: shared part first and identical, worker part
last, canonical answers."""

from __future__ import annotations

import json

import jsonschema
import pytest

from swarm_engine.llm.prompts import (
    ANSWER_CUE,
    CONTENT_CUE,
    HEADER,
    PLAN_SCHEMA,
    answer_json,
    chat_messages,
    plan_prompt,
    plan_schema,
    shared_prompt,
    worker_prompt,
)
from swarm_engine.llm.protocol import Choice, DecisionRequest

ACTIONS = [("CheckStatus", "Check the status of a service"), ("ReadLogs", "Read a service's logs"),
           ("Diagnose", "Name the problem"), ("Restart", "Restart a service")]
GOAL = "Find the faulty service and fix it."


def shared() -> str:
    return shared_prompt(GOAL, "Services: api-gateway, db-primary.", ACTIONS, rules="Never restart twice.")


def choices(worker: int) -> tuple[Choice, ...]:
    return (Choice("CheckStatus", "api-gateway", visits=4, successes=3, score=0.75),
            Choice("ReadLogs", f"svc-{worker}", visits=0, successes=0, score=1.5),
            Choice("Diagnose", "db-primary", arg="MemoryLeak", visits=2, successes=1, score=0.5))


@pytest.mark.parametrize("choice, expected", [
    (Choice("ReadLogs", "api-gateway"), '{"tool": "ReadLogs", "target": "api-gateway"}'),
    (Choice("Restart"), '{"tool": "Restart"}'),
    (Choice("Diagnose", "db", arg="DiskFull"), '{"tool": "Diagnose", "target": "db", "arg": "DiskFull"}'),
    (Choice("Grep", None, arg="TODO"), '{"tool": "Grep", "arg": "TODO"}'),
    (Choice("Say", 'a "quoted" \\ path'), '{"tool": "Say", "target": "a \\"quoted\\" \\\\ path"}'),
    (Choice("Read", "naïve.rs"), '{"tool": "Read", "target": "naïve.rs"}'),
    (Choice("Read", "src/main.rs", node=3, score=9.0, visits=5), '{"tool": "Read", "target": "src/main.rs"}'),
])
def test_answer_json_canonical(choice, expected):
    text = answer_json(choice)
    assert text == expected
    obj = json.loads(text)
    assert list(obj) == [k for k in ("tool", "target", "arg") if k in obj]
    assert json.dumps(obj, separators=(", ", ": "), ensure_ascii=False) == text


def test_shared_prompt_template_and_determinism():
    text = shared()
    assert text == shared()
    assert text.startswith(HEADER + "\n\n")
    assert text.endswith(CONTENT_CUE + "\n")
    for piece in ("Never restart twice.", GOAL, "Services: api-gateway, db-primary.", "Example interaction:\nUser: ",
                  "\nAssistant: {\"tool\": "):
        assert piece in text
    # the catalogue, in scenario order
    positions = [text.index(f"- {name}: {desc}") for name, desc in ACTIONS]
    assert positions == sorted(positions)
    # order of the template: rules, task, actions, example, cue
    assert text.index("Rules:") < text.index("Task:") < text.index("Actions:") < text.index("Example") \
        < text.index(CONTENT_CUE)


def test_shared_part_identical_for_all_workers_and_first():
    text = shared()
    requests = [DecisionRequest(w, text, worker_prompt(w, [f"CheckStatus svc-{w} -> ok"], "team", choices(w)),
                                choices(w)) for w in range(4)]
    assert len({r.shared_prompt for r in requests}) == 1
    assert len({r.worker_prompt for r in requests}) == 4
    for r in requests:
        assert r.prompt.startswith(text) and r.prompt.endswith(ANSWER_CUE)
        assert f"svc-{r.worker}" not in r.shared_prompt


def test_worker_prompt_lists_candidates_with_statistics():
    text = worker_prompt(2, ["CheckStatus api-gateway -> degraded", "ReadLogs api-gateway -> OOM"],
                         "worker 1 found db-primary healthy", choices(2))
    lines = text.splitlines()
    assert lines[0] == "Worker 2."
    assert lines[-1] == ANSWER_CUE and not text.endswith("\n")
    assert "- ReadLogs api-gateway -> OOM" in lines
    assert "Team: worker 1 found db-primary healthy" in lines
    cands = [line for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert cands == [
        '1. {"tool": "CheckStatus", "target": "api-gateway"} (visits=4 successes=3 score=0.750)',
        '2. {"tool": "ReadLogs", "target": "svc-2"} (visits=0 successes=0 score=1.500)',
        '3. {"tool": "Diagnose", "target": "db-primary", "arg": "MemoryLeak"} (visits=2 successes=1 score=0.500)',
    ]
    # history comes before the team summary, both before the candidates
    assert text.index("Your recent steps") < text.index("Team:") < text.index("Candidates:")


@pytest.mark.parametrize("n, shown", [(0, 0), (3, 3), (8, 8), (20, 8)])
def test_history_keeps_the_most_recent(n, shown):
    history = [f"step {i}" for i in range(n)]
    text = worker_prompt(0, history, "", choices(0))
    present = [h for h in history if f"- {h}\n" in text]
    assert present == history[len(history) - shown:]
    if n == 0:
        assert "none yet" in text
    assert "Team:" not in text


def test_multiline_inputs_stay_on_one_line():
    text = worker_prompt(0, ["line one\nline two"], "a\n\nb", choices(0))
    assert "- line one line two" in text and "Team: a b" in text


def test_chat_messages():
    request = DecisionRequest(1, shared(), worker_prompt(1, [], "", choices(1)), choices(1))
    assert chat_messages(request) == [{"role": "system", "content": request.shared_prompt},
                                      {"role": "user", "content": request.worker_prompt}]


def test_plan_prompt():
    text = plan_prompt("Fix the service", ACTIONS)
    assert text.startswith(HEADER) and text.endswith(ANSWER_CUE)
    assert "Task: Fix the service" in text
    assert "Allowed names: CheckStatus, ReadLogs, Diagnose, Restart" in text
    example = text.split("Assistant: ", 1)[1].split("\n", 1)[0]
    jsonschema.validate(json.loads(example), PLAN_SCHEMA)


PLAN = {"edges": [{"from": "CheckStatus", "to": "ReadLogs", "confidence": 0.9},
                  {"from": "ReadLogs", "to": "Restart", "confidence": 0.6}],
        "start": ["CheckStatus"], "terminal": ["Restart"]}


@pytest.mark.parametrize("plan, valid", [
    (PLAN, True),
    ({**PLAN, "edges": []}, True),
    ({"edges": [], "start": []}, False),
    ({**PLAN, "extra": 1}, False),
    ({**PLAN, "edges": [{"from": "A", "to": "B"}]}, False),
    ({**PLAN, "edges": [{"from": "A", "to": "B", "confidence": 1.5}]}, False),
])
def test_plan_schema(plan, valid):
    jsonschema.Draft202012Validator.check_schema(PLAN_SCHEMA)
    assert jsonschema.Draft202012Validator(PLAN_SCHEMA).is_valid(plan) is valid


def test_plan_schema_with_names_and_copies():
    schema = plan_schema([name for name, _ in ACTIONS])
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(PLAN)
    assert not validator.is_valid({**PLAN, "start": ["Explode"]})
    assert not validator.is_valid({**PLAN, "edges": [{"from": "CheckStatus", "to": "X", "confidence": 1}]})
    schema["required"].append("mutated")
    assert "mutated" not in PLAN_SCHEMA["required"] and "enum" not in json.dumps(PLAN_SCHEMA)
