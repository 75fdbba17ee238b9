"""Python environments for the tests: the batched protocol written with numpy.

``Vault`` is a small, well-behaved environment (one ``step`` call per tick,
no Python loop over actions); ``Treadmill`` keeps a swarm busy on a fixed
graph for as long as a soak test wants (tests/test_soak.py). The ``Broken*`` classes misbehave in one way
each, so the tests can check that the engine names the culprit in one line.

Scenarios reach them through ``env_type = "python:tests.envs_example:Vault"``.
"""

from __future__ import annotations

import numpy as np

from swarm_engine import ActionBatch, DependencyGraph, StepResult

__all__ = ["Vault", "Treadmill", "BrokenRaises", "BrokenReturnsDict", "BrokenWrongLength", "BrokenBadOutcome",
           "NotAnEnvironment", "BrokenInit", "BrokenReset", "BadActionNames", "BadMaxDiscoveries",
           "RaisingActionNames", "BrokenTargetName", "NanDuration", "NegativeDuration", "TooManyDiscoveries",
           "OutOfRangeTarget", "ArrayDone", "TwoLocks", "TwoLocksUnreported", "OP_SCAN", "OP_TRY", "OP_OPEN"]

OP_SCAN, OP_TRY, OP_OPEN = 0, 1, 2
_FAIL, _OK, _ERROR = 0, 1, 2


class Vault:
    """Find the one room whose door opens the vault.

    Scan lists every room (targets ``0..rooms-1``); Try(room) succeeds when the
    room's door is unlocked; Open(room) succeeds, and completes the task, only
    in the vault room (always unlocked). Every action fails transiently with
    probability ``error_rate``. Hidden state and errors come from the run's
    seed, so the same seed gives the same run.
    """

    action_names = ("Scan", "Try", "Open")

    def __init__(self, rooms: int = 6, locked_rate: float = 0.5, error_rate: float = 0.0) -> None:
        self.rooms = int(rooms)
        self.locked_rate = float(locked_rate)
        self.error_rate = float(error_rate)
        self.max_discoveries = self.rooms
        self.steps = 0              # step() calls: one per tick with work
        self.reset(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.vault = int(self.rng.integers(self.rooms))
        self.locked = self.rng.random(self.rooms) < self.locked_rate
        self.locked[self.vault] = False

    def step(self, batch: ActionBatch) -> StepResult:
        self.steps += 1
        n = len(batch)
        ops, targets = batch.ops, batch.targets
        valid = (targets >= 0) & (targets < self.rooms)
        room = np.where(valid, targets, 0)
        ok = np.where(ops == OP_SCAN, True,
                      np.where(ops == OP_TRY, valid & ~self.locked[room],
                               np.where(ops == OP_OPEN, valid & (room == self.vault), False)))
        outcome = ok.astype(np.int8)
        if self.error_rate > 0.0:
            outcome[self.rng.random(n) < self.error_rate] = _ERROR
        scans = (ops == OP_SCAN) & (outcome == _OK)
        counts = np.where(scans, self.rooms, 0)
        disc_ptr = np.zeros(n + 1, np.int32)
        np.cumsum(counts, out=disc_ptr[1:])
        discoveries = np.tile(np.arange(self.rooms, dtype=np.int32), int(scans.sum()))
        done = bool(np.any((ops == OP_OPEN) & (outcome == _OK)))
        duration = np.full(n, 1.0, np.float32)
        return StepResult(outcome, disc_ptr, discoveries, duration, done)

    def target_name(self, target: int) -> str:
        return f"room-{target}"

    def default_graph(self) -> DependencyGraph:
        """Used by ``[dependency_graph] type = "static"`` (names are op names)."""
        return DependencyGraph(actions=list(self.action_names),
                               edges=[("Scan", "Try", 1.0), ("Try", "Open", 1.0)],
                               start=["Scan"], terminal=["Open"])


class Treadmill:
    """Scan lists ``targets`` machines; Try(machine) always fails transiently, so
    with ``max_retries = 255`` every machine is tried 256 times: steady work
    (8 workers: 8 actions a tick) on a graph that stops growing after the Scan,
    for ``targets * 256 / workers`` ticks."""

    action_names = ("Scan", "Try")

    def __init__(self, targets: int = 1000) -> None:
        self.targets = int(targets)
        self.max_discoveries = self.targets

    def reset(self, seed: int) -> None:
        pass

    def step(self, batch: ActionBatch) -> StepResult:
        n = len(batch)
        scans = batch.ops == OP_SCAN
        outcome = np.where(scans, _OK, _ERROR).astype(np.int8)
        disc_ptr = np.zeros(n + 1, np.int32)
        np.cumsum(np.where(scans, self.targets, 0), out=disc_ptr[1:])
        discoveries = np.tile(np.arange(self.targets, dtype=np.int32), int(scans.sum()))
        return StepResult(outcome, disc_ptr, discoveries, np.ones(n, np.float32), False)

    def target_name(self, target: int) -> str:
        return f"machine-{target}"

    def default_graph(self) -> DependencyGraph:
        return DependencyGraph(actions=list(self.action_names), edges=[("Scan", "Try", 1.0)],
                               start=["Scan"], terminal=["Try"])


class BrokenRaises(Vault):
    """Raises on the third step."""

    def step(self, batch: ActionBatch) -> StepResult:
        if self.steps >= 2:
            raise ZeroDivisionError("the vault's door sensor divided by zero")
        return super().step(batch)


class BrokenReturnsDict(Vault):
    """Returns a plain dict instead of a StepResult."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        return {"outcome": res.outcome}  # type: ignore[return-value]


class BrokenWrongLength(Vault):
    """Returns one outcome fewer than the actions it was given."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        return StepResult(res.outcome[:-1], res.disc_ptr[:-1], res.discoveries, res.duration_ms[:-1])


class BrokenBadOutcome(Vault):
    """Returns outcome codes outside 0..2."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        return StepResult(np.full(len(batch), 7, np.int8), res.disc_ptr, res.discoveries, res.duration_ms)


class NotAnEnvironment:
    """Has no ``step``: the loader must refuse it."""

    action_names = ("Scan",)
    max_discoveries = 0

    def __init__(self, **params) -> None:
        self.params = params

    def reset(self, seed: int) -> None:
        pass


# ----------------------------------------------------------------------------- protocol violations
# Each breaks the protocol in one way; tests/eval/test_python_env_guards.py checks the one line.


class BrokenInit(Vault):
    """Its constructor raises."""

    def __init__(self, **params) -> None:
        raise ValueError("the vault's blueprint is missing")


class BrokenReset(Vault):
    """reset() raises for every run's seed (the constructor's reset(0) works)."""

    def reset(self, seed: int) -> None:
        if seed:
            raise KeyError(f"no vault for seed {seed}")
        super().reset(seed)


class BadActionNames(Vault):
    """action_names is not a list of names."""

    action_names = 42  # type: ignore[assignment]


class BadMaxDiscoveries(Vault):
    """max_discoveries is a string."""

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.max_discoveries = "6"  # type: ignore[assignment]


class RaisingActionNames(Vault):
    """action_names is a property that raises."""

    @property  # type: ignore[override]
    def action_names(self):
        raise RuntimeError("names not loaded yet")


class BrokenTargetName(Vault):
    """target_name() raises (seen when names are needed: a trace, -v, a prompt)."""

    def target_name(self, target: int) -> str:
        raise IndexError(f"room {target} has no name")


class NanDuration(Vault):
    """Returns NaN durations."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        return StepResult(res.outcome, res.disc_ptr, res.discoveries, np.full(len(batch), np.nan, np.float32),
                          res.done)


