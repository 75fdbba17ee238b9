"""The native environments (``_native/_troubleshooting.pyx``, ``_grid.pyx``,
``_code_tree.pyx``, ``_search.pyx``, ``_diagnosis.pyx``, ``_cascade.pyx``) in plain Python.

Same parameters and defaults, same hidden-state layout (``state``), same random
draws from stream 0 in the same order, same outcomes, discoveries, target
kinds and durations, so a reference run and a native run of one seed see the
same world. ``step`` takes one tick's batch of (action, target, arg) triples
and returns

    (outcomes, discoveries, durations_ms, done)

where ``discoveries[i]`` lists action i's (target, target kind) pairs, kind 0
meaning any, and ``done`` is true when the environment reports the task
complete in this step.
"""
from swarm_engine._reference.rng import MASK64, Xoshiro256, hash64

__all__ = [
    "ENV_CASCADE", "ENV_CODE", "ENV_DIAGNOSIS", "ENV_GRID", "ENV_PYTHON", "ENV_SEARCH", "ENV_TROUBLESHOOTING",
    "OUT_ERROR", "OUT_FAIL", "OUT_OK", "CascadeEnv", "CodeTreeEnv", "DiagnosisEnv", "GridEnv", "SearchEnv",
    "TroubleshootingEnv", "Discovery", "grid_blocked", "make_env",
]

ENV_PYTHON, ENV_TROUBLESHOOTING, ENV_GRID, ENV_CODE, ENV_SEARCH, ENV_DIAGNOSIS, ENV_CASCADE = range(7)
OUT_FAIL = 0    # the action ran and found nothing: close, no expansion
OUT_OK = 1      # success: close and expand the successors
OUT_ERROR = 2   # transient error: the engine may retry the node


def _int32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


Discovery = tuple[int, int]          # (target, target kind)


class _Env:
    """Parameters, op tables and the stream-0 generator every environment shares."""

    kind = ENV_PYTHON
    DURATION_MS: tuple[float, ...] = ()
    error_rate = 0.0                    # the share of valid actions that err (set by each environment)

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        self.params = [float(p) for p in params]
        self.ops = [int(o) for o in op_of_action]
        self.arg_ops = None if op_of_arg is None else [int(o) for o in op_of_arg]
        self.rng = Xoshiro256()

    def param(self, i, default):
        return self.params[i] if i < len(self.params) else default

    def param_int(self, i, default):
        return int(self.params[i]) if i < len(self.params) else default    # C truncation

    def arg_op(self, arg):
        """The environment argument behind a scenario argument id, -1 unknown."""
        if not self.arg_ops or not 0 <= arg < len(self.arg_ops):
            return -1
        return self.arg_ops[arg]

    def reset(self, seed):
        self.rng.seed(seed, 0)

    def _act(self, op: int, target: int, arg: int) -> tuple[int, list[Discovery]]:
        """One valid, non-erring action: (outcome, discoveries). Each environment that
        uses the shared ``step`` defines it."""
        raise NotImplementedError

    def step(self, actions):
        """One batch: per action, its op (or -1) and the shared bookkeeping;
        ``_act`` decides (outcome, discoveries) for a valid op that did not err."""
        outcomes: list[int] = []
        discoveries: list[list[Discovery]] = []
        durations: list[float] = []
        self._done = False
        error_rate = self.error_rate
        for act, target, arg in actions:
            op = self.ops[act]
            durations.append(self.DURATION_MS[op] if 0 <= op < len(self.DURATION_MS) else 0.0)
            if not 0 <= op < len(self.DURATION_MS):
                outcomes.append(OUT_FAIL)
                discoveries.append([])
            elif error_rate > 0.0 and self.rng.uniform() < error_rate:
                outcomes.append(OUT_ERROR)
                discoveries.append([])
            else:
                out, found = self._act(op, target, arg)
                outcomes.append(out)
                discoveries.append(found)
        return outcomes, discoveries, durations, self._done


