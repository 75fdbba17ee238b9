"""The report's run rows, built from columns, and the JSON they are written as.

The rows are compared with a row-by-row reference built straight from the
result arrays (what the report gave before it was built from columns), on
every built-in native scenario; the writer with the plain indented encoding.
"""

from __future__ import annotations

import json
import random

import msgspec
import numpy as np
import pytest

from swarm_engine.eval.builtin import builtin_scenario_files
from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.report import build_report
from swarm_engine.eval.runner import run_eval
from swarm_engine.eval.runs_json import termination_reason
from swarm_engine.fsio import LONG_LIST, json_bytes, write_json

NATIVE = [f for f in builtin_scenario_files() if not load_scenario(f).llm_managed]


def _reference_rows(result) -> list[dict]:
    names = result.scenario.actions
    miles = np.sum(list(result.milestones.values()), axis=0) if result.milestones else np.zeros(result.runs)
    return [{"index": i, "seed": int(result.seeds[i]), "success": bool(result.success[i]),
             "termination_reason": termination_reason(bool(result.success[i]), result.reason[i]),
             "reason": result.reason[i], "ticks": int(result.ticks[i]), "actions": int(result.actions[i]),
             "failed_actions": int(result.failed[i]),
             "actions_by_kind": {n: int(result.by_action[i, j]) for j, n in enumerate(names) if result.by_action[i, j]},
             "conditions": {k: bool(v[i]) for k, v in result.conditions.items()},
             "milestones": {k: float(v[i]) for k, v in result.milestones.items()},
             "milestone_score": float(miles[i]), "wall_seconds": float(result.wall[i]),
             **{k: int(v[i]) for k, v in result.per_run_llm.items()}}
            for i in range(result.runs)]


@pytest.mark.parametrize("path", NATIVE, ids=lambda p: p.name)
def test_rows_are_the_row_by_row_reference(path):
    result = run_eval(load_scenario(path), 700, 11)
    rows = build_report(result)["runs"]
    assert json.dumps(rows) == json.dumps(_reference_rows(result))       # same keys, order, types
    rows[0]["actions_by_kind"]["x"] = 1
    rows[0]["conditions"]["x"] = True
    assert all("x" not in r["actions_by_kind"] and "x" not in r["conditions"] for r in rows[1:])   # no sharing


def test_zero_runs_have_no_rows():
    result = run_eval(load_scenario(NATIVE[0]), 1, 3)
    empty = type(result)(**{**result.__dict__, **{f: getattr(result, f)[:0] for f in
                                                  ("seeds", "success", "verdict", "done", "ticks", "actions",
                                                   "failed", "wall", "by_action")},
                            "reason": [], "conditions": {k: v[:0] for k, v in result.conditions.items()},
                            "milestones": {k: v[:0] for k, v in result.milestones.items()}})
    assert build_report(empty)["runs"] == []


def _random(rnd: random.Random, depth: int = 0):
    t = rnd.random()
    if depth > 3 or t < 0.3:
        return rnd.choice([1, 2.5, "x\ny", None, True, "ü", -3, "},{", '"},{"', ""])
    if t < 0.6:
        # a long list only near the top, so the documents stay small
        sizes = [0, 1, 3, LONG_LIST + 5] if depth <= 1 else [0, 1, 3]
        return [_random(rnd, 3 if depth <= 1 else depth + 1) for _ in range(rnd.choice(sizes))]
    return {f"k{i}\"": _random(rnd, depth + 1) for i in range(rnd.choice([0, 1, 4]))}


def test_json_is_the_same_document_as_the_plain_encoding():
    rnd = random.Random(5)
    for _ in range(300):
        data = _random(rnd)
        assert json.loads(json_bytes(data)) == json.loads(msgspec.json.encode(data))


def test_a_long_list_is_one_item_per_line(tmp_path):
    small = {"a": [1, 2], "b": {"c": "d"}}
    assert json_bytes(small) == msgspec.json.format(msgspec.json.encode(small), indent=2) + b"\n"
    for item in ({"i": 1, "s": "},{"}, {"i": 1, "nested": [{"a": 1}, {"b": 2}]}, {"i": 1}):
        doc = {"summary": {"runs": 3}, "runs": [dict(item, i=i) for i in range(LONG_LIST + 1)]}
        write_json(tmp_path / "r.json", doc)
        lines = (tmp_path / "r.json").read_text().splitlines()
        assert json.loads("\n".join(lines)) == doc
        runs = [json.loads(line.strip().rstrip(",")) for line in lines if line.startswith('    {"i"')]
        assert runs == doc["runs"]
