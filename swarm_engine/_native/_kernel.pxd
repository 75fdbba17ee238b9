# The exploration kernel: one run's graph map, frontier, statistics, workers and
# event log as struct-of-arrays, plus the tick (plan -> step -> commit) and the
# batch-of-runs loop. Every array is a numpy buffer owned by the Kernel object;
# the memoryviews below are re-bound by _grow_*() and must not be held across
# a call that may grow them (any tick).
cimport cython
from swarm_engine._native._typedefs cimport (int8_t, uint8_t, int32_t, int64_t, uint16_t,
                                             uint32_t, uint64_t, float32_t, float64_t)
from swarm_engine._native._hashmap cimport swarm_index_t
from swarm_engine._native._rng cimport swarm_rng_t
from swarm_engine._native._envctx cimport EnvCtx, StepOut

# csrc/hashmap.h: the set of node keys (the graph map's dedup index), the
# probes that take a hash the caller already computed, and the per-run resets
cdef extern from "hashmap.h" nogil:
    ctypedef struct swarm_keyset_t:
        uint64_t *slots   # 0 = empty, else key + 1
        uint64_t mask     # capacity - 1
        int64_t count     # occupied slots
    int swarm_keyset_init(swarm_keyset_t *ks, int64_t expected)
    void swarm_keyset_free(swarm_keyset_t *ks)
    void swarm_keyset_clear_keys(swarm_keyset_t *ks, const uint64_t *keys, int64_t n)
    void swarm_keyset_reset(swarm_keyset_t *ks)
    void swarm_index_reset(swarm_index_t *ix)          # the group index (declared in _hashmap.pxd)
    int swarm_keyset_add_h(swarm_keyset_t *ks, uint64_t key, uint64_t h)
    int swarm_keyset_has(const swarm_keyset_t *ks, uint64_t key)
    void swarm_keyset_prefetch_h(const swarm_keyset_t *ks, uint64_t h)
    int64_t swarm_keyset_bytes(const swarm_keyset_t *ks)

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


