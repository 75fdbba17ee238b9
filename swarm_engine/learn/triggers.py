"""When the learning daemon learns: triggers as pure logic over an observation.

A trigger looks at an :class:`Observation` (the clock, when the model was last
learned, the sessions recorded since) and says whether to learn now. Nothing
here reads files or the real clock: :class:`TriggerTracker` holds the state
and takes its clock as an argument, so tests drive time by hand.

Kinds (the original's TriggerBuilder, plus a relative quality drop)::

    Trigger
    ├── EveryEpisodes(n)          n new episodes since the last learn        "100 episodes"
    ├── EveryInterval(seconds)    that long since the last learn             "1h", "30m", "1h30m"
    ├── QualityDrop(drop, window) recent success rate fell by ``drop``       "quality_drop 0.1"
    ├── QualityBelow(rate, window) recent success rate under ``rate``        "quality below 0.5"
    ├── Always                    at every check                             "always"
    ├── Manual                    only when asked (SIGUSR1, --now)           "manual"
    ├── Never                     not even when asked: serving only          "never"
    ├── AnyOf(a, b, ...)          any part fires                             "... or ..."
    └── AllOf(a, b, ...)          every part fires                           "... and ..."

``and`` binds tighter than ``or``; parentheses group: ``"quality_drop 0.1 and
50 episodes or 6h"`` is ``(drop and 50 episodes) or 6 hours``. The daemon's
default is ``"100 episodes or 1h"``.

Quality is the success rate of the sessions recorded since the last learn.
The *baseline* is their first ``window`` episodes (what the current model
achieved right after it was applied), *recent* their last ``window``; a drop
is only judged when the two windows do not overlap, so one bad session right
after a learn cannot fire it.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from swarm_engine.errors import ConfigError

__all__ = ["Observation", "Trigger", "EveryEpisodes", "EveryInterval", "QualityDrop", "QualityBelow",
           "Always", "Manual", "Never", "AnyOf", "AllOf", "parse_trigger", "format_duration",
           "TriggerTracker", "DEFAULT_TRIGGER", "DEFAULT_QUALITY_WINDOW"]

DEFAULT_TRIGGER = "100 episodes or 1h"
DEFAULT_QUALITY_WINDOW = 20          # episodes per quality window


@dataclass(frozen=True)
class Observation:
    """What a trigger decides on.

    Attributes
    ----------
    now: clock seconds (any monotonic origin).
    since: clock seconds of the last learn (or of the daemon's start).
    sessions: ``(episodes, successes)`` of each session recorded since, oldest first.
    """

    now: float
    since: float
    sessions: tuple[tuple[int, int], ...] = ()

    @property
    def new_episodes(self) -> int:
        return sum(e for e, _ in self.sessions)

    @property
    def elapsed(self) -> float:
        return max(0.0, self.now - self.since)


def _window(sessions: Sequence[tuple[int, int]], size: int, *, newest: bool) -> tuple[int, int]:
    """(episodes, successes) of whole sessions from one end until ``size`` episodes are covered."""
    eps = succ = 0
    for e, s in (reversed(sessions) if newest else sessions):
        if eps >= size:
            break
        eps += e
        succ += s
    return eps, succ


def _rate(pair: tuple[int, int]) -> float | None:
    return pair[1] / pair[0] if pair[0] > 0 else None


def format_duration(seconds: float) -> str:
    """3600 -> "1h", 5400 -> "1h30m", 90 -> "1m30s"; the parser reads it back."""
    s = int(round(seconds))
    if s <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += f"{s // size}{unit}"
            s %= size
    return out


class Trigger(ABC):
    """One condition for learning. Subclasses are immutable values."""

    #: False for triggers that never fire by themselves (manual, never)
    automatic: bool = True
    #: whether a manual request (SIGUSR1, ``--now``) is honoured
    accepts_manual: bool = True

    @abstractmethod
    def fires(self, obs: Observation) -> bool:
        """Whether to learn now."""

    @abstractmethod
    def describe(self) -> str:
        """The spec, in the form :func:`parse_trigger` reads back."""

    def progress(self, obs: Observation) -> list[dict]:
        """Where each part stands, for ``daemon.json``: one dict per leaf."""
        return [{"kind": self.describe(), "fires": self.fires(obs)}]

    def due_in(self, obs: Observation) -> float | None:
        """Seconds until this fires on time alone, if that can be known (None: not time-bound)."""
        return None

    def reasons(self, obs: Observation) -> list[str]:
        """The parts that fire, in words (empty when it does not fire)."""
        return [self.describe()] if self.fires(obs) else []

    def __str__(self) -> str:
        return self.describe()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items(), key=lambda kv: kv[0]))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"


class EveryEpisodes(Trigger):
    """``n`` new episodes since the last learn."""

    def __init__(self, n: int) -> None:
        if int(n) < 1:
            raise ConfigError(f"trigger: episodes must be at least 1, got {n}")
        self.n = int(n)

    def fires(self, obs: Observation) -> bool:
        return obs.new_episodes >= self.n

    def describe(self) -> str:
        return f"{self.n} episodes"

    def progress(self, obs: Observation) -> list[dict]:
        return [{"kind": "episodes", "have": obs.new_episodes, "need": self.n, "fires": self.fires(obs)}]

    def reasons(self, obs: Observation) -> list[str]:
        return [f"{obs.new_episodes} new episodes (>= {self.n})"] if self.fires(obs) else []


class EveryInterval(Trigger):
    """``seconds`` since the last learn (or since the daemon started)."""

    def __init__(self, seconds: float) -> None:
        if not float(seconds) > 0 or math.isinf(float(seconds)):
            raise ConfigError(f"trigger: an interval must be a positive duration, got {seconds}")
        self.seconds = float(seconds)

    def fires(self, obs: Observation) -> bool:
        return obs.elapsed >= self.seconds

    def describe(self) -> str:
        return format_duration(self.seconds)

    def due_in(self, obs: Observation) -> float | None:
        return max(0.0, self.seconds - obs.elapsed)

    def progress(self, obs: Observation) -> list[dict]:
        return [{"kind": "time", "elapsed_s": round(obs.elapsed, 3), "need_s": self.seconds,
                 "due_in_s": round(self.due_in(obs) or 0.0, 3), "fires": self.fires(obs)}]

    def reasons(self, obs: Observation) -> list[str]:
        return [f"{format_duration(obs.elapsed)} since the last learn (>= {self.describe()})"] \
            if self.fires(obs) else []


class _Quality(Trigger):
    def __init__(self, value: float, window: int = DEFAULT_QUALITY_WINDOW) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"trigger: {self._word} expects a success rate between 0 and 1 "
                              f"(or a percentage), got {value:g}")
        if int(window) < 1:
            raise ConfigError(f"trigger: a quality window must be at least 1 episode, got {window}")
        self.value = value
        self.window = int(window)

    _word = "quality"

    def _suffix(self) -> str:
        return "" if self.window == DEFAULT_QUALITY_WINDOW else f" window {self.window}"


class QualityDrop(_Quality):
    """The recent success rate fell ``value`` (absolute, 0.1 = ten points) below the baseline.

    Baseline: the first ``window`` episodes since the last learn; recent: the
    last ``window``. Judged only when the two windows are disjoint.
    """

    _word = "quality_drop"

    def _rates(self, obs: Observation) -> tuple[float | None, float | None]:
        if obs.new_episodes < 2 * self.window:
            return None, None
        # the baseline takes whole sessions, so it may hold more than `window` episodes;
        # the recent window must then start after it
        base = _window(obs.sessions, self.window, newest=False)
        recent = _window(obs.sessions, self.window, newest=True)
        if base[0] + recent[0] > obs.new_episodes:
            return _rate(base), None
        return _rate(base), _rate(recent)

    def fires(self, obs: Observation) -> bool:
        base, recent = self._rates(obs)
        # the tolerance keeps "0.8 -> 0.7 is a drop of 0.1" true in binary floating point
        return base is not None and recent is not None and base - recent >= self.value - 1e-9

    def describe(self) -> str:
        return f"quality_drop {self.value:g}{self._suffix()}"

    def progress(self, obs: Observation) -> list[dict]:
        base, recent = self._rates(obs)
        return [{"kind": "quality_drop", "baseline": base, "recent": recent, "need": self.value,
                 "window": self.window, "fires": self.fires(obs)}]

    def reasons(self, obs: Observation) -> list[str]:
        if not self.fires(obs):
            return []
        base, recent = self._rates(obs)
        return [f"success rate fell from {base:.0%} to {recent:.0%} (drop >= {self.value:g})"]


class QualityBelow(_Quality):
    """The success rate of the last ``window`` episodes is under ``value``."""

    _word = "quality below"

    def _recent(self, obs: Observation) -> float | None:
        recent = _window(obs.sessions, self.window, newest=True)
        return _rate(recent) if recent[0] >= self.window else None

    def fires(self, obs: Observation) -> bool:
        r = self._recent(obs)
        return r is not None and r < self.value

    def describe(self) -> str:
        return f"quality below {self.value:g}{self._suffix()}"

    def progress(self, obs: Observation) -> list[dict]:
        return [{"kind": "quality_below", "recent": self._recent(obs), "need": self.value,
                 "window": self.window, "fires": self.fires(obs)}]

    def reasons(self, obs: Observation) -> list[str]:
        return [f"success rate {self._recent(obs):.0%} < {self.value:g}"] if self.fires(obs) else []


class Always(Trigger):
    """Fires at every check (the daemon still skips when nothing new was recorded)."""

    def fires(self, obs: Observation) -> bool:
        return True

    def describe(self) -> str:
        return "always"


class Manual(Trigger):
    """Never fires by itself; a manual request (SIGUSR1, ``--now``) makes the daemon learn."""

    automatic = False

    def fires(self, obs: Observation) -> bool:
        return False

    def describe(self) -> str:
        return "manual"


class Never(Trigger):
    """No learning at all, not even on request: a daemon that only counts and serves."""

    automatic = False
    accepts_manual = False

    def fires(self, obs: Observation) -> bool:
        return False

    def describe(self) -> str:
        return "never"


class _Composite(Trigger):
    _word = ""
    parts: tuple[Trigger, ...]

    def __init__(self, *parts: Trigger) -> None:
        if len(parts) < 2:
            raise ConfigError(f"trigger: '{self._word}' needs two or more parts")
        flat: list[Trigger] = []
        for p in parts:                       # (a or b) or c == a or b or c
            flat.extend(p.parts if isinstance(p, _Composite) and type(p) is type(self) else (p,))
        self.parts = tuple(flat)

    @property
    def automatic(self) -> bool:              # type: ignore[override]
        return any(p.automatic for p in self.parts)

    @property
    def accepts_manual(self) -> bool:         # type: ignore[override]
        return any(p.accepts_manual for p in self.parts)

    def describe(self) -> str:
        return f" {self._word} ".join(f"({p.describe()})" if isinstance(p, _Composite) else p.describe()
                                      for p in self.parts)

    def progress(self, obs: Observation) -> list[dict]:
        return [d for p in self.parts for d in p.progress(obs)]


class AnyOf(_Composite):
    """Fires when any part fires."""

    _word = "or"

    def fires(self, obs: Observation) -> bool:
        return any(p.fires(obs) for p in self.parts)

    def due_in(self, obs: Observation) -> float | None:
        times = [t for t in (p.due_in(obs) for p in self.parts) if t is not None]
        return min(times) if times else None

    def reasons(self, obs: Observation) -> list[str]:
        return [r for p in self.parts for r in p.reasons(obs)]


class AllOf(_Composite):
    """Fires when every part fires."""

    _word = "and"

    def fires(self, obs: Observation) -> bool:
        return all(p.fires(obs) for p in self.parts)

    def due_in(self, obs: Observation) -> float | None:
        # all parts must hold; only a pure-time conjunction has a known due time
        times = [p.due_in(obs) for p in self.parts]
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    def reasons(self, obs: Observation) -> list[str]:
        return [r for p in self.parts for r in p.reasons(obs)] if self.fires(obs) else []


# --- the spec language ----------------------------------------------------------

_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400}
_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_DURATION_PART = re.compile(rf"{_NUM}\s*({'|'.join(sorted(_UNITS, key=len, reverse=True))})(?![a-z])")
_EPISODES = re.compile(r"^(\d+)\s*(?:episodes?|eps?|runs?)$")
_QUALITY = re.compile(rf"^(quality[ _-]?drop|drop|quality[ _-]?below|success[ _-]?rate[ _-]?below|"
                      rf"quality\s*<|success[ _-]?rate\s*<)\s*{_NUM}\s*(%?)(?:\s+(?:window|over)\s+(\d+)"
                      rf"(?:\s*(?:episodes?|eps?|runs?))?)?$")
_EXPECTED = ('expected e.g. "100 episodes", "30m", "1h", "quality_drop 0.1", "quality below 0.5", '
             '"manual", "never", "always", joined with "and"/"or" and grouped with parentheses')


def _duration(text: str) -> float | None:
    """Seconds in "1h30m", "90 s", "1.5 hours"; None when ``text`` is not a duration."""
    pos, total, n = 0, 0.0, 0
    text = text.strip()
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
        n += 1
    return total if n else None


def _leaf(words: list[str], spec: str) -> Trigger:
    text = " ".join(words)
    if words and words[0] == "every":
        text = " ".join(words[1:])
    fixed: dict[str, Callable[[], Trigger]] = {"always": Always, "manual": Manual, "never": Never}
    if text in fixed:
        return fixed[text]()
    m = _EPISODES.match(text)
    if m:
        return EveryEpisodes(int(m.group(1)))
    m = _QUALITY.match(text)
    if m:
        kind, value, pct, window = m.groups()
        v = float(value) / (100.0 if pct else 1.0)
        w = int(window) if window else DEFAULT_QUALITY_WINDOW
        return QualityDrop(v, w) if "drop" in kind else QualityBelow(v, w)
    seconds = _duration(text)
    if seconds is not None:
        return EveryInterval(seconds)
    raise ConfigError(f'trigger "{spec}": cannot read "{text or "(nothing)"}"; {_EXPECTED}')


def parse_trigger(spec: str | Trigger | None) -> Trigger:
    """Read a trigger spec such as ``"100 episodes or 1h"``; a Trigger passes through.

    ``None`` or an empty string gives :data:`DEFAULT_TRIGGER`. ``||`` and ``&&``
    are accepted for ``or`` and ``and``.

    Raises
    ------
    ConfigError
        One line naming the part that could not be read.
    """
    if isinstance(spec, Trigger):
        return spec
    if spec is None or not str(spec).strip():
        spec = DEFAULT_TRIGGER
    spec = str(spec)
    text = spec.lower().replace("||", " or ").replace("&&", " and ").replace("(", " ( ").replace(")", " ) ")
    tokens = text.replace(",", " ").split()
    pos = 0

    def parse_or() -> Trigger:
        nonlocal pos
        parts = [parse_and()]
        while pos < len(tokens) and tokens[pos] == "or":
            pos += 1
            parts.append(parse_and())
        return parts[0] if len(parts) == 1 else AnyOf(*parts)

    def parse_and() -> Trigger:
        nonlocal pos
        parts = [parse_atom()]
        while pos < len(tokens) and tokens[pos] == "and":
            pos += 1
            parts.append(parse_atom())
        return parts[0] if len(parts) == 1 else AllOf(*parts)

    def parse_atom() -> Trigger:
        nonlocal pos
        if pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            inner = parse_or()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise ConfigError(f'trigger "{spec}": a "(" is not closed')
            pos += 1
            return inner
        words: list[str] = []
        while pos < len(tokens) and tokens[pos] not in ("and", "or", "(", ")"):
            words.append(tokens[pos])
            pos += 1
        return _leaf(words, spec)

    trigger = parse_or()
    if pos != len(tokens):
        raise ConfigError(f'trigger "{spec}": unexpected "{tokens[pos]}"; {_EXPECTED}')
    return trigger


# --- state ------------------------------------------------------------------------

@dataclass
class TriggerTracker:
    """A trigger plus what it needs to remember: when the model was last learned
    and the sessions recorded since.

    Parameters
    ----------
    trigger:
        A :class:`Trigger` or a spec string.
    clock:
        Seconds, monotonic (default ``time.monotonic``); tests pass a fake.
    """

    trigger: Trigger
    clock: Callable[[], float] = time.monotonic
    since: float = field(default=math.nan)
    sessions: list[tuple[int, int]] = field(default_factory=list)
    manual_requested: bool = False

    def __post_init__(self) -> None:
        self.trigger = parse_trigger(self.trigger)
        if math.isnan(self.since):
            self.since = self.clock()

    def add(self, episodes: int, successes: int) -> None:
        """Record one session (``episodes`` runs, ``successes`` of them succeeded)."""
        self.sessions.append((max(0, int(episodes)), max(0, min(int(successes), int(episodes)))))

    def request(self) -> bool:
        """Ask for a learn at the next check; False when the trigger refuses requests (never)."""
        if self.trigger.accepts_manual:
            self.manual_requested = True
        return self.trigger.accepts_manual

    def observation(self) -> Observation:
        return Observation(now=self.clock(), since=self.since, sessions=tuple(self.sessions))

    @property
    def new_episodes(self) -> int:
        return sum(e for e, _ in self.sessions)

    def due(self) -> str | None:
        """Why to learn now (one line), or None.

        Nothing new since the last learn means nothing to learn from: an
        automatic trigger that fires then is skipped and its clock restarts.
        A manual request is always honoured (unless the trigger is "never").
        """
        if self.manual_requested:
            return "manual request"
        obs = self.observation()
        if not self.trigger.automatic or not self.trigger.fires(obs):
            return None
        if obs.new_episodes == 0:
            self.since = obs.now               # fired on time alone with nothing to learn from
            return None
        return "; ".join(self.trigger.reasons(obs)) or self.trigger.describe()

    def reset(self) -> None:
        """A learn happened: restart the clock and forget the counted sessions."""
        self.since = self.clock()
        self.sessions.clear()
        self.manual_requested = False

    def next_info(self) -> dict:
        """For ``daemon.json``: the spec, each part's progress and when time alone makes it due."""
        obs = self.observation()
        due = self.trigger.due_in(obs) if self.trigger.automatic else None
        return {"spec": self.trigger.describe(), "new_episodes": obs.new_episodes,
                "parts": self.trigger.progress(obs),
                "due_in_s": None if due is None else round(due, 3)}
