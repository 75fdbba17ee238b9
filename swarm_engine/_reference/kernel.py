"""The exploration kernel of ``_native/_kernel.pyx``, in plain Python.

A tick is: plan (give open nodes to idle workers through the selector), one
environment step over the batch, commit (close nodes, expand successors with
dedup, update statistics, log events, judge termination). Everything the
native kernel decides is reproduced exactly, including what a faster design
could be tempted to change:

* nodes are deduplicated on (action, target, arg) and numbered in discovery
  order; groups are (action, target) pairs when ``granular``, else actions,
  numbered in first-seen order, each a FIFO queue of open nodes;
* ``active`` lists the non-empty groups in the order they became non-empty,
  and an emptied group is swap-removed from it (last one moved into its
  slot): that order is the order groups are scored in, hence the order of the
  Beta draws of the sampled Thompson selector;
* each worker takes the head of the best group: higher score, ties to the
  smaller head node id (the native max-heap's order; a scan gives the same
  pick); the picked group gets a virtual visit and, if still non-empty, is
  re-scored (one more draw for the sampled selector). The native heap holds
  only the oldest never-visited group of each action when it can (granular,
  no sampling): such groups share their action's score, so the oldest one
  wins among them and scanning them all picks the same;
* a transient error retries the node at the tail of its queue up to
  ``max_retries`` times; a success expands successors (CSR order) x
  discoveries (in order; none means the node's own target) x param variants,
  a successor with a target kind (``act_kind``) taking only discoveries of
  that kind. (The native merge defers reopenings and expansions to the end of
  the tick to prefetch its dedup slots, replaying them in this same order: no
  decision reads what they change, so doing them on the spot is the same.)

Capacities and ``ST_NEED_ROOM`` do not exist here: lists grow.
"""
import math
from collections import deque
from typing import NamedTuple

import numpy as np

from swarm_engine._reference.envs import OUT_ERROR, OUT_OK, make_env
from swarm_engine._reference.rng import Xoshiro256

__all__ = ["ReferenceKernel", "RunResult"]

# Enum values of _native/_kernel.pxd.
SEL_FIFO, SEL_UCB1, SEL_THOMPSON, SEL_THOMPSON_SAMPLED, SEL_GREEDY, SEL_ADAPTIVE = range(6)
MANAGE_EVERY_TICK, MANAGE_FIXED_INTERVAL, MANAGE_COMPLETION_BASED = range(3)
TERM_FIRST_SUCCESS, TERM_ALL_COMPLETE, TERM_ALL_SUCCEED = range(3)
EXHAUSTED_FAIL, EXHAUSTED_SUCCESS, EXHAUSTED_WAIT = range(3)
V_RUNNING, V_SUCCESS, V_EXHAUSTED, V_TIMEOUT, V_MAX_ERRORS, V_INCOMPLETE, V_STOPPED = range(7)
NODE_OPEN, NODE_ASSIGNED, NODE_DONE_OK, NODE_DONE_FAIL = range(4)
W_IDLE, W_ACTED, W_CONTINUING, W_NEEDS_GUIDANCE, W_ESCALATE, W_DONE = range(6)
ST_OK = 0
FLAG_DONE, FLAG_SUCCESS = 1, 2
MAX_ACTIONS = (1 << 12) - 1
MAX_TARGET = (1 << 28) - 2
MAX_ARG = (1 << 24) - 2
MAX_RETRIES = 255

_EVENT_DTYPES = {"run": np.int32, "tick": np.int32, "worker": np.int32, "node": np.int32,
                 "action": np.int32, "target": np.int32, "arg": np.int32, "outcome": np.int8,
                 "n_discoveries": np.int32, "duration_ms": np.float32, "source": np.int8}


class RunResult(NamedTuple):
    """One run of ``run_batch``: the row the native kernel writes for it."""
    success: bool
    verdict: int
    ticks: int
    actions: int
    failed: int
    by_action: list
    done: bool          # the task was completed (``out_done``)


