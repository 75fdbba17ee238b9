"""Report statistics against hand-computed values, and the report built from them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_engine import StoreError, build_report, run_eval
from swarm_engine.eval.report import KS, SCHEMA_VERSION, write_json_atomic
from swarm_engine.eval.stats import Z95, pass_at_k, pass_hat_k, summarize, wilson
from tests.paths import SCENARIOS

Z2 = Z95 ** 2        # 3.841458820694124


# ----------------------------------------------------------------------------- wilson


@pytest.mark.parametrize(("successes", "n", "lo", "hi"), [
    # p = 1/2: centre 1/2, half = z sqrt(1/40 + z^2/400) / (1 + z^2/10)
    (5, 10, 0.5 - Z95 * math.sqrt(0.025 + Z2 / 400) / (1 + Z2 / 10),
     0.5 + Z95 * math.sqrt(0.025 + Z2 / 400) / (1 + Z2 / 10)),
    (5, 10, 0.236593, 0.763407),                    # the textbook value
    (0, 10, 0.0, Z2 / (10 + Z2)),                   # 0.277533
    (1, 3, 0.061492, 0.792340),
])
def test_wilson(successes, n, lo, hi):
    got = wilson(successes, n)
    assert got == pytest.approx((lo, hi), abs=1e-6)


def test_wilson_without_runs():
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_wilson_is_exact_at_the_ends(n):
    # the docstring promises exact bounds at 0 and n (a report shows them)
    assert wilson(0, n)[0] == 0.0
    assert wilson(n, n)[1] == 1.0
    assert wilson(n, n)[0] == pytest.approx(1.0 - wilson(0, n)[1])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_brackets_the_rate(cn):
    c, n = cn
    lo, hi = wilson(c, n)
    assert 0.0 <= lo <= c / n + 1e-12
    assert c / n - 1e-12 <= hi <= 1.0


def test_wilson_narrows_with_more_runs():
    widths = [np.subtract(*wilson(n // 2, n)[::-1]) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]


# ----------------------------------------------------------------------------- pass@k, pass^k


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 3, 1, 0.3),
    (10, 3, 2, 1 - 21 / 45),          # 1 - C(7,2)/C(10,2)
    (10, 3, 7, 1 - 1 / 120),          # 1 - C(7,7)/C(10,7)
    (10, 3, 8, 1.0),
    (5, 0, 2, 0.0),
    (4, 4, 4, 1.0),
    (4, 1, 4, 1.0),
    (8, 2, 3, 1 - 20 / 56),           # 1 - C(6,3)/C(8,3)
])
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 3, 1, 0.3),
    (10, 3, 2, 3 / 45),               # C(3,2)/C(10,2)
    (10, 3, 4, 0.0),                  # fewer than k successes
    (10, 10, 8, 1.0),
    (4, 2, 1, 0.5),
    (8, 6, 3, 20 / 56),               # C(6,3)/C(8,3)
])
def test_pass_hat_k(n, c, k, expected):
    assert pass_hat_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("fn", [pass_at_k, pass_hat_k])
def test_k_larger_than_n(fn):
    assert fn(3, 2, 4) is None


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_against_binomials(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-9)
    assert pass_hat_k(n, c, k) == pytest.approx(math.comb(c, k) / math.comb(n, k), abs=1e-9)


# ----------------------------------------------------------------------------- summarize


def test_summarize():
    s = summarize(np.array([4, 1, 3, 2]))
    std = math.sqrt(5 / 3)
    assert s["n"] == 4
    assert s["mean"] == 2.5
    assert s["std"] == pytest.approx(std)
    assert s["mean_ci95"] == pytest.approx([2.5 - Z95 * std / 2, 2.5 + Z95 * std / 2])
    assert s["p50"] == 2.5
    assert s["p95"] == pytest.approx(3.85)           # linear interpolation: 1 + 0.95 * 3
    assert s["p50_ci95"] == [1.0, 4.0]
    assert s["p95_ci95"] == [2.0, 4.0]
    assert (s["min"], s["max"]) == (1.0, 4.0)


def test_summarize_median_interval():
    # n = 100: the distribution-free 95% interval of the median is (x_(40), x_(61))
    s = summarize(np.arange(1, 101))
    assert s["p50_ci95"] == [40.0, 61.0]
    assert s["p50"] == 50.5


def test_summarize_one_value():
    s = summarize(np.array([3]))
    assert s["std"] == 0.0 and s["mean_ci95"] == [3.0, 3.0]
    assert s["p50"] == s["p95"] == s["min"] == s["max"] == 3.0


def test_summarize_nothing():
    s = summarize(np.array([]))
    assert s["n"] == 0
    assert all(v is None for k, v in s.items() if k != "n")


# ----------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def result():
    from swarm_engine import load_scenario

    path = SCENARIOS / "troubleshooting.toml"
    sc = load_scenario(path, overrides={"environment": {"params": {"error_rate": 0.3}}})
    return run_eval(sc, 60, seed=5)


class TestReport:
    def test_summary_is_consistent(self, result):
        rep = build_report(result)
        s = rep["summary"]
        n, c = result.runs, int(result.success.sum())
        assert rep["schema_version"] == SCHEMA_VERSION
        assert (s["runs"], s["requested"], s["successes"]) == (60, 60, c)
        assert 0 < c < 60
        assert s["success_rate"] == c / n
        assert s["success_rate_ci95"] == list(wilson(c, n))
        assert s["pass_at_k"] == {str(k): pass_at_k(n, c, k) for k in KS}
        assert s["pass_hat_k"] == {str(k): pass_hat_k(n, c, k) for k in KS}
        assert s["total_actions"] == int(result.actions.sum())
        assert sum(s["actions_by_kind"].values()) == s["total_actions"]
        assert s["ticks"] == summarize(result.ticks)
        assert s["actions_to_success"]["n"] == c

    def test_runs(self, result):
        rep = build_report(result)
        runs = rep["runs"]
        assert [r["seed"] for r in runs] == list(range(5, 65))
        assert rep["seed_info"] == {"base_seed": 5, "run_seeds": [5, 64]}
        for r, ok in zip(runs, result.success):
            assert r["success"] == bool(ok)
            assert r["termination_reason"] == ("Success" if ok else "Failure")
            assert sum(r["actions_by_kind"].values()) == r["actions"]
        assert build_report(result, include_runs=False).keys() == rep.keys() - {"runs"}

    def test_write_json_atomic(self, result, tmp_path):
        path = tmp_path / "deep" / "report.json"
        write_json_atomic(path, build_report(result))
        assert json.loads(path.read_text(encoding="utf-8"))["summary"]["runs"] == 60
        assert [p.name for p in path.parent.iterdir()] == ["report.json"]     # no temp file left

    def test_write_failure_is_a_store_error(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("x", encoding="utf-8")
        with pytest.raises(StoreError, match="cannot write"):
            write_json_atomic(blocker / "report.json", {"a": 1})


@pytest.mark.parametrize(("runs", "seed", "message"), [
    (0, 1, r"runs must be at least 1, got 0"),
    (-3, 1, r"runs must be at least 1, got -3"),
    (2, -1, r"seeds must lie in \[0, 2\^64\), got 2 runs from seed -1"),
    (2, 2 ** 64 - 1, r"seeds must lie in \[0, 2\^64\), got 2 runs from seed 18446744073709551615"),
])
def test_run_eval_rejects_a_bad_request_as_a_config_error(troubleshooting, runs, seed, message):
    from swarm_engine import ConfigError

    with pytest.raises(ConfigError, match=message):
        run_eval(troubleshooting, runs, seed=seed)


def test_run_eval_takes_the_last_seed(troubleshooting):
    assert run_eval(troubleshooting, 1, seed=2 ** 64 - 1).runs == 1
