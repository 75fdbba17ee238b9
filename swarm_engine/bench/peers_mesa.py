"""The troubleshooting exploration workload as a Mesa model (the ``peers`` suite).

An idiomatic Mesa 3 model: a :class:`TroubleshootingModel` (``mesa.Model``)
holds the shared map of what has been tried (nodes, frontier groups,
statistics); :class:`Service` agents are the fleet, each with its hidden
status and problem and a method per operation; :class:`Worker` agents explore.
A model step is staged activation over the workers' AgentSet, the Mesa 3
replacement of ``StagedActivation``::

    workers.do("plan")     # each worker scores the open groups (UCB1) and takes the best one's oldest node
    workers.do("act")      # each worker runs its action on a service agent
    workers.do("commit")   # each worker records the outcome and expands what it found

then the model judges the run (first success, frontier exhausted, timeout)
and clears ``running``. One model is one run: ``run_seeds`` builds a model per
seed and steps it ``while model.running``, as ``mesa.batch_run`` does.

Why stages and not one ``step`` per agent: the engine plans every idle
worker before any acts (a tick is plan -> act -> merge), and the staged order
is the same decision rule. With the shipped scenario's single worker the two
are the same thing.

Same world, same rule as the engine (so per-run results can be compared
exactly, not only in distribution):

* the hidden state and the transient errors are drawn from the engine's
  documented stream, xoshiro256** (seed, stream 0), in the engine's draw order
  (:class:`swarm_engine._reference.rng.Xoshiro256`, the reference's
  generator). Mesa's own generators are seeded with the same seed (``rng=seed``)
  and unused: UCB1 with age tie-breaks draws nothing;
* UCB1 per (action, target) group, a group nobody visited yet scored from its
  action's counts, ties to the older node, a virtual visit per pick within a
  step; a transient error puts the node back at the tail of its group once
  (``max_retries``); successors of a success get each discovered service, or
  the node's own service when it discovered none; nodes are deduplicated on
  (action, service).

Only what the troubleshooting scenarios use is implemented; anything else in
the workload is refused with a ValueError rather than silently run differently.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from swarm_engine._reference.envs import OUT_ERROR, OUT_FAIL, OUT_OK, skewed_below
from swarm_engine._reference.kernel import RunResult
from swarm_engine._reference.rng import Xoshiro256

try:                                   # the optional ``peers`` extra
    import mesa
except ImportError:                    # pragma: no cover - exercised without the extra
    mesa = None

__all__ = ["available", "unavailable_reason", "TroubleshootingModel", "Service", "Worker", "run_seeds",
           "mesa_version"]

# Verdicts, as the engine numbers them (swarm_engine._native._kernel).
V_RUNNING, V_SUCCESS, V_EXHAUSTED, V_TIMEOUT = 0, 1, 2, 3
_EVIDENCE = (3, 2, 3, 1, 1)            # per problem kind: bit 1 shows in logs, bit 2 in metrics
_DURATION_MS = (5.0, 20.0, 30.0, 10.0, 50.0)


def available() -> bool:
    """Whether Mesa is importable (``pip install swarm-engine[peers]``)."""
    return mesa is not None


def unavailable_reason() -> str | None:
    """The skip line when Mesa is missing, else None."""
    return None if mesa is not None else "Mesa is not installed (pip install 'swarm-engine[peers]')"


def mesa_version() -> str | None:
    return getattr(mesa, "__version__", None)


# the bases, or object where Mesa is missing (the module still imports; the
# suite is skipped). Mesa ships no type information, so they are Any to mypy.
_Agent: Any = mesa.Agent if mesa is not None else object
_Model: Any = mesa.Model if mesa is not None else object


class Service(_Agent):
    """One service of the fleet. Its hidden state is drawn by the model at
    creation; each operation returns (outcome, discoveries)."""

    def __init__(self, model: TroubleshootingModel, index: int) -> None:
        super().__init__(model)
        self.index = index
        self.status = 0                 # 0 Running, 1 Degraded, 2 Down
        self.problem = -1               # -1 healthy, else the problem kind 0..4
        self.evidence = 0               # bits of evidence found so far
        self.diagnosed = 0              # 1 diagnosed, 2 restored
        self.noisy = False              # a healthy, non-Running service whose logs look bad

    def read_logs(self) -> int:
        if self.problem >= 0 and _EVIDENCE[self.problem] & 1:
            self.evidence |= 1
            return OUT_OK
        return OUT_OK if self.noisy else OUT_FAIL

    def analyze_metrics(self) -> int:
        if self.problem >= 0 and _EVIDENCE[self.problem] & 2:
            self.evidence |= 2
            return OUT_OK
        return OUT_FAIL

    def diagnose(self) -> int:
        if self.problem >= 0 and self.evidence and self.diagnosed == 0:
            self.diagnosed = 1
            return OUT_OK
        return OUT_FAIL

    def restart(self) -> int:
        if self.diagnosed == 1:
            self.diagnosed = 2
            self.model.restored += 1
            if self.model.restored >= self.model.faults:
                self.model.env_done = True
            return OUT_OK
        return OUT_FAIL


class Worker(_Agent):
    """An explorer: takes the best open node, runs it, records what it found."""

    def __init__(self, model: TroubleshootingModel) -> None:
        super().__init__(model)
        self.node = -1                  # the node taken this step, -1 none
        self.group = -1
        self.outcome = OUT_FAIL
        self.found: list[int] = []

    def plan(self) -> None:
        m = self.model
        best, best_key = -1, None
        for g in m.active:              # UCB1 over the open groups; ties to the older head node
            key = (m.score(g), -m.g_queue[g][0])
            if best_key is None or key > best_key:
                best, best_key = g, key
        if best < 0:
            return                      # nothing open: the worker waits for guidance
        self.node = m.take(best)
        self.group = best

    def act(self) -> None:
        if self.node >= 0:
            self.outcome, self.found = self.model.execute(self.node)

    def commit(self) -> None:
        if self.node >= 0:
            self.model.record(self.node, self.group, self.outcome, self.found)
            self.node = self.group = -1


class TroubleshootingModel(_Model):
    """One run of the troubleshooting workload (see the module docstring).

    Parameters
    ----------
    rules, binding, config:
        The workload (``swarm_engine.bench.workloads.Workload``): compiled
        dependency graph, environment binding and swarm configuration, the
        same objects the native and reference kernels are built from.
    seed:
        The run's seed.
    """

    def __init__(self, rules, binding, config, seed: int) -> None:
        super().__init__(rng=int(seed))
        _check_supported(rules, binding, config)
        n_actions = len(rules.is_terminal)
        ptr, succ = [int(x) for x in rules.succ_ptr], [int(x) for x in rules.succ_act]
        self.successors = [succ[ptr[a]:ptr[a + 1]] for a in range(n_actions)]
        self.terminal = [bool(t) for t in rules.is_terminal]
        self.env_completes = bool(binding.completes)    # as the kernel: only the world ends the task
        self.ops = [int(o) for o in binding.ops]
        self.max_ticks = int(config.max_ticks)
        self.max_retries = int(config.termination.max_retries)
        self.ucb1_c = float(config.selector.ucb1_c)
        # the map of what has been tried: nodes, groups (action, service) with FIFO queues
        self.node_key: list[tuple[int, int]] = []
        self.node_retries: list[int] = []
        self.known: set[tuple[int, int]] = set()
        self.group_of: dict[tuple[int, int], int] = {}
        self.g_action: list[int] = []
        self.g_queue: list[deque] = []
        self.g_visits: list[int] = []
        self.g_succ: list[int] = []
        self.active: list[int] = []     # groups with open nodes
        self.virtual: dict[int, int] = {}   # picks per group within this step
        self.a_visits, self.a_succ = [0] * n_actions, [0] * n_actions
        self.total_visits = self.total_fail = 0
        self.n_open = 0
        self.task_done = self.env_done = False
        self.verdict = V_RUNNING
        self._build_world(binding.params, int(seed))
        self.workers = Worker.create_agents(self, int(config.workers))
        for a, t in zip(rules.start_act, rules.start_tgt):
            self.add_node(int(a), int(t))

    # ---------------------------------------------------------------- the world
    def _build_world(self, params, seed: int) -> None:
        p = [float(x) for x in params]
        n = int(p[0]) if p else 4
        self.error_rate = p[1] if len(p) > 1 else 0.0
        noise = p[2] if len(p) > 2 else 0.25
        self.faults = min(max(int(p[3]) if len(p) > 3 else 1, 1), n)
        log_noise = p[4] if len(p) > 4 else 0.0
        skew = p[5] if len(p) > 5 else 0.0
        self.restored = 0
        self.env_rng = rng = Xoshiro256(seed, 0)
        self.services = list(Service.create_agents(self, n, list(range(n))))
        first = skewed_below(rng, n, skew)
        self.services[first].problem = rng.below(5)
        for s in self.services:
            if s.index == first:
                s.status = 1 + rng.below(2)         # Degraded or Down
            elif rng.uniform() < noise:
                s.status = 1                        # a red herring
        for k in range(1, self.faults):
            healthy = [s for s in self.services if s.problem < 0]
            s = healthy[rng.below(n - k)]
            s.problem = rng.below(5)
            s.status = 1 + rng.below(2)
        if log_noise > 0.0:
            for s in self.services:
                if s.problem < 0 and s.status != 0 and rng.uniform() < log_noise:
                    s.noisy = True

    def execute(self, node: int) -> tuple[int, list[int]]:
        """Run a node's action on the fleet: (outcome, discovered service indices)."""
        action, target = self.node_key[node]
        op = self.ops[action]
        if not 0 <= op < len(_DURATION_MS):
            return OUT_FAIL, []
        if self.error_rate > 0.0 and self.env_rng.uniform() < self.error_rate:
            return OUT_ERROR, []
        if op == 0:                                  # CheckStatus: every service that is not Running
            return OUT_OK, [s.index for s in self.services if s.status != 0]
        if not 0 <= target < len(self.services):
            return OUT_FAIL, []
        service = self.services[target]
        return (service.read_logs, service.analyze_metrics, service.diagnose, service.restart)[op - 1](), []

    # ---------------------------------------------------------------- the map
    def add_node(self, action: int, target: int) -> None:
        key = (action, target)
        if key in self.known:
            return
        self.known.add(key)
        node = len(self.node_key)
        self.node_key.append(key)
        self.node_retries.append(0)
        g = self.group_of.get(key)
        if g is None:
            g = self.group_of[key] = len(self.g_action)
            self.g_action.append(action)
            self.g_queue.append(deque())
            self.g_visits.append(0)
            self.g_succ.append(0)
        self.push_open(g, node)

    def push_open(self, g: int, node: int) -> None:
        if not self.g_queue[g]:
            self.active.append(g)
        self.g_queue[g].append(node)
        self.n_open += 1

    def take(self, g: int) -> int:
        node = self.g_queue[g].popleft()
        self.n_open -= 1
        if not self.g_queue[g]:
            self.active.remove(g)
        self.virtual[g] = self.virtual.get(g, 0) + 1
        return node

    def score(self, g: int) -> float:
        """UCB1 of a group with this step's virtual visits; an unvisited group
        is scored from its action's counts."""
        if self.g_visits[g] > 0:
            s, n = self.g_succ[g], self.g_visits[g]
        else:
            a = self.g_action[g]
            s, n = self.a_succ[a], self.a_visits[a]
        n_eff = float(n + self.virtual.get(g, 0))
        if n_eff == 0.0:
            return math.inf
        log_total = math.log(float(self.total_visits)) if self.total_visits > 1 else 0.0
        return s / n_eff + self.ucb1_c * math.sqrt(log_total / n_eff)

    def record(self, node: int, g: int, outcome: int, found: list[int]) -> None:
        action, target = self.node_key[node]
        self.a_visits[action] += 1
        self.g_visits[g] += 1
        self.total_visits += 1
        if outcome == OUT_OK:
            self.a_succ[action] += 1
            self.g_succ[g] += 1
            for b in self.successors[action]:
                for t in found or (target,):
                    self.add_node(b, t)
            if self.terminal[action] and not self.env_completes:
                self.task_done = True
            return
        self.total_fail += 1
        if outcome == OUT_ERROR and self.node_retries[node] < self.max_retries:
            self.node_retries[node] += 1
            self.push_open(g, node)

    # ---------------------------------------------------------------- a step
    def step(self) -> None:
        self.virtual.clear()
        self.workers.do("plan")
        self.workers.do("act")
        self.workers.do("commit")
        if self.env_done:
            self.task_done = True
        if self.task_done:
            self.verdict = V_SUCCESS
        elif self.n_open == 0:                      # every worker is idle after commit
            self.verdict = V_EXHAUSTED
        elif self.max_ticks > 0 and self.steps >= self.max_ticks:
            self.verdict = V_TIMEOUT
        self.running = self.verdict == V_RUNNING

    def result(self) -> RunResult:
        """The run's row, shaped like the reference kernel's."""
        return RunResult(self.verdict == V_SUCCESS, self.verdict, self.steps, self.total_visits,
                         self.total_fail, list(self.a_visits), self.task_done)


