"""Learning triggers: the spec language and each kind's decision, on a fake clock."""

from __future__ import annotations

import pytest

from swarm_engine.errors import ConfigError
from swarm_engine.learn.triggers import (
    DEFAULT_TRIGGER,
    AllOf,
    Always,
    AnyOf,
    EveryEpisodes,
    EveryInterval,
    Manual,
    Never,
    Observation,
    QualityBelow,
    QualityDrop,
    TriggerTracker,
    format_duration,
    parse_trigger,
)


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def tracker(spec: str) -> tuple[TriggerTracker, FakeClock]:
    clock = FakeClock()
    return TriggerTracker(parse_trigger(spec), clock=clock), clock


@pytest.mark.parametrize("spec, expected", [
    ("100 episodes", EveryEpisodes(100)),
    ("every 100 episodes", EveryEpisodes(100)),
    ("1 episode", EveryEpisodes(1)),
    ("50 eps", EveryEpisodes(50)),
    ("1h", EveryInterval(3600)),
    ("every 10 min", EveryInterval(600)),
    ("90 seconds", EveryInterval(90)),
    ("1h30m", EveryInterval(5400)),
    ("1.5 hours", EveryInterval(5400)),
    ("2 days", EveryInterval(2 * 86400)),
    ("quality_drop 0.1", QualityDrop(0.1)),
    ("quality drop 10%", QualityDrop(0.1)),
    ("drop 0.25 window 40", QualityDrop(0.25, 40)),
    ("quality below 0.5", QualityBelow(0.5)),
    ("quality < 50% over 10 episodes", QualityBelow(0.5, 10)),
    ("always", Always()),
    ("manual", Manual()),
    ("NEVER", Never()),
    ("100 episodes or 1h", AnyOf(EveryEpisodes(100), EveryInterval(3600))),
    ("100 episodes || 1h", AnyOf(EveryEpisodes(100), EveryInterval(3600))),
    ("quality_drop 0.1 and 50 episodes", AllOf(QualityDrop(0.1), EveryEpisodes(50))),
    ("quality_drop 0.1 && 50 episodes", AllOf(QualityDrop(0.1), EveryEpisodes(50))),
    # "and" binds tighter than "or"
    ("quality_drop 0.1 and 50 episodes or 6h",
     AnyOf(AllOf(QualityDrop(0.1), EveryEpisodes(50)), EveryInterval(6 * 3600))),
    ("quality_drop 0.1 and (50 episodes or 6h)",
     AllOf(QualityDrop(0.1), AnyOf(EveryEpisodes(50), EveryInterval(6 * 3600)))),
    ("10 episodes or 20 episodes or 1h", AnyOf(EveryEpisodes(10), EveryEpisodes(20), EveryInterval(3600))),
])
def test_spec_parses_and_reads_back(spec, expected):
    t = parse_trigger(spec)
    assert t == expected
    assert parse_trigger(t.describe()) == t


def test_default_is_100_episodes_or_an_hour():
    assert parse_trigger(None) == parse_trigger("") == parse_trigger(DEFAULT_TRIGGER)
    assert parse_trigger(None) == AnyOf(EveryEpisodes(100), EveryInterval(3600))


