# The exploration kernel's state: one run's graph map, frontier, statistics,
# workers and event log as struct-of-arrays, plus the enums Python sees. The
# code that works on it is in _kernel.pyx (the Python face) and the files it
# includes, one per phase (_kernel_*.pxi); the pure helpers it inlines are the
# contracts _keys.pxd, _heap.pxd, _select.pxd and _order.pxd.
#
# Every array is a numpy buffer owned by the Kernel object; the memoryviews
# below are re-bound by _alloc_*() (_kernel_buffers.pxi) and must not be held
# across a call that may grow them (any tick). Shapes: A actions, W workers,
# node_cap nodes, group_cap groups, event_cap events; ids are int32 indices.
cimport cython
from swarm_engine._native._typedefs cimport (int8_t, uint8_t, int32_t, int64_t, uint16_t,
                                             uint32_t, uint64_t, float32_t, float64_t)
from swarm_engine._native._hashmap cimport swarm_index_t, swarm_keyset_t
from swarm_engine._native._rng cimport swarm_rng_t
from swarm_engine._native._envctx cimport EnvCtx, StepOut

cpdef enum SelectorKind:
    SEL_FIFO = 0
    SEL_UCB1 = 1
    SEL_THOMPSON = 2            # the original: expected value (s+1)/(n+2), no sampling
    SEL_THOMPSON_SAMPLED = 3    # textbook: a Beta(s+1, f+1) draw per candidate group
    SEL_GREEDY = 4
    SEL_ADAPTIVE = 5

cpdef enum ManageKind:
    MANAGE_EVERY_TICK = 0
    MANAGE_FIXED_INTERVAL = 1   # param = interval in ticks
    MANAGE_COMPLETION_BASED = 2 # param = max ticks to wait for busy workers

cpdef enum TermStrategy:
    TERM_FIRST_SUCCESS = 0
    TERM_ALL_COMPLETE = 1
    TERM_ALL_SUCCEED = 2

cpdef enum OnExhausted:
    EXHAUSTED_FAIL = 0
    EXHAUSTED_SUCCESS = 1
    EXHAUSTED_WAIT = 2          # keep ticking (new work may arrive from Python)

cpdef enum Verdict:
    V_RUNNING = 0
    V_SUCCESS = 1
    V_EXHAUSTED = 2
    V_TIMEOUT = 3
    V_MAX_ERRORS = 4
    V_INCOMPLETE = 5            # all_succeed: some worker never completed the task
    V_STOPPED = 6

cpdef enum NodeState:
    NODE_OPEN = 0
    NODE_ASSIGNED = 1
    NODE_DONE_OK = 2
    NODE_DONE_FAIL = 3

cpdef enum WorkerResult:
    W_IDLE = 0
    W_ACTED = 1
    W_CONTINUING = 2
    W_NEEDS_GUIDANCE = 3
    W_ESCALATE = 4
    W_DONE = 5

cpdef enum Status:
    ST_OK = 0
    ST_NEED_ROOM = 1            # grow buffers (or drain events) and call again

# bits of w_flags: one byte tells the plan loop what a worker is doing
cdef enum:
    FLAG_DONE = 1               # finished for this run (verdict; or all_succeed, succeeded, no env completion)
    FLAG_SUCCESS = 2            # acted on a terminal action successfully
    FLAG_WAITING = 4            # waiting for an asynchronous decision (an LLM): continuing
    FLAG_PENDING = 8            # holds a node assigned from Python, to act on this tick
    FLAG_BUSY = 16              # holds a node (w_node >= 0)

# the merge's prefetch ring (ring_* below)
cdef enum:
    RING_SIZE = 64              # entries, a power of two
    RING_AHEAD = 16             # a queued insert is applied at least this many inserts after its prefetch