@cython.final
cdef class Kernel:
    # ---- rules (read-only after __init__) ----
    cdef readonly int n_actions           # A; action ids are 0..A-1
    cdef const int32_t[::1] succ_ptr      # (A+1,) CSR offsets into succ_act
    cdef const int32_t[::1] succ_act      # successor action ids
    cdef const uint8_t[::1] is_terminal   # (A,) 1 = success completes the task
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
    cdef int max_consec_errors            # 0 = no limit
    cdef int max_retries                  # retries of a node after a transient error
    cdef int escalate_after               # consecutive failures before W_ESCALATE
    cdef int manage_kind                  # ManageKind
    cdef int manage_param                 # interval / max wait, in ticks
    cdef readonly bint granular           # groups and stats per (action, target), else per action
    # ---- selector ----
    cdef readonly int selector            # SelectorKind
    cdef double ucb1_c
    cdef double learning_weight
    cdef double greedy_weight
    cdef int64_t maturity_threshold       # Adaptive: UCB1 below this many visits
    cdef double error_rate_threshold      # Adaptive: Greedy below, Thompson above
    cdef float64_t[::1] bonus3            # ((A+1)^2 * A,) learned bonus for (prev_prev, prev, a); empty = 0
    cdef float64_t[::1] bonus_now         # (A,) bonus row for this tick's context
    # ---- environment ----
    cdef EnvCtx env
    cdef float64_t[::1] env_params
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
    cdef readonly int32_t n_nodes
    cdef int32_t node_cap
    cdef swarm_keyset_t node_index        # the keys of n_key[:n_nodes]: dedup of new children
    # ---- frontier groups: one FIFO queue of open nodes per (action[, target]) ----
    cdef uint64_t[::1] g_key              # packed (action, target + 1, 0)
    cdef int32_t[::1] g_head              # oldest open node, -1 = empty
    cdef int32_t[::1] g_tail              # newest open node
    cdef int32_t[::1] g_count             # open nodes queued
    cdef int32_t[::1] g_active_pos        # index in active[], -1 when empty
    cdef int32_t[::1] g_vv                # virtual visits assigned this tick
    cdef float64_t[::1] g_score           # score cached for the heap this tick
    cdef int64_t[::1] g_visits            # per (action, target) statistics (granular)
    cdef int64_t[::1] g_succ
    cdef int64_t[::1] g_disc
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
    cdef readonly int32_t n_groups
    cdef readonly int32_t n_active
    cdef int32_t n_heap
    cdef int32_t group_cap
    cdef swarm_index_t group_index        # (action, target) -> group id (granular only)
    cdef readonly int64_t n_open          # open nodes in all queues
    # ---- per-action statistics (this run) ----
    cdef int64_t[::1] a_visits
    cdef int64_t[::1] a_succ
    cdef int64_t[::1] a_fail
    cdef int64_t[::1] a_disc
    cdef float64_t[::1] a_dur
    # ---- workers (W) ----
    cdef int32_t[::1] w_node              # assigned node, -1 = none
    cdef int32_t[::1] w_group             # group the node was taken from
    cdef uint8_t[::1] w_result            # WorkerResult of the last tick
    cdef uint8_t[::1] w_flags             # bit 0 done, 1 succeeded, 2 waiting (async), 3 pending act, 4 busy (w_node >= 0)
    cdef int8_t[::1] w_src                # who chose the current node: 0 selector, 1 LLM, 2 fallback
    cdef uint16_t[::1] w_consec           # consecutive failures
    cdef uint32_t[::1] w_actions          # actions done
    # ---- one tick's assignments (capacity W) and results ----
    cdef int32_t[::1] as_worker
    cdef int32_t[::1] as_act
    cdef int32_t[::1] as_tgt
    cdef int32_t[::1] as_arg
    cdef int8_t[::1] as_outcome           # Outcome
    cdef int32_t[::1] as_disc_ptr         # (W+1,)
    cdef int32_t[::1] as_disc             # discovered targets, capacity disc_cap
    cdef int8_t[::1] as_disc_kind         # their target kinds (0 = any)
    cdef float32_t[::1] as_dur            # ms
    cdef int32_t disc_cap
    # ---- merge: reopenings and expansions pass through a ring of RING_SIZE (64)
    # entries, applied in batches, each at least 16 inserts after its dedup slot
    # was prefetched ----
    cdef uint64_t ring_key[64]            # child key, or node to reopen
    cdef uint64_t ring_hash[64]           # swarm_hash64 of the child key (prefetched slot)
    cdef int32_t ring_arg[64]             # parent node (add), or -1 - group (reopen)
    cdef int64_t ring_n                   # operations queued this tick
    cdef int64_t ring_done                # operations applied this tick
    cdef bint merge_direct                # this tick cannot fill the ring: apply each operation at once
    # ---- learned child ordering (empty = discovery order) ----
    cdef float64_t[::1] prior_t           # (A * prior_tn,) score per (action, target)
    cdef float64_t[::1] prior_v           # (A * prior_vn,) score per (action, arg value)
    cdef int32_t prior_tn, prior_vn
    cdef bint has_prior
    cdef float64_t[::1] sort_s            # merge-sort scratch: one expansion, capacity max_children each
    cdef float64_t[::1] sort_s2
    cdef uint64_t[::1] sort_k
    cdef uint64_t[::1] sort_k2
    cdef readonly int32_t n_assigned
    cdef int32_t n_busy                   # workers holding a node
    cdef int32_t n_pending                # workers holding a node assigned from Python (FLAG_PENDING)
    # ---- run scalars ----
    cdef readonly int64_t tick
    cdef readonly int verdict             # Verdict
    cdef readonly bint task_done
    cdef readonly int64_t total_visits
    cdef readonly int64_t total_fail
    cdef readonly int64_t consec_errors
    cdef int64_t last_manage_tick
    cdef int prev_action                  # last two actions of the run, -1 = none
    cdef int prev_prev_action
    cdef swarm_rng_t rng                  # selector stream (stream 1 of the seed)
    cdef readonly uint64_t seed
    cdef readonly int64_t run_index       # index in the current batch
    # ---- event log (optional) ----
    cdef readonly bint record_events
    cdef int32_t[::1] ev_run
    cdef int32_t[::1] ev_tick
    cdef int32_t[::1] ev_worker
    cdef int32_t[::1] ev_node
    cdef int32_t[::1] ev_action
    cdef int32_t[::1] ev_target
    cdef int32_t[::1] ev_arg
    cdef int8_t[::1] ev_outcome
    cdef int32_t[::1] ev_ndisc
    cdef float32_t[::1] ev_dur
    cdef int8_t[::1] ev_source            # 0 selector, 1 LLM decision, 2 selector after a failed LLM call
    cdef readonly int64_t n_events
    cdef int64_t event_cap
    # ---- totals over every run of the kernel's batches ----
    cdef int64_t[::1] cum_visits
    cdef int64_t[::1] cum_succ
    cdef int64_t[::1] cum_fail
    cdef float64_t[::1] cum_dur

    cdef int _reset(self, uint64_t seed) except -1 nogil
    cdef bint _has_room(self) noexcept nogil
    cdef inline double _score(self, int32_t g, int mode, double log_total) noexcept nogil
    cdef int _effective_mode(self) noexcept nogil
    cdef inline bint _better(self, int32_t g1, int32_t g2) noexcept nogil
    cdef void _sift_down(self, int32_t i) noexcept nogil
    cdef int32_t _group_of(self, int32_t action, int32_t target) except -2 nogil
    cdef void _init_group(self, int32_t g, uint64_t key) noexcept nogil
    cdef inline void _push_open(self, int32_t g, int32_t node) noexcept nogil
    cdef void _fresh_append(self, int32_t g) noexcept nogil
    cdef void _heap_push(self, int32_t g) noexcept nogil
    cdef inline int32_t _take(self, int32_t g) noexcept nogil
    cdef int32_t _take_node(self, int32_t g, int32_t node) noexcept nogil
    cdef int32_t _group_of_node(self, int32_t node) noexcept nogil
    cdef inline void _batch_add(self, int n, int32_t w, int32_t node) noexcept nogil
    cdef int32_t _add_node(self, int32_t action, int32_t target, int32_t arg,
                           int32_t parent) except -2 nogil
    cdef inline int32_t _add_key(self, uint64_t key, uint64_t h, int32_t parent) except -2 nogil
    cdef int32_t _new_node(self, uint64_t key, int32_t parent) except -2 nogil
    cdef inline int _emit(self, uint64_t key, int32_t arg) except -1 nogil
    cdef int _apply(self, int64_t upto) except -1 nogil
    cdef int _apply_now(self, uint64_t key, int32_t arg) except -1 nogil
    cdef double _prior_score(self, uint64_t key) noexcept nogil
    cdef void _sort_children(self, int64_t m) noexcept nogil
    cdef int _plan(self) except -1 nogil
    cdef int _commit(self, int n, int env_done) except -1 nogil
    cdef inline int _merge_nodes(self, int n) except -1 nogil
    cdef inline int _expand(self, int i, int32_t node) except -1 nogil
    cdef int64_t _expand_successor(self, int i, int32_t b, int64_t m) except -1 nogil
    cdef int _bad_target(self, int32_t tt) except -1 nogil
    cdef int _env_step(self, int n) except -1 nogil
    cdef int _native_tick(self) except -1 nogil
    cdef bint _all_workers_succeeded(self) noexcept nogil
