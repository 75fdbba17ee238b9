"""A report's runs written straight from the columns are the bytes of the dict path.

``build_report(result, lazy_runs=True)`` (what ``swarm eval`` and the dashboard
write) keeps the runs as columns and hands them to the native row writer; the
file must be the one the list of dicts gives, byte for byte, for every kind of
column a result can hold: conditions, float milestones with partial credit,
LLM counters, odd names, extreme integers, and lists short and long.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib

import numpy as np
import pytest

from swarm_engine._native._json_rows import RowWriter, encode_rows
from swarm_engine.eval.builtin import builtin_scenario_files
from swarm_engine.eval.loader import list_variants, load_scenario
from swarm_engine.eval.report import RunRows, build_report
from swarm_engine.eval.runner import run_eval
from swarm_engine.fsio import LONG_LIST, json_bytes, write_json

NATIVE = [f for f in builtin_scenario_files() if not load_scenario(f).llm_managed]


def _both(result) -> tuple[bytes, bytes]:
    return json_bytes(build_report(result)), json_bytes(build_report(result, lazy_runs=True))


def _cases():
    for path in NATIVE:
        yield pytest.param(path, None, id=path.name)
        for name, _ in list_variants(tomllib.loads(path.read_text())):
            yield pytest.param(path, name, id=f"{path.name}[{name}]")


@pytest.mark.parametrize(("path", "variant"), list(_cases()))
def test_every_scenario_and_variant_writes_the_same_bytes(path, variant):
    result = run_eval(load_scenario(path, variant), LONG_LIST + 50, 11)
    dicts, lazy = _both(result)
    assert lazy == dicts


@pytest.mark.parametrize("runs", [1, LONG_LIST, LONG_LIST + 1])
def test_short_and_long_lists_alike(runs):
    result = run_eval(load_scenario(NATIVE[0]), runs, 5)
    dicts, lazy = _both(result)
    assert lazy == dicts


@pytest.fixture(scope="module")
def base():
    return run_eval(load_scenario(NATIVE[0]), LONG_LIST * 2, 3)


def test_every_column_kind_and_odd_names(base):
    n = base.runs
    rng = np.random.default_rng(1)
    odd = dataclasses.replace(
        base,
        seeds=np.arange(2 ** 64 - n, 2 ** 64, dtype=np.uint64),
        ticks=rng.integers(-2 ** 63, 2 ** 63 - 1, n, dtype=np.int64, endpoint=True),
        conditions={'quo"te': rng.random(n) < 0.5, "ünï": np.ones(n, bool), "c,}{": np.zeros(n, bool)},
        milestones={"partial": rng.random(n) * 0.5, "zero": np.where(rng.random(n) < 0.5, 0.0, -0.0),
                    "tiny": rng.random(n) * 1e-300, "big": rng.random(n) * 1e300},
        per_run_llm={"llm_calls": rng.integers(0, 10 ** 12, n), "llm_errors": np.zeros(n, np.int64)},
        reason=[["success", "timeout", 'failure_condition:a"b', "stopped", "exhausted"][i % 5] for i in range(n)],
        success=np.arange(n) % 5 == 0,
        wall=rng.random(n) * 10.0 ** rng.integers(-12, 3, n),
    )
    dicts, lazy = _both(odd)
    assert lazy == dicts
    rows = json.loads(lazy)["runs"]
    assert rows[-1]["seed"] == 2 ** 64 - 1 and rows[3]["termination_reason"] == "Stopped"


def test_a_report_inside_a_document_of_many(base, tmp_path):
    lazy = {"schema_version": 1, "scenarios": [build_report(base, lazy_runs=True), build_report(base)]}
    plain = {"schema_version": 1, "scenarios": [build_report(base), build_report(base)]}
    write_json(tmp_path / "many.json", lazy)
    assert (tmp_path / "many.json").read_bytes() == json_bytes(plain)
    assert json.loads(json_bytes(plain))["scenarios"][0]["runs"][-1]["index"] == base.runs - 1


def test_lazy_rows_read_as_the_list(base):
    rows = build_report(base, lazy_runs=True)["runs"]
    plain = build_report(base)["runs"]
    assert isinstance(rows, RunRows) and len(rows) == base.runs
    assert rows == plain and rows[0] == plain[0] and rows[-2:] == plain[-2:]
    assert [r["seed"] for r in rows] == [r["seed"] for r in plain]


def test_the_writer_formats_integers_exactly():
    values = np.array([0, 1, 9, 10, 99, 100, 101, 999, 1000, 12345, -1, -10, -99, 2 ** 63 - 1, -2 ** 63,
                       10 ** 18, 10 ** 17 + 7], np.int64)
    unsigned = np.array([0, 2 ** 64 - 1, 10 ** 19, 5] * 5, np.uint64)[: len(values)]
    out = encode_rows(len(values), [b"[", ("int", values), b",", ("uint", unsigned), b"]"], b",")
    assert json.loads(b"[" + out + b"]") == [[int(a), int(b)] for a, b in zip(values, unsigned, strict=True)]


def test_blocks_join_into_the_rows():
    n = 20_003
    a = np.arange(n, dtype=np.int64) * 7
    template = [b'{"a":', ("int", a), b',"k":', ("ints", np.stack([a % 3, a % 2], 1), [b'"x":', b'"y":'], True), b"}"]
    whole = encode_rows(n, template, b",\n")
    assert b"".join(RowWriter(n, template, b",\n").blocks(rows=997)) == whole
    assert json.loads(b"[" + whole + b"]")[5] == {"a": 35, "k": {"x": 2, "y": 1}}


@pytest.mark.parametrize(("template", "message"), [
    ([("int", np.arange(3))], "a column of shape"),
    ([("pick", np.array([0, 5, 0, 0]), [b"a"])], "a code outside its table"),
    ([("tokens", b"1,2,3")], "3 tokens in a column of 4"),
    ([("tokens", b"1,2,3,4,5")], "more than 4 tokens"),
    ([("ints", np.zeros((4, 2), np.int64), [b'"a":'], False)], "a matrix of shape"),
])
def test_the_writer_refuses_columns_that_do_not_fit(template, message):
    with pytest.raises(ValueError, match=message):
        encode_rows(4, template, b",")


def test_no_rows():
    assert encode_rows(0, [b"{", ("tokens", b""), ("int", np.zeros(0, np.int64)), b"}"], b",") == b""


def test_pieces_are_written_in_order_and_a_failure_leaves_the_old_file(tmp_path):
    from swarm_engine.fsio import write_bytes

    target = tmp_path / "r.json"
    pieces = [bytes([65 + i % 26]) * (1 + i % 7) for i in range(5_000)]
    write_bytes(target, iter(pieces))
    assert target.read_bytes() == b"".join(pieces)

    def broken():
        yield b"half of a new file"
        raise ValueError("the encoder failed")

    with pytest.raises(ValueError, match="the encoder failed"):
        write_bytes(target, broken())
    assert target.read_bytes() == b"".join(pieces)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]          # no temp file left


def test_a_piece_that_cannot_be_written_stops_the_write(tmp_path):
    from swarm_engine.fsio import write_bytes

    made = []

    def pieces():
        for i in range(100):
            made.append(i)
            yield "not bytes" if i == 3 else b"x"

    with pytest.raises(TypeError):
        write_bytes(tmp_path / "r.json", pieces())
    assert not (tmp_path / "r.json").exists() and len(made) < 100      # it stopped early
