"""LearnStats counting, merging and JSON; ScoreModel formulas; the bonus table
against the native kernel's index layout."""

from __future__ import annotations

import numpy as np
import pytest

from swarm_engine.core import make_kernel
from swarm_engine.core.config import ManagementStrategy, SwarmConfig, TerminationConfig
from swarm_engine.core.events import EventBatch
from swarm_engine.eval.environments.troubleshooting import OPS, TROUBLESHOOTING
from swarm_engine.exploration import SelectorConfig
from swarm_engine.learn import Episode, LearnStats, ScoreModel, episodes_from_events, rate

EPS = [
    Episode(["A", "B", "C"], [1, 0, 1], ["x", None, "y"], True, "ucb1"),
    Episode(["A", "C"], [1, 2], ["x", "z"], False, "greedy"),
    Episode(["A", "B", "C"], [True, True, True], ["x", "y", "y"], True, "ucb1"),
]


def test_counts_by_hand():
    s = LearnStats.from_episodes(EPS)
    assert (s.success_episodes, s.failure_episodes, s.episodes) == (2, 1, 3)
    assert s.transitions == {"START->A": [2, 1], "A->B": [2, 0], "B->C": [2, 0], "A->C": [0, 1]}
    assert s.trigrams == {"START->A->B": [2, 0], "A->B->C": [2, 0], "START->A->C": [0, 1]}
    assert s.fourgrams == {"START->A->B->C": [2, 0]}
    # the action's own outcome: 1/True ok, 0 fail, 2 error -> fail
    assert s.contextual == {"START->A": [3, 0], "A->B": [1, 1], "B->C": [2, 0], "A->C": [0, 1]}
    assert s.actions == {"A": [3, 0], "B": [1, 1], "C": [2, 1]}
    assert s.action_targets == {"A": {"x": [3, 0]}, "B": {"-": [0, 1], "y": [1, 0]},
                                "C": {"y": [2, 0], "z": [0, 1]}}
    assert s.strategies == {"ucb1": [2, 2, 6], "greedy": [1, 0, 2]}


def test_mismatched_episode_is_rejected():
    with pytest.raises(ValueError):
        LearnStats.from_episodes([Episode(["A"], [], [], True)])


def test_json_round_trip_and_merge_laws():
    a, b, c = (LearnStats.from_episodes([e]) for e in EPS)
    whole = LearnStats.from_episodes(EPS)
    assert LearnStats.from_json(whole.to_json()) == whole
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c)) == whole
    assert a.merge(LearnStats()) == a
    before = a.to_json()
    a.merge(b)
    assert a.to_json() == before          # merge does not mutate


def test_episodes_from_events_groups_by_run_in_tick_order():
    # two runs, events out of order; run 2 has no events
    cols = dict(run=[1, 0, 0, 1, 0], tick=[0, 2, 0, 1, 1], worker=[0, 0, 0, 0, 0],
                node=[0] * 5, action=[0, 2, 0, 1, 1], target=[3, -1, 1, 2, 1], arg=[-1] * 5,
                outcome=[1, 1, 1, 0, 2], n_discoveries=[0] * 5, duration_ms=[0.0] * 5,
                source=[0, 1, 0, 2, 0])
    ev = EventBatch.from_columns({k: np.asarray(v) for k, v in cols.items()})
    eps = episodes_from_events(ev, ["A", "B", "C"], lambda t: f"t{t}", np.array([1, 0, 1], np.uint8), "ucb1")
    assert len(eps) == 3
    assert eps[0] == Episode(["A", "B", "C"], [1, 2, 1], ["t1", "t1", None], True, "ucb1",
                             ["selector", "selector", "llm"], [None, None, None], [1, 1, None])
    assert eps[1] == Episode(["A", "B"], [1, 0], ["t3", "t2"], False, "ucb1", ["selector", "fallback"],
                             [None, None], [3, 2])
    assert eps[2].actions == [] and eps[2].success
    s = LearnStats.from_episodes(eps)
    assert s.decisions == {"selector": [2, 1], "llm": [1, 0], "fallback": [0, 1]}
    assert s.strategies == {"ucb1": [3, 2, 5]}
    assert s.target_ids == {"t1": 1, "t3": 3, "t2": 2}
    assert s.action_args == {}


def test_action_args_and_target_ids_are_counted_and_merged():
    a = LearnStats.from_episodes([Episode(["Fix", "Fix"], [0, 1], ["s1", "s1"], True, "ucb1", None,
                                          ["restart", "rollback"], [1, 1])])
    b = LearnStats.from_episodes([Episode(["Fix"], [1], ["s2"], True, "ucb1", None, ["rollback"], [2])])
    m = a.merge(b)
    assert m.action_args == {"Fix": {"restart": [0, 1], "rollback": [2, 0]}}
    assert m.target_ids == {"s1": 1, "s2": 2}
    assert LearnStats.from_json(m.to_json()) == m


# ----------------------------------------------------------------------------- scores


