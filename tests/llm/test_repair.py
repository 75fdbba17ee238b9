"""Mapping free-form answers onto choices: clean answers pass untouched,
sloppy ones are repaired, garbage maps to nothing, nothing raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_engine.llm.prompts import answer_json
from swarm_engine.llm.protocol import Choice
from swarm_engine.llm.repair import normalize, parse_decision

CHOICES = (
    Choice("CheckStatus", "api-gateway"),        # 0
    Choice("ReadLogs", "api-gateway"),           # 1
    Choice("ReadLogs", "db-primary"),            # 2
    Choice("Restart", "db-replica"),             # 3
    Choice("Diagnose", "db-primary", "MemoryLeak"),  # 4
    Choice("Diagnose", "db-primary", "DiskFull"),    # 5
    Choice("Summarize"),                         # 6
    Choice("Read", "src/main.rs"),               # 7
)


@pytest.mark.parametrize("index", range(len(CHOICES)))
def test_canonical_answers_are_not_repairs(index):
    text = answer_json(CHOICES[index])
    assert parse_decision(text, CHOICES) == (index, False)
    assert parse_decision(f"  {text}\n", CHOICES) == (index, False)


@pytest.mark.parametrize("text, expected", [
    # whitespace and key order differ from the canonical string: still clean JSON
    ('{"tool":"ReadLogs","target":"db-primary"}', (2, False)),
    ('{\n  "tool": "ReadLogs",\n  "target": "db-primary"\n}', (2, False)),
    ('{"target": "db-primary", "tool": "ReadLogs"}', (2, False)),
    ('{"tool": "Diagnose", "target": "db-primary", "arg": "DiskFull"}', (5, False)),
])
def test_clean_json_variants(text, expected):
    assert parse_decision(text, CHOICES) == expected


@pytest.mark.parametrize("text, index", [
    # code fences
    ('```json\n{"tool": "ReadLogs", "target": "db-primary"}\n```', 2),
    ('```\n{"tool": "Restart", "target": "db-replica"}\n```', 3),
    ('Here you go:\n```json\n{"tool": "Restart", "target": "db-replica"}', 3),     # unclosed fence
    # prose around the object; the first object that maps wins
    ('Sure! {"tool": "CheckStatus", "target": "api-gateway"} is my choice.', 0),
    ('{"thought": "logs first"} {"tool": "ReadLogs", "target": "api-gateway"}', 1),
    # trailing commas, single quotes, bare words, Python literals
    ('{"tool": "ReadLogs", "target": "db-primary",}', 2),
    ("{'tool': 'ReadLogs', 'target': 'db-primary'}", 2),
    ("{'tool': 'Restart', 'target': 'db-replica', 'urgent': True,}", 3),
    ("{tool: ReadLogs, target: db-primary}", 2),
    ("{tool: Read, target: src/main.rs}", 7),
    # key aliases, any case
    ('{"action": "CheckStatus", "service": "api-gateway"}', 0),
    ('{"name": "Read", "file": "src/main.rs"}', 7),
    ('{"Tool": "Read", "PATH": "src/main.rs"}', 7),
    ('{"action_name": "Restart", "target": "db-replica"}', 3),
    # case- and separator-insensitive names
    ('{"tool": "read_logs", "target": "DB Primary"}', 2),
    ('{"tool": "check-status", "target": "API_GATEWAY"}', 0),
    # fuzzy names
    ('{"tool": "ReadLog", "target": "db-primary"}', 2),
    ('{"tool": "Restrat", "target": "db-replca"}', 3),
    ('{"tool": "Diagnose", "target": "db-primary", "arg": "memory_leek"}', 4),
    # nested decision objects
    ('{"decision": {"tool": "Restart", "target": "db-replica"}}', 3),
    # no target named: the first candidate of that action; extra target on a target-less action
    ('{"tool": "ReadLogs"}', 1),
    ('{"tool": "Summarize", "target": "everything"}', 6),
    # truncated by max_tokens
    ('{"tool": "ReadLogs", "target": "db-prim', 2),
    ('{"tool": "Restart", "target": "db-replica"', 3),
    # broken beyond JSON: key/value pairs
    ('{"tool": "Restart" "target": "db-replica"}', 3),
    ('tool = Restart, target = db-replica', 3),
    # bare choice numbers (1-based, as in the prompt) and index keys
    ("3", 2),
    (" 4.\n", 3),
    ("Choice 2", 1),
    ("#1", 0),
    ('{"choice": 8}', 7),
    ('{"index": "5"}', 4),
    # a candidate's label as plain text
    ("ReadLogs db-primary", 2),
    ("Restart(db-replica)", 3),
])
def test_repaired(text, index):
    assert parse_decision(text, CHOICES) == (index, True)


@pytest.mark.parametrize("text", [
    "", "   ", "garbage", "I think we should look at the logs first.", "{}", "[]", "null", "true",
    '{"tool": "Explode", "target": "api-gateway"}',          # an action that is not allowed
    '{"tool": "ReadLogs", "target": "cache"}',               # a target not offered for that action
    '{"tool": "ReadLogs", "target": "db"}',                  # too far from any target
    '{"target": "nowhere"}',
    "0", "9", "-1", "12345678",                              # numbers out of range
    '{"choice": 0}', '{"choice": true}',
    "{" * 5000, "}" * 100 + "{" * 100, '"' * 300, "\x00\x01\x02", "```\n```",
    '{"tool": ["a", "b"]}', '{"tool": {"nested": 1}}', '{"tool": null, "target": null}',
])
def test_unrepairable(text):
    assert parse_decision(text, CHOICES) == (None, False)


def test_ambiguous_fuzzy_match_is_refused():
    choices = (Choice("Scan", "node-a"), Choice("Scan", "node-b"))
    assert parse_decision('{"tool": "Scan", "target": "node-c"}', choices) == (None, False)
    assert parse_decision('{"tool": "Scan", "target": "node-b"}', choices) == (1, False)


def test_duplicates_map_to_the_first():
    choices = (Choice("A", "x"), Choice("A", "x", score=2.0))
    assert parse_decision('{"tool": "A", "target": "x"}', choices) == (0, False)


@pytest.mark.parametrize("bad_input", [None, 3, b'{"tool": "Restart"}', ["x"]])
def test_non_text_input(bad_input):
    assert parse_decision(bad_input, CHOICES) == (None, False)


def test_no_choices():
    assert parse_decision('{"tool": "Restart"}', ()) == (None, False)


def test_long_runaway_output_is_bounded():
    text = '{"tool": "Restart", "target": "db-replica"} ' + "blah " * 100_000
    assert parse_decision(text, CHOICES) == (3, True)


@pytest.mark.parametrize("name, norm", [("Read_Logs", "readlogs"), ("read-logs", "readlogs"),
                                        (" Read Logs ", "readlogs"), ("src/main.rs", "src/main.rs")])
def test_normalize(name, norm):
    assert normalize(name) == norm


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_never_raises(text):
    index, repaired = parse_decision(text, CHOICES)
    assert index is None or 0 <= index < len(CHOICES)
    assert isinstance(repaired, bool) and (index is not None or not repaired)
