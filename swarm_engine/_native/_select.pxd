# Selector scoring: the score of one frontier group from its statistics, for
# each SelectorKind (declared with the kernel's other enums in _kernel.pxd).
# Higher goes first; the heap (_heap.pxd) breaks ties by the older head node.
#   s        successes of the group (per (action, target) when granular and
#            visited, else of its action), this run
#   n_eff    visits of the same, plus this tick's virtual visits
#   bonus    the learned bonus of the group's action in this tick's context
#   log_total  log(total visits of the run), 0 below two visits
from libc.math cimport sqrt, INFINITY
from swarm_engine._native._typedefs cimport int64_t
from swarm_engine._native._rng cimport swarm_rng_t, swarm_rng_beta
from swarm_engine._native._kernel cimport (SEL_FIFO, SEL_UCB1, SEL_THOMPSON, SEL_THOMPSON_SAMPLED,
                                           SEL_GREEDY, SEL_ADAPTIVE)


cdef inline int select_mode(int selector, int64_t visits, int64_t fails, int64_t maturity_threshold,
                            double error_rate_threshold) noexcept nogil:
    """The selector in effect: Adaptive is UCB1 below maturity_threshold
    visits, then Greedy while the error rate is under error_rate_threshold,
    else Thompson; any other selector is itself."""
    if selector != SEL_ADAPTIVE:
        return selector
    if visits < maturity_threshold:
        return SEL_UCB1
    if fails < error_rate_threshold * visits:
        return SEL_GREEDY
    return SEL_THOMPSON


cdef inline double select_score(int mode, int64_t s, double n_eff, double bonus, double log_total,
                                double ucb1_c, double learning_weight, double greedy_weight,
                                swarm_rng_t *rng) noexcept nogil:
    """Score under mode (not SEL_ADAPTIVE: see select_mode). FIFO scores all
    groups alike (0: queue order decides); SEL_THOMPSON_SAMPLED draws from
    rng (the selector stream), every other mode is a pure function."""
    if mode == SEL_FIFO:
        return 0.0
    if mode == SEL_GREEDY:
        return greedy_weight * bonus
    if mode == SEL_UCB1:
        if n_eff == 0.0:
            return INFINITY
        return s / n_eff + ucb1_c * sqrt(log_total / n_eff) + learning_weight * bonus
    if mode == SEL_THOMPSON:
        return (s + 1.0) / (n_eff + 2.0) + learning_weight * bonus
    # SEL_THOMPSON_SAMPLED: a Beta(s + 1, f + 1) draw
    return swarm_rng_beta(rng, s + 1.0, n_eff - s + 1.0) + learning_weight * bonus
