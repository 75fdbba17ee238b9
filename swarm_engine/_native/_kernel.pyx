# cython: language_level=3
"""The exploration kernel: graph map, frontier, selectors and the tick loop.

One ``Kernel`` holds one run at a time. A tick is ``_plan`` (assign open nodes
to idle workers through the selector), an environment step over the whole
batch, and ``_commit`` (close nodes, expand successors with dedup, update
statistics, log events, judge termination). ``run_batch`` runs many seeds back
to back in one call with the GIL released; ``step`` advances one run a number
of ticks; ``plan_tick`` / ``commit_tick`` split the tick around a Python
environment. A call returns ``ST_NEED_ROOM`` when a buffer must grow (or the
event log be drained); the Python face grows it and calls again, and the run
resumes exactly where it stopped.

Frontier: open nodes wait in one FIFO queue per group, a group being an
(action, target) pair (``granular``) or an action. Selector scores depend only
on group statistics, so a tick scores each non-empty group once and keeps them
in a max-heap: picking costs O(log G) per worker however long the queues are.
Workers picked in the same tick add a virtual visit to their group (the
"virtual loss" of parallel tree search) so they spread over candidates.
"""
from libc.math cimport sqrt, log, INFINITY
from libc.string cimport memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from swarm_engine._native._hashmap cimport (swarm_index_init, swarm_index_free,
                                            swarm_index_find,
                                            swarm_index_get_or_put, swarm_index_bytes,
                                            swarm_hash64)
from swarm_engine._native._rng cimport swarm_rng_seed, swarm_rng_beta
from swarm_engine._native._envctx cimport K_PYTHON as ENV_PYTHON, O_OK as OUT_OK, O_ERROR as OUT_ERROR
from swarm_engine._native._envs cimport env_state_size, env_max_discoveries, env_reset, env_step

import numpy as np

cdef enum:
    ACTION_BITS = 12
    TARGET_BITS = 28
    ARG_BITS = 24
    MAX_ACTIONS = (1 << ACTION_BITS) - 1
    MAX_TARGET = (1 << TARGET_BITS) - 2
    MAX_ARG = (1 << ARG_BITS) - 2
    FLAG_DONE = 1
    FLAG_SUCCESS = 2
    FLAG_WAITING = 4          # waiting for an asynchronous decision (an LLM): continuing
    FLAG_PENDING = 8          # holds a node assigned from Python, to act on this tick
    FLAG_BUSY = 16            # holds a node (w_node >= 0): one byte tells the plan loop
    RING_SIZE = 64            # = the ring arrays of _kernel.pxd
    RING_AHEAD = 16           # a queued insert is applied at least this many inserts after its prefetch

LIMITS = {"actions": MAX_ACTIONS, "target": MAX_TARGET, "arg": MAX_ARG}


cdef inline uint64_t pack_key(int32_t a, int32_t t, int32_t x) noexcept nogil:
    return ((<uint64_t>a) << (TARGET_BITS + ARG_BITS)) | ((<uint64_t>(t + 1)) << ARG_BITS) | <uint64_t>(x + 1)


cdef inline int32_t key_action(uint64_t k) noexcept nogil:
    return <int32_t>(k >> (TARGET_BITS + ARG_BITS))


cdef inline int32_t key_target(uint64_t k) noexcept nogil:
    return <int32_t>((k >> ARG_BITS) & ((1 << TARGET_BITS) - 1)) - 1


cdef inline int32_t key_arg(uint64_t k) noexcept nogil:
    return <int32_t>(k & ((1 << ARG_BITS) - 1)) - 1


cdef inline double now_seconds() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


def _i32(values):
    return np.ascontiguousarray(values, dtype=np.int32)