def test_scores_by_hand():
    m = ScoreModel.from_stats(LearnStats.from_episodes(EPS))
    assert rate(0, 0) == 0.5
    assert m.transition["START->A"] == pytest.approx(3 / 5)       # (2+1)/(3+2)
    assert m.transition["A->C"] == pytest.approx(1 / 3)
    assert m.ngram["A->B->C"] == pytest.approx(3 / 4)
    assert m.action["C"] == pytest.approx(3 / 5)                  # B->C [2,0] + A->C [0,1]
    assert m.contextual["A->B"] == pytest.approx(2 / 4)
    # n-gram seen -> n-gram
    assert m.confidence("C", "B", "A") == pytest.approx(3 / 4)
    assert m.confidence("B", "A", None) == pytest.approx(3 / 4)    # START->A->B [2,0]
    # n-gram unseen -> transition
    assert m.confidence("C", "A", "B") == pytest.approx(1 / 3)
    # no previous action -> START transition
    assert m.confidence("A") == pytest.approx(3 / 5)
    # transition unseen -> action
    assert m.confidence("C", "C", "C") == pytest.approx(3 / 5)
    # action unseen -> unseen (0.0)
    assert m.confidence("Z", "A") == 0.0
    # ngram_weight blends the n-gram with its fallback
    blend = ScoreModel(action={"B": 0.6}, transition={"A->B": 0.2}, contextual={},
                       ngram={"START->A->B": 0.8}, ngram_weight=0.25)
    assert blend.confidence("B", "A") == pytest.approx(0.25 * 0.8 + 0.75 * 0.2)
    assert blend.confidence("B", "A", "X") == pytest.approx(0.2)      # n-gram unseen
    assert blend.confidence("B", "Q") == pytest.approx(0.6)           # transition unseen
    with pytest.raises(ValueError):
        ScoreModel.from_stats(LearnStats(), ngram_weight=2.0)


def test_bonus_table_layout():
    names = ["A", "B", "C"]
    m = ScoreModel.from_stats(LearnStats.from_episodes(EPS))
    t = m.bonus_table(names)
    A = 3
    assert t.shape == ((A + 1) ** 2 * A,) and t.dtype == np.float64
    assert ((t >= 0) & (t <= 1)).all()

    def at(pp, p, a):
        return t[((pp + 1) * (A + 1) + (p + 1)) * A + a]

    for pp in range(-1, A):
        for p in range(-1, A):
            for a in range(A):
                exp = m.confidence(names[a], names[p] if p >= 0 else None,
                                   names[pp] if (pp >= 0 and p >= 0) else None)
                assert at(pp, p, a) == exp
    assert at(0, 1, 2) == pytest.approx(3 / 4)       # A->B->C
    assert at(-1, -1, 0) == pytest.approx(3 / 5)     # START->A


def _greedy_kernel(bonus):
    binding = TROUBLESHOOTING.bind({"services": 4, "error_rate": 0.0, "noise": 0.25}, list(OPS), None)
    graph = TROUBLESHOOTING.default_graph(list(OPS), {})
    cfg = SwarmConfig(workers=1, max_ticks=1000, management=ManagementStrategy("every_tick", 10, 10),
                      termination=TerminationConfig("first_success", "fail", 0, 0, 1),
                      selector=SelectorConfig("greedy", granularity="action_target"))
    k = make_kernel(graph.compile(), binding, cfg, record_events=True)
    if bonus is not None:
        k.set_bonus(bonus)
    k.reset(1)
    k.step(2)
    return k.take_events()


def test_bonus_table_steers_greedy_in_the_kernel():
    names = list(OPS)
    assert names[1] == "ReadLogs" and names[2] == "AnalyzeMetrics"
    # without a bonus Greedy keeps frontier order: ReadLogs second
    assert names[int(_greedy_kernel(None)["action"][1])] == "ReadLogs"
    # episodes where CheckStatus -> AnalyzeMetrics succeeds and CheckStatus -> ReadLogs fails
    good = Episode(["CheckStatus", "AnalyzeMetrics", "Diagnose"], [1, 1, 1], [None] * 3, True, "greedy")
    bad = Episode(["CheckStatus", "ReadLogs", "Diagnose"], [1, 1, 1], [None] * 3, False, "greedy")
    m = ScoreModel.from_stats(LearnStats.from_episodes([good, good, bad, bad]))
    assert m.confidence("AnalyzeMetrics", "CheckStatus") > m.confidence("ReadLogs", "CheckStatus")
    ev = _greedy_kernel(m.bonus_table(names))
    assert names[int(ev["action"][0])] == "CheckStatus"
    assert names[int(ev["action"][1])] == "AnalyzeMetrics"
    # the reverse preference steers the other way
    m2 = ScoreModel.from_stats(LearnStats.from_episodes([good._replace(success=False), bad._replace(success=True)]))
    assert names[int(_greedy_kernel(m2.bonus_table(names))["action"][1])] == "ReadLogs"
