"""A fuzzer over the shipped scenarios and the configuration.

Each example takes a shipped scenario (scenarios/**/*.toml) or a config.toml
and breaks it: a value of another type or out of range, a deleted key, a
duplicated table, invisible characters, bytes that are not UTF-8, a cut-off
file. Whatever comes out, the rule holds: bad input is one SwarmError whose
text is one line (and, through the CLI, exit != 0 with exactly one
``error:`` line and no traceback); anything else escaping is a bug.
Mutations that stay valid are run (a few ticks) to show they still work.

Bounded: max_examples and deadlines keep the file well under 60 s on 2 cores
(about 10 s). ``FUZZ_EXAMPLES=5000`` runs a longer search.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from swarm_engine import SwarmError, run_eval
from swarm_engine.cli.main import main
from swarm_engine.eval.loader import parse_scenario
from swarm_engine.settings import DEFAULTS, load_settings
from tests.inprocess import toml_text
from tests.paths import SCENARIOS

SHIPPED = sorted(SCENARIOS.rglob("*.toml"))
TEXTS = {p: p.read_text(encoding="utf-8") for p in SHIPPED}
RAWS = {p: tomllib.loads(t) for p, t in TEXTS.items()}

HOSTILE = [-1, 0, 1, 3, 2**31, 2**63, 2**64, 10**23, -(10**23), 1e300, -1e300, math.nan, math.inf, -math.inf,
           0.5, -0.0, "", "x", "5", "true", "\u200b", "a\u202eb", "\x00", True, False, [], [1, "a"], {}, {"a": 1},
           [[[[[[[[[[[[1]]]]]]]]]]]], "\u00fcn\u00efcode"]
BAD_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf", b"\x80abc", b"\"\"\"", b"[[", b"\\"]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SLOW = settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None)
FEW = settings(max_examples=max(1, EXAMPLES // 8), deadline=5000, suppress_health_check=[HealthCheck.too_slow],
               database=None)


@pytest.fixture(scope="module", autouse=True)
def _small_and_isolated(tmp_path_factory):
    """No user configuration; a small memory limit so a valid mutation never allocates much."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("SWARM_"):
                mp.delenv(key)
        home = tmp_path_factory.mktemp("home")
        (home / ".swarm-engine").mkdir()
        mp.setenv("SWARM_HOME", str(home))
        mp.setenv("SWARM_MEMORY_LIMIT", "256M")
        mp.setenv("COLUMNS", "200")
        yield home


