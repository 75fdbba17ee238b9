# Included by _kernel.pyx: the merge phase. It settles the tick's statistics,
# events and worker results, reopens retried nodes and expands successes
# (children in learned order, _order.pxd, through a prefetch ring into the
# graph map), then judges termination.


cdef int _commit(Kernel self, int n, int env_done) except -1 nogil:
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
                # an environment with its own completion decides when the task
                # is done (several faults: one Restart is not the task); the
                # worker still succeeded, and keeps helping until then
                self.w_flags[w] |= FLAG_SUCCESS
                if not self.env_completes:
                    self.task_done = True
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
    _merge_nodes(self, n)
    if env_done:
        self.task_done = True
    self.n_assigned = 0
    # ---- termination judge ----
    if self.task_done and self.term_strategy == TERM_FIRST_SUCCESS:
        self.verdict = V_SUCCESS
    elif self.term_strategy == TERM_ALL_SUCCEED and self.task_done and _all_workers_succeeded(self):
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


cdef bint _all_workers_succeeded(Kernel self) noexcept nogil:
    cdef int i
    for i in range(self.n_workers):
        if not (self.w_flags[i] & FLAG_SUCCESS):
            return False
    return True


cdef int _merge_nodes(Kernel self, int n) except -1 nogil:
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
            _expand(self, i, node)
        elif out == OUT_ERROR and n_state[node] == NODE_ASSIGNED:
            if self.merge_direct:
                _apply_now(self, <uint64_t>node, -1 - g)
            else:
                _emit(self, <uint64_t>node, -1 - g)
    if self.ring_done < self.ring_n:
        _apply(self, self.ring_n)
    return 0


cdef inline int _expand(Kernel self, int i, int32_t node) except -1 nogil:
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
                    return _bad_target(self, tt)
                kids[m] = kb_key | ((<uint64_t>(<uint32_t>tt + 1u)) << ARG_BITS)
                m += 1
        else:
            m = _expand_successor(self, i, b, m)
    if m > 1 and self.has_prior:
        _sort_children(self, m)
    if self.merge_direct:
        for k in range(m):
            _apply_now(self, kids[k], node)
    else:
        for k in range(m):
            _emit(self, kids[k], node)
    return 0


cdef int64_t _expand_successor(Kernel self, int i, int32_t b, int64_t m) except -1 nogil:
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
            return _bad_target(self, tt)
        kt = kb_key | ((<uint64_t>(<uint32_t>tt + 1u)) << ARG_BITS)
        if v0 == v1:                        # no variants: arg -1, packed as 0
            self.sort_k[m] = kt
            m += 1
        else:
            for v in range(v0, v1):
                self.sort_k[m] = kt | <uint64_t>(self.var_val[v] + 1)
                m += 1
    return m


cdef int _bad_target(Kernel self, int32_t tt) except -1 nogil:
    with gil:
        raise OverflowError(f"target {tt} outside the packed key range")


cdef void _sort_children(Kernel self, int64_t m) noexcept nogil:
    """Order the m children in sort_k best first under the learned prior
    (stable: equal scores keep discovery order)."""
    cdef int64_t i
    cdef uint64_t *sk = &self.sort_k[0]
    cdef float64_t *ss = &self.sort_s[0]
    cdef const float64_t *prior_t = &self.prior_t[0]
    cdef const float64_t *prior_v = &self.prior_v[0]
    for i in range(m):
        ss[i] = prior_score(sk[i], prior_t, self.prior_tn, prior_v, self.prior_vn)
    cdef uint64_t *out = sort_by_score(m, sk, ss, &self.sort_k2[0], &self.sort_s2[0])
    if out != sk:
        for i in range(m):
            sk[i] = out[i]


cdef inline int _emit(Kernel self, uint64_t key, int32_t arg) except -1 nogil:
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
        _apply(self, self.ring_n - RING_AHEAD)
    return 0


cdef inline int _apply_now(Kernel self, uint64_t key, int32_t arg) except -1 nogil:
    """One merge operation (see _emit), applied at once."""
    if arg >= 0:
        _add_key(self, key, swarm_hash64(key), arg)
    else:
        _push_open(self, -1 - arg, <int32_t>key)
    return 0


cdef int _apply(Kernel self, int64_t upto) except -1 nogil:
    """Apply the queued operations ring_done .. upto - 1, oldest first."""
    cdef int64_t p
    cdef int j
    cdef int32_t arg
    for p in range(self.ring_done, upto):
        j = <int>(p & (RING_SIZE - 1))
        arg = self.ring_arg[j]
        if arg >= 0:
            _add_key(self, self.ring_key[j], self.ring_hash[j], arg)
        else:
            _push_open(self, -1 - arg, <int32_t>self.ring_key[j])
    self.ring_done = upto
    return 0
