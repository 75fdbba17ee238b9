from swarm_engine._native._typedefs cimport int32_t
from swarm_engine._native._envctx cimport EnvCtx, StepOut

cdef int cascade_state_size(const EnvCtx *env) noexcept nogil
cdef int cascade_max_discoveries(const EnvCtx *env) noexcept nogil
cdef int cascade_reset(EnvCtx *env) except -1 nogil
cdef int cascade_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt, const int32_t *arg,
                      StepOut out) except -1 nogil