def skewed_below(rng, n, skew):
    """The native ``skewed_below``: uniform when skew <= 0, else weights
    1 / (1 + (5 i + 2) mod n)^skew, one uniform draw."""
    if skew <= 0.0 or n <= 1:
        return rng.below(n)
    total = 0.0
    for i in range(n):
        total += (1.0 + ((5 * i + 2) % n)) ** -skew
    u = rng.uniform() * total
    for i in range(n):
        u -= (1.0 + ((5 * i + 2) % n)) ** -skew
        if u < 0.0:
            return i
    return n - 1


class TroubleshootingEnv(_Env):
    """Find the faulty services, gather evidence, diagnose, restart every fault.

    params = [services, error_rate, noise, faults, log_noise, fault_skew]; ops CheckStatus 0,
    ReadLogs 1, AnalyzeMetrics 2, Diagnose 3, Restart 4.
    """

    kind = ENV_TROUBLESHOOTING
    EVIDENCE = (3, 2, 3, 1, 1)              # per problem: bit 1 logs, bit 2 metrics
    DURATION_MS = (5.0, 20.0, 30.0, 10.0, 50.0)

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        super().__init__(params, op_of_action, op_of_arg)
        self.n = self.param_int(0, 4)
        self.error_rate = self.param(1, 0.0)
        self.noise = self.param(2, 0.25)
        self.faults = min(max(self.param_int(3, 1), 1), self.n)
        self.log_noise = self.param(4, 0.0)
        self.fault_skew = self.param(5, 0.0)
        self.reset(0)

    def reset(self, seed):
        rng = self.rng
        rng.seed(seed, 0)
        n = self.n
        self.restored, self.done = 0, False
        self.status = [0] * n                # 0 Running, 1 Degraded, 2 Down
        self.problem = [-1] * n              # -1 healthy, else the problem kind
        self.evidence = [0] * n              # bits found so far
        self.diagnosed = [0] * n             # 1 diagnosed, 2 restored
        self.noisy = [0] * n                 # noisy logs (a healthy, non-Running service)
        self.first = skewed_below(rng, n, self.fault_skew)
        self.problem[self.first] = rng.below(5)
        for i in range(n):
            if i == self.first:
                self.status[i] = 1 + rng.below(2)       # Degraded or Down
            elif rng.uniform() < self.noise:
                self.status[i] = 1                      # a red herring
        for k in range(1, self.faults):
            j = rng.below(n - k)                        # the j-th healthy service
            s = [i for i in range(n) if self.problem[i] < 0][j]
            self.problem[s] = rng.below(5)
            self.status[s] = 1 + rng.below(2)
        if self.log_noise > 0.0:
            for i in range(n):
                if self.problem[i] < 0 and self.status[i] != 0 and rng.uniform() < self.log_noise:
                    self.noisy[i] = 1

    @property
    def state(self):
        """The native int32 layout."""
        return [self.n, self.faults, self.restored, int(self.done), self.first, *self.status,
                *self.problem, *self.evidence, *self.diagnosed, *self.noisy]

    def _act(self, op, s, _arg):
        if op == 0:
            return OUT_OK, [(i, 0) for i in range(self.n) if self.status[i] != 0]
        if not 0 <= s < self.n:
            return OUT_FAIL, []
        problem = self.problem[s]
        if op in (1, 2):
            bit = 1 if op == 1 else 2
            if problem >= 0 and self.EVIDENCE[problem] & bit:
                self.evidence[s] |= bit
                return OUT_OK, []
            return (OUT_OK if op == 1 and self.noisy[s] else OUT_FAIL), []
        if op == 3:
            if problem >= 0 and self.evidence[s] != 0 and self.diagnosed[s] == 0:
                self.diagnosed[s] = 1
                return OUT_OK, []
            return OUT_FAIL, []
        if self.diagnosed[s] == 1:                      # op 4, Restart
            self.diagnosed[s] = 2
            self.restored += 1
            if self.restored >= self.faults:
                self.done = self._done = True
            return OUT_OK, []
        return OUT_FAIL, []


