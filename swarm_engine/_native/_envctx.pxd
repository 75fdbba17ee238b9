# What every native environment shares: its kind, the step context, outcome
# codes and parameter readers. Declarations only (no module behind it), so the
# environment modules and the dispatcher can all cimport it without cycles.
from swarm_engine._native._typedefs cimport int8_t, int32_t, uint32_t, uint64_t, float32_t, float64_t
from swarm_engine._native._rng cimport swarm_rng_t, swarm_rng_uniform, swarm_rng_below
from libc.math cimport pow

cdef enum EnvKindC:
    K_PYTHON = 0              # stepped from Python through the batched protocol
    K_TROUBLESHOOTING = 1
    K_GRID = 2
    K_CODE = 3
    K_SEARCH = 4
    K_DIAGNOSIS = 5
    K_CASCADE = 6

cdef enum OutcomeC:
    O_FAIL = 0                # the action ran and found nothing: close, no expansion
    O_OK = 1                  # success: close and expand the successors
    O_ERROR = 2               # transient error: the engine may retry the node

cdef struct EnvCtx:
    int kind                      # an EnvKindC
    const float64_t *params       # kind-specific parameters (see each env's docstring)
    int n_params
    int32_t *state                # this run's hidden state, env_state_size() ints
    const int32_t *op_of_action   # scenario action id -> env operation, -1 = unsupported
    const int32_t *op_of_arg      # scenario argument id -> env argument, -1 = unknown; may be NULL
    int n_args                    # length of op_of_arg
    swarm_rng_t rng               # stream 0 of the run's seed

# One step's outputs, for n actions: outcome[i]; discoveries of action i are
# disc[disc_ptr[i]:disc_ptr[i+1]] with target kinds disc_kind[...] (0 = any).
cdef struct StepOut:
    int8_t *outcome
    int32_t *disc_ptr
    int32_t *disc
    int8_t *disc_kind
    float32_t *duration_ms


cdef inline int param_int(const EnvCtx *env, int i, int default) noexcept nogil:
    return <int>env.params[i] if i < env.n_params else default


cdef inline double param(const EnvCtx *env, int i, double default) noexcept nogil:
    return env.params[i] if i < env.n_params else default


cdef inline int arg_op(const EnvCtx *env, int32_t arg) noexcept nogil:
    if env.op_of_arg == NULL or arg < 0 or arg >= env.n_args:
        return -1
    return env.op_of_arg[arg]


cdef inline int begin_action(EnvCtx *env, int i, int nd, int32_t action, const float *durations,
                             int n_ops, double error_rate, StepOut out) noexcept nogil:
    """The prologue every environment's step shares for action i: records the
    discovery offset, the duration and a default failure. Returns the env op,
    or -1 when the action is already settled (an unsupported op fails, and a
    transient error is drawn only for supported ops)."""
    cdef int op = env.op_of_action[action]
    out.disc_ptr[i] = nd
    out.outcome[i] = O_FAIL
    if op < 0 or op >= n_ops:
        out.duration_ms[i] = 0.0
        return -1
    out.duration_ms[i] = durations[op]
    if error_rate > 0.0 and swarm_rng_uniform(&env.rng) < error_rate:
        out.outcome[i] = O_ERROR
        return -1
    return op


cdef inline int skewed_below(EnvCtx *env, int n, double skew) noexcept nogil:
    """An index in [0, n): uniform (one ``below`` draw) when ``skew`` <= 0, else
    one uniform draw over weights 1 / (1 + rank_i)^skew with rank_i = (5 i + 2)
    mod n, so the likely indices are spread along the list, not first in it."""
    cdef int i
    cdef double total = 0.0, u
    if skew <= 0.0 or n <= 1:
        return <int>swarm_rng_below(&env.rng, <uint32_t>n)
    for i in range(n):
        total += pow(1.0 + ((5 * i + 2) % n), -skew)
    u = swarm_rng_uniform(&env.rng) * total
    for i in range(n):
        u -= pow(1.0 + ((5 * i + 2) % n), -skew)
        if u < 0.0:
            return i
    return n - 1
