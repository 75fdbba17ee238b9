"""One scenario's learning around an eval: load the offline model, record the session.

Used by ``swarm eval`` and ``swarm run``::

    session = LearningSession.open(scenario, learning=True)
    result = run_eval(session.scenario, n, seed, recorder=session.recorder)
    report["learning"] = session.close(result, seed)
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from swarm_engine.eval.loader import Scenario
from swarm_engine.learn.collect import record_session
from swarm_engine.learn.model import OfflineModel, selector_from_model
from swarm_engine.learn.session import SessionRecorder
from swarm_engine.learn.simulate import with_selector
from swarm_engine.learn.store import LearningStore, learning_key

__all__ = ["LearningSession"]

Say = Callable[[str], None] | None


def _warn(line: str) -> None:
    """A store problem (corrupt file) is one line on stderr, even with --quiet."""
    print(f"warning: {line}", file=sys.stderr, flush=True)


@dataclass
class LearningSession:
    scenario: Scenario                 # with the offline model's selector when one is loaded
    key: str
    store: LearningStore
    model: OfflineModel | None
    recorder: SessionRecorder | None
    adapter: int | None = None         # the LoRA adapter version applied (in-process), if any

    @classmethod
    def open(cls, scenario: Scenario, *, learning: bool = False, key: str | None = None,
             use_model: bool = True, store: LearningStore | None = None, say: Say = None) -> LearningSession:
        store = store if store is not None else LearningStore(on_problem=_warn)
        k = learning_key(scenario.id, key)
        model = store.load_model(k) if use_model else None
        if model is not None and scenario.rules is not None:
            sel = selector_from_model(scenario.config.selector, model, scenario.actions,
                                      list(scenario.rules.args.values))
            scenario = with_selector(scenario, sel)
            if say:
                say(f"Offline model loaded: {model.summary()}")
        elif model is not None:
            model = None
        adapter = None
        if use_model and scenario.llm_managed:
            scenario, adapter = _with_active_adapter(scenario, store, k, say)
        recorder = None
        if learning:
            recorder = SessionRecorder(
                scenario.actions, list(scenario.rules.args.values) if scenario.rules else [],
                scenario.config.selector.strategy, target_name=scenario.binding.target_names,
                base_stats=store.load_stats(k), model=model, online=True)
        return cls(scenario, k, store, model, recorder, adapter)

    def close(self, result, seed: int, say: Say = None) -> dict[str, Any]:
        """Write the session (when learning); the report's "learning" section."""
        out: dict[str, Any] = {"key": self.key, "model_version": self.model.version if self.model else None,
                               "lora_version": self.adapter, "recorded": False}
        if self.recorder is None:
            return out
        try:
            stats = self.recorder.finish(result.success)
        finally:
            self.recorder.close()
        session = record_session(stats, self.scenario, self.store, key=self.key,
                                 decisions=self.recorder.decisions,
                                 meta={"runs": result.runs, "seed": seed, "requested": result.requested,
                                       "model_version": out["model_version"],
                                       "strategy": self.scenario.config.selector.strategy,
                                       "online_updates": self.recorder.updates})
        out.update(recorded=True, session=str(session), episodes=stats.episodes,
                   decisions=len(self.recorder.decisions))
        if say:
            say(f"learning: {stats.episodes} episodes ({stats.success_episodes} successful)"
                + (f", {len(self.recorder.decisions)} LLM decisions" if self.recorder.decisions else "")
                + f" recorded in {session}")
        return out


def _with_active_adapter(scenario: Scenario, store: LearningStore, key: str, say: Say):
    """An in-process (llama-cpp) LLM scenario without adapters of its own gets the
    key's active LoRA adapter (``swarm learn lora``). A llama-server gets it
    through blue-green serving instead (``swarm learn daemon --serve``)."""
    llm = scenario.spec.llm
    if llm.provider != "llama-cpp" or llm.lora:
        return scenario, None
    from swarm_engine.learn.lora.active import read_active

    active = read_active(store, key)              # one read: path and version of the same pointer
    if active is None:
        return scenario, None
    path, version = active["path"], active.get("version")
    version = version if isinstance(version, int) else None
    spec = msgspec.structs.replace(scenario.spec, llm=msgspec.structs.replace(llm, lora=[str(path)]))
    if say:
        say(f"LoRA adapter loaded: v{version} ({path})")
    return dataclasses.replace(scenario, spec=spec), version