@cython.final
cdef class Kernel:
    # ---- rules (read-only after __init__) ----
    cdef readonly int n_actions           # A; action ids are 0..A-1
    cdef const int32_t[::1] succ_ptr      # (A+1,) CSR offsets into succ_act
    cdef const int32_t[::1] succ_act      # successor action ids
    cdef const uint8_t[::1] is_terminal   # (A,) 1 = a terminal action: its success marks the worker
                                          # succeeded, and completes the task unless env_completes
    cdef const int32_t[::1] var_ptr       # (A+1,) CSR offsets into var_val
    cdef const int32_t[::1] var_val       # param-variant argument ids (one child each)
    cdef const int32_t[::1] start_act     # initial frontier: (S,) actions
    cdef const int32_t[::1] start_tgt     # (S,) targets, -1 = none
    cdef const int32_t[::1] start_arg     # (S,) args, -1 = none
    cdef const int8_t[::1] act_kind       # (A,) kind of target an action takes, 0 = any
    cdef int max_children                 # bound on nodes one success can add
    # ---- run configuration ----
    cdef readonly int n_workers           # W
    cdef readonly int64_t max_ticks       # 0 = unlimited
    cdef int term_strategy                # TermStrategy
    cdef int on_exhausted                 # OnExhausted
    cdef readonly bint env_completes      # the environment reports its own completion (env_done):
                                          # only it completes the task, a terminal success does not
    cdef int max_consec_errors            # 0 = no limit
    cdef int max_retries                  # retries of a node after a transient error
    cdef int escalate_after               # consecutive failures before W_ESCALATE
    cdef int manage_kind                  # ManageKind
    cdef int manage_param                 # interval / max wait, in ticks
    cdef readonly bint granular           # groups and stats per (action, target), else per action
    # ---- selector ----
    cdef readonly int selector            # SelectorKind
    cdef double ucb1_c                    # UCB1 exploration constant
    cdef double learning_weight           # weight of the learned bonus (UCB1, Thompson)
    cdef double greedy_weight             # weight of the learned bonus (Greedy: the whole score)
    cdef int64_t maturity_threshold       # Adaptive: UCB1 below this many visits
    cdef double error_rate_threshold      # Adaptive: Greedy below, Thompson above
    cdef float64_t[::1] bonus3            # ((A+1)^2 * A,) learned bonus for (prev_prev, prev, a); empty = 0
    cdef float64_t[::1] bonus_now         # (A,) bonus row for this tick's context
    # ---- environment ----
    cdef EnvCtx env                       # the native environment (kind, params, state pointers)
    cdef float64_t[::1] env_params        # kind-specific parameters (env.params points here)
    cdef int32_t[::1] env_ops             # (A,) action id -> env op
    cdef int32_t[::1] env_args            # argument id -> env argument (-1 unknown)
    cdef readonly int32_t[::1] env_state  # this run's hidden state
    cdef int max_disc                     # discoveries one action can return
    # ---- graph map: nodes (capacity node_cap) ----
    cdef uint64_t[::1] n_key              # packed (action, target + 1, arg + 1): the dedup key
    cdef int32_t[::1] n_parent            # node that discovered it, -1 for start nodes
    cdef int32_t[::1] n_next              # next open node in the same group queue, -1 = last
    cdef int32_t[::1] n_tick              # tick it was discovered
    cdef uint8_t[::1] n_state             # NodeState
    cdef uint8_t[::1] n_retries           # transient-error retries used
    cdef readonly int32_t n_nodes         # nodes in the map, <= node_cap
    cdef int32_t node_cap                 # capacity of the n_* columns
    cdef swarm_keyset_t node_index        # the keys of n_key[:n_nodes]: dedup of new children
    # ---- frontier groups: one FIFO queue of open nodes per (action[, target]) ----
    cdef uint64_t[::1] g_key              # packed (action, target + 1, 0)
    cdef int32_t[::1] g_head              # oldest open node, -1 = empty
    cdef int32_t[::1] g_tail              # newest open node
    cdef int32_t[::1] g_count             # open nodes queued
    cdef int32_t[::1] g_active_pos        # index in active[], -1 when empty
    cdef int32_t[::1] g_vv                # virtual visits assigned this tick
    cdef float64_t[::1] g_score           # score cached for the heap this tick
    cdef int64_t[::1] g_visits            # visits of the group's (action, target), this run (granular)
    cdef int64_t[::1] g_succ              # successes (granular)
    cdef int64_t[::1] g_disc              # discoveries returned (granular)
    cdef float64_t[::1] g_dur             # summed duration, ms
    cdef int32_t[::1] g_fresh_next        # next never-visited group of the same action, -1 = last
    cdef int32_t[::1] g_fresh_prev        # previous one, -1 = first (an LLM may take any)
    cdef int32_t[::1] fresh_head          # (A,) oldest never-visited non-empty group per action
    cdef int32_t[::1] fresh_tail          # (A,)
    cdef int32_t n_fresh                  # groups in the fresh lists
    cdef bint use_fresh                   # granular and not Thompson-sampled
    cdef int32_t[::1] active              # visited groups with open nodes, unordered
                                          # (g_active_pos: index here, -1 none, -2 in a fresh list)
    cdef int32_t[::1] heap                # max-heap of active groups by (score, -head)
    cdef readonly int32_t n_groups        # groups in use, <= group_cap
    cdef readonly int32_t n_active        # entries of active[]
    cdef int32_t n_heap                   # entries of heap[] (valid during a plan only)
    cdef int32_t group_cap                # capacity of the g_*, active and heap columns
    cdef swarm_index_t group_index        # (action, target) -> group id (granular only)
    cdef readonly int64_t n_open          # open nodes in all queues
    # ---- per-action statistics (this run) ----
    cdef int64_t[::1] a_visits            # (A,) actions done
    cdef int64_t[::1] a_succ              # (A,) successes
    cdef int64_t[::1] a_fail              # (A,) failures and errors
    cdef int64_t[::1] a_disc              # (A,) discoveries returned
    cdef float64_t[::1] a_dur             # (A,) summed duration, ms
    # ---- workers (W) ----
    cdef int32_t[::1] w_node              # assigned node, -1 = none
    cdef int32_t[::1] w_group             # group the node was taken from
    cdef uint8_t[::1] w_result            # WorkerResult of the last tick
    cdef uint8_t[::1] w_flags             # FLAG_* bits above
    cdef int8_t[::1] w_src                # who chose the current node: 0 selector, 1 LLM, 2 fallback
    cdef uint16_t[::1] w_consec           # consecutive failures, saturating at 65535
    cdef uint32_t[::1] w_actions          # actions done
    # ---- one tick's assignments (capacity W) and results ----
    cdef int32_t[::1] as_worker           # worker of assignment i, i < n_assigned
    cdef int32_t[::1] as_act              # its node's action
    cdef int32_t[::1] as_tgt              # its node's target, -1 = none
    cdef int32_t[::1] as_arg              # its node's argument, -1 = none
    cdef int8_t[::1] as_outcome           # the environment's outcome (O_FAIL / O_OK / O_ERROR, _envctx.pxd)
    cdef int32_t[::1] as_disc_ptr         # (W+1,) discoveries of i are as_disc[ptr[i]:ptr[i+1]]
    cdef int32_t[::1] as_disc             # discovered targets, capacity disc_cap
    cdef int8_t[::1] as_disc_kind         # their target kinds (0 = any)
    cdef float32_t[::1] as_dur            # duration of action i, ms
    cdef int32_t disc_cap                 # capacity of as_disc / as_disc_kind
    # ---- merge: reopenings and expansions pass through a ring of RING_SIZE
    # entries, applied in batches, each at least RING_AHEAD inserts after its
    # dedup slot was prefetched; position p is entry p & (RING_SIZE - 1) ----
    cdef uint64_t ring_key[RING_SIZE]     # child key, or node to reopen
    cdef uint64_t ring_hash[RING_SIZE]    # swarm_hash64 of the child key (prefetched slot)
    cdef int32_t ring_arg[RING_SIZE]      # parent node (add), or -1 - group (reopen)
    cdef int64_t ring_n                   # operations queued this tick
    cdef int64_t ring_done                # operations applied this tick
    cdef bint merge_direct                # this tick cannot fill the ring: apply each operation at once
    # ---- learned child ordering (empty = discovery order) ----
    cdef float64_t[::1] prior_t           # (A * prior_tn,) score per (action, target)
    cdef float64_t[::1] prior_v           # (A * prior_vn,) score per (action, arg value)
    cdef int32_t prior_tn, prior_vn       # columns of the two tables (targets, arg values)
    cdef bint has_prior                   # a table is installed: sort the children
    cdef uint64_t[::1] sort_k             # the children of one expansion (keys), capacity max_children
    cdef uint64_t[::1] sort_k2            # merge-sort scratch (with a prior only): keys,
    cdef float64_t[::1] sort_s            # scores of sort_k,
    cdef float64_t[::1] sort_s2           # scores of sort_k2
    cdef readonly int32_t n_assigned      # assignments of this tick (as_*)
    cdef int32_t n_busy                   # workers holding a node
    cdef int32_t n_pending                # workers holding a node assigned from Python (FLAG_PENDING)
    # ---- run scalars ----
    cdef readonly int64_t tick            # ticks done this run
    cdef readonly int verdict             # Verdict
    cdef readonly bint task_done          # the task is complete: the environment said so, or (only when
                                          # env_completes is false) a terminal action succeeded
    cdef readonly int64_t total_visits    # actions done this run
    cdef readonly int64_t total_fail      # of which failed or errored
    cdef readonly int64_t consec_errors   # unsuccessful actions in a row, over all workers
    cdef int64_t last_manage_tick         # last tick the plan assigned, -1 = none
    cdef int prev_action                  # last two actions of the run, -1 = none
    cdef int prev_prev_action
    cdef swarm_rng_t rng                  # selector stream (stream 1 of the seed)
    cdef readonly uint64_t seed           # of this run
    cdef readonly int64_t run_index       # index in the current batch
    # ---- event log (optional) ----
    cdef readonly bint record_events      # log one event per action
    cdef int32_t[::1] ev_run              # (event_cap,) each: run index in the batch,
    cdef int32_t[::1] ev_tick             # tick,
    cdef int32_t[::1] ev_worker           # worker,
    cdef int32_t[::1] ev_node             # node acted on,
    cdef int32_t[::1] ev_action           # its action, target and arg,
    cdef int32_t[::1] ev_target
    cdef int32_t[::1] ev_arg
    cdef int8_t[::1] ev_outcome           # outcome,
    cdef int32_t[::1] ev_ndisc            # discoveries returned,
    cdef float32_t[::1] ev_dur            # duration, ms,
    cdef int8_t[::1] ev_source            # 0 selector, 1 LLM decision, 2 selector after a failed LLM call
    cdef readonly int64_t n_events        # events logged since the last take_events()
    cdef int64_t event_cap                # capacity of the ev_* columns
    # ---- totals over every run of the kernel's batches ----
    cdef int64_t[::1] cum_visits          # (A,) as a_* above, summed over the runs of run_batch
    cdef int64_t[::1] cum_succ            # (A,)
    cdef int64_t[::1] cum_fail            # (A,)
    cdef float64_t[::1] cum_dur           # (A,) ms


