from swarm_engine._native._typedefs cimport int32_t, int64_t, uint64_t
from swarm_engine._native._envctx cimport EnvCtx, StepOut

cdef bint grid_cell_blocked(const int32_t *st, int64_t cell, double rate) noexcept nogil
cdef int grid_reset(EnvCtx *env, uint64_t seed) except -1 nogil
cdef int grid_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, StepOut out) except -1 nogil
