# cython: language_level=3
"""Dispatch to the native environments (one module each: _troubleshooting,
_grid, _code_tree, _search, _diagnosis,
_cascade) and their Python-visible helpers.

Each environment keeps its hidden state in the run's int32 ``state`` buffer and
draws it from stream 0 of the run's seed, so the same seed gives the same hidden
state whatever else the run does. Text observations are not produced here: the
Python faces in ``swarm_engine.eval.environments`` render them lazily from the
hidden state (``hidden_state()``) and an event.
"""
from swarm_engine._native._typedefs cimport int64_t, float64_t
from swarm_engine._native._rng cimport swarm_rng_seed
from swarm_engine._native._envctx cimport (K_PYTHON, K_TROUBLESHOOTING, K_GRID, K_CODE, K_SEARCH,
                                           K_DIAGNOSIS, K_CASCADE, O_FAIL, O_OK, O_ERROR)
from swarm_engine._native._troubleshooting cimport ts_state_size, ts_max_discoveries, ts_reset, ts_step
from swarm_engine._native._grid cimport grid_cell_blocked, grid_reset, grid_step
from swarm_engine._native._code_tree cimport (code_tree_state_size, code_tree_max_discoveries,
                                              code_tree_reset, code_tree_step)
from swarm_engine._native._search cimport (search_state_size, search_max_discoveries, search_reset,
                                           search_step)
from swarm_engine._native._diagnosis cimport (diagnosis_state_size, diagnosis_max_discoveries,
                                              diagnosis_reset, diagnosis_step)
from swarm_engine._native._cascade cimport (cascade_state_size, cascade_max_discoveries, cascade_reset,
                                            cascade_step)

import numpy as np

ENV_PYTHON = K_PYTHON
ENV_TROUBLESHOOTING = K_TROUBLESHOOTING
ENV_GRID = K_GRID
ENV_CODE = K_CODE
ENV_SEARCH = K_SEARCH
ENV_DIAGNOSIS = K_DIAGNOSIS
ENV_CASCADE = K_CASCADE
OUT_FAIL = O_FAIL
OUT_OK = O_OK
OUT_ERROR = O_ERROR


cdef int env_state_size(const EnvCtx *env) noexcept nogil:
    if env.kind == K_TROUBLESHOOTING:
        return ts_state_size(env)
    if env.kind == K_GRID:
        return 4
    if env.kind == K_CODE:
        return code_tree_state_size(env)
    if env.kind == K_SEARCH:
        return search_state_size(env)
    if env.kind == K_DIAGNOSIS:
        return diagnosis_state_size(env)
    if env.kind == K_CASCADE:
        return cascade_state_size(env)
    return 1


cdef int env_max_discoveries(const EnvCtx *env) noexcept nogil:
    if env.kind == K_TROUBLESHOOTING:
        return ts_max_discoveries(env)
    if env.kind == K_GRID:
        return 4
    if env.kind == K_CODE:
        return code_tree_max_discoveries(env)
    if env.kind == K_SEARCH:
        return search_max_discoveries(env)
    if env.kind == K_DIAGNOSIS:
        return diagnosis_max_discoveries(env)
    if env.kind == K_CASCADE:
        return cascade_max_discoveries(env)
    return 0


cdef int env_reset(EnvCtx *env, uint64_t seed) except -1 nogil:
    swarm_rng_seed(&env.rng, seed, 0)
    if env.kind == K_TROUBLESHOOTING:
        return ts_reset(env)
    if env.kind == K_GRID:
        return grid_reset(env, seed)
    if env.kind == K_CODE:
        return code_tree_reset(env)
    if env.kind == K_SEARCH:
        return search_reset(env)
    if env.kind == K_DIAGNOSIS:
        return diagnosis_reset(env)
    if env.kind == K_CASCADE:
        return cascade_reset(env)
    return 0


cdef int env_step(EnvCtx *env, int n, const int32_t *act, const int32_t *tgt,
                  const int32_t *arg, StepOut out) except -1 nogil:
    if env.kind == K_TROUBLESHOOTING:
        return ts_step(env, n, act, tgt, out)
    if env.kind == K_GRID:
        return grid_step(env, n, act, tgt, out)
    if env.kind == K_CODE:
        return code_tree_step(env, n, act, tgt, arg, out)
    if env.kind == K_SEARCH:
        return search_step(env, n, act, tgt, arg, out)
    if env.kind == K_DIAGNOSIS:
        return diagnosis_step(env, n, act, tgt, arg, out)
    if env.kind == K_CASCADE:
        return cascade_step(env, n, act, tgt, arg, out)
    return -1


cdef EnvCtx _ctx(int kind, const float64_t[::1] params):
    cdef EnvCtx env
    env.kind = kind
    env.params = &params[0] if params.shape[0] else NULL
    env.n_params = params.shape[0]
    env.state = NULL
    env.op_of_action = NULL
    env.op_of_arg = NULL
    env.n_args = 0
    return env


def state_size(int kind, const float64_t[::1] params):
    """Cells of hidden state for this kind and parameters."""
    cdef EnvCtx env = _ctx(kind, params)
    return env_state_size(&env)


def max_discoveries(int kind, const float64_t[::1] params):
    """Bound on the discoveries of one action."""
    cdef EnvCtx env = _ctx(kind, params)
    return env_max_discoveries(&env)


def hidden_state(int kind, const float64_t[::1] params, uint64_t seed):
    """The hidden state a run with this seed starts from, as an int32 array.

    The Python faces render text observations from it; nothing in the hot
    loop calls this.
    """
    cdef EnvCtx env = _ctx(kind, params)
    state = np.zeros(max(1, env_state_size(&env)), dtype=np.int32)
    cdef int32_t[::1] sv = state
    env.state = &sv[0]
    env_reset(&env, seed)
    return state


def grid_blocked(const float64_t[::1] params, uint64_t seed, int64_t cell):
    """Whether a grid cell is blocked for this seed (for tests and rendering)."""
    cdef int32_t st[4]
    st[2] = <int32_t>(seed & 0xFFFFFFFFULL)
    st[3] = <int32_t>(seed >> 32)
    return cell != 0 and grid_cell_blocked(st, cell, params[2] if params.shape[0] > 2 else 0.0)