def grid_blocked(seed, cell, rate):
    """Whether a cell is blocked: a stateless hash of (seed, cell), cell 0 never."""
    h = hash64((seed & MASK64) ^ ((cell * 0x9E3779B97F4A7C15) & MASK64))
    return cell != 0 and (h >> 11) * (1.0 / 9007199254740992.0) < rate


class GridEnv(_Env):
    """Flood-fill a width x height grid from cell 0: a blocked cell fails, the
    goal completes the task, any other cell discovers its 4-neighbours (right,
    down, left, up). Only op 0 (Explore) explores; any other op fails. None errs.
    params = [width, height, block_rate, goal], goal -1 none, -2 random.
    """

    kind = ENV_GRID

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        super().__init__(params, op_of_action, op_of_arg)
        self.w, self.h = self.param_int(0, 100), self.param_int(1, 100)
        self.rate = self.param(2, 0.0)
        self.goal_param = self.param_int(3, -1)
        self.reset(0)

    def reset(self, seed):
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
        outcomes, discoveries = [], []
        done = False
        for act, c, _arg in actions:
            found: list[Discovery] = []
            discoveries.append(found)
            if self.ops[act] != 0 or c < 0 or c >= w * h or grid_blocked(self.seed, c, self.rate):
                outcomes.append(OUT_FAIL)
                continue
            outcomes.append(OUT_OK)
            if c == self.goal:
                self.done = done = True
                continue
            x, y = c % w, c // w
            if x + 1 < w:
                found.append((c + 1, 0))
            if y + 1 < h:
                found.append((c + w, 0))
            if x > 0:
                found.append((c - 1, 0))
            if y > 0:
                found.append((c - w, 0))
        return outcomes, discoveries, [1.0] * len(actions), done