def _csr(ptr, values):
    ptr = [int(p) for p in ptr]
    values = [int(v) for v in values]
    return [values[ptr[i]:ptr[i + 1]] for i in range(len(ptr) - 1)]


class ReferenceKernel:
    """One run at a time, like ``Kernel``; takes the same keyword arguments
    (capacities are accepted and ignored)."""

    def __init__(self, *, n_actions, succ_ptr, succ_act, is_terminal, var_ptr, var_val,
                 start_act, start_tgt, start_arg, n_workers, max_ticks, term_strategy,
                 on_exhausted, max_consec_errors, max_retries, escalate_after, manage_kind,
                 manage_param, granular, selector, ucb1_c, learning_weight, greedy_weight,
                 maturity_threshold, error_rate_threshold, bonus3, env_kind, env_params,
                 env_ops, env_max_disc=0, record_events=False, node_capacity=0, event_capacity=0,
                 act_kind=None, env_args=None, env_completes=False):
        if not 0 < n_actions <= MAX_ACTIONS:
            raise ValueError(f"n_actions must be in 1..{MAX_ACTIONS}")
        if n_workers <= 0:
            raise ValueError("n_workers must be positive")
        if not 0 <= max_retries <= MAX_RETRIES:
            raise ValueError(f"max_retries must be in 0..{MAX_RETRIES} (a node counts its retries in one byte)")
        A = self.n_actions = int(n_actions)
        self.successors = _csr(succ_ptr, succ_act)          # per action, in CSR order
        self.variants = _csr(var_ptr, var_val)              # per action; [] = one child, arg -1
        self.is_terminal = [bool(t) for t in is_terminal]
        self.act_kind = [0] * A if act_kind is None else [int(k) for k in act_kind]
        if len(self.act_kind) != A:
            raise ValueError("act_kind must have one entry per action")
        self.starts = list(zip((int(a) for a in start_act), (int(t) for t in start_tgt),
                               (int(x) for x in start_arg)))
        self.n_workers = int(n_workers)
        self.max_ticks = int(max_ticks)
        self.term_strategy = term_strategy
        self.on_exhausted = on_exhausted
        self.env_completes = bool(env_completes)    # only the environment completes the task
        self.max_consec_errors = max_consec_errors
        self.max_retries = max_retries
        self.escalate_after = escalate_after
        self.manage_kind = manage_kind
        self.manage_param = max(1, int(manage_param))
        self.granular = bool(granular)
        self.selector = selector
        self.ucb1_c = float(ucb1_c)
        self.learning_weight = float(learning_weight)
        self.greedy_weight = float(greedy_weight)
        self.maturity_threshold = int(maturity_threshold)
        self.error_rate_threshold = float(error_rate_threshold)
        self.set_bonus(bonus3)
        # the learned child ordering: per action, a score per target and per arg (None: none)
        self.prior: tuple[list[list[float]], list[list[float]]] | None = None
        self.env = make_env(env_kind, env_params, env_ops, env_args)
        self.record_events = bool(record_events)
        self.rng = Xoshiro256()
        self.run_index = -1
        self.seed = 0
        self.cum_visits, self.cum_succ, self.cum_fail = [0] * A, [0] * A, [0] * A
        self.cum_dur = [0.0] * A
        self._events: dict[str, list[int | float]] = {k: [] for k in _EVENT_DTYPES}
        self._clear()

    def set_bonus(self, bonus3):
        """Install the learned bonus table, ((A+1)**2 * A,) values or empty."""
        A = self.n_actions
        bonus = [] if bonus3 is None else [float(b) for b in np.ravel(bonus3)]
        if len(bonus) not in (0, (A + 1) * (A + 1) * A):
            raise ValueError(f"bonus table must have (A+1)^2*A = {(A + 1) ** 2 * A} entries")
        self.bonus3 = bonus

    # ------------------------------------------------------------------ run
    def _clear(self):
        A, W = self.n_actions, self.n_workers
        # graph map: node id -> key, parent, tick, state, retries; key -> id
        self.n_key, self.n_parent, self.n_tick, self.n_state, self.n_retries = [], [], [], [], []
        self.node_index = {}
        # frontier groups: key (action, target or -1), queue, statistics
        self.g_key, self.g_queue = [], []
        self.g_visits, self.g_succ, self.g_disc, self.g_dur = [], [], [], []
        self.group_index = {}
        if not self.granular:
            for a in range(A):
                self._new_group((a, -1))
        self.active = []                 # non-empty groups, swap-removed
        self.g_active_pos = {}           # group -> index in active
        self.n_open = 0
        self.a_visits, self.a_succ, self.a_fail, self.a_disc = [0] * A, [0] * A, [0] * A, [0] * A
        self.a_dur = [0.0] * A
        self.w_node, self.w_group = [-1] * W, [-1] * W
        self.w_result, self.w_flags = [W_IDLE] * W, [0] * W
        self.w_consec, self.w_actions = [0] * W, [0] * W
        self.tick = 0
        self.verdict = V_RUNNING
        self.task_done = False
        self.total_visits = self.total_fail = self.consec_errors = 0
        self.last_manage_tick = -1
        self.prev_action = self.prev_prev_action = -1

    def _reset(self, seed):
        self.seed = seed
        self.rng.seed(seed, 1)
        self.env.reset(seed)
        self._clear()
        for a, t, x in self.starts:
            self._add_node(a, t, x, -1)

    @property
    def n_nodes(self):
        return len(self.n_key)

    @property
    def n_groups(self):
        return len(self.g_key)

    @property
    def n_active(self):
        return len(self.active)

    def _new_group(self, key):
        g = len(self.g_key)
        self.g_key.append(key)
        self.g_queue.append(deque())
        self.g_visits.append(0)
        self.g_succ.append(0)
        self.g_disc.append(0)
        self.g_dur.append(0.0)
        self.group_index[key] = g
        return g

    def _group_of(self, action, target):
        if not self.granular:
            return action
        g = self.group_index.get((action, target))
        return self._new_group((action, target)) if g is None else g

    def _push_open(self, g, node):
        self.n_state[node] = NODE_OPEN
        self.g_queue[g].append(node)
        self.n_open += 1
        if g not in self.g_active_pos:
            self.g_active_pos[g] = len(self.active)
            self.active.append(g)

    def _remove_active(self, g):
        i = self.g_active_pos.pop(g)
        last = self.active.pop()
        if last != g:
            self.active[i] = last
            self.g_active_pos[last] = i

    def _add_node(self, action, target, arg, parent):
        """Add (action, target, arg) unless known; its id, or -1 for a duplicate."""
        if not (-1 <= target <= MAX_TARGET and -1 <= arg <= MAX_ARG):
            raise OverflowError(f"target {target} / arg {arg} outside the packed key range")
        key = (action, target, arg)
        if key in self.node_index:
            return -1
        node = len(self.n_key)
        self.node_index[key] = node
        g = self._group_of(action, target)
        self.n_key.append(key)
        self.n_parent.append(parent)
        self.n_tick.append(self.tick)
        self.n_state.append(NODE_OPEN)
        self.n_retries.append(0)
        self._push_open(g, node)
        return node

    # ------------------------------------------------------------------ select
    def _mode(self):
        if self.selector != SEL_ADAPTIVE:
            return self.selector
        if self.total_visits < self.maturity_threshold:
            return SEL_UCB1
        if self.total_fail < self.error_rate_threshold * self.total_visits:
            return SEL_GREEDY
        return SEL_THOMPSON

    def _bonus_row(self):
        """Learned bonus per action in the context of the run's last two actions."""
        A = self.n_actions
        if not self.bonus3:
            return [0.0] * A
        row = ((self.prev_prev_action + 1) * (A + 1) + (self.prev_action + 1)) * A
        return self.bonus3[row:row + A]

    def _score(self, g, vv, mode, log_total, bonus_row):
        a = self.g_key[g][0]
        bonus = bonus_row[a]
        if mode == SEL_FIFO:
            return 0.0
        if mode == SEL_GREEDY:
            return self.greedy_weight * bonus
        if self.granular and self.g_visits[g] > 0:
            s, n = self.g_succ[g], self.g_visits[g]
        else:
            s, n = self.a_succ[a], self.a_visits[a]
        n_eff = float(n + vv)
        if mode == SEL_UCB1:
            if n_eff == 0.0:
                return math.inf
            return s / n_eff + self.ucb1_c * math.sqrt(log_total / n_eff) + self.learning_weight * bonus
        if mode == SEL_THOMPSON:
            return (s + 1.0) / (n_eff + 2.0) + self.learning_weight * bonus
        return self.rng.beta(s + 1.0, n_eff - s + 1.0) + self.learning_weight * bonus

    def _plan(self):
        """Give open nodes to idle workers: a list of (worker, node, group)."""
        W = self.n_workers
        if self.manage_kind == MANAGE_FIXED_INTERVAL:
            due = self.tick % self.manage_param == 0
        elif self.manage_kind == MANAGE_COMPLETION_BASED:
            busy = any(n >= 0 for n in self.w_node)
            due = not busy or self.tick - self.last_manage_tick >= self.manage_param
        else:
            due = True
        if not due:
            for w in range(W):
                if self.w_node[w] < 0 and not self.w_flags[w] & FLAG_DONE:
                    self.w_result[w] = W_IDLE
            return []
        self.last_manage_tick = self.tick
        mode = self._mode()
        bonus_row = self._bonus_row()
        log_total = math.log(float(self.total_visits)) if self.total_visits > 1 else 0.0
        vv = {}
        score = {}                               # the candidates, scored in `active` order
        for g in self.active:
            vv[g] = 0
            score[g] = self._score(g, 0, mode, log_total, bonus_row)
        queues = self.g_queue
        plan = []
        for w in range(W):
            if self.w_node[w] >= 0 or self.w_flags[w] & FLAG_DONE:
                continue
            if not score:
                self.w_result[w] = W_NEEDS_GUIDANCE
                continue
            g = max(score, key=lambda c: (score[c], -queues[c][0]))   # ties: the older head
            node = queues[g].popleft()
            self.n_open -= 1
            self.n_state[node] = NODE_ASSIGNED
            self.w_node[w] = node
            self.w_group[w] = g
            plan.append((w, node, g))
            vv[g] += 1
            if not queues[g]:
                self._remove_active(g)
                del score[g]
            else:
                score[g] = self._score(g, vv[g], mode, log_total, bonus_row)
        return plan

    # ------------------------------------------------------------------ merge
    def set_prior(self, target=None, arg=None):
        """Learned child ordering: children of one expansion are created best
        first by target[a][t] + arg[a][x] (0 outside the tables), stably."""
        if target is None and arg is None:
            self.prior = None
            return
        prior_t = [list(map(float, row)) for row in (target if target is not None else [[]] * self.n_actions)]
        prior_v = [list(map(float, row)) for row in (arg if arg is not None else [[]] * self.n_actions)]
        if len(prior_t) != self.n_actions or len(prior_v) != self.n_actions:
            raise ValueError(f"prior tables must have shape (n_actions={self.n_actions}, n)")
        self.prior = (prior_t, prior_v) if any(prior_t) or any(prior_v) else None

    @staticmethod
    def _prior_score(prior: tuple[list[list[float]], list[list[float]]], a: int, t: int, x: int) -> float:
        s = 0.0
        row = prior[0][a]
        if 0 <= t < len(row):
            s = row[t]
        row = prior[1][a]
        if 0 <= x < len(row):
            s = s + row[x]
        return s

    def _commit(self, plan, outcomes, discoveries, durations, env_done):
        for (w, node, g), out, found, dur in zip(plan, outcomes, discoveries, durations):
            a, t, x = self.n_key[node]
            nd = len(found)
            self.a_visits[a] += 1
            self.a_dur[a] += dur
            self.a_disc[a] += nd
            self.total_visits += 1
            if self.granular:
                self.g_visits[g] += 1
                self.g_dur[g] += dur
                self.g_disc[g] += nd
            if out == OUT_OK:
                self.a_succ[a] += 1
                if self.granular:
                    self.g_succ[g] += 1
                self.consec_errors = 0
                self.w_consec[w] = 0
            else:
                self.a_fail[a] += 1
                self.total_fail += 1
                self.consec_errors += 1
                self.w_consec[w] = min(self.w_consec[w] + 1, 65535)
            if self.record_events:
                # source: always the selector here (LLM assignments are engine-side)
                for field, value in zip(_EVENT_DTYPES, (self.run_index, self.tick, w, node, a, t, x,
                                                        out, nd, dur, 0)):
                    self._events[field].append(value)
            if out == OUT_ERROR and self.n_retries[node] < self.max_retries:
                self.n_retries[node] += 1
                self._push_open(g, node)
            elif out == OUT_OK:
                self.n_state[node] = NODE_DONE_OK
                children = []
                for b in self.successors[a]:
                    for tt, kind in found or [(t, 0)]:
                        if found and self.act_kind[b] != 0 and kind != self.act_kind[b]:
                            continue
                        for v in self.variants[b] or [-1]:
                            children.append((b, tt, v))
                prior = self.prior
                if prior is not None and len(children) > 1:
                    children.sort(key=lambda c: -self._prior_score(prior, *c))     # stable: ties keep order
                for b, tt, v in children:
                    self._add_node(b, tt, v, node)
                if self.is_terminal[a]:
                    self.w_flags[w] |= FLAG_SUCCESS
                    if not self.env_completes:
                        self.task_done = True
                        if self.term_strategy == TERM_ALL_SUCCEED:
                            self.w_flags[w] |= FLAG_DONE
            else:
                self.n_state[node] = NODE_DONE_FAIL
            self.w_node[w] = -1
            self.w_group[w] = -1
            self.w_actions[w] += 1
            if self.escalate_after > 0 and self.w_consec[w] >= self.escalate_after:
                self.w_result[w] = W_ESCALATE
            elif self.w_flags[w] & FLAG_DONE:
                self.w_result[w] = W_DONE
            else:
                self.w_result[w] = W_ACTED
            self.prev_prev_action, self.prev_action = self.prev_action, a
        if env_done:
            self.task_done = True
        self._judge()

    def _judge(self):
        busy = any(n >= 0 for n in self.w_node)
        term = self.term_strategy
        if self.task_done and term == TERM_FIRST_SUCCESS:
            self.verdict = V_SUCCESS
        elif term == TERM_ALL_SUCCEED and self.task_done and all(f & FLAG_SUCCESS for f in self.w_flags):
            self.verdict = V_SUCCESS
        elif self.max_consec_errors > 0 and self.consec_errors >= self.max_consec_errors:
            self.verdict = V_MAX_ERRORS
        elif self.n_open == 0 and not busy:
            if term == TERM_ALL_COMPLETE and self.task_done:
                self.verdict = V_SUCCESS
            elif term == TERM_ALL_SUCCEED and self.task_done:
                self.verdict = V_INCOMPLETE
            elif self.on_exhausted == EXHAUSTED_SUCCESS:
                self.verdict = V_SUCCESS
            elif self.on_exhausted == EXHAUSTED_FAIL:
                self.verdict = V_EXHAUSTED
        self.tick += 1
        if self.verdict == V_RUNNING and self.max_ticks > 0 and self.tick >= self.max_ticks:
            self.verdict = V_TIMEOUT
        if self.verdict != V_RUNNING:
            for w in range(self.n_workers):
                if self.verdict == V_SUCCESS and self.w_flags[w] & FLAG_SUCCESS:
                    self.w_result[w] = W_DONE
                self.w_flags[w] |= FLAG_DONE

    def _tick(self):
        plan = self._plan()
        if plan:
            outcomes, discoveries, durations, done = self.env.step(
                [self.n_key[node] for _w, node, _g in plan])
        else:
            outcomes, discoveries, durations, done = [], [], [], False
        self._commit(plan, outcomes, discoveries, durations, done)

    # ------------------------------------------------------------------ Python face
    def reset(self, seed):
        """Start a new run from its seed (run index 0, empty event log)."""
        self.run_index = 0
        self.take_events()
        self._reset(seed)

    def step(self, n_ticks):
        """Advance the current run up to n_ticks; returns ST_OK."""
        k = 0
        while k < n_ticks and self.verdict == V_RUNNING:
            self._tick()
            k += 1
        return ST_OK

    def run_batch(self, seeds):
        """Run every seed to its verdict; one ``RunResult`` per seed. Events
        accumulate with ``run`` = the index in ``seeds``."""
        results = []
        for r, seed in enumerate(seeds):
            self._reset(int(seed))
            self.run_index = r
            while self.verdict == V_RUNNING:
                self._tick()
            results.append(RunResult(self.verdict == V_SUCCESS, self.verdict, self.tick, self.total_visits,
                                     self.total_fail, list(self.a_visits), self.task_done))
            for a in range(self.n_actions):
                self.cum_visits[a] += self.a_visits[a]
                self.cum_succ[a] += self.a_succ[a]
                self.cum_fail[a] += self.a_fail[a]
                self.cum_dur[a] += self.a_dur[a]
        return results

    def take_events(self):
        """The logged events as a dict of arrays (native dtypes); empties the log."""
        out = {k: np.array(v, dtype=_EVENT_DTYPES[k]) for k, v in self._events.items()}
        self._events = {k: [] for k in _EVENT_DTYPES}
        return out

    def nodes(self):
        """The graph map as a dict of arrays, as ``Kernel.nodes()``."""
        keys = self.n_key
        return {"action": np.array([k[0] for k in keys], np.int32),
                "target": np.array([k[1] for k in keys], np.int32),
                "arg": np.array([k[2] for k in keys], np.int32),
                "parent": np.array(self.n_parent, np.int32),
                "state": np.array(self.n_state, np.uint8),
                "tick": np.array(self.n_tick, np.int32),
                "retries": np.array(self.n_retries, np.uint8)}

    def groups(self):
        """Frontier groups and their statistics, as ``Kernel.groups()``."""
        return {"action": np.array([k[0] for k in self.g_key], np.int32),
                "target": np.array([k[1] for k in self.g_key], np.int32),
                "open": np.array([len(q) for q in self.g_queue], np.int32),
                "visits": np.array(self.g_visits, np.int64),
                "successes": np.array(self.g_succ, np.int64),
                "discoveries": np.array(self.g_disc, np.int64),
                "duration_ms": np.array(self.g_dur, np.float64)}

    def action_stats(self, cumulative=False):
        """Per-action statistics of this run (or summed over every batched run)."""
        if cumulative:
            return {"visits": np.array(self.cum_visits, np.int64),
                    "successes": np.array(self.cum_succ, np.int64),
                    "failures": np.array(self.cum_fail, np.int64), "duration_ms": np.array(self.cum_dur)}
        return {"visits": np.array(self.a_visits, np.int64), "successes": np.array(self.a_succ, np.int64),
                "failures": np.array(self.a_fail, np.int64), "discoveries": np.array(self.a_disc, np.int64),
                "duration_ms": np.array(self.a_dur)}

    def workers(self):
        """Worker state, as ``Kernel.workers()``."""
        flags = np.array(self.w_flags, np.uint8)
        return {"node": np.array(self.w_node, np.int32), "result": np.array(self.w_result, np.uint8),
                "done": (flags & FLAG_DONE).astype(bool), "waiting": np.zeros(len(flags), bool),
                "succeeded": (flags & FLAG_SUCCESS).astype(bool),
                "consecutive_failures": np.array(self.w_consec, np.uint16),
                "actions": np.array(self.w_actions, np.uint32)}
