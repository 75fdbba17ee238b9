# Included by _kernel.pyx: copies of the Kernel's state for Python (the
# methods nodes(), groups(), workers(), ... call these). Cold code: nothing
# here runs inside a tick.


cdef dict _introspect_events(Kernel self):
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


cdef dict _introspect_nodes(Kernel self):
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


cdef dict _introspect_groups(Kernel self):
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


cdef tuple _introspect_scores(Kernel self, int limit):
    cdef int mode = _effective_mode(self)
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
        scores[i] = _score(self, g, mode, log_total)
    return gids, scores


cdef dict _introspect_action_stats(Kernel self, bint cumulative):
    if cumulative:
        return {"visits": np.asarray(self.cum_visits).copy(), "successes": np.asarray(self.cum_succ).copy(),
                "failures": np.asarray(self.cum_fail).copy(), "duration_ms": np.asarray(self.cum_dur).copy()}
    return {"visits": np.asarray(self.a_visits).copy(), "successes": np.asarray(self.a_succ).copy(),
            "failures": np.asarray(self.a_fail).copy(), "discoveries": np.asarray(self.a_disc).copy(),
            "duration_ms": np.asarray(self.a_dur).copy()}


cdef dict _introspect_workers(Kernel self):
    return {"node": np.asarray(self.w_node).copy(), "result": np.asarray(self.w_result).copy(),
            "done": (np.asarray(self.w_flags) & FLAG_DONE).astype(bool),
            "waiting": (np.asarray(self.w_flags) & FLAG_WAITING).astype(bool),
            "succeeded": (np.asarray(self.w_flags) & FLAG_SUCCESS).astype(bool),
            "consecutive_failures": np.asarray(self.w_consec).copy(),
            "actions": np.asarray(self.w_actions).copy()}


cdef dict _introspect_memory(Kernel self):
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
