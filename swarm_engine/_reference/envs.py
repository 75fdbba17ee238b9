"""The native environments of ``_native/_envs.pyx``, in plain Python.

Same parameters, same hidden-state layout, same random draws in the same
order, same outcomes, discoveries and durations, so a reference run and a
native run of one seed see the same world. ``step`` takes one tick's batch of
(action, target, arg) triples and returns

    (outcomes, discoveries, durations_ms, done)

with one list of discovered targets per action and ``done`` true when the
environment reports the task complete.
"""
from swarm_engine._reference.rng import MASK64, Xoshiro256, hash64

__all__ = [
    "ENV_GRID", "ENV_PYTHON", "ENV_TROUBLESHOOTING", "OUT_ERROR", "OUT_FAIL", "OUT_OK",
    "GridEnv", "TroubleshootingEnv", "grid_blocked", "make_env",
]

ENV_PYTHON = 0
ENV_TROUBLESHOOTING = 1
ENV_GRID = 2

OUT_FAIL = 0    # the action ran and found nothing: close, no expansion
OUT_OK = 1      # success: close and expand the successors
OUT_ERROR = 2   # transient error: the engine may retry the node


def _param(params, i, default):
    return params[i] if i < len(params) else default


def _param_int(params, i, default):
    return int(params[i]) if i < len(params) else default    # C's truncation toward zero


def _int32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


class TroubleshootingEnv:
    """Find the faulty service among n: CheckStatus (op 0) lists the services
    that are not Running, ReadLogs / AnalyzeMetrics (ops 1, 2) find the
    fault's evidence, Diagnose (op 3) names the service, Restart (op 4) of the
    diagnosed one completes the task. params = [n_services, error_rate, noise].
    """

    kind = ENV_TROUBLESHOOTING
    EVIDENCE = (3, 2, 3, 1, 1)              # per problem: bit 1 logs, bit 2 metrics
    DURATION_MS = (5.0, 20.0, 30.0, 10.0, 50.0)

    def __init__(self, params, op_of_action):
        self.params = [float(p) for p in params]
        self.ops = [int(o) for o in op_of_action]
        self.n = _param_int(self.params, 0, 4)
        self.error_rate = _param(self.params, 1, 0.0)
        self.noise = _param(self.params, 2, 0.25)
        self.rng = Xoshiro256()
        self.faulty = self.problem = 0
        self.diagnosed = -1
        self.done = False
        self.status = [0] * self.n          # 0 Running, 1 Degraded, 2 Down
        self.evidence = [0] * self.n        # bits found so far

    def reset(self, seed):
        """Draw the hidden state of a new run from stream 0 of its seed."""
        rng = self.rng
        rng.seed(seed, 0)
        n = self.n
        self.faulty = rng.below(n)
        self.problem = rng.below(5)
        self.diagnosed = -1
        self.done = False
        self.evidence = [0] * n
        self.status = [0] * n
        for i in range(n):
            if i == self.faulty:
                self.status[i] = 1 + rng.below(2)       # Degraded or Down
            elif rng.uniform() < self.noise:
                self.status[i] = 1                      # a red herring

    @property
    def state(self):
        """The native int32 layout: [n, faulty, problem, diagnosed, done, status[n], evidence[n]]."""
        return [self.n, self.faulty, self.problem, self.diagnosed, int(self.done),
                *self.status, *self.evidence]

    def step(self, actions):
        outcomes, discoveries, durations = [], [], []
        done = False
        n = self.n
        for act, s, _arg in actions:
            op = self.ops[act]
            found = []
            discoveries.append(found)
            durations.append(self.DURATION_MS[op] if 0 <= op < 5 else 0.0)
            if op < 0 or op > 4:
                outcomes.append(OUT_FAIL)
                continue
            if self.error_rate > 0.0 and self.rng.uniform() < self.error_rate:
                outcomes.append(OUT_ERROR)
                continue
            out = OUT_FAIL
            if op == 0:
                out = OUT_OK
                found.extend(i for i in range(n) if self.status[i] != 0)
            elif s < 0 or s >= n:
                out = OUT_FAIL
            elif op in (1, 2):
                bit = 1 if op == 1 else 2
                if s == self.faulty and self.EVIDENCE[self.problem] & bit:
                    self.evidence[s] |= bit
                    out = OUT_OK
            elif op == 3:
                if s == self.faulty and self.evidence[s] != 0:
                    self.diagnosed = s
                    out = OUT_OK
            elif s == self.diagnosed:                   # op 4
                self.done = done = True
                out = OUT_OK
            outcomes.append(out)
        return outcomes, discoveries, durations, done


def grid_blocked(seed, cell, rate):
    """Whether a cell is blocked: a stateless hash of (seed, cell), cell 0 never."""
    h = hash64((seed & MASK64) ^ ((cell * 0x9E3779B97F4A7C15) & MASK64))
    return cell != 0 and (h >> 11) * (1.0 / 9007199254740992.0) < rate


class GridEnv:
    """Explore a width x height grid from cell 0: a blocked cell fails, the
    goal cell completes the task, any other cell discovers its 4-neighbours
    (right, down, left, up). Every action explores its target (ops are not
    consulted). params = [width, height, block_rate, goal], goal -1 none,
    -2 random."""

    kind = ENV_GRID

    def __init__(self, params, op_of_action=()):
        self.params = [float(p) for p in params]
        self.w = _param_int(self.params, 0, 100)
        self.h = _param_int(self.params, 1, 100)
        self.rate = _param(self.params, 2, 0.0)
        self.goal_param = _param_int(self.params, 3, -1)
        self.rng = Xoshiro256()
        self.goal = self.goal_param
        self.done = False
        self.seed = 0

    def reset(self, seed):
        """Draw the goal (when random) from stream 0; blocks hash the seed."""
        self.rng.seed(seed, 0)
        self.seed = seed & MASK64
        self.goal = self.goal_param
        if self.goal == -2:
            self.goal = self.rng.below(self.w * self.h)
        self.done = False

    @property
    def state(self):
        """The native int32 layout: [goal, done, seed_lo, seed_hi]."""
        return [self.goal, int(self.done), _int32(self.seed), _int32(self.seed >> 32)]

    def step(self, actions):
        w, h = self.w, self.h
        outcomes, discoveries, durations = [], [], []
        done = False
        for _act, c, _arg in actions:
            found = []
            discoveries.append(found)
            durations.append(1.0)
            if c < 0 or c >= w * h or grid_blocked(self.seed, c, self.rate):
                outcomes.append(OUT_FAIL)
                continue
            outcomes.append(OUT_OK)
            if c == self.goal:
                self.done = done = True
                continue
            x, y = c % w, c // w
            if x + 1 < w:
                found.append(c + 1)
            if y + 1 < h:
                found.append(c + w)
            if x > 0:
                found.append(c - 1)
            if y > 0:
                found.append(c - w)
        return outcomes, discoveries, durations, done


def make_env(kind, params, op_of_action):
    """The reference environment for a native ``EnvKind``."""
    if kind == ENV_TROUBLESHOOTING:
        return TroubleshootingEnv(params, op_of_action)
    if kind == ENV_GRID:
        return GridEnv(params, op_of_action)
    raise ValueError(f"the reference has no environment of kind {kind} (Python envs are stepped outside)")
