# Included by _kernel.pyx: the graph map and the frontier.
#
# A node enters the map once (the key set node_index drops duplicates) and
# waits, open, in the FIFO queue of its group: the (action, target) pair when
# granular, else the action. Groups with open nodes are listed in active[]
# once visited; never-visited ones wait in a "fresh" list per action
# (g_active_pos -2), of which only the front needs a heap place, since they all
# score alike. The plan takes from the queues, the merge adds and reopens.


cdef int32_t _group_of(Kernel self, int32_t action, int32_t target) except -2 nogil:
    cdef int32_t g
    cdef uint64_t key
    if not self.granular:
        return action
    key = pack_key(action, target, -1)
    g = swarm_index_get_or_put(&self.group_index, &self.g_key[0], key, self.n_groups)
    if g == -2:
        return -2
    if g == self.n_groups:
        _init_group(self, g, key)
        self.n_groups += 1
    return g


cdef void _init_group(Kernel self, int32_t g, uint64_t key) noexcept nogil:
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


cdef inline void _push_open(Kernel self, int32_t g, int32_t node) noexcept nogil:
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
            _fresh_append(self, g)
        else:
            self.g_active_pos[g] = self.n_active
            self.active[self.n_active] = g
            self.n_active += 1


cdef void _fresh_append(Kernel self, int32_t g) noexcept nogil:
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


cdef inline int32_t _take(Kernel self, int32_t g) noexcept nogil:
    """Pop the oldest open node of group g (non-empty)."""
    cdef int32_t node = self.g_head[g], i, last
    if self.g_active_pos[g] == -2:
        return _take_node(self, g, node)   # a fresh group becomes a visited one
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


cdef int32_t _take_node(Kernel self, int32_t g, int32_t node) noexcept nogil:
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


cdef int32_t _group_of_node(Kernel self, int32_t node) noexcept nogil:
    cdef uint64_t key = self.n_key[node]
    if not self.granular:
        return key_action(key)
    return swarm_index_find(&self.group_index, &self.g_key[0],
                            pack_key(key_action(key), key_target(key), -1))


cdef int32_t _add_node(Kernel self, int32_t action, int32_t target, int32_t arg,
                       int32_t parent) except -2 nogil:
    """Add (action, target, arg) unless known; returns its id, or -1 if it
    was a duplicate. Raises on ids outside the packed key or no memory."""
    if target > MAX_TARGET or arg > MAX_ARG or target < -1 or arg < -1:
        with gil:
            raise OverflowError(f"target {target} / arg {arg} outside the packed key range")
    cdef uint64_t key = pack_key(action, target, arg)
    return _add_key(self, key, swarm_hash64(key), parent)


cdef inline int32_t _add_key(Kernel self, uint64_t key, uint64_t h, int32_t parent) except -2 nogil:
    """Add the node of key (whose hash is h) unless known: its id, or -1.
    The probe is inlined into the merge loop; most children of a flood
    fill are duplicates and end here."""
    cdef int added = swarm_keyset_add_h(&self.node_index, key, h)
    if added > 0:
        return _new_node(self, key, parent)
    if added < 0:
        with gil:
            raise MemoryError("dedup index")
    return -1


cdef int32_t _new_node(Kernel self, uint64_t key, int32_t parent) except -2 nogil:
    """Fill in node n_nodes (its key just entered the dedup set) and queue it."""
    cdef int32_t node = self.n_nodes
    cdef int32_t g = _group_of(self, key_action(key), key_target(key))
    if g == -2:
        with gil:
            raise MemoryError("group index")
    self.n_key[node] = key
    self.n_parent[node] = parent
    self.n_tick[node] = <int32_t>self.tick
    self.n_retries[node] = 0
    self.n_nodes += 1
    _push_open(self, g, node)
    return node