class CodeTreeEnv(_Env):
    """Find the file defining a symbol in a generated source tree.

    params = [files, files_per_dir, branching, grep_limit, refs, error_rate];
    ops List 0, Grep 1, Read 2. Directories 0..D-1 (kind 1) form a complete
    ``branching``-ary tree in heap order; file f (target D + f, kind 2) lives
    in directory f % D. List(dir) finds subdirectories and files; Grep(dir)
    finds the goal and reference files of the subtree unless it holds more
    than ``grep_limit`` files (no target: the root); Read(goal) completes;
    Read(reference) finds the goal.
    """

    kind = ENV_CODE
    DURATION_MS = (2.0, 20.0, 5.0)
    MAX_REFS = 16
    KIND_DIR, KIND_FILE = 1, 2

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        super().__init__(params, op_of_action, op_of_arg)
        self.F = max(1, self.param_int(0, 200))
        per = max(1, self.param_int(1, 10))
        self.D = (self.F + per - 1) // per
        self.b = max(1, self.param_int(2, 4))
        self.limit = self.param_int(3, 100)
        self.n_refs = max(0, min(self.param_int(4, 3), self.MAX_REFS, self.F - 1))
        self.error_rate = self.param(5, 0.0)
        self.reset(0)

    def reset(self, seed):
        rng = self.rng
        rng.seed(seed, 0)
        self.goal = rng.below(self.F)
        self.done = False
        self.refs: list[int] = []
        while len(self.refs) < self.n_refs:             # distinct, never the goal
            f = rng.below(self.F)
            if f != self.goal and f not in self.refs:
                self.refs.append(f)

    @property
    def state(self):
        """The native int32 layout: [D, F, goal, done, n_refs, refs[16]]."""
        refs = self.refs + [0] * (self.MAX_REFS - len(self.refs))
        return [self.D, self.F, self.goal, int(self.done), self.n_refs, *refs]

    def _files_in_dirs(self, lo, hi):
        """Files held by directories lo..hi: F // D each, one more below F % D."""
        F, D = self.F, self.D
        return (hi - lo + 1) * (F // D) + max(0, min(hi, F % D - 1) - lo + 1)

    def _subtree_files(self, d):
        """Files in d's subtree, one tree level (a range of directories) at a time."""
        lo = hi = d
        total = 0
        while lo < self.D:
            total += self._files_in_dirs(lo, min(hi, self.D - 1))
            lo, hi = lo * self.b + 1, hi * self.b + self.b
        return total

    def _in_subtree(self, x, d):
        while x > d:
            x = (x - 1) // self.b
        return x == d

    def _act(self, op, t, _arg):
        F, D, b = self.F, self.D, self.b
        if op in (0, 1):
            if t == -1:
                t = 0                                   # no target: the repository root
            if not 0 <= t < D:
                return OUT_FAIL, []
            if op == 0:
                dirs = [(c, self.KIND_DIR) for c in range(t * b + 1, min(t * b + 1 + b, D))]
                return OUT_OK, dirs + [(D + f, self.KIND_FILE) for f in range(t, F, D)]
            if self._subtree_files(t) > self.limit:
                return OUT_FAIL, []                     # too broad
            hits = sorted(f for f in [self.goal, *self.refs] if self._in_subtree(f % D, t))
            return (OUT_OK if hits else OUT_FAIL), [(D + f, self.KIND_FILE) for f in hits]
        f = t - D                                       # op 2, Read
        if not 0 <= f < F:
            return OUT_FAIL, []
        if f == self.goal:
            self.done = self._done = True
            return OUT_OK, []
        if f in self.refs:
            return OUT_OK, [(D + self.goal, self.KIND_FILE)]
        return OUT_FAIL, []


class SearchEnv(_Env):
    """Pick the right file among search results.

    params = [files, results, decoys, error_rate]; ops Search 0, Preview 1,
    Read 2, Submit 3. Search lists the results (target, decoys, unrelated
    files, shuffled); Preview succeeds on the target and decoys, Read on the
    target only; Submit of the read target completes the task.
    """

    kind = ENV_SEARCH
    DURATION_MS = (15.0, 3.0, 8.0, 1.0)

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        super().__init__(params, op_of_action, op_of_arg)
        self.F = max(1, self.param_int(0, 10))
        self.k = max(1, min(self.param_int(1, 5), max(1, self.param_int(0, 10))))
        self.d = max(0, min(self.param_int(2, 2), self.k - 1))
        self.error_rate = self.param(3, 0.0)
        self.reset(0)

    def reset(self, seed):
        rng = self.rng
        rng.seed(seed, 0)
        self.target = rng.below(self.F)
        self.done = self.read = False
        results = [self.target]
        while len(results) < self.k:                    # decoys first, then unrelated files
            f = rng.below(self.F)
            if f not in results:
                results.append(f)
        self.decoys = results[1:1 + self.d]
        for i in range(self.k - 1, 0, -1):              # Fisher-Yates
            j = rng.below(i + 1)
            results[i], results[j] = results[j], results[i]
        self.results = results

    @property
    def state(self):
        """The native int32 layout: [F, target, done, read, k, d, results[k], decoys[d]]."""
        return [self.F, self.target, int(self.done), int(self.read), self.k, self.d,
                *self.results, *self.decoys]

    def _act(self, op, f, _arg):
        if op == 0:
            return OUT_OK, [(r, 0) for r in self.results]
        if op == 1:
            return (OUT_OK if f == self.target or f in self.decoys else OUT_FAIL), []
        if op == 2:
            if f == self.target:
                self.read = True
                return OUT_OK, []
            return OUT_FAIL, []
        if f == self.target and self.read:              # op 3, Submit
            self.done = self._done = True
            return OUT_OK, []
        return OUT_FAIL, []


class DiagnosisEnv(_Env):
    """Find and fix the faulty section of a proprietary config.

    params = [sections, noise, error_rate, fault_skew]; ops ParseConfig 0, AnalyzeLog 1,
    TraceError 2, ApplyFix 3; args: fix i repairs section i. ParseConfig finds
    the faulty section and noisy ones; AnalyzeLog and TraceError succeed on the
    faulty one; ApplyFix with the right fix after a trace completes the task.
    """

    kind = ENV_DIAGNOSIS
    DURATION_MS = (10.0, 30.0, 40.0, 60.0)
    MAX_SECTIONS = 8

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        super().__init__(params, op_of_action, op_of_arg)
        self.n = max(1, min(self.param_int(0, self.MAX_SECTIONS), self.MAX_SECTIONS))
        self.noise = self.param(1, 0.3)
        self.error_rate = self.param(2, 0.0)
        self.fault_skew = self.param(3, 0.0)
        self.reset(0)

    def reset(self, seed):
        rng = self.rng
        rng.seed(seed, 0)
        self.faulty = skewed_below(rng, self.n, self.fault_skew)
        self.done = self.traced = self.evidence = False
        self.noisy = [int(i != self.faulty and rng.uniform() < self.noise) for i in range(self.n)]

    @property
    def state(self):
        """The native int32 layout: [n, faulty, done, traced, evidence, noisy[n]]."""
        return [self.n, self.faulty, int(self.done), int(self.traced), int(self.evidence), *self.noisy]

    def _act(self, op, s, arg):
        if op == 0:
            return OUT_OK, [(i, 0) for i in range(self.n) if i == self.faulty or self.noisy[i]]
        if s != self.faulty:
            return OUT_FAIL, []
        if op == 1:
            self.evidence = True
        elif op == 2:
            self.traced = True
        elif not (self.traced and self.arg_op(arg) == self.faulty):
            return OUT_FAIL, []
        else:
            self.done = self._done = True
        return OUT_OK, []


class CascadeEnv(_Env):
    """A cascade outage: find the failing upstream among the degraded services and apply its fix.

    params = [services, degraded, fixes, error_rate]; ops CheckStatus 0, ReadLogs 1,
    ApplyFix 2; args: fix i. CheckStatus finds every degraded service (the root
    and its victims alike); ReadLogs succeeds on a degraded one; ApplyFix of the
    root with its fix completes the task.
    """

    kind = ENV_CASCADE
    DURATION_MS = (5.0, 20.0, 40.0)
    MAX_SERVICES = MAX_FIXES = 8

    def __init__(self, params, op_of_action=(), op_of_arg=None):
        super().__init__(params, op_of_action, op_of_arg)
        self.n = max(1, min(self.param_int(0, self.MAX_SERVICES), self.MAX_SERVICES))
        self.d = max(1, min(self.param_int(1, 4), self.n))
        self.nf = max(1, min(self.param_int(2, 6), self.MAX_FIXES))
        self.error_rate = self.param(3, 0.0)
        self.reset(0)

    def reset(self, seed):
        rng = self.rng
        rng.seed(seed, 0)
        self.root = rng.below(self.n)
        self.fix = rng.below(self.nf)
        self.done = False
        self.degraded = [0] * self.n
        self.degraded[self.root] = 1
        for k in range(1, self.d):
            j = rng.below(self.n - k)                   # the j-th service not yet degraded
            self.degraded[[i for i in range(self.n) if not self.degraded[i]][j]] = 1

    @property
    def state(self):
        """The native int32 layout: [n, root, fix, done, n_degraded, n_fixes, degraded[n]]."""
        return [self.n, self.root, self.fix, int(self.done), self.d, self.nf, *self.degraded]

    def _act(self, op, s, arg):
        if op == 0:
            return OUT_OK, [(i, 0) for i in range(self.n) if self.degraded[i]]
        if not 0 <= s < self.n:
            return OUT_FAIL, []
        if op == 1:
            return (OUT_OK if self.degraded[s] else OUT_FAIL), []
        if s == self.root and not self.done and self.arg_op(arg) == self.fix:
            self.done = self._done = True
            return OUT_OK, []
        return OUT_FAIL, []


_KINDS = {env.kind: env for env in (TroubleshootingEnv, GridEnv, CodeTreeEnv, SearchEnv, DiagnosisEnv,
                                    CascadeEnv)}


def make_env(kind, params, op_of_action=(), op_of_arg=None):
    """The reference environment for a native environment kind."""
    if kind not in _KINDS:
        raise ValueError(f"the reference has no environment of kind {kind} (Python envs are stepped outside)")
    return _KINDS[kind](params, op_of_action, op_of_arg)
