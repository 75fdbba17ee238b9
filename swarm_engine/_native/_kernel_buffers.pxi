# Included by _kernel.pyx: allocation and growth of the Kernel's columns,
# and the room check a tick makes before it runs (ST_NEED_ROOM). Growing
# re-binds the memoryviews: no pointer into a column survives a call here.


def _i32(values):
    return np.ascontiguousarray(values, dtype=np.int32)


def _grow(view, int64_t cap, dtype):
    """A zeroed column of cap entries that starts with the old one's."""
    old = np.asarray(view)
    new = np.zeros(cap, dtype=dtype)
    new[:old.shape[0]] = old
    return new


cdef _alloc_nodes(Kernel self, int64_t cap):
    """Size the node columns n_* to cap nodes (grow: keep the nodes)."""
    if cap > 2**31 - 2:
        raise MemoryError("graph map is limited to 2^31 nodes")
    self.n_key = _grow(self.n_key, cap, np.uint64) if self.node_cap else np.zeros(cap, np.uint64)
    self.n_parent = _grow(self.n_parent, cap, np.int32) if self.node_cap else np.zeros(cap, np.int32)
    self.n_next = _grow(self.n_next, cap, np.int32) if self.node_cap else np.zeros(cap, np.int32)
    self.n_tick = _grow(self.n_tick, cap, np.int32) if self.node_cap else np.zeros(cap, np.int32)
    self.n_state = _grow(self.n_state, cap, np.uint8) if self.node_cap else np.zeros(cap, np.uint8)
    self.n_retries = _grow(self.n_retries, cap, np.uint8) if self.node_cap else np.zeros(cap, np.uint8)
    self.node_cap = cap


cdef _alloc_groups(Kernel self, int64_t cap):
    """Size the group columns g_*, active and heap to cap groups."""
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


cdef _alloc_sort(Kernel self):
    # the children of one expansion, sorted by the learned prior: at most
    # max_children, whatever W is (the merge streams the rest)
    cap = max(1, self.max_children)
    if self.sort_k.shape[0] < cap:          # every expansion collects its children here
        self.sort_k = np.zeros(cap, np.uint64)
    if self.has_prior and self.sort_k2.shape[0] < cap:
        self.sort_s = np.zeros(cap, np.float64)
        self.sort_s2 = np.zeros(cap, np.float64)
        self.sort_k2 = np.zeros(cap, np.uint64)


cdef _alloc_events(Kernel self, int64_t cap):
    """A new, empty event log of cap events."""
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


cdef _recompute_fanout(Kernel self):
    """max_children: the most children one success can add (successors x
    discoveries x param variants), which sizes sort_k and the room check."""
    cdef int a, e, fan, fan_max = 0, nd = max(1, self.max_disc)
    for a in range(self.n_actions):
        fan = 0
        for e in range(self.succ_ptr[a], self.succ_ptr[a + 1]):
            fan += nd * max(1, self.var_ptr[self.succ_act[e] + 1] - self.var_ptr[self.succ_act[e]])
        fan_max = max(fan_max, fan)
    self.max_children = fan_max


cdef bint _has_room(Kernel self) noexcept nogil:
    """Whether the next tick fits: W x max_children new nodes and groups, W events."""
    cdef int64_t need = <int64_t>self.n_workers * (self.max_children if self.max_children > 0 else 1)
    if self.n_nodes + need > self.node_cap:
        return False
    if self.granular and self.n_groups + need > self.group_cap:
        return False
    if self.record_events and self.n_events + self.n_workers > self.event_cap:
        return False
    return True
