# The native environments' dispatcher: one batched step per tick, by an enum
# switch on EnvCtx.kind (no virtual call per action).
from swarm_engine._native._typedefs cimport int32_t, uint64_t
from swarm_engine._native._envctx cimport EnvCtx, StepOut

# Number of int32 cells of hidden state for env.kind and env.params.
cdef int env_state_size(const EnvCtx *env) noexcept nogil
# Upper bound on discoveries one action can return.
cdef int env_max_discoveries(const EnvCtx *env) noexcept nogil
# Draw the hidden state of a new run from its seed.
cdef int env_reset(EnvCtx *env, uint64_t seed) except -1 nogil
# Step n actions into out. Returns 1 when the environment reports the task
# done, else 0; -1 on an unknown kind.
cdef int env_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt,
                  const int32_t *arg, StepOut out) except -1 nogil
