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

Layout: the state is declared in ``_kernel.pxd``. This file is the Python
face; the nogil phases are included from ``_kernel_run.pxi`` (a run, a tick),
``_kernel_plan.pxi`` (manage phase), ``_kernel_merge.pxi`` (merge phase),
``_kernel_frontier.pxi`` (graph map and group queues); ``_kernel_buffers.pxi``
allocates and ``_kernel_introspect.pxi`` copies state out for Python. They
are one extension module so every call between phases is a direct C call
(the compiler inlines the small ones); the pure helpers are inline functions
of ``_keys.pxd``, ``_heap.pxd``, ``_select.pxd`` and ``_order.pxd``.
"""

from libc.math cimport log
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from swarm_engine._native._hashmap cimport (swarm_hash64, swarm_index_init, swarm_index_free, swarm_index_find,
                                            swarm_index_get_or_put, swarm_index_reset, swarm_index_bytes,
                                            swarm_keyset_init, swarm_keyset_free, swarm_keyset_reset,
                                            swarm_keyset_add_h, swarm_keyset_prefetch_h, swarm_keyset_bytes)
from swarm_engine._native._rng cimport swarm_rng_seed
from swarm_engine._native._envctx cimport K_PYTHON as ENV_PYTHON, O_OK as OUT_OK, O_ERROR as OUT_ERROR
from swarm_engine._native._envs cimport env_state_size, env_max_discoveries, env_reset, env_step
from swarm_engine._native._keys cimport (ACTION_BITS, TARGET_BITS, ARG_BITS, MAX_ACTIONS, MAX_TARGET, MAX_ARG,
                                         pack_key, key_action, key_target, key_arg)
from swarm_engine._native._heap cimport heap_sift_down, heap_push
from swarm_engine._native._select cimport select_mode, select_score
from swarm_engine._native._order cimport prior_score, sort_by_score

import numpy as np

LIMITS = {"actions": MAX_ACTIONS, "target": MAX_TARGET, "arg": MAX_ARG}

include "_kernel_buffers.pxi"
include "_kernel_frontier.pxi"
include "_kernel_plan.pxi"
include "_kernel_merge.pxi"
include "_kernel_run.pxi"
include "_kernel_introspect.pxi"


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
                 act_kind=None, env_args=None, bint env_completes=False):
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
        self.env_completes = env_completes
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

        _recompute_fanout(self)

        node_capacity = max(node_capacity, self.start_act.shape[0] + 16)
        _alloc_nodes(self, node_capacity)
        # every start node may open its own group before the first room check
        _alloc_groups(self, n_actions if not granular else max(64, self.start_act.shape[0] + 16))
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
        _alloc_sort(self)
        self.record_events = record_events
        self.event_cap = max(event_capacity, W) if record_events else 1
        _alloc_events(self, self.event_cap)
        self.verdict = V_RUNNING
        self.run_index = -1

    # ------------------------------------------------------------------ room and learned tables

    def make_room(self):
        """Grow whatever the next tick could overflow (called on ST_NEED_ROOM
        after the caller drained the event log)."""
        cdef int64_t need = <int64_t>self.n_workers * max(1, self.max_children)
        if self.n_nodes + need > self.node_cap:
            # 1.5x keeps bytes per node low on 10^7-node graphs; growth is rare
            _alloc_nodes(self, max(self.node_cap + self.node_cap // 2, self.n_nodes + need))
        if self.granular and self.n_groups + need > self.group_cap:
            _alloc_groups(self, max(self.group_cap + self.group_cap // 2, self.n_groups + need))
        if self.record_events and self.n_events + self.n_workers > self.event_cap:
            raise RuntimeError("event log full: drain it with take_events() first")

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
            _alloc_sort(self)

    def set_bonus(self, bonus3):
        """Install the learned bonus table, shape ((A+1)**2 * A,) or empty."""
        arr = np.ascontiguousarray(bonus3 if bonus3 is not None else [], dtype=np.float64).ravel()
        A = self.n_actions
        if arr.shape[0] not in (0, (A + 1) * (A + 1) * A):
            raise ValueError(f"bonus table must have (A+1)^2*A = {(A + 1) ** 2 * A} entries")
        self.bonus3 = arr

    # ------------------------------------------------------------------ runs

    def reset(self, uint64_t seed):
        """Start a new run from its seed."""
        self.run_index = 0
        self.n_events = 0
        with nogil:
            _reset(self, seed)

    def step(self, int64_t n_ticks):
        """Advance the current run up to n_ticks with the native environment.
        Returns ST_OK (ran, or the run has a verdict) or ST_NEED_ROOM."""
        if self.env.kind == ENV_PYTHON:
            raise RuntimeError("a Python environment is stepped through plan_tick/commit_tick")
        cdef int64_t k = 0
        cdef int status = ST_OK
        with nogil:
            while k < n_ticks and self.verdict == V_RUNNING:
                if not _has_room(self):
                    status = ST_NEED_ROOM
                    break
                _native_tick(self)
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
                    _reset(self, seeds[r])
                    self.run_index = r
                    out_wall[r] = 0.0
                first = False
                while self.verdict == V_RUNNING:
                    if not _has_room(self):
                        status = ST_NEED_ROOM
                        break
                    _native_tick(self)
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

    # ------------------------------------------------------------------ a tick split around Python (the LLM hooks)

    def plan_tick(self):
        """Manage phase: give open nodes to idle workers. Returns how many
        were assigned; read them with assignments()."""
        cdef int n
        if self.verdict != V_RUNNING:
            return 0
        if not _has_room(self):
            self.make_room()
        with nogil:
            n = _plan(self)
        return n

    def act_tick(self):
        """Act phase with the native environment on the assignments of
        plan_tick(); returns whether the environment reports the task done.
        Split from commit_native() so manager hooks can see the plan."""
        cdef int n = self.n_assigned, done = 0
        if self.env.kind == ENV_PYTHON:
            raise RuntimeError("a Python environment's results go through commit_tick")
        with nogil:
            done = _env_step(self, n)
        return bool(done)

    def commit_native(self, bint env_done):
        """Merge phase after act_tick()."""
        with nogil:
            _commit(self, self.n_assigned, env_done)

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
                _recompute_fanout(self)
                _alloc_sort(self)
                self.make_room()
        np.asarray(self.as_outcome)[:n] = out
        np.asarray(self.as_disc_ptr)[:n + 1] = ptr
        np.asarray(self.as_disc)[:dsc.shape[0]] = dsc
        np.asarray(self.as_disc_kind)[:dsc.shape[0]] = kinds
        np.asarray(self.as_dur)[:n] = dur
        with nogil:
            _commit(self, n, env_done)

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

    def assign_node(self, int worker, int node, int source=1):
        """Give an idle worker a specific open node to act on this tick (an
        LLM's choice: event source 1; 0 when the node was the only choice and
        no model was asked). False when the worker is busy or done, or the node
        is no longer open."""
        if not 0 <= worker < self.n_workers:
            raise IndexError(f"worker {worker} out of range")
        if not 0 <= source <= 2:
            raise ValueError(f"event source {source} out of range 0..2")
        if self.verdict != V_RUNNING or self.w_node[worker] >= 0 or self.w_flags[worker] & FLAG_DONE:
            return False
        if not 0 <= node < self.n_nodes or self.n_state[node] != NODE_OPEN:
            return False
        cdef int32_t g = _group_of_node(self, node)
        _take_node(self, g, node)
        self.w_node[worker] = node
        self.w_group[worker] = g
        self.n_busy += 1
        self.n_pending += 1
        self.w_flags[worker] = (self.w_flags[worker] & ~FLAG_WAITING) | FLAG_PENDING | FLAG_BUSY
        self.w_src[worker] = source
        return True

    def stop(self):
        """Give the run the verdict 'stopped' (Ctrl-C, a user hook)."""
        if self.verdict == V_RUNNING:
            self.verdict = V_STOPPED

    def force_verdict(self, int verdict):
        """Set the verdict from outside (conditions evaluated in Python)."""
        self.verdict = verdict

    # ------------------------------------------------------------------ introspection (_kernel_introspect.pxi)

    def take_events(self):
        """Return the logged events as a dict of arrays (copies) and empty the log."""
        return _introspect_events(self)

    def nodes(self):
        """The graph map as a dict of arrays (copies)."""
        return _introspect_nodes(self)

    def groups(self):
        """Frontier groups and their (action, target) statistics (copies)."""
        return _introspect_groups(self)

    def selector_scores(self, int limit=1000):
        """Score of each non-empty group as the selector sees it now (no
        virtual visits), as (group ids, scores); for -v snapshots and prompts.
        At most ``limit`` never-visited groups are listed."""
        return _introspect_scores(self, limit)

    def action_stats(self, bint cumulative=False):
        """Per-action statistics of this run (or summed over every batched run)."""
        return _introspect_action_stats(self, cumulative)

    def workers(self):
        """Worker state arrays (copies): node, result, flags, consecutive failures, actions."""
        return _introspect_workers(self)

    def memory_bytes(self):
        """Bytes held per part: nodes (arrays + dedup index), groups, workers, events."""
        return _introspect_memory(self)


# The enums' members as plain module-level ints (SEL_UCB1, V_SUCCESS, ...).
for _enum in (SelectorKind, ManageKind, TermStrategy, OnExhausted, Verdict, NodeState,
              WorkerResult, Status):
    globals().update({_k: int(_v) for _k, _v in _enum.__members__.items()})