def _check_supported(rules, binding, config) -> None:
    """Refuse settings this model does not implement (never run them differently)."""
    from swarm_engine._native import _envs

    problems = []
    if int(binding.kind) != _envs.ENV_TROUBLESHOOTING:
        problems.append("environment is not 'troubleshooting'")
    if config.selector.strategy != "ucb1" or config.selector.granularity != "action_target":
        problems.append("selection is not UCB1 per (action, target)")
    if config.selector.bonus is not None:
        problems.append("a learned bonus table is installed")
    if len(rules.var_val) or binding.act_kind is not None:
        problems.append("parameter variants or target kinds are used")
    if any(int(x) != -1 for x in rules.start_arg):
        problems.append("start nodes carry arguments")
    term = config.termination
    if (term.strategy != "first_success" or term.on_exhausted != "fail" or term.max_consecutive_errors
            or config.management.kind != "every_tick"):
        problems.append("termination/management is not first_success, fail on exhaustion, every tick")
    if problems:
        raise ValueError("the Mesa troubleshooting model does not implement this workload: " + "; ".join(problems))


def run_seeds(workload, seeds) -> list[RunResult]:
    """One model per seed, stepped while ``model.running``; a row per run."""
    if mesa is None:
        raise RuntimeError(str(unavailable_reason()))
    rules, binding, config = workload.rules, workload.binding, workload.config
    out = []
    for seed in seeds:
        model = TroubleshootingModel(rules, binding, config, int(seed))
        while model.running:
            model.step()
        out.append(model.result())
    return out