class NegativeDuration(Vault):
    """Returns negative durations."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        return StepResult(res.outcome, res.disc_ptr, res.discoveries, -res.duration_ms, res.done)


class TooManyDiscoveries(Vault):
    """Scan discovers every room but it claims max_discoveries = 2."""

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.max_discoveries = 2


class OutOfRangeTarget(Vault):
    """Discovers a target id past what a node key holds."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        disc = res.discoveries.astype(np.int64)
        disc[:] = 2 ** 30
        return StepResult(res.outcome, res.disc_ptr, disc, res.duration_ms, res.done)


class ArrayDone(Vault):
    """done is an array, not a bool."""

    def step(self, batch: ActionBatch) -> StepResult:
        res = super().step(batch)
        return StepResult(res.outcome, res.disc_ptr, res.discoveries, res.duration_ms,
                          np.array([res.done, res.done]))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- completion


class TwoLocks(Vault):
    """Two vault rooms; the task is done when both are open (``reports_done``:
    the environment's done is the only completion, one Open is not the task)."""

    reports_done = True

    def reset(self, seed: int) -> None:
        super().reset(seed)
        others = [r for r in range(self.rooms) if r != self.vault]
        self.second = int(self.rng.choice(others))
        self.locked[self.second] = False
        self.opened: set[int] = set()

    def step(self, batch: ActionBatch) -> StepResult:
        self.steps += 1
        n = len(batch)
        ops, targets = batch.ops, batch.targets
        valid = (targets >= 0) & (targets < self.rooms)
        room = np.where(valid, targets, 0)
        vaults = valid & ((room == self.vault) | (room == self.second))
        ok = np.where(ops == OP_SCAN, True, np.where(ops == OP_TRY, valid & ~self.locked[room],
                                                     np.where(ops == OP_OPEN, vaults, False)))
        self.opened.update(int(r) for r in room[(ops == OP_OPEN) & ok])
        counts = np.where((ops == OP_SCAN) & ok, self.rooms, 0)
        disc_ptr = np.zeros(n + 1, np.int32)
        np.cumsum(counts, out=disc_ptr[1:])
        discoveries = np.tile(np.arange(self.rooms, dtype=np.int32), int(((ops == OP_SCAN) & ok).sum()))
        return StepResult(ok.astype(np.int8), disc_ptr, discoveries, np.ones(n, np.float32),
                          len(self.opened) == 2)


class TwoLocksUnreported(TwoLocks):
    """The same world without ``reports_done``: a terminal Open completes the task."""

    reports_done = False
