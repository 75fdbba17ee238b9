"""The learning daemon: watch a scenario's sessions, learn when a trigger fires,
keep its status in a file, and (optionally) serve the newest LoRA adapter
blue-green.

::

    sessions/ (swarm eval --learning) --watch--> TriggerTracker --due--> learn_once (validate, swap)
                                                        ^                      |  (--lora: then learn_lora,
                                                        +------ reset ---------+   activated when not worse)
    lora/active.json --changed--> BlueGreen.switch (standby up, health + sanity, traffic moves, old drains)

One daemon per learning key: ``<root>/scenarios/<key>/.daemon.lock`` is held
(``flock``) while it runs. Its status is ``<root>/scenarios/<key>/daemon.json``,
rewritten atomically at every check::

    {key, target, pid, state, started, updated, stopped, exit, trigger, watcher,
     sessions_seen, episodes_seen, episodes_since_learn, learned_through, learns,
     last_trigger {at, reason}, last_result {at, reason, applied, version, lines,
     validation, seconds, error, lora?}, next {spec, new_episodes, parts, due_in_s},
     serving {endpoint, state, active_color, adapter_version, adapter, ...} | null}

States: ``starting -> watching <-> learning | switching -> stopping -> stopped``
(``failed`` when it could not start or died of a bug).

New sessions are noticed through ``watchfiles`` when it is installed and by
polling every ``check_seconds`` otherwise (:mod:`swarm_engine.learn.watcher`);
either way every wake rescans the sessions folder, so nothing written during
a learn is lost. A session counts once its stats.json exists (the store
writes meta.json first). Sessions up to
``learned_through`` (the newest one present when the last learn started,
kept across restarts in daemon.json; without it, the ones older than
offline_model.json) are already learned from.

The daemon does not learn itself: ``learn`` (default
:func:`swarm_engine.learn.offline.learn_once`) validates the new model against
the current one on held-out seeds and swaps it atomically when it is not
worse; the daemon records what it said. A failed learn is recorded and the
daemon goes on watching (the trigger restarts, so a failure does not loop).
Serving the active adapter is :mod:`swarm_engine.learn.serving`'s job.

Signals are the caller's business (the CLI maps SIGINT/SIGTERM to
:meth:`LearningDaemon.stop` and SIGUSR1 to :meth:`LearningDaemon.request_learn`).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from swarm_engine.errors import ConfigError, StoreError, SwarmError
from swarm_engine.fsio import write_json
from swarm_engine.learn.serving import AdapterServing
from swarm_engine.learn.store import LearningStore, learning_key
from swarm_engine.learn.triggers import DEFAULT_TRIGGER, Trigger, TriggerTracker, parse_trigger
from swarm_engine.learn.watcher import WATCHERS, pick_watcher, wakeups

__all__ = ["LearningDaemon", "DaemonConfig", "DaemonState", "resolve_target", "read_status", "trigger_from_settings",
           "STATUS_FILE"]

log = logging.getLogger("swarm_engine.learn.daemon")

STATUS_FILE = "daemon.json"
_LOCK_FILE = ".daemon.lock"
_STAMP = "%Y%m%dT%H%M%S.%fZ"          # session folder names start with this (store._stamp)


class DaemonState(str, enum.Enum):
    STARTING = "starting"
    WATCHING = "watching"
    LEARNING = "learning"
    SWITCHING = "switching"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class DaemonConfig:
    """How the daemon triggers and serves.

    Attributes
    ----------
    trigger: a :class:`Trigger` or spec such as ``"100 episodes or 1h"``.
    check_seconds: how often time triggers and the adapter pointer are looked at
        (and, without watchfiles, how often the sessions folder is polled).
    watcher: ``"auto"`` (watchfiles when importable), ``"watchfiles"`` or ``"polling"``.
    learn_now: learn once at start whatever the trigger says (``--now``).
    serve: run a blue-green llama-server pair with ``lora/active.json``'s adapter.
    serve_port: the pair's front port on 127.0.0.1.
    serve_model: the GGUF both servers load (None = the default model).
    server_options: extra :meth:`LlamaServer.start` keyword arguments (parallel, threads...).
    learn_options: extra ``learn_once`` keyword arguments (train_runs, heldout_runs, budget_seconds).
    lora: after each learn, also train a LoRA adapter on the recorded LLM decisions
        (``swarm learn lora --eval``: activated only when it passes the llama.cpp check and
        decides the held-out decisions no worse than the active adapter, or the base model
        when none is; ``--serve`` then switches to it).
    lora_options: :class:`~swarm_engine.learn.lora.train.TrainConfig` fields (steps, rank...)
        plus ``max_examples``, ``holdout``, ``eval_max``.
    """

    trigger: Trigger | str = DEFAULT_TRIGGER
    check_seconds: float = 5.0
    watcher: str = "auto"
    learn_now: bool = False
    serve: bool = False
    serve_port: int = 8080
    serve_model: str | None = None
    server_options: dict[str, Any] = field(default_factory=dict)
    learn_options: dict[str, Any] = field(default_factory=dict)
    lora: bool = False
    lora_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.trigger = parse_trigger(self.trigger)
        if not self.check_seconds > 0:
            raise ConfigError(f"--check-seconds {self.check_seconds}: expected a positive number")
        if self.watcher not in WATCHERS:
            raise ConfigError(f"watcher {self.watcher!r}: expected auto, watchfiles or polling")


def trigger_from_settings(values: dict[str, Any], *, episodes: int | None = None,
                          minutes: int | None = None, spec: str | None = None) -> str:
    """The trigger spec from flags over ``[learning]`` settings.

    ``spec`` (--trigger) wins; else ``episodes``/``minutes`` flags, each
    falling back to ``daemon_episodes``/``daemon_minutes``; else a non-empty
    ``daemon_trigger``. A count of 0 switches that part off; both off is "manual".
    """
    if spec:
        return spec
    if episodes is None and minutes is None and values.get("daemon_trigger"):
        return str(values["daemon_trigger"])
    e = values.get("daemon_episodes", 100) if episodes is None else episodes
    m = values.get("daemon_minutes", 60) if minutes is None else minutes
    if e < 0 or m < 0:
        raise ConfigError(f"daemon trigger: episodes and minutes must be >= 0 (got {e}, {m})")
    parts = ([f"{e} episodes"] if e else []) + ([f"{m}m"] if m else [])
    return " or ".join(parts) or "manual"


def resolve_target(target: str, store: LearningStore, key: str | None = None) -> tuple[str, str]:
    """(learning key, what to pass to ``learn``) for a scenario path or a key.

    ``key`` overrides a scenario's own key (``--learning-key``, as ``swarm eval`` takes it).

    Raises
    ------
    ConfigError
        Neither a scenario file nor a key with a folder in the store; or
        ``key`` given with a key.
    """
    p = Path(target).expanduser()
    if p.is_file():
        from swarm_engine.eval.loader import load_scenario  # the loader pulls in the engine

        scenario = load_scenario(p)
        return learning_key(scenario.id, key), str(p.resolve())
    if p.suffix == ".toml" or os.sep in target:
        raise ConfigError(f"{target}: scenario file not found")
    if key is not None:
        raise ConfigError(f"--learning-key {key}: goes with a scenario file, not with the key {target!r}")
    key = learning_key("", target)
    if key != target or not store.scenario_dir(key).is_dir():
        known = sorted(d.name for d in (store.root / "scenarios").glob("*") if d.is_dir()) \
            if (store.root / "scenarios").is_dir() else []
        hint = f" (known: {', '.join(known)})" if known else ""
        raise ConfigError(f"{target}: neither a scenario file nor a learning key with data under "
                          f"{store.root / 'scenarios'}{hint}")
    return key, key


def read_status(store: LearningStore, key: str) -> dict | None:
    """``daemon.json`` of ``key`` (None when absent or unreadable), with ``alive``
    telling whether its pid still runs (a daemon killed with SIGKILL leaves
    "watching" behind)."""
    path = store.scenario_dir(key) / STATUS_FILE
    try:
        data = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    alive = False
    if isinstance(pid, int) and data.get("state") not in (DaemonState.STOPPED.value, DaemonState.FAILED.value):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 0)
            alive = True
    data["alive"] = alive
    return data


def _iso(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def _offline_learner(key: str | None, options: dict[str, Any]) -> Callable[..., Any]:
    """``learn_once`` with the daemon's key override and search options bound."""
    def learn(target: str, *, store: LearningStore, apply: bool = True) -> Any:
        from swarm_engine.learn.offline import learn_once

        return learn_once(target, store=store, key=key, apply=apply, **options)

    return learn