def paths_of(doc, prefix=()) -> list[tuple]:
    """Every key path of a parsed document: tables, arrays, leaves."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out.extend(paths_of(v, (*prefix, k)))
    return out


def set_at(doc, path, value=None, delete=False):
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def assert_one_line(exc: SwarmError) -> None:
    text = str(exc)
    assert text.strip(), "an empty error"
    assert "\n" not in text and "\r" not in text, text
    assert "Traceback" not in text


def try_load(text: str, source: str):
    """The scenario, or None after checking the error is one line; any other exception fails the test."""
    try:
        sc = parse_scenario(text, source)
    except SwarmError as exc:
        assert_one_line(exc)
        event(f"refused: {type(exc).__name__}")
        return None
    event("loaded")
    return sc


def run_if_cheap(sc) -> None:
    cfg = sc.config
    if sc.llm_managed or not 0 < cfg.max_ticks <= 2000 or cfg.tick_duration_ms > 1 or cfg.workers > 64:
        return
    try:
        result = run_eval(sc, 2, 7)
    except SwarmError as exc:           # a run may still refuse (e.g. an environment's own check)
        assert_one_line(exc)
        return
    assert result.runs == 2
    event("ran")


@st.composite
def mutated_scenario(draw):
    path = draw(st.sampled_from(SHIPPED))
    raw = copy.deepcopy(RAWS[path])
    kind = draw(st.sampled_from(["set", "set", "set", "delete", "duplicate", "bytes", "truncate", "encode"]))
    text = TEXTS[path]
    if kind in ("set", "delete"):
        for _ in range(draw(st.integers(1, 3))):          # a few changes at once, of either kind
            paths = paths_of(raw)
            if not paths:
                break
            where = draw(st.sampled_from(paths))
            if draw(st.sampled_from([kind, "set"])) == "set":
                set_at(raw, where, copy.deepcopy(draw(st.sampled_from(HOSTILE))))
            else:
                set_at(raw, where, delete=True)
        return path, toml_text(raw).encode()
    if kind == "duplicate":
        lines = text.splitlines(keepends=True)
        headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("[")]
        start = draw(st.sampled_from(headers))
        end = next((i for i in headers if i > start), len(lines))
        return path, ("".join(lines[:end]) + "".join(lines[start:end]) + "".join(lines[end:])).encode()
    data = text.encode()
    if kind == "bytes":
        at = draw(st.integers(0, len(data)))
        return path, data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
    if kind == "truncate":
        return path, data[:draw(st.integers(0, len(data)))]
    return path, text.encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"])), errors="replace")


def _decode_like_the_loader(data: bytes, source: str) -> str | None:
    from swarm_engine.errors import ScenarioError
    from swarm_engine.inputs.files import decode

    try:
        return decode(data, source, ScenarioError)
    except SwarmError as exc:
        assert_one_line(exc)
        return None


@SLOW
@given(mutated_scenario())
def test_mutated_scenarios_load_or_fail_in_one_line(case):
    path, data = case
    text = _decode_like_the_loader(data, str(path))
    if text is None:
        return
    sc = try_load(text, str(path))
    if sc is not None:
        run_if_cheap(sc)


@FEW
@given(mutated_scenario())
def test_mutated_scenarios_through_the_cli(_small_and_isolated, case):
    path, data = case
    target = _small_and_isolated / f"fuzz{path.suffix}"
    target.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        # --provider none: an LLM-managed scenario must not start loading a model here
        code = main(["eval", str(target), "-n", "2", "-q", "--no-learning", "--provider", "none"])
    errors = [line for line in err.getvalue().splitlines() if line.strip()]
    assert "Traceback" not in err.getvalue() + out.getvalue()
    if code != 0:
        assert code in (1, 2), (code, err.getvalue())
        assert len(errors) == 1 and errors[0].startswith("error: "), err.getvalue()


CONFIG_VALUES = [*HOSTILE, "llama-server", "none", 42, 100, 8080]


@st.composite
def mutated_config(draw):
    doc = copy.deepcopy(DEFAULTS)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "delete", "unknown", "section"]))
        section = draw(st.sampled_from(sorted(doc))) if doc else "eval"
        table = doc.setdefault(section, {})
        if kind == "set" and isinstance(table, dict) and table:
            table[draw(st.sampled_from(sorted(table)))] = copy.deepcopy(draw(st.sampled_from(CONFIG_VALUES)))
        elif kind == "delete" and isinstance(table, dict) and table:
            del table[draw(st.sampled_from(sorted(table)))]
        elif kind == "unknown" and isinstance(table, dict):
            table[draw(st.sampled_from(["run", "Runs", "extra", "seed2"]))] = 1
        else:
            doc[section] = copy.deepcopy(draw(st.sampled_from(CONFIG_VALUES)))   # never the shared object
    data = toml_text(doc).encode()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
    env = draw(st.dictionaries(st.sampled_from(["SWARM_EVAL_RUNS", "SWARM_EVAL_SEED", "SWARM_LEARNING_ENABLED",
                                                "SWARM_LLM_PROVIDER", "SWARM_LEARNING_DAEMON_SERVE_PORT"]),
                               st.one_of(st.sampled_from(["1", "0", "-7", "yes", "maybe", "1e3", " 5 ",
                                                          "18446744073709551616", ""]),
                                         st.text(st.characters(blacklist_characters="\x00"), max_size=8)),
                               max_size=2))
    return data, env


@SLOW
@given(mutated_config())
def test_mutated_configs_load_or_fail_in_one_line(_small_and_isolated, case):
    data, env = case
    config = Path(_small_and_isolated) / ".swarm-engine" / "config.toml"
    config.write_bytes(data)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        s = load_settings()
    except SwarmError as exc:
        assert_one_line(exc)
    else:
        assert 1 <= s.get("eval", "runs") and isinstance(s.get("learning", "enabled"), bool)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        config.unlink()
