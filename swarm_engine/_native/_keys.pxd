# The packed node key: (action, target + 1, arg + 1) in one uint64, the graph
# map's identity of a node (n_key) and, with arg -1, of a frontier group
# (g_key). target and arg are stored + 1 so that -1 ("none") packs as 0.
#
#   bits 63..52  action  (ACTION_BITS)
#   bits 51..24  target + 1  (TARGET_BITS)
#   bits 23..0   arg + 1  (ARG_BITS)
from swarm_engine._native._typedefs cimport int32_t, uint64_t

cdef enum:
    ACTION_BITS = 12
    TARGET_BITS = 28
    ARG_BITS = 24
    MAX_ACTIONS = (1 << ACTION_BITS) - 1    # largest number of actions a kernel takes
    MAX_TARGET = (1 << TARGET_BITS) - 2     # largest target id (-1 = none)
    MAX_ARG = (1 << ARG_BITS) - 2           # largest argument id (-1 = none)


cdef inline uint64_t pack_key(int32_t a, int32_t t, int32_t x) noexcept nogil:
    """Key of (action a, target t, arg x); the caller checks the ranges above."""
    return ((<uint64_t>a) << (TARGET_BITS + ARG_BITS)) | ((<uint64_t>(t + 1)) << ARG_BITS) | <uint64_t>(x + 1)


cdef inline int32_t key_action(uint64_t k) noexcept nogil:
    return <int32_t>(k >> (TARGET_BITS + ARG_BITS))


cdef inline int32_t key_target(uint64_t k) noexcept nogil:
    return <int32_t>((k >> ARG_BITS) & ((1 << TARGET_BITS) - 1)) - 1


cdef inline int32_t key_arg(uint64_t k) noexcept nogil:
    return <int32_t>(k & ((1 << ARG_BITS) - 1)) - 1
