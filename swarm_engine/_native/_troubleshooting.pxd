from swarm_engine._native._typedefs cimport int32_t
from swarm_engine._native._envctx cimport EnvCtx, StepOut

cdef int ts_state_size(const EnvCtx *env) noexcept nogil
cdef int ts_max_discoveries(const EnvCtx *env) noexcept nogil
cdef int ts_reset(EnvCtx *env) except -1 nogil
cdef int ts_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, StepOut out) except -1 nogil
