# The native environments: one batched step per tick, dispatched statically on
# EnvCtx.kind (an enum switch, no virtual call per action).
from swarm_engine._native._typedefs cimport int8_t, int32_t, uint64_t, float32_t, float64_t
from swarm_engine._native._rng cimport swarm_rng_t

cpdef enum EnvKind:
    ENV_PYTHON = 0            # stepped from Python through the batched protocol
    ENV_TROUBLESHOOTING = 1
    ENV_GRID = 2

cpdef enum Outcome:
    OUT_FAIL = 0              # the action ran and found nothing: close, no expansion
    OUT_OK = 1                # success: close and expand the successors
    OUT_ERROR = 2             # transient error: the engine may retry the node

cdef struct EnvCtx:
    int kind                      # an EnvKind
    const float64_t *params       # kind-specific parameters (see each env's docstring)
    int n_params
    int32_t *state                # this run's hidden state, env_state_size() ints
    const int32_t *op_of_action   # scenario action id -> env operation, -1 = unsupported
    swarm_rng_t rng               # stream 0 of the run's seed

# Number of int32 cells of hidden state for this kind and parameters.
cdef int env_state_size(int kind, const float64_t *params, int n_params) noexcept nogil
# Upper bound on discoveries one action can return.
cdef int env_max_discoveries(int kind, const float64_t *params, int n_params) noexcept nogil
# Draw the hidden state of a new run from its seed.
cdef int env_reset(EnvCtx *env, uint64_t seed) except -1 nogil
# Step n actions; disc_ptr gets n + 1 offsets into disc. Returns 1 when the
# environment reports the task done, else 0; -1 on an unknown kind.
cdef int env_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt,
                  const int32_t *arg, int8_t *outcome, int32_t *disc_ptr,
                  int32_t *disc, float32_t *duration_ms) except -1 nogil
