# Included by _kernel.pyx: one run, reset from its seed and ticked with the
# native environment (plan, environment step, merge).


cdef inline double now_seconds() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef int _reset(Kernel self, uint64_t seed) except -1 nogil:
    """Start a new run from its seed: environment state, empty graph map and
    frontier, zeroed statistics and workers, then the start nodes."""
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
            _init_group(self, g, pack_key(g, -1, -1))
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
        _add_node(self, self.start_act[i], self.start_tgt[i], self.start_arg[i], -1)  # duplicates: skipped
    return 0


cdef int _env_step(Kernel self, int n) except -1 nogil:
    """The native environment's step over the tick's n assignments; returns
    whether it reports the task done."""
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


cdef int _native_tick(Kernel self) except -1 nogil:
    """One tick: plan, environment step, merge."""
    cdef int n = _plan(self)
    return _commit(self, n, _env_step(self, n))
