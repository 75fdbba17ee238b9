# Included by _kernel.pyx: the manage phase, which gives open nodes to idle
# workers through the selector (_select.pxd) and the group heap (_heap.pxd).


cdef double _score(Kernel self, int32_t g, int mode, double log_total) noexcept nogil:
    """The selector's score of group g under mode (select_score): statistics
    of the group's (action, target) once visited (granular), else of its
    action, plus this tick's virtual visits."""
    cdef int32_t a = key_action(self.g_key[g])
    cdef int64_t s, n
    if self.granular and self.g_visits[g] > 0:
        s = self.g_succ[g]
        n = self.g_visits[g]
    else:
        s = self.a_succ[a]
        n = self.a_visits[a]
    return select_score(mode, s, <double>(n + self.g_vv[g]), self.bonus_now[a], log_total,
                        self.ucb1_c, self.learning_weight, self.greedy_weight, &self.rng)


cdef int _effective_mode(Kernel self) noexcept nogil:
    """The selector in effect this tick (select_mode)."""
    return select_mode(self.selector, self.total_visits, self.total_fail, self.maturity_threshold,
                       self.error_rate_threshold)


cdef void _after_take(Kernel self, int32_t g, int32_t fresh_action, int mode, double log_total,
                      bint rescore_alone) noexcept nogil:
    """Keep the heap right after a worker took a node of the top group g: an
    emptied group leaves; else g, with one more virtual visit, is re-scored
    (not when it is alone in the heap and its score is deterministic); and
    when g was the front of fresh_action's fresh list (-1: it was not), that
    list's next group takes its place. Out of line: the pick loop rarely needs
    it (never with one group and FIFO), and inlined it cost the loop spills."""
    cdef int32_t *heap = &self.heap[0]
    cdef int32_t fresh_next
    if self.g_count[g] == 0:
        self.n_heap -= 1
        heap[0] = heap[self.n_heap]
        if self.n_heap > 1:
            heap_sift_down(heap, self.n_heap, 0, &self.g_score[0], &self.g_head[0])
    elif self.n_heap > 1 or rescore_alone or fresh_action >= 0:
        self.g_score[g] = _score(self, g, mode, log_total)
        if self.n_heap > 1:
            heap_sift_down(heap, self.n_heap, 0, &self.g_score[0], &self.g_head[0])
    if fresh_action >= 0 and self.fresh_head[fresh_action] >= 0:
        fresh_next = self.fresh_head[fresh_action]
        self.g_score[fresh_next] = _score(self, fresh_next, mode, log_total)
        heap_push(heap, self.n_heap, fresh_next, &self.g_score[0], &self.g_head[0])
        self.n_heap += 1


cdef inline void _batch_add(Kernel self, int n, int32_t w, int32_t node) noexcept nogil:
    cdef uint64_t key = self.n_key[node]
    self.as_worker[n] = w
    self.as_act[n] = key_action(key)
    self.as_tgt[n] = key_target(key)
    self.as_arg[n] = key_arg(key)


cdef int _plan(Kernel self) except -1 nogil:
    """Manage phase: give open nodes to idle workers. Returns the number of
    assignments written to as_*."""
    cdef int32_t w, g, node, i, fresh_action, W = self.n_workers, A = self.n_actions
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
                _batch_add(self, n, w, w_node[w])
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
    mode = _effective_mode(self)
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
        self.g_score[g] = _score(self, g, mode, log_total)
        heap[i] = g
    if self.n_fresh:
        for i in range(A):
            g = self.fresh_head[i]
            if g >= 0:
                self.g_score[g] = _score(self, g, mode, log_total)
                heap[self.n_heap] = g
                self.n_heap += 1
    i = self.n_heap // 2 - 1
    while i >= 0:
        heap_sift_down(heap, self.n_heap, i, &self.g_score[0], &self.g_head[0])
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
        node = _take(self, g)
        w_node[w] = node
        w_group[w] = g
        w_flags[w] = f | FLAG_BUSY
        _batch_add(self, n, w, node)
        n += 1
        g_vv[g] += 1
        # the last worker's pick needs no heap upkeep: nothing reads the heap
        # or the scores after it (the sampled selector still draws, for the stream)
        if (g_count[g] == 0 or self.n_heap > 1 or rescore_alone or fresh_action >= 0) \
                and (w + 1 < W or rescore_alone):
            _after_take(self, g, fresh_action, mode, log_total, rescore_alone)
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