cdef class Kernel:
    """Native state of one run; see the module docstring. Built by
    ``swarm_engine.exploration.compile`` from a validated spec; not meant to be
    constructed by hand."""

    def __cinit__(self):
        self.node_index.slots = NULL
        self.group_index.slots = NULL

    def __dealloc__(self):
        swarm_keyset_free(&self.node_index)
        swarm_index_free(&self.group_index)

    def __init__(self, *, int n_actions, succ_ptr, succ_act, is_terminal, var_ptr, var_val,
                 start_act, start_tgt, start_arg, int n_workers, int64_t max_ticks,
                 int term_strategy, int on_exhausted, int max_consec_errors, int max_retries,
                 int escalate_after, int manage_kind, int manage_param, bint granular,
                 int selector, double ucb1_c, double learning_weight, double greedy_weight,
                 int64_t maturity_threshold, double error_rate_threshold, bonus3,
                 int env_kind, env_params, env_ops, int env_max_disc,
                 bint record_events, int64_t node_capacity=1024, int64_t event_capacity=4096,
                 act_kind=None, env_args=None):
        if not 0 < n_actions <= MAX_ACTIONS:
            raise ValueError(f"n_actions must be in 1..{MAX_ACTIONS}")
        if n_workers <= 0:
            raise ValueError("n_workers must be positive")
        if not 0 <= max_retries <= 255:
            raise ValueError("max_retries must be in 0..255 (a node counts its retries in one byte)")
        self.n_actions = n_actions
        self.succ_ptr = _i32(succ_ptr)
        self.succ_act = _i32(succ_act)
        self.is_terminal = np.ascontiguousarray(is_terminal, dtype=np.uint8)
        self.var_ptr = _i32(var_ptr)
        self.var_val = _i32(var_val)
        self.start_act = _i32(start_act)
        self.start_tgt = _i32(start_tgt)
        self.start_arg = _i32(start_arg)
        for name, values, hi in (("param-variant argument", self.var_val, MAX_ARG),
                                 ("start argument", self.start_arg, MAX_ARG),
                                 ("start target", self.start_tgt, MAX_TARGET)):
            arr = np.asarray(values)
            if arr.shape[0] and (arr.min() < -1 or arr.max() > hi):
                raise OverflowError(f"{name} ids must lie in -1..{hi} (the packed node key)")
        self.act_kind = np.ascontiguousarray(np.zeros(n_actions) if act_kind is None else act_kind,
                                             dtype=np.int8)
        if self.act_kind.shape[0] != n_actions:
            raise ValueError("act_kind must have one entry per action")
        self.n_workers = n_workers
        self.max_ticks = max_ticks
        self.term_strategy = term_strategy
        self.on_exhausted = on_exhausted
        self.max_consec_errors = max_consec_errors
        self.max_retries = max_retries
        self.escalate_after = escalate_after
        self.manage_kind = manage_kind
        self.manage_param = max(1, manage_param)
        self.granular = granular
        # Thompson sampling draws per group, so fresh groups cannot share a score
        self.use_fresh = granular and selector != SEL_THOMPSON_SAMPLED
        self.fresh_head = np.full(n_actions, -1, np.int32)
        self.fresh_tail = np.full(n_actions, -1, np.int32)
        self.selector = selector
        self.ucb1_c = ucb1_c
        self.learning_weight = learning_weight
        self.greedy_weight = greedy_weight
        self.maturity_threshold = maturity_threshold
        self.error_rate_threshold = error_rate_threshold
        self.bonus_now = np.zeros(n_actions, dtype=np.float64)
        self.has_prior = False
        self.prior_tn = self.prior_vn = 0
        self.prior_t = self.prior_v = np.zeros(1)
        self.sort_s = self.sort_s2 = np.zeros(0)
        self.sort_k = self.sort_k2 = np.zeros(0, np.uint64)
        self.set_bonus(bonus3)
        self.env_params = np.ascontiguousarray(env_params, dtype=np.float64)
        self.env_ops = _i32(env_ops)
        if self.env_ops.shape[0] != n_actions:
            raise ValueError("env_ops must have one entry per action")
        if on_exhausted == EXHAUSTED_WAIT and max_ticks == 0 and env_kind != ENV_PYTHON:
            raise ValueError("on_exhausted 'wait' needs max_ticks > 0 with a native environment "
                             "(nothing can add work, so the run would never end)")
        self.env.kind = env_kind
        self.env.n_params = self.env_params.shape[0]
        self.env.params = &self.env_params[0] if self.env.n_params else NULL
        self.env.op_of_action = &self.env_ops[0]
        self.env_args = _i32([-1] if env_args is None or len(env_args) == 0 else env_args)
        self.env.op_of_arg = &self.env_args[0]
        self.env.n_args = 0 if env_args is None else len(env_args)
        self.env.state = NULL
        self.env_state = np.zeros(max(1, env_state_size(&self.env)), dtype=np.int32)
        self.env.state = &self.env_state[0]
        if env_kind == ENV_PYTHON:
            self.max_disc = max(0, env_max_disc)
        else:
            self.max_disc = env_max_discoveries(&self.env)

        cdef int a, fan, nv, fan_max = 0, nd = max(1, self.max_disc)
        for a in range(n_actions):
            fan = 0
            for e in range(self.succ_ptr[a], self.succ_ptr[a + 1]):
                nv = self.var_ptr[self.succ_act[e] + 1] - self.var_ptr[self.succ_act[e]]
                fan += nd * max(1, nv)
            fan_max = max(fan_max, fan)
        self.max_children = fan_max

        node_capacity = max(node_capacity, self.start_act.shape[0] + 16)
        self._alloc_nodes(node_capacity)
        # every start node may open its own group before the first room check
        self._alloc_groups(n_actions if not granular else max(64, self.start_act.shape[0] + 16))
        if swarm_keyset_init(&self.node_index, node_capacity) != 0:
            raise MemoryError("dedup index")
        if granular and swarm_index_init(&self.group_index, 64) != 0:
            raise MemoryError("group index")
        self.a_visits = np.zeros(n_actions, dtype=np.int64)
        self.a_succ = np.zeros(n_actions, dtype=np.int64)
        self.a_fail = np.zeros(n_actions, dtype=np.int64)
        self.a_disc = np.zeros(n_actions, dtype=np.int64)
        self.a_dur = np.zeros(n_actions, dtype=np.float64)
        self.cum_visits = np.zeros(n_actions, dtype=np.int64)
        self.cum_succ = np.zeros(n_actions, dtype=np.int64)
        self.cum_fail = np.zeros(n_actions, dtype=np.int64)
        self.cum_dur = np.zeros(n_actions, dtype=np.float64)
        W = n_workers
        self.w_node = np.full(W, -1, dtype=np.int32)
        self.w_group = np.full(W, -1, dtype=np.int32)
        self.w_result = np.zeros(W, dtype=np.uint8)
        self.w_flags = np.zeros(W, dtype=np.uint8)
        self.w_consec = np.zeros(W, dtype=np.uint16)
        self.w_actions = np.zeros(W, dtype=np.uint32)
        self.w_src = np.zeros(W, dtype=np.int8)
        self.as_worker = np.zeros(W, dtype=np.int32)
        self.as_act = np.zeros(W, dtype=np.int32)
        self.as_tgt = np.zeros(W, dtype=np.int32)
        self.as_arg = np.zeros(W, dtype=np.int32)
        self.as_outcome = np.zeros(W, dtype=np.int8)
        self.as_disc_ptr = np.zeros(W + 1, dtype=np.int32)
        self.disc_cap = max(1, W * self.max_disc)
        self.as_disc = np.zeros(self.disc_cap, dtype=np.int32)
        self.as_disc_kind = np.zeros(self.disc_cap, dtype=np.int8)
        self.as_dur = np.zeros(W, dtype=np.float32)
        self._alloc_sort()
        self.record_events = record_events
        self.event_cap = max(event_capacity, W) if record_events else 1
        self._alloc_events(self.event_cap)
        self.verdict = V_RUNNING
        self.run_index = -1

    # ------------------------------------------------------------------ memory
    def _alloc_nodes(self, int64_t cap):
        if cap > 2**31 - 2:
            raise MemoryError("graph map is limited to 2^31 nodes")
        self.n_key = _grow(self.n_key, cap, np.uint64) if self.node_cap else np.zeros(cap, np.uint64)
        self.n_parent = _grow(self.n_parent, cap, np.int32) if self.node_cap else np.zeros(cap, np.int32)
        self.n_next = _grow(self.n_next, cap, np.int32) if self.node_cap else np.zeros(cap, np.int32)
        self.n_tick = _grow(self.n_tick, cap, np.int32) if self.node_cap else np.zeros(cap, np.int32)
        self.n_state = _grow(self.n_state, cap, np.uint8) if self.node_cap else np.zeros(cap, np.uint8)
        self.n_retries = _grow(self.n_retries, cap, np.uint8) if self.node_cap else np.zeros(cap, np.uint8)
        self.node_cap = cap

    def _alloc_groups(self, int64_t cap):
        fresh = self.group_cap == 0
        self.g_key = np.zeros(cap, np.uint64) if fresh else _grow(self.g_key, cap, np.uint64)
        self.g_head = np.zeros(cap, np.int32) if fresh else _grow(self.g_head, cap, np.int32)
        self.g_tail = np.zeros(cap, np.int32) if fresh else _grow(self.g_tail, cap, np.int32)
        self.g_count = np.zeros(cap, np.int32) if fresh else _grow(self.g_count, cap, np.int32)
        self.g_active_pos = np.zeros(cap, np.int32) if fresh else _grow(self.g_active_pos, cap, np.int32)
        self.g_fresh_next = np.zeros(cap, np.int32) if fresh else _grow(self.g_fresh_next, cap, np.int32)
        self.g_fresh_prev = np.zeros(cap, np.int32) if fresh else _grow(self.g_fresh_prev, cap, np.int32)
        self.g_vv = np.zeros(cap, np.int32) if fresh else _grow(self.g_vv, cap, np.int32)
        self.g_score = np.zeros(cap, np.float64) if fresh else _grow(self.g_score, cap, np.float64)
        self.g_visits = np.zeros(cap, np.int64) if fresh else _grow(self.g_visits, cap, np.int64)
        self.g_succ = np.zeros(cap, np.int64) if fresh else _grow(self.g_succ, cap, np.int64)
        self.g_disc = np.zeros(cap, np.int64) if fresh else _grow(self.g_disc, cap, np.int64)
        self.g_dur = np.zeros(cap, np.float64) if fresh else _grow(self.g_dur, cap, np.float64)
        self.active = np.zeros(cap, np.int32) if fresh else _grow(self.active, cap, np.int32)
        self.heap = np.zeros(cap, np.int32) if fresh else _grow(self.heap, cap, np.int32)
        self.group_cap = cap

    def _alloc_sort(self):
        # the children of one expansion, sorted by the learned prior: at most
        # max_children, whatever W is (the merge streams the rest)
        cap = max(1, self.max_children)
        if self.sort_k.shape[0] < cap:          # every expansion collects its children here
            self.sort_k = np.zeros(cap, np.uint64)
        if self.has_prior and self.sort_k2.shape[0] < cap:
            self.sort_s = np.zeros(cap, np.float64)
            self.sort_s2 = np.zeros(cap, np.float64)
            self.sort_k2 = np.zeros(cap, np.uint64)

    def _alloc_events(self, int64_t cap):
        self.ev_run = np.zeros(cap, np.int32)
        self.ev_tick = np.zeros(cap, np.int32)
        self.ev_worker = np.zeros(cap, np.int32)
        self.ev_node = np.zeros(cap, np.int32)
        self.ev_action = np.zeros(cap, np.int32)
        self.ev_target = np.zeros(cap, np.int32)
        self.ev_arg = np.zeros(cap, np.int32)
        self.ev_outcome = np.zeros(cap, np.int8)
        self.ev_ndisc = np.zeros(cap, np.int32)
        self.ev_dur = np.zeros(cap, np.float32)
        self.ev_source = np.zeros(cap, np.int8)
        self.event_cap = cap
        self.n_events = 0

    def make_room(self):
        """Grow whatever the next tick could overflow (called on ST_NEED_ROOM
        after the caller drained the event log)."""
        cdef int64_t need = <int64_t>self.n_workers * max(1, self.max_children)
        if self.n_nodes + need > self.node_cap:
            # 1.5x keeps bytes per node low on 10^7-node graphs; growth is rare
            self._alloc_nodes(max(self.node_cap + self.node_cap // 2, self.n_nodes + need))
        if self.granular and self.n_groups + need > self.group_cap:
            self._alloc_groups(max(self.group_cap + self.group_cap // 2, self.n_groups + need))
        if self.record_events and self.n_events + self.n_workers > self.event_cap:
            raise RuntimeError("event log full: drain it with take_events() first")

    cdef bint _has_room(self) noexcept nogil:
        cdef int64_t need = <int64_t>self.n_workers * (self.max_children if self.max_children > 0 else 1)
        if self.n_nodes + need > self.node_cap:
            return False
        if self.granular and self.n_groups + need > self.group_cap:
            return False
        if self.record_events and self.n_events + self.n_workers > self.event_cap:
            return False
        return True

    def set_prior(self, target=None, arg=None):
        """Install the learned child ordering: ``target`` (A, T) scores per
        (action, target id), ``arg`` (A, V) per (action, arg value). The
        children of one expansion are then created best first (stable, score
        = target + arg term, 0 outside the tables), so fresh groups are tried
        in that order. None for both = discovery order."""
        A = self.n_actions
        t = np.zeros((A, 0)) if target is None else np.ascontiguousarray(target, dtype=np.float64)
        v = np.zeros((A, 0)) if arg is None else np.ascontiguousarray(arg, dtype=np.float64)
        if t.ndim != 2 or t.shape[0] != A or v.ndim != 2 or v.shape[0] != A:
            raise ValueError(f"prior tables must have shape (n_actions={A}, n)")
        self.prior_tn = t.shape[1]
        self.prior_vn = v.shape[1]
        self.prior_t = t.ravel() if t.size else np.zeros(1)
        self.prior_v = v.ravel() if v.size else np.zeros(1)
        self.has_prior = t.size > 0 or v.size > 0
        if self.has_prior:
            self._alloc_sort()

    def set_bonus(self, bonus3):
        """Install the learned bonus table, shape ((A+1)**2 * A,) or empty."""
        arr = np.ascontiguousarray(bonus3 if bonus3 is not None else [], dtype=np.float64).ravel()
        A = self.n_actions
        if arr.shape[0] not in (0, (A + 1) * (A + 1) * A):
            raise ValueError(f"bonus table must have (A+1)^2*A = {(A + 1) ** 2 * A} entries")
        self.bonus3 = arr

    # ------------------------------------------------------------------ run
    cdef int _reset(self, uint64_t seed) except -1 nogil:
        cdef int32_t i, g
        self.seed = seed
        swarm_rng_seed(&self.rng, seed, 1)
        if env_reset(&self.env, seed) < 0:
            return -1
        swarm_keyset_reset(&self.node_index)
        if self.granular:
            swarm_index_reset(&self.group_index)
            self.n_groups = 0
        else:
            self.n_groups = self.n_actions
            for g in range(self.n_actions):
                self._init_group(g, pack_key(g, -1, -1))
        self.n_active = 0
        self.n_fresh = 0
        for i in range(self.n_actions):
            self.fresh_head[i] = -1
            self.fresh_tail[i] = -1
        self.n_nodes = 0
        self.n_open = 0
        for i in range(self.n_actions):
            self.a_visits[i] = 0
            self.a_succ[i] = 0
            self.a_fail[i] = 0
            self.a_disc[i] = 0
            self.a_dur[i] = 0.0
        for i in range(self.n_workers):
            self.w_node[i] = -1
            self.w_group[i] = -1
            self.w_result[i] = W_IDLE
            self.w_flags[i] = 0
            self.w_consec[i] = 0
            self.w_actions[i] = 0
            self.w_src[i] = 0
        self.tick = 0
        self.verdict = V_RUNNING
        self.task_done = False
        self.total_visits = 0
        self.total_fail = 0
        self.consec_errors = 0
        self.last_manage_tick = -1
        self.prev_action = -1
        self.prev_prev_action = -1
        self.n_assigned = 0
        self.n_busy = 0
        self.n_pending = 0
        for i in range(self.start_act.shape[0]):
            self._add_node(self.start_act[i], self.start_tgt[i], self.start_arg[i], -1)  # duplicates: skipped
        return 0

    cdef int32_t _group_of(self, int32_t action, int32_t target) except -2 nogil:
        cdef int32_t g
        cdef uint64_t key
        if not self.granular:
            return action
        key = pack_key(action, target, -1)
        g = swarm_index_get_or_put(&self.group_index, &self.g_key[0], key, self.n_groups)
        if g == -2:
            return -2
        if g == self.n_groups:
            self._init_group(g, key)
            self.n_groups += 1
        return g

    cdef void _init_group(self, int32_t g, uint64_t key) noexcept nogil:
        self.g_key[g] = key
        self.g_head[g] = -1
        self.g_tail[g] = -1
        self.g_count[g] = 0
        self.g_active_pos[g] = -1
        self.g_vv[g] = 0
        self.g_visits[g] = 0
        self.g_succ[g] = 0
        self.g_disc[g] = 0
        self.g_dur[g] = 0.0

    cdef inline void _push_open(self, int32_t g, int32_t node) noexcept nogil:
        self.n_state[node] = NODE_OPEN
        self.n_next[node] = -1
        if self.g_tail[g] >= 0:
            self.n_next[self.g_tail[g]] = node
        else:
            self.g_head[g] = node
        self.g_tail[g] = node
        self.g_count[g] += 1
        self.n_open += 1
        if self.g_active_pos[g] == -1:
            if self.use_fresh and self.g_visits[g] == 0:
                self._fresh_append(g)
            else:
                self.g_active_pos[g] = self.n_active
                self.active[self.n_active] = g
                self.n_active += 1

    cdef void _fresh_append(self, int32_t g) noexcept nogil:
        """Queue a never-visited group behind the others of its action: they
        all score alike (action statistics), so only the front one needs a
        place in the heap, and creation order is head-node order."""
        cdef int32_t a = key_action(self.g_key[g])
        self.g_active_pos[g] = -2
        self.g_fresh_next[g] = -1
        self.g_fresh_prev[g] = self.fresh_tail[a]
        if self.fresh_tail[a] >= 0:
            self.g_fresh_next[self.fresh_tail[a]] = g
        else:
            self.fresh_head[a] = g
        self.fresh_tail[a] = g
        self.n_fresh += 1

    cdef inline int32_t _take(self, int32_t g) noexcept nogil:
        """Pop the oldest open node of group g (non-empty)."""
        cdef int32_t node = self.g_head[g], i, last
        if self.g_active_pos[g] == -2:
            return self._take_node(g, node)   # a fresh group becomes a visited one
        self.g_head[g] = self.n_next[node]
        self.g_count[g] -= 1
        self.n_open -= 1
        self.n_state[node] = NODE_ASSIGNED
        if self.g_count[g] == 0:
            self.g_tail[g] = -1
            i = self.g_active_pos[g]
            if i >= 0:
                self.n_active -= 1
                last = self.active[self.n_active]
                self.active[i] = last
                self.g_active_pos[last] = i
                self.g_active_pos[g] = -1
        return node

    cdef int32_t _take_node(self, int32_t g, int32_t node) noexcept nogil:
        """Unlink an open node of group g (usually its head; a model may pick
        another: then the queue is walked) and keep the group lists right: a
        fresh group becomes a visited one, an emptied group leaves the active
        list."""
        cdef int32_t a, prv, nxt, i
        if self.g_head[g] == node:
            self.g_head[g] = self.n_next[node]
        else:
            prv = self.g_head[g]
            while self.n_next[prv] != node:
                prv = self.n_next[prv]
            self.n_next[prv] = self.n_next[node]
            if self.g_tail[g] == node:
                self.g_tail[g] = prv
        self.g_count[g] -= 1
        self.n_open -= 1
        self.n_state[node] = NODE_ASSIGNED
        if self.g_active_pos[g] == -2:
            a = key_action(self.g_key[g])
            prv = self.g_fresh_prev[g]
            nxt = self.g_fresh_next[g]
            if prv >= 0:
                self.g_fresh_next[prv] = nxt
            else:
                self.fresh_head[a] = nxt
            if nxt >= 0:
                self.g_fresh_prev[nxt] = prv
            else:
                self.fresh_tail[a] = prv
            self.n_fresh -= 1
            self.g_active_pos[g] = -1
            if self.g_count[g] > 0:
                self.g_active_pos[g] = self.n_active
                self.active[self.n_active] = g
                self.n_active += 1
        if self.g_count[g] == 0:
            self.g_tail[g] = -1
            i = self.g_active_pos[g]
            if i >= 0:
                self.n_active -= 1
                self.active[i] = self.active[self.n_active]
                self.g_active_pos[self.active[i]] = i
                self.g_active_pos[g] = -1
        return node

    cdef inline void _batch_add(self, int n, int32_t w, int32_t node) noexcept nogil:
        cdef uint64_t key = self.n_key[node]
        self.as_worker[n] = w
        self.as_act[n] = key_action(key)
        self.as_tgt[n] = key_target(key)
        self.as_arg[n] = key_arg(key)

    cdef void _heap_push(self, int32_t g) noexcept nogil:
        cdef int32_t i = self.n_heap, parent
        self.n_heap += 1
        while i > 0:
            parent = (i - 1) // 2
            if not self._better(g, self.heap[parent]):
                break
            self.heap[i] = self.heap[parent]
            i = parent
        self.heap[i] = g

    cdef int32_t _add_node(self, int32_t action, int32_t target, int32_t arg,
                           int32_t parent) except -2 nogil:
        """Add (action, target, arg) unless known; returns its id, or -1 if it
        was a duplicate. Raises on ids outside the packed key or no memory."""
        if target > MAX_TARGET or arg > MAX_ARG or target < -1 or arg < -1:
            with gil:
                raise OverflowError(f"target {target} / arg {arg} outside the packed key range")
        cdef uint64_t key = pack_key(action, target, arg)
        return self._add_key(key, swarm_hash64(key), parent)

    cdef inline int32_t _add_key(self, uint64_t key, uint64_t h, int32_t parent) except -2 nogil:
        """Add the node of key (whose hash is h) unless known: its id, or -1.
        The probe is inlined into the merge loop; most children of a flood
        fill are duplicates and end here."""
        cdef int added = swarm_keyset_add_h(&self.node_index, key, h)
        if added > 0:
            return self._new_node(key, parent)
        if added < 0:
            with gil:
                raise MemoryError("dedup index")
        return -1

    cdef int32_t _new_node(self, uint64_t key, int32_t parent) except -2 nogil:
        """Fill in node n_nodes (its key just entered the dedup set) and queue it."""
        cdef int32_t node = self.n_nodes
        cdef int32_t g = self._group_of(key_action(key), key_target(key))
        if g == -2:
            with gil:
                raise MemoryError("group index")
        self.n_key[node] = key
        self.n_parent[node] = parent
        self.n_tick[node] = <int32_t>self.tick
        self.n_retries[node] = 0
        self.n_nodes += 1
        self._push_open(g, node)
        return node

    cdef double _prior_score(self, uint64_t key) noexcept nogil:
        cdef int32_t a = key_action(key), t = key_target(key), x = key_arg(key)
        cdef double s = 0.0
        if 0 <= t < self.prior_tn:
            s = self.prior_t[<int64_t>a * self.prior_tn + t]
        if 0 <= x < self.prior_vn:
            s = s + self.prior_v[<int64_t>a * self.prior_vn + x]
        return s

    cdef void _sort_children(self, int64_t m) noexcept nogil:
        """Stable sort of sort_k[:m] by prior score, best first (bottom-up merge sort)."""
        cdef int64_t i, j, o, left, mid, right, width
        cdef float64_t *ss = &self.sort_s[0]
        cdef float64_t *ds = &self.sort_s2[0]
        cdef float64_t *ts
        cdef uint64_t *sk = &self.sort_k[0]
        cdef uint64_t *dk = &self.sort_k2[0]
        cdef uint64_t *tk
        for i in range(m):
            ss[i] = self._prior_score(sk[i])
        width = 1
        while width < m:
            left = 0
            while left < m:
                mid = min(left + width, m)
                right = min(left + 2 * width, m)
                i, j, o = left, mid, left
                while i < mid and j < right:
                    if ss[j] > ss[i]:
                        ds[o] = ss[j]; dk[o] = sk[j]; j += 1
                    else:
                        ds[o] = ss[i]; dk[o] = sk[i]; i += 1
                    o += 1
                while i < mid:
                    ds[o] = ss[i]; dk[o] = sk[i]; i += 1; o += 1
                while j < right:
                    ds[o] = ss[j]; dk[o] = sk[j]; j += 1; o += 1
                left += 2 * width
            ts = ss; ss = ds; ds = ts
            tk = sk; sk = dk; dk = tk
            width *= 2
        if sk != &self.sort_k[0]:
            for i in range(m):
                self.sort_k[i] = sk[i]

    # ------------------------------------------------------------------ select
    cdef inline double _score(self, int32_t g, int mode, double log_total) noexcept nogil:
        cdef int32_t a = key_action(self.g_key[g])
        cdef int64_t s, n
        cdef double n_eff, bonus = self.bonus_now[a]
        if mode == SEL_FIFO:
            return 0.0
        if mode == SEL_GREEDY:
            return self.greedy_weight * bonus
        if self.granular and self.g_visits[g] > 0:
            s = self.g_succ[g]
            n = self.g_visits[g]
        else:
            s = self.a_succ[a]
            n = self.a_visits[a]
        n_eff = <double>(n + self.g_vv[g])
        if mode == SEL_UCB1:
            if n_eff == 0.0:
                return INFINITY
            return s / n_eff + self.ucb1_c * sqrt(log_total / n_eff) + self.learning_weight * bonus
        if mode == SEL_THOMPSON:
            return (s + 1.0) / (n_eff + 2.0) + self.learning_weight * bonus
        # SEL_THOMPSON_SAMPLED
        return swarm_rng_beta(&self.rng, s + 1.0, n_eff - s + 1.0) + self.learning_weight * bonus

    cdef int _effective_mode(self) noexcept nogil:
        """Adaptive: UCB1 while immature, then Greedy under the error-rate
        threshold, else Thompson; any other selector is itself."""
        if self.selector != SEL_ADAPTIVE:
            return self.selector
        if self.total_visits < self.maturity_threshold:
            return SEL_UCB1
        if self.total_fail < self.error_rate_threshold * self.total_visits:
            return SEL_GREEDY
        return SEL_THOMPSON

    cdef inline bint _better(self, int32_t g1, int32_t g2) noexcept nogil:
        cdef double s1 = self.g_score[g1], s2 = self.g_score[g2]
        if s1 != s2:
            return s1 > s2
        return self.g_head[g1] < self.g_head[g2]

    cdef void _sift_down(self, int32_t i) noexcept nogil:
        cdef int32_t n = self.n_heap, c, g = self.heap[i]
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and self._better(self.heap[c + 1], self.heap[c]):
                c += 1
            if not self._better(self.heap[c], g):
                break
            self.heap[i] = self.heap[c]
            i = c
        self.heap[i] = g

    cdef int _plan(self) except -1 nogil:
        """Manage phase: give open nodes to idle workers. Returns the number of
        assignments written to as_*."""
        cdef int32_t w, g, node, i, fresh_action, fresh_next, W = self.n_workers, A = self.n_actions
        cdef int mode = self.selector
        cdef bint due, rescore_alone
        cdef double log_total
        cdef int64_t row
        cdef uint8_t f
        cdef int n = 0, n_python
        cdef uint8_t *w_flags = &self.w_flags[0]
        cdef uint8_t *w_result = &self.w_result[0]
        cdef int32_t *w_node = &self.w_node[0]
        cdef int32_t *w_group = &self.w_group[0]
        cdef int32_t *heap = &self.heap[0]
        cdef int32_t *g_count = &self.g_count[0]
        cdef int32_t *g_vv = &self.g_vv[0]
        if self.manage_kind == MANAGE_FIXED_INTERVAL:
            due = self.tick % self.manage_param == 0
        elif self.manage_kind == MANAGE_COMPLETION_BASED:
            due = self.n_busy == 0 or self.tick - self.last_manage_tick >= self.manage_param
        else:
            due = True
        if self.n_pending:                  # nodes assigned from Python (an LLM) act first
            for w in range(W):
                if w_flags[w] & FLAG_PENDING:
                    w_flags[w] &= ~FLAG_PENDING
                    self._batch_add(n, w, w_node[w])
                    n += 1
            self.n_pending = 0
        n_python = n
        if not due:
            for w in range(W):
                f = w_flags[w]
                if not (f & (FLAG_BUSY | FLAG_DONE)):
                    w_result[w] = W_CONTINUING if f & FLAG_WAITING else W_IDLE
            self.n_assigned = n
            return n
        self.last_manage_tick = self.tick
        mode = self._effective_mode()
        if self.bonus3.shape[0]:
            row = ((self.prev_prev_action + 1) * (A + 1) + (self.prev_action + 1)) * A
            for i in range(A):
                self.bonus_now[i] = self.bonus3[row + i]
        else:
            for i in range(A):
                self.bonus_now[i] = 0.0
        log_total = log(<double>self.total_visits) if self.total_visits > 1 else 0.0
        # score every visited non-empty group and the front fresh group of
        # each action once, heapify
        self.n_heap = self.n_active
        for i in range(self.n_active):
            g = self.active[i]
            g_vv[g] = 0
            self.g_score[g] = self._score(g, mode, log_total)
            heap[i] = g
        if self.n_fresh:
            for i in range(A):
                g = self.fresh_head[i]
                if g >= 0:
                    self.g_score[g] = self._score(g, mode, log_total)
                    heap[self.n_heap] = g
                    self.n_heap += 1
        i = self.n_heap // 2 - 1
        while i >= 0:
            self._sift_down(i)
            i -= 1
        # A group alone in the heap needs no new score after a pick unless the
        # sampled selector must draw for it (the stream) or a fresh group will
        # be compared with it: nothing else reads the score before the next
        # management tick re-scores every group.
        rescore_alone = mode == SEL_THOMPSON_SAMPLED
        w = 0
        while w < W and self.n_heap > 0:
            f = w_flags[w]
            if f & (FLAG_BUSY | FLAG_DONE):
                w += 1
                continue
            if f & FLAG_WAITING:
                w_result[w] = W_CONTINUING
                w += 1
                continue
            g = heap[0]
            fresh_action = -1
            if self.g_active_pos[g] == -2:
                fresh_action = key_action(self.g_key[g])
            node = self._take(g)
            w_node[w] = node
            w_group[w] = g
            w_flags[w] = f | FLAG_BUSY
            self._batch_add(n, w, node)
            n += 1
            g_vv[g] += 1
            if g_count[g] == 0:
                self.n_heap -= 1
                heap[0] = heap[self.n_heap]
                if self.n_heap > 1:
                    self._sift_down(0)
            elif self.n_heap > 1 or rescore_alone or fresh_action >= 0:
                self.g_score[g] = self._score(g, mode, log_total)
                if self.n_heap > 1:
                    self._sift_down(0)
            if fresh_action >= 0 and self.fresh_head[fresh_action] >= 0:
                # the next fresh group of that action takes the front's place
                fresh_next = self.fresh_head[fresh_action]
                self.g_score[fresh_next] = self._score(fresh_next, mode, log_total)
                self._heap_push(fresh_next)
            w += 1
        self.n_busy += n - n_python
        # nothing left to give: every other idle worker needs guidance (a
        # branch-free byte loop, ~10^4 workers a tick on the corner grid)
        while w < W:
            f = w_flags[w]
            w_result[w] = w_result[w] if f & (FLAG_BUSY | FLAG_DONE) else \
                (W_CONTINUING if f & FLAG_WAITING else W_NEEDS_GUIDANCE)
            w += 1
        self.n_assigned = n
        return n

    # ------------------------------------------------------------------ merge
    cdef int _commit(self, int n, int env_done) except -1 nogil:
        """Merge phase for the n assignments of this tick, then advance.

        Two passes over the tick's actions, in assignment order: the first
        (below) updates statistics, events, node states and workers; the
        second (_merge_nodes) reopens retried nodes and expands successes.
        Every statistic is final before the first child is queued (a group
        visited this tick is not "fresh"), which is what the reference's
        on-the-spot merge sees, since nothing it decides reads what the
        expansions change. (Pass 1 reads columns through the memoryviews:
        hoisting their pointers cost more per one-worker tick than it saved
        per action.)"""
        cdef int i, j, nd
        cdef int32_t w, node, g, a
        cdef int8_t out
        cdef float32_t dur
        cdef int64_t visits = self.total_visits, fails = self.total_fail, consec = self.consec_errors
        cdef uint8_t *w_flags = &self.w_flags[0]
        cdef uint8_t *w_result = &self.w_result[0]
        # ---- pass 1: statistics, events, node states, worker results ----
        for i in range(n):
            w = self.as_worker[i]
            node = self.w_node[w]
            g = self.w_group[w]
            a = self.as_act[i]
            out = self.as_outcome[i]
            nd = self.as_disc_ptr[i + 1] - self.as_disc_ptr[i]
            dur = self.as_dur[i]
            self.a_visits[a] += 1
            self.a_dur[a] += dur
            self.a_disc[a] += nd
            visits += 1
            if self.granular:
                self.g_visits[g] += 1
                self.g_dur[g] += dur
                self.g_disc[g] += nd
            if out == OUT_OK:
                self.a_succ[a] += 1
                if self.granular:
                    self.g_succ[g] += 1
                consec = 0
                self.w_consec[w] = 0
            else:
                self.a_fail[a] += 1
                fails += 1
                consec += 1
                if self.w_consec[w] < 65535:
                    self.w_consec[w] += 1
            if self.record_events:
                j = self.n_events
                self.ev_run[j] = <int32_t>self.run_index
                self.ev_tick[j] = <int32_t>self.tick
                self.ev_worker[j] = w
                self.ev_node[j] = node
                self.ev_action[j] = a
                self.ev_target[j] = self.as_tgt[i]
                self.ev_arg[j] = self.as_arg[i]
                self.ev_outcome[j] = out
                self.ev_ndisc[j] = nd
                self.ev_dur[j] = dur
                self.ev_source[j] = self.w_src[w]
                self.n_events += 1
            if out == OUT_ERROR and self.n_retries[node] < self.max_retries:
                self.n_retries[node] += 1      # reopened in pass 2 (its state stays ASSIGNED)
            elif out == OUT_OK:
                self.n_state[node] = NODE_DONE_OK
                if self.is_terminal[a]:
                    self.task_done = True
                    self.w_flags[w] |= FLAG_SUCCESS
                    if self.term_strategy == TERM_ALL_SUCCEED:
                        self.w_flags[w] |= FLAG_DONE
            else:
                self.n_state[node] = NODE_DONE_FAIL
            self.w_src[w] = 0
            self.w_actions[w] += 1
            if self.escalate_after > 0 and self.w_consec[w] >= self.escalate_after:
                self.w_result[w] = W_ESCALATE
            elif self.w_flags[w] & FLAG_DONE:
                self.w_result[w] = W_DONE
            else:
                self.w_result[w] = W_ACTED
        self.n_busy -= n
        self.total_visits = visits
        self.total_fail = fails
        self.consec_errors = consec
        if n >= 2:
            self.prev_prev_action = self.as_act[n - 2]
            self.prev_action = self.as_act[n - 1]
        elif n == 1:
            self.prev_prev_action = self.prev_action
            self.prev_action = self.as_act[0]
        # ---- pass 2 ----
        self._merge_nodes(n)
        if env_done:
            self.task_done = True
        self.n_assigned = 0
        # ---- termination judge ----
        if self.task_done and self.term_strategy == TERM_FIRST_SUCCESS:
            self.verdict = V_SUCCESS
        elif self.term_strategy == TERM_ALL_SUCCEED and self._all_workers_succeeded():
            self.verdict = V_SUCCESS
        elif self.max_consec_errors > 0 and self.consec_errors >= self.max_consec_errors:
            self.verdict = V_MAX_ERRORS
        elif self.n_open == 0 and self.n_busy == 0:
            if self.term_strategy == TERM_ALL_COMPLETE and self.task_done:
                self.verdict = V_SUCCESS
            elif self.term_strategy == TERM_ALL_SUCCEED and self.task_done:
                self.verdict = V_INCOMPLETE
            elif self.on_exhausted == EXHAUSTED_SUCCESS:
                self.verdict = V_SUCCESS
            elif self.on_exhausted == EXHAUSTED_FAIL:
                self.verdict = V_EXHAUSTED
        self.tick += 1
        if self.verdict == V_RUNNING and self.max_ticks > 0 and self.tick >= self.max_ticks:
            self.verdict = V_TIMEOUT
        if self.verdict != V_RUNNING:
            for i in range(self.n_workers):
                if self.verdict == V_SUCCESS and (w_flags[i] & FLAG_SUCCESS):
                    w_result[i] = W_DONE
                w_flags[i] |= FLAG_DONE
        return 0

    cdef inline int _merge_nodes(self, int n) except -1 nogil:
        """Pass 2 of the merge: release the workers, reopen retried nodes and
        expand successes, in assignment order, through the prefetch ring
        (large graphs are bound by the dedup set's cache misses)."""
        cdef int i
        cdef int32_t w, node, g
        cdef int8_t out
        cdef const int32_t *as_worker = &self.as_worker[0]
        cdef const int8_t *as_outcome = &self.as_outcome[0]
        cdef int32_t *w_node = &self.w_node[0]
        cdef int32_t *w_group = &self.w_group[0]
        cdef uint8_t *w_flags = &self.w_flags[0]
        cdef const uint8_t *n_state = &self.n_state[0]
        self.ring_n = 0
        self.ring_done = 0
        # a tick that cannot fill the ring (W x the most children one success
        # can add < RING_SIZE - RING_AHEAD) would only queue its operations to
        # apply them all at the end: apply each at once instead (troubleshooting,
        # one worker: 3% fewer instructions per run)
        self.merge_direct = <int64_t>self.n_workers * max(1, self.max_children) < RING_SIZE - RING_AHEAD
        for i in range(n):
            w = as_worker[i]
            node = w_node[w]
            g = w_group[w]
            w_node[w] = -1
            w_group[w] = -1
            w_flags[w] &= ~FLAG_BUSY
            out = as_outcome[i]
            if out == OUT_OK:
                self._expand(i, node)
            elif out == OUT_ERROR and n_state[node] == NODE_ASSIGNED:
                if self.merge_direct:
                    self._apply_now(<uint64_t>node, -1 - g)
                else:
                    self._emit(<uint64_t>node, -1 - g)
        if self.ring_done < self.ring_n:
            self._apply(self.ring_n)
        return 0

    cdef inline int _expand(self, int i, int32_t node) except -1 nogil:
        """Queue the children of action i's success on node: successors (CSR
        order) x discoveries (in order; none = the node's own target) x
        param variants (or none), best first under a learned prior. They are
        collected first (a tight loop with no calls), then queued."""
        cdef int32_t a = self.as_act[i]
        cdef int32_t d0 = self.as_disc_ptr[i], d1 = self.as_disc_ptr[i + 1]
        cdef int32_t e, b, j, tt
        cdef uint64_t kb_key
        cdef int64_t m = 0, k
        cdef uint64_t *kids = &self.sort_k[0]
        cdef const int32_t *disc = &self.as_disc[0]
        for e in range(self.succ_ptr[a], self.succ_ptr[a + 1]):
            b = self.succ_act[e]
            if d1 > d0 and self.act_kind[b] == 0 and self.var_ptr[b] == self.var_ptr[b + 1]:
                # the common shape: one child (arg -1, packed as 0) per discovery
                kb_key = (<uint64_t>b) << (TARGET_BITS + ARG_BITS)
                for j in range(d0, d1):
                    tt = disc[j]
                    if <uint32_t>tt + 1u > <uint32_t>(MAX_TARGET + 1):
                        return self._bad_target(tt)
                    kids[m] = kb_key | ((<uint64_t>(<uint32_t>tt + 1u)) << ARG_BITS)
                    m += 1
            else:
                m = self._expand_successor(i, b, m)
        if m > 1 and self.has_prior:
            self._sort_children(m)
        if self.merge_direct:
            for k in range(m):
                self._apply_now(kids[k], node)
        else:
            for k in range(m):
                self._emit(kids[k], node)
        return 0

    cdef int64_t _expand_successor(self, int i, int32_t b, int64_t m) except -1 nogil:
        """The children of action i's success for successor b in general: only
        discoveries of b's target kind, the node's own target when none, one
        child per param variant. Appends to sort_k from m; returns the new m."""
        cdef int32_t d0 = self.as_disc_ptr[i], d1 = self.as_disc_ptr[i + 1]
        cdef int32_t j, j1, v, v0 = self.var_ptr[b], v1 = self.var_ptr[b + 1], tt
        cdef int8_t kb = self.act_kind[b]
        cdef uint64_t kt
        cdef uint64_t kb_key = (<uint64_t>b) << (TARGET_BITS + ARG_BITS)
        j1 = d1 if d1 > d0 else d0 + 1
        for j in range(d0, j1):
            if d1 > d0:
                tt = self.as_disc[j]
                if kb != 0 and self.as_disc_kind[j] != kb:
                    continue
            else:
                tt = self.as_tgt[i]
            if <uint32_t>tt + 1u > <uint32_t>(MAX_TARGET + 1):
                return self._bad_target(tt)
            kt = kb_key | ((<uint64_t>(<uint32_t>tt + 1u)) << ARG_BITS)
            if v0 == v1:                        # no variants: arg -1, packed as 0
                self.sort_k[m] = kt
                m += 1
            else:
                for v in range(v0, v1):
                    self.sort_k[m] = kt | <uint64_t>(self.var_val[v] + 1)
                    m += 1
        return m

    cdef int _bad_target(self, int32_t tt) except -1 nogil:
        with gil:
            raise OverflowError(f"target {tt} outside the packed key range")

    cdef inline int _emit(self, uint64_t key, int32_t arg) except -1 nogil:
        """Queue one merge operation (arg >= 0: add child key under parent
        arg; arg < 0: reopen node key in group -1 - arg), prefetching a
        child's dedup slot. Queued operations are applied in order, in
        batches, each at least RING_AHEAD operations after its prefetch."""
        cdef int j
        cdef uint64_t h = 0
        if arg >= 0:
            h = swarm_hash64(key)
            swarm_keyset_prefetch_h(&self.node_index, h)
        j = <int>(self.ring_n & (RING_SIZE - 1))
        self.ring_key[j] = key
        self.ring_hash[j] = h
        self.ring_arg[j] = arg
        self.ring_n += 1
        if self.ring_n - self.ring_done >= RING_SIZE - RING_AHEAD:
            self._apply(self.ring_n - RING_AHEAD)
        return 0

    cdef int _apply_now(self, uint64_t key, int32_t arg) except -1 nogil:
        """One merge operation (see _emit), applied at once."""
        if arg >= 0:
            self._add_key(key, swarm_hash64(key), arg)
        else:
            self._push_open(-1 - arg, <int32_t>key)
        return 0

    cdef int _apply(self, int64_t upto) except -1 nogil:
        """Apply the queued operations ring_done .. upto - 1, oldest first."""
        cdef int64_t p
        cdef int j
        cdef int32_t arg
        for p in range(self.ring_done, upto):
            j = <int>(p & (RING_SIZE - 1))
            arg = self.ring_arg[j]
            if arg >= 0:
                self._add_key(self.ring_key[j], self.ring_hash[j], arg)
            else:
                self._push_open(-1 - arg, <int32_t>self.ring_key[j])
        self.ring_done = upto
        return 0

    cdef bint _all_workers_succeeded(self) noexcept nogil:
        cdef int i
        for i in range(self.n_workers):
            if not (self.w_flags[i] & FLAG_SUCCESS):
                return False
        return True

    cdef int _env_step(self, int n) except -1 nogil:
        cdef StepOut out
        cdef int done
        if n == 0:
            self.as_disc_ptr[0] = 0
            return 0
        out.outcome = &self.as_outcome[0]
        out.disc_ptr = &self.as_disc_ptr[0]
        out.disc = &self.as_disc[0]
        out.disc_kind = &self.as_disc_kind[0]
        out.duration_ms = &self.as_dur[0]
        done = env_step(&self.env, n, &self.as_act[0], &self.as_tgt[0], &self.as_arg[0], out)
        if done < 0:
            with gil:
                raise RuntimeError("environment step failed")
        return done

    cdef int _native_tick(self) except -1 nogil:
        cdef int n = self._plan()
        return self._commit(n, self._env_step(n))

    # ------------------------------------------------------------------ Python face
    def reset(self, uint64_t seed):
        """Start a new run from its seed."""
        self.run_index = 0
        self.n_events = 0
        with nogil:
            self._reset(seed)

    def step(self, int64_t n_ticks):
        """Advance the current run up to n_ticks with the native environment.
        Returns ST_OK (ran, or the run has a verdict) or ST_NEED_ROOM."""
        if self.env.kind == ENV_PYTHON:
            raise RuntimeError("a Python environment is stepped through plan_tick/commit_tick")
        cdef int64_t k = 0
        cdef int status = ST_OK
        with nogil:
            while k < n_ticks and self.verdict == V_RUNNING:
                if not self._has_room():
                    status = ST_NEED_ROOM
                    break
                self._native_tick()
                k += 1
        return status

    def run_batch(self, const uint64_t[::1] seeds, int64_t start, bint resume,
                  uint8_t[::1] out_success, int8_t[::1] out_verdict, int64_t[::1] out_ticks,
                  int64_t[::1] out_actions, int64_t[::1] out_failed, float64_t[::1] out_wall,
                  int64_t[:, ::1] out_by_action, double time_budget=0.0,
                  uint8_t[::1] out_done=None):
        """Run seeds[start:] to their verdicts, writing one row per run.

        Returns (next_index, status). With ``resume`` the run in progress (the
        one at ``start``) continues instead of being reset. ``time_budget`` > 0
        returns early after that many seconds (for progress bars and Ctrl-C).
        """
        if self.env.kind == ENV_PYTHON:
            raise RuntimeError("run_batch needs a native environment")
        cdef int64_t r = start, R = seeds.shape[0]
        cdef int status = ST_OK
        cdef int a
        cdef double t0, t1, call_start
        cdef bint first = True
        cdef bint want_done = out_done is not None
        with nogil:
            # one clock read per run: a run's wall time runs from the end of
            # the previous one (its reset included) to its verdict
            call_start = now_seconds()
            t0 = call_start
            while r < R:
                if not (resume and first):
                    self._reset(seeds[r])
                    self.run_index = r
                    out_wall[r] = 0.0
                first = False
                while self.verdict == V_RUNNING:
                    if not self._has_room():
                        status = ST_NEED_ROOM
                        break
                    self._native_tick()
                t1 = now_seconds()
                out_wall[r] += t1 - t0
                t0 = t1
                if status == ST_NEED_ROOM:
                    break
                out_success[r] = self.verdict == V_SUCCESS
                out_verdict[r] = <int8_t>self.verdict
                out_ticks[r] = self.tick
                out_actions[r] = self.total_visits
                out_failed[r] = self.total_fail
                if want_done:
                    out_done[r] = self.task_done
                for a in range(self.n_actions):
                    out_by_action[r, a] = self.a_visits[a]
                    self.cum_visits[a] += self.a_visits[a]
                    self.cum_succ[a] += self.a_succ[a]
                    self.cum_fail[a] += self.a_fail[a]
                    self.cum_dur[a] += self.a_dur[a]
                r += 1
                if time_budget > 0.0 and t1 - call_start > time_budget:
                    break
        return r, status

    def plan_tick(self):
        """Manage phase: give open nodes to idle workers. Returns how many
        were assigned; read them with assignments()."""
        cdef int n
        if self.verdict != V_RUNNING:
            return 0
        if not self._has_room():
            self.make_room()
        with nogil:
            n = self._plan()
        return n

    def act_tick(self):
        """Act phase with the native environment on the assignments of
        plan_tick(); returns whether the environment reports the task done.
        Split from commit_native() so manager hooks can see the plan."""
        cdef int n = self.n_assigned, done = 0
        if self.env.kind == ENV_PYTHON:
            raise RuntimeError("a Python environment's results go through commit_tick")
        with nogil:
            done = self._env_step(n)
        return bool(done)

    def commit_native(self, bint env_done):
        """Merge phase after act_tick()."""
        with nogil:
            self._commit(self.n_assigned, env_done)

    def assignments(self):
        n = self.n_assigned
        return (np.asarray(self.as_worker[:n]).copy(), np.asarray(self.as_act[:n]).copy(),
                np.asarray(self.as_tgt[:n]).copy(), np.asarray(self.as_arg[:n]).copy())

    def commit_tick(self, outcome, disc_ptr, disc, duration_ms, bint env_done, disc_kind=None):
        """Merge phase for a Python environment's results of plan_tick()
        (``disc_kind``: optional target kind per discovery, 0 = any)."""
        cdef int n = self.n_assigned
        out = np.ascontiguousarray(outcome, dtype=np.int8)
        ptr = np.ascontiguousarray(disc_ptr, dtype=np.int32)
        dsc = np.ascontiguousarray(disc, dtype=np.int32)
        dur = np.ascontiguousarray(duration_ms, dtype=np.float32)
        if out.shape[0] != n or ptr.shape[0] != n + 1 or dur.shape[0] != n:
            raise ValueError(f"expected {n} results (and {n + 1} discovery offsets)")
        if n and (ptr[0] != 0 or ptr[n] != dsc.shape[0] or np.any(np.diff(ptr) < 0)):
            raise ValueError("discovery offsets must start at 0, rise, and end at len(disc)")
        if np.any((out < 0) | (out > 2)):
            raise ValueError("outcomes must be 0 (fail), 1 (ok) or 2 (error)")
        kinds = np.zeros(dsc.shape[0], np.int8) if disc_kind is None else \
            np.ascontiguousarray(disc_kind, dtype=np.int8)
        if kinds.shape[0] != dsc.shape[0]:
            raise ValueError("disc_kind must have one entry per discovery")
        if dsc.shape[0] > self.disc_cap:
            self.as_disc = np.zeros(dsc.shape[0], np.int32)
            self.as_disc_kind = np.zeros(dsc.shape[0], np.int8)
            self.disc_cap = dsc.shape[0]
        if dsc.shape[0] > 0:
            nd = int(np.max(np.diff(ptr))) if n else 0
            if nd > self.max_disc:
                self.max_disc = nd
                self._recompute_fanout()
                self._alloc_sort()
                self.make_room()
        np.asarray(self.as_outcome)[:n] = out
        np.asarray(self.as_disc_ptr)[:n + 1] = ptr
        np.asarray(self.as_disc)[:dsc.shape[0]] = dsc
        np.asarray(self.as_disc_kind)[:dsc.shape[0]] = kinds
        np.asarray(self.as_dur)[:n] = dur
        with nogil:
            self._commit(n, env_done)

    def _recompute_fanout(self):
        cdef int a, e, fan, fan_max = 0, nd = max(1, self.max_disc)
        for a in range(self.n_actions):
            fan = 0
            for e in range(self.succ_ptr[a], self.succ_ptr[a + 1]):
                fan += nd * max(1, self.var_ptr[self.succ_act[e] + 1] - self.var_ptr[self.succ_act[e]])
            fan_max = max(fan_max, fan)
        self.max_children = fan_max

    def set_waiting(self, int worker, bint waiting):
        """Mark a worker as waiting for an asynchronous decision (it reports
        'continuing' and the selector skips it) or release it."""
        if not 0 <= worker < self.n_workers:
            raise IndexError(f"worker {worker} out of range")
        if waiting:
            self.w_flags[worker] |= FLAG_WAITING
        else:
            self.w_flags[worker] &= ~FLAG_WAITING

    def mark_fallback(self, int worker):
        """The worker's asynchronous decision failed: release it to the
        selector and record its next action as a fallback (event source 2)."""
        self.set_waiting(worker, False)
        self.w_src[worker] = 2

    cdef int32_t _group_of_node(self, int32_t node) noexcept nogil:
        cdef uint64_t key = self.n_key[node]
        if not self.granular:
            return key_action(key)
        return swarm_index_find(&self.group_index, &self.g_key[0],
                                pack_key(key_action(key), key_target(key), -1))

    def group_nodes(self, int group, int limit=8):
        """Open nodes of a group in queue order (at most ``limit``)."""
        out = []
        if not 0 <= group < self.n_groups:
            return out
        node = self.g_head[group]
        while node >= 0 and len(out) < limit:
            out.append(node)
            node = self.n_next[node]
        return out

    def node_key(self, int node):
        """(action, target, arg) of a node."""
        if not 0 <= node < self.n_nodes:
            raise IndexError(f"node {node} out of range")
        key = self.n_key[node]
        return key_action(key), key_target(key), key_arg(key)

    def assign_node(self, int worker, int node):
        """Give an idle worker a specific open node to act on this tick (an
        LLM's choice; event source 1). False when the worker is busy or done,
        or the node is no longer open."""
        if not 0 <= worker < self.n_workers:
            raise IndexError(f"worker {worker} out of range")
        if self.verdict != V_RUNNING or self.w_node[worker] >= 0 or self.w_flags[worker] & FLAG_DONE:
            return False
        if not 0 <= node < self.n_nodes or self.n_state[node] != NODE_OPEN:
            return False
        cdef int32_t g = self._group_of_node(node)
        self._take_node(g, node)
        self.w_node[worker] = node
        self.w_group[worker] = g
        self.n_busy += 1
        self.n_pending += 1
        self.w_flags[worker] = (self.w_flags[worker] & ~FLAG_WAITING) | FLAG_PENDING | FLAG_BUSY
        self.w_src[worker] = 1
        return True

    def assign_group(self, int worker, int group):
        """Give an idle worker the oldest open node of ``group`` to act on
        this tick (an LLM's choice; event source 1). False when the worker is
        busy or done, or the group has no open node left."""
        if not 0 <= worker < self.n_workers:
            raise IndexError(f"worker {worker} out of range")
        if self.verdict != V_RUNNING or self.w_node[worker] >= 0 or self.w_flags[worker] & FLAG_DONE:
            return False
        if not 0 <= group < self.n_groups or self.g_count[group] == 0:
            return False
        cdef int32_t node = self._take(group)
        self.w_node[worker] = node
        self.w_group[worker] = group
        self.n_busy += 1
        self.n_pending += 1
        self.w_flags[worker] = (self.w_flags[worker] & ~FLAG_WAITING) | FLAG_PENDING | FLAG_BUSY
        self.w_src[worker] = 1
        return True

    def stop(self):
        """Give the run the verdict 'stopped' (Ctrl-C, a user hook)."""
        if self.verdict == V_RUNNING:
            self.verdict = V_STOPPED

    def force_verdict(self, int verdict):
        """Set the verdict from outside (conditions evaluated in Python)."""
        self.verdict = verdict

    def take_events(self):
        """Return the logged events as a dict of arrays (copies) and empty the log."""
        n = self.n_events
        out = {
            "run": np.asarray(self.ev_run[:n]).copy(),
            "tick": np.asarray(self.ev_tick[:n]).copy(),
            "worker": np.asarray(self.ev_worker[:n]).copy(),
            "node": np.asarray(self.ev_node[:n]).copy(),
            "action": np.asarray(self.ev_action[:n]).copy(),
            "target": np.asarray(self.ev_target[:n]).copy(),
            "arg": np.asarray(self.ev_arg[:n]).copy(),
            "outcome": np.asarray(self.ev_outcome[:n]).copy(),
            "n_discoveries": np.asarray(self.ev_ndisc[:n]).copy(),
            "duration_ms": np.asarray(self.ev_dur[:n]).copy(),
            "source": np.asarray(self.ev_source[:n]).copy(),
        }
        self.n_events = 0
        return out

    def nodes(self):
        """The graph map as a dict of arrays (copies)."""
        n = self.n_nodes
        keys = np.asarray(self.n_key[:n]).copy()
        return {
            "action": (keys >> np.uint64(TARGET_BITS + ARG_BITS)).astype(np.int32),
            "target": ((keys >> np.uint64(ARG_BITS)) & np.uint64((1 << TARGET_BITS) - 1)).astype(np.int32) - 1,
            "arg": (keys & np.uint64((1 << ARG_BITS) - 1)).astype(np.int32) - 1,
            "parent": np.asarray(self.n_parent[:n]).copy(),
            "state": np.asarray(self.n_state[:n]).copy(),
            "tick": np.asarray(self.n_tick[:n]).copy(),
            "retries": np.asarray(self.n_retries[:n]).copy(),
        }

    def groups(self):
        """Frontier groups and their (action, target) statistics (copies)."""
        n = self.n_groups
        keys = np.asarray(self.g_key[:n]).copy()
        return {
            "action": (keys >> np.uint64(TARGET_BITS + ARG_BITS)).astype(np.int32),
            "target": ((keys >> np.uint64(ARG_BITS)) & np.uint64((1 << TARGET_BITS) - 1)).astype(np.int32) - 1,
            "open": np.asarray(self.g_count[:n]).copy(),
            "visits": np.asarray(self.g_visits[:n]).copy(),
            "successes": np.asarray(self.g_succ[:n]).copy(),
            "discoveries": np.asarray(self.g_disc[:n]).copy(),
            "duration_ms": np.asarray(self.g_dur[:n]).copy(),
        }

    def selector_scores(self, int limit=1000):
        """Score of each non-empty group as the selector sees it now (no
        virtual visits), as (group ids, scores); for -v snapshots and prompts.
        At most ``limit`` never-visited groups are listed."""
        cdef int mode = self._effective_mode()
        cdef int i
        if mode == SEL_THOMPSON_SAMPLED:
            mode = SEL_THOMPSON   # report the mean, do not consume the stream
        log_total = log(<double>self.total_visits) if self.total_visits > 1 else 0.0
        groups = [self.active[i] for i in range(self.n_active)]
        for a in range(self.n_actions):
            g = self.fresh_head[a]
            while g >= 0 and len(groups) < self.n_active + limit:
                groups.append(g)
                g = self.g_fresh_next[g]
        gids = np.array(groups, np.int32)
        scores = np.zeros(len(groups), np.float64)
        for i, g in enumerate(groups):
            self.g_vv[g] = 0
            scores[i] = self._score(g, mode, log_total)
        return gids, scores

    def action_stats(self, bint cumulative=False):
        """Per-action statistics of this run (or summed over every batched run)."""
        if cumulative:
            return {"visits": np.asarray(self.cum_visits).copy(), "successes": np.asarray(self.cum_succ).copy(),
                    "failures": np.asarray(self.cum_fail).copy(), "duration_ms": np.asarray(self.cum_dur).copy()}
        return {"visits": np.asarray(self.a_visits).copy(), "successes": np.asarray(self.a_succ).copy(),
                "failures": np.asarray(self.a_fail).copy(), "discoveries": np.asarray(self.a_disc).copy(),
                "duration_ms": np.asarray(self.a_dur).copy()}

    def workers(self):
        """Worker state arrays (copies): node, result, flags, consecutive failures, actions."""
        return {"node": np.asarray(self.w_node).copy(), "result": np.asarray(self.w_result).copy(),
                "done": (np.asarray(self.w_flags) & FLAG_DONE).astype(bool),
                "waiting": (np.asarray(self.w_flags) & FLAG_WAITING).astype(bool),
                "succeeded": (np.asarray(self.w_flags) & FLAG_SUCCESS).astype(bool),
                "consecutive_failures": np.asarray(self.w_consec).copy(),
                "actions": np.asarray(self.w_actions).copy()}

    def memory_bytes(self):
        """Bytes held per part: nodes (arrays + dedup index), groups, workers, events."""
        node_b = self.node_cap * (8 + 4 + 4 + 4 + 1 + 1) + swarm_keyset_bytes(&self.node_index)
        # key; head, tail, count, active_pos, fresh_next, fresh_prev, vv; score
        # and four statistics; active[] and heap[]
        group_b = self.group_cap * (8 + 4 * 7 + 8 * 5 + 4 * 2)
        if self.granular:
            group_b += swarm_index_bytes(&self.group_index)
        # per worker: its columns (w_*, 17 B) and one tick's assignment and
        # result arrays (as_*, 25 B), plus the discoveries one tick can return
        # (4 + 1 B each) and the children of one expansion (8 B each; 32 with
        # the learned ordering's sort scratch)
        worker_b = self.n_workers * (4 + 4 + 1 + 1 + 2 + 4 + 1) + self.n_workers * (4 * 4 + 1 + 4 + 4) \
            + self.disc_cap * 5 + 8 * (self.sort_k.shape[0] + self.sort_k2.shape[0]
                                       + self.sort_s.shape[0] + self.sort_s2.shape[0])
        event_b = self.event_cap * (4 * 8 + 2 + 4) if self.record_events else 0
        return {"nodes": node_b, "node_capacity": self.node_cap, "groups": group_b,
                "workers": worker_b, "events": event_b}


def _grow(view, int64_t cap, dtype):
    old = np.asarray(view)
    new = np.zeros(cap, dtype=dtype)
    new[:old.shape[0]] = old
    return new


# The enums' members as plain module-level ints (SEL_UCB1, V_SUCCESS, ...).
for _enum in (SelectorKind, ManageKind, TermStrategy, OnExhausted, Verdict, NodeState,
              WorkerResult, Status):
    globals().update({_k: int(_v) for _k, _v in _enum.__members__.items()})