@pytest.mark.parametrize("spec, words", [
    ("100", 'cannot read "100"'),
    ("foo or 1h", 'cannot read "foo"'),
    ("(1h", '"(" is not closed'),
    ("1h)", 'unexpected ")"'),
    ("1h or", 'cannot read "(nothing)"'),
    ("quality_drop 2", "between 0 and 1"),
    ("0 episodes", "at least 1"),
    ("0s", "positive duration"),
    ("quality below 0.5 window 0", "at least 1 episode"),
])
def test_bad_specs_are_one_clear_line(spec, words):
    with pytest.raises(ConfigError) as e:
        parse_trigger(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("seconds, text", [(3600, "1h"), (5400, "1h30m"), (90, "1m30s"), (86400 + 60, "1d1m"),
                                           (0, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_episodes_count_since_the_last_learn():
    tr, _ = tracker("100 episodes")
    tr.add(60, 30)
    assert tr.due() is None
    tr.add(40, 40)
    assert tr.due() == "100 new episodes (>= 100)"
    tr.reset()
    assert tr.new_episodes == 0 and tr.due() is None


def test_interval_counts_from_the_last_learn_on_the_injected_clock():
    tr, clock = tracker("30m")
    tr.add(1, 1)
    clock.advance(29 * 60)
    assert tr.due() is None
    assert tr.next_info()["due_in_s"] == 60
    clock.advance(60)
    assert tr.due() == "30m since the last learn (>= 30m)"
    tr.reset()
    tr.add(1, 1)
    assert tr.due() is None
    clock.advance(30 * 60)
    assert tr.due() is not None


def test_time_alone_with_nothing_new_is_skipped_and_restarts_the_clock():
    tr, clock = tracker("10m")
    clock.advance(11 * 60)
    assert tr.due() is None              # nothing to learn from
    tr.add(5, 5)
    assert tr.due() is None              # the clock restarted at the skip
    clock.advance(10 * 60)
    assert tr.due() is not None


def test_default_fires_on_either_part():
    tr, clock = tracker(DEFAULT_TRIGGER)
    tr.add(99, 50)
    clock.advance(59 * 60)
    assert tr.due() is None
    tr.add(1, 0)
    assert "100 new episodes" in tr.due()
    tr.reset()
    tr.add(3, 1)
    clock.advance(3600)
    assert "1h since the last learn" in tr.due()


def obs(sessions, now=0.0):
    return Observation(now=now, since=0.0, sessions=tuple(sessions))


def test_quality_drop_compares_disjoint_windows():
    t = QualityDrop(0.1, window=20)
    assert not t.fires(obs([(20, 16)]))                      # no recent window yet
    assert not t.fires(obs([(20, 16), (10, 0)]))             # windows would overlap
    assert t.fires(obs([(20, 16), (20, 14)]))                # 0.8 -> 0.7
    assert not t.fires(obs([(20, 16), (20, 15)]))            # 0.8 -> 0.75
    assert not t.fires(obs([(20, 10), (20, 18)]))            # it got better
    # recent = the newest sessions covering the window; the middle does not count
    assert t.fires(obs([(20, 20), (100, 100), (20, 10)]))
    p = t.progress(obs([(20, 16), (20, 14)]))[0]
    assert p["baseline"] == pytest.approx(0.8) and p["recent"] == pytest.approx(0.7) and p["fires"]


def test_quality_below_uses_the_recent_window():
    t = QualityBelow(0.5, window=10)
    assert not t.fires(obs([(5, 0)]))                        # window not full
    assert t.fires(obs([(5, 0), (5, 2)]))
    assert not t.fires(obs([(10, 0), (10, 6)]))


def test_and_needs_every_part():
    tr, _ = tracker("quality_drop 0.1 and 50 episodes")
    tr.add(20, 20)
    tr.add(20, 10)                       # dropped by 0.5, but only 40 episodes
    assert tr.due() is None
    tr.add(10, 5)
    reason = tr.due()
    assert "success rate fell from 100% to" in reason and "50 new episodes" in reason


def test_always_fires_whenever_something_is_new():
    tr, _ = tracker("always")
    assert tr.due() is None
    tr.add(1, 0)
    assert tr.due() == "always"


@pytest.mark.parametrize("spec, honoured", [("manual", True), ("never", False), ("100 episodes", True),
                                            ("never or manual", True)])
def test_manual_requests(spec, honoured):
    tr, clock = tracker(spec)
    clock.advance(10 ** 6)
    tr.add(10 ** 6, 0)
    if spec in ("manual", "never", "never or manual"):
        assert tr.due() is None          # these never fire by themselves
    assert tr.request() is honoured
    assert (tr.due() == "manual request") is honoured
    tr.reset()
    assert not tr.manual_requested


def test_next_info_reports_each_part():
    tr, clock = tracker("100 episodes or 1h")
    tr.add(30, 10)
    clock.advance(600)
    info = tr.next_info()
    assert info["spec"] == "100 episodes or 1h" and info["new_episodes"] == 30
    assert info["due_in_s"] == 3000
    episodes, time_part = info["parts"]
    assert episodes == {"kind": "episodes", "have": 30, "need": 100, "fires": False}
    assert time_part["kind"] == "time" and time_part["due_in_s"] == 3000
    assert tracker("manual")[0].next_info()["due_in_s"] is None
    assert tracker("100 episodes")[0].next_info()["due_in_s"] is None