# ---- the phases: module functions of _kernel.pyx, defined in the file named
# on each group. Declared here (the inline ones cannot be: their bodies are in
# the .pxi), they are the kernel's C-level contract and each keeps an
# out-of-line copy, as the methods they were did: left to itself, GCC inlines
# every single-call function into its caller, whose larger prologue cost 1.2%
# more instructions per action on the grid (docs/profiling.md, issue #11).
# Functions that can raise return the listed error value with the exception set.

# _kernel_buffers.pxi
cdef bint _has_room(Kernel self) noexcept nogil               # the next tick fits columns and event log
# _kernel_run.pxi
cdef int _reset(Kernel self, uint64_t seed) except -1 nogil   # a new run from its seed
cdef int _env_step(Kernel self, int n) except -1 nogil        # the environment on n assignments; 1 = done
cdef int _native_tick(Kernel self) except -1 nogil            # _plan, _env_step, _commit
# _kernel_frontier.pxi: node and group ids, -1 = none
cdef int32_t _group_of(Kernel self, int32_t action, int32_t target) except -2 nogil   # creates it if new
cdef void _init_group(Kernel self, int32_t g, uint64_t key) noexcept nogil
cdef void _fresh_append(Kernel self, int32_t g) noexcept nogil
cdef int32_t _take_node(Kernel self, int32_t g, int32_t node) noexcept nogil      # unlink an open node of g
cdef int32_t _group_of_node(Kernel self, int32_t node) noexcept nogil
cdef int32_t _add_node(Kernel self, int32_t action, int32_t target, int32_t arg,
                       int32_t parent) except -2 nogil                            # new id, -1 = duplicate