def _guarded(what: str, step: Callable[[], Any]) -> tuple[Any, str | None]:
    """``(step(), None)``, or ``(None, why)`` when it failed: a SwarmError is its
    message; anything else is a bug, logged with its traceback. The daemon lives on."""
    try:
        return step(), None
    except SwarmError as exc:
        return None, str(exc)
    except Exception as exc:
        log.error("%s failed:\n%s", what, traceback.format_exc())
        return None, f"{type(exc).__name__}: {exc}"


def _lora_learner(options: dict[str, Any]) -> Callable[..., Any]:
    """``learn_lora`` (with the held-out accuracy check) with the daemon's options bound."""
    def train(key: str, *, store: LearningStore) -> Any:
        from swarm_engine.learn.lora.config import TrainConfig, require_train
        from swarm_engine.learn.lora.pipeline import learn_lora

        require_train()
        opts = dict(options)
        extra = {k: opts.pop(k) for k in ("max_examples", "holdout", "eval_max") if k in opts}
        return learn_lora(store, key, config=TrainConfig(**opts), evaluate=True, activate=True,
                          **{"max_examples": 200, **extra})

    return train


class LearningDaemon:
    """Watch ``target``'s sessions and learn when the trigger fires.

    Parameters
    ----------
    target:
        A scenario file or a learning key.
    key:
        Learning key override for a scenario file (``--learning-key``).
    store:
        The learning store (default ``LearningStore()``: $SWARM_HOME/.swarm-engine/learning).
    config:
        :class:`DaemonConfig`.
    learn:
        ``learn(target, *, store, apply=True) -> outcome`` with ``.applied``,
        ``.version``, ``.lines`` and ``.validation`` (default: ``learn_once``).
    clock:
        Monotonic seconds for the trigger (tests pass a fake).
    bluegreen:
        Factory ``(config, on_event) -> BlueGreen`` for serving (tests may swap it).
    train_lora:
        ``train_lora(key, *, store) -> LoraResult``, run after each learn when
        ``config.lora`` (default: ``learn_lora`` with held-out evaluation).
    on_event:
        Called with each line the daemon logs (the CLI prints them).
    """

    def __init__(self, target: str, *, key: str | None = None, store: LearningStore | None = None,
                 config: DaemonConfig | None = None,
                 learn: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 bluegreen: Callable[..., Any] | None = None,
                 on_event: Callable[[str], None] | None = None,
                 train_lora: Callable[..., Any] | None = None) -> None:
        self.store = store if store is not None else LearningStore()
        self.config = config if config is not None else DaemonConfig()
        self.key, self.learn_target = resolve_target(target, self.store, key)
        self.target = target
        self._learn = learn or _offline_learner(key, self.config.learn_options)
        self._train_lora = (train_lora or _lora_learner(self.config.lora_options)) if self.config.lora else None
        self._bluegreen_factory = bluegreen
        self.on_event = on_event
        self.tracker = TriggerTracker(parse_trigger(self.config.trigger), clock=clock)
        self.scenario_dir = self.store.scenario_dir(self.key)
        self.sessions_dir = self.scenario_dir / "sessions"
        self.status_path = self.scenario_dir / STATUS_FILE
        self.active_pointer = self.scenario_dir / "lora" / "active.json"
        self.state = DaemonState.STARTING
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._seen: set[str] = set()
        self._pending: set[str] = set()          # folders whose stats.json is not written yet
        self.sessions_seen = 0
        self.episodes_seen = 0
        self.learns = 0
        self.learned_through: str | None = None
        self.last_trigger: dict | None = None
        self.last_result: dict | None = None
        self.started = _iso()
        self.exit: str | None = None
        self.watcher = "polling"
        self.serving: AdapterServing | None = None

    # -- control (thread- and signal-safe: they only set events)

    def stop(self) -> None:
        """End :meth:`run` after the current step (a running learn finishes first)."""
        self._stop.set()
        self._wake.set()

    def request_learn(self) -> bool:
        """Learn at the next check, whatever the trigger says (False when the trigger is "never")."""
        ok = self.tracker.request()
        self._wake.set()
        return ok

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def pending_sessions(self) -> frozenset[str]:
        """Session folders seen without their stats.json yet (still being
        written): counted at a later scan, never passed by ``learned_through``."""
        return frozenset(self._pending)

    def _event(self, line: str) -> None:
        log.info("%s: %s", self.key, line)
        if self.on_event is not None:
            self.on_event(line)

    # -- status

    def status(self) -> dict:
        serving = self.serving.status() if self.serving is not None else None
        return {"key": self.key, "target": self.target, "pid": os.getpid(), "state": self.state.value,
                "started": self.started, "updated": _iso(),
                "stopped": _iso() if self.state in (DaemonState.STOPPED, DaemonState.FAILED) else None,
                "exit": self.exit, "trigger": self.tracker.trigger.describe(), "watcher": self.watcher,
                "check_seconds": self.config.check_seconds, "sessions_seen": self.sessions_seen,
                "episodes_seen": self.episodes_seen, "episodes_since_learn": self.tracker.new_episodes,
                "learned_through": self.learned_through, "learns": self.learns,
                "last_trigger": self.last_trigger, "last_result": self.last_result,
                "next": self.tracker.next_info(), "serving": serving}

    def write_status(self) -> None:
        try:
            write_json(self.status_path, self.status())
        except StoreError as exc:                # a full disk must not kill the daemon
            log.warning("%s", exc)

    # -- sessions

    def _initial_mark(self) -> str | None:
        """Where the last learn stopped: daemon.json's mark, else offline_model.json's time."""
        prev = read_status(self.store, self.key)
        if prev and isinstance(prev.get("learned_through"), str):
            return prev["learned_through"]
        with contextlib.suppress(OSError):
            mtime = self.store.offline_model_path(self.key).stat().st_mtime
            return datetime.fromtimestamp(mtime, UTC).strftime(_STAMP)
        return None

    def _read_meta(self, session: Path) -> dict | None:
        """meta.json once stats.json exists too; None while the session is being written."""
        if not (session / "stats.json").exists():
            return None
        try:
            meta = msgspec.json.decode((session / "meta.json").read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            self._event(f"{session / 'meta.json'}: unreadable session meta ({exc}); counted as empty")
            return {}
        return meta if isinstance(meta, dict) else {}

    def scan(self) -> int:
        """Count the sessions written since the last scan; returns how many new episodes."""
        new = 0
        for session in self.store.sessions(self.key):
            name = session.name
            if name in self._seen:
                continue
            meta = self._read_meta(session)
            if meta is None:
                self._pending.add(name)
                continue
            self._pending.discard(name)
            self._seen.add(name)
            episodes, successes = _int(meta.get("episodes")), _int(meta.get("successes"))
            self.sessions_seen += 1
            self.episodes_seen += episodes
            if self.learned_through is not None and name <= self.learned_through:
                continue
            self.tracker.add(episodes, successes)
            new += episodes
        return new

    # -- learning

    def learn_now(self, reason: str) -> dict:
        """Run one learn and record it (never raises a SwarmError: it is recorded)."""
        # the mark must not pass a session still being written, or it would count as learned
        done = [n for n in self._seen if not self._pending or n < min(self._pending)]
        newest = max(done) if done else None
        self.state = DaemonState.LEARNING
        self.last_trigger = {"at": _iso(), "reason": reason, "episodes": self.tracker.new_episodes}
        self._event(f"learning ({reason})")
        self.write_status()
        t0 = time.monotonic()
        result: dict[str, Any] = {"at": None, "reason": reason, "applied": False, "version": None, "lines": [],
                                  "validation": {}, "seconds": None, "error": None}
        outcome, result["error"] = _guarded("learn", lambda: self._learn(self.learn_target, store=self.store,
                                                                          apply=True))
        if result["error"] is None:
            result.update(applied=bool(getattr(outcome, "applied", False)),
                          version=getattr(outcome, "version", None),
                          lines=[str(x) for x in (getattr(outcome, "lines", None) or [])],
                          validation=_jsonable(getattr(outcome, "validation", None) or {}))
        result["at"] = _iso()
        result["seconds"] = round(time.monotonic() - t0, 3)
        self.learns += 1
        self.last_result = result
        # whatever happened, these sessions had their turn: a failure must not loop
        self.learned_through = newest if newest is not None else self.learned_through
        self.tracker.reset()
        if result["error"]:
            self._event(f"learn failed: {result['error']}")
        elif result["applied"]:
            self._event(f"applied model v{result['version']}" + "".join(f"\n  {x}" for x in result["lines"]))
        else:
            self._event("kept the current model" + "".join(f"\n  {x}" for x in result["lines"]))
        if self._train_lora is not None and not self._stop.is_set():
            result["lora"] = self._lora_step(self._train_lora)
        self.state = DaemonState.WATCHING
        self.write_status()
        return result

    def _lora_step(self, train: Callable[..., Any]) -> dict:
        """Train an adapter on the recorded decisions; what happened, for the status."""
        self._event("training a LoRA adapter on the recorded LLM decisions")
        self.write_status()
        t0 = time.monotonic()
        out: dict[str, Any] = {"version": None, "activated": False, "accuracy": None, "error": None}
        res, out["error"] = _guarded("LoRA training", lambda: train(self.key, store=self.store))
        if out["error"] is None:
            acc = res.accuracy or {}
            out.update(version=res.version, activated=bool(res.activated), problems=list(res.problems),
                       accuracy={k: (acc.get(k) or {}).get("accuracy") for k in ("base", "current", "adapter")
                                 if k in acc} if acc else None)
        out["seconds"] = round(time.monotonic() - t0, 3)
        if out["error"]:
            self._event(f"LoRA adapter not trained: {out['error']}")
        else:
            a = out["accuracy"]
            measured = (f"; held-out accuracy base {a['base']:.0%}"
                        + (f", active {a['current']:.0%}" if a.get("current") is not None else "")
                        + f" -> adapter {a['adapter']:.0%}"
                        if a and a.get("base") is not None and a.get("adapter") is not None else "")
            self._event(f"LoRA adapter v{out['version']} {'activated' if out['activated'] else 'kept inactive'}"
                        + measured + "".join(f"\n  {x}" for x in out.get("problems", [])))
        return out

    # -- serving

    def _make_pair(self, on_event: Callable[[str], None]) -> Any:
        if self._bluegreen_factory is not None:
            return self._bluegreen_factory(self.config, on_event)
        from swarm_engine.llm.bluegreen import BlueGreen

        return BlueGreen(self.config.serve_model, name=f"learn-{self.key}"[:57], port=self.config.serve_port,
                         server_options=self.config.server_options, replace_running=True, on_event=on_event)

    @property
    def bluegreen(self) -> Any:
        """The serving pair (None without ``serve`` or before it started)."""
        return self.serving.pair if self.serving is not None else None

    def check_adapter(self) -> None:
        """Switch the pair when ``lora/active.json`` names another adapter."""
        serving = self.serving
        pointer = serving.due() if serving is not None else None
        if serving is None or pointer is None:
            return
        self.state = DaemonState.SWITCHING
        self.write_status()
        serving.switch(pointer)
        self.state = DaemonState.WATCHING

    # -- the loop

    def _lock(self) -> int:
        self.scenario_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.scenario_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            prev = read_status(self.store, self.key) or {}
            raise StoreError(f"a learning daemon already runs for '{self.key}' (pid {prev.get('pid', '?')}); "
                             f"see swarm learn status") from None
        return fd

    def run(self) -> None:
        """Watch until :meth:`stop`; writes daemon.json throughout and "stopped" at the end.

        Raises
        ------
        StoreError
            Another daemon holds this key.
        SwarmError
            Serving was asked for and could not start.
        """
        fd = self._lock()
        try:
            self.sessions_dir.mkdir(parents=True, exist_ok=True)
            self.learned_through = self._initial_mark()
            self.watcher = pick_watcher(self.config.watcher)
            self.state = DaemonState.STARTING
            self.write_status()
            if self.config.serve:
                self.serving = AdapterServing(self.active_pointer, self._make_pair, self._event)
                self.serving.start()
            self.scan()
            if self.config.learn_now:
                self.tracker.request()
            self.state = DaemonState.WATCHING
            self._event(f"watching {self.sessions_dir} ({self.tracker.trigger.describe()}; "
                        f"{self.tracker.new_episodes} episodes not learned yet)")
            self.write_status()
            self._tick()
            for _ in wakeups(self.watcher, self.scenario_dir, self.config.check_seconds, self._stop, self._wake):
                self._tick()
            self.exit = self.exit or "stopped"
        except BaseException as exc:
            self.exit = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                         else f"error: {exc}" if isinstance(exc, SwarmError) else f"bug: {type(exc).__name__}: {exc}")
            self.state = DaemonState.FAILED if not isinstance(exc, KeyboardInterrupt) else DaemonState.STOPPING
            raise
        finally:
            try:
                if self.state is not DaemonState.FAILED:
                    self.state = DaemonState.STOPPING
                self.write_status()
                if self.serving is not None:
                    with contextlib.suppress(SwarmError):
                        self.serving.stop()
            finally:
                if self.state is not DaemonState.FAILED:
                    self.state = DaemonState.STOPPED
                self.write_status()
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                self._event(f"stopped ({self.exit})")

    def _tick(self) -> None:
        self.scan()
        if not self._stop.is_set():
            self.check_adapter()
        if not self._stop.is_set():
            reason = self.tracker.due()
            if reason:
                self.learn_now(reason)
                if not self._stop.is_set():
                    self.check_adapter()         # a learn may have produced a new adapter
        self.write_status()


def _int(x: Any) -> int:
    try:
        return max(0, int(x))
    except (TypeError, ValueError):
        return 0


def _jsonable(x: Any) -> Any:
    """Round-trip through msgspec so a Struct or numpy scalar in a validation dict still writes."""
    try:
        return msgspec.json.decode(msgspec.json.encode(x))
    except (TypeError, msgspec.EncodeError):
        return {"repr": repr(x)}