cdef int32_t _new_node(Kernel self, uint64_t key, int32_t parent) except -2 nogil # key just entered node_index
# _kernel_plan.pxi
cdef int _effective_mode(Kernel self) noexcept nogil          # a SelectorKind, never SEL_ADAPTIVE
cdef double _score(Kernel self, int32_t g, int mode, double log_total) noexcept nogil   # of group g
cdef void _after_take(Kernel self, int32_t g, int32_t fresh_action, int mode, double log_total,
                      bint rescore_alone) noexcept nogil   # the heap after a pick from group g
cdef int _plan(Kernel self) except -1 nogil                   # assignments written to as_*
# _kernel_merge.pxi
cdef int _commit(Kernel self, int n, int env_done) except -1 nogil
cdef bint _all_workers_succeeded(Kernel self) noexcept nogil
cdef int _merge_nodes(Kernel self, int n) except -1 nogil     # pass 2: reopenings and expansions
cdef int64_t _expand_successor(Kernel self, int i, int32_t b, int64_t m) except -1 nogil   # new child count
cdef int _bad_target(Kernel self, int32_t tt) except -1 nogil # raises OverflowError
cdef void _sort_children(Kernel self, int64_t m) noexcept nogil
cdef int _apply(Kernel self, int64_t upto) except -1 nogil
