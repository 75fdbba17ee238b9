"""Type stubs for the exploration kernel (see _kernel.pyx / _kernel.pxd).

tests/native/test_stubs.py checks that the names here are the module's public
names, and the methods and attributes of Kernel its public ones.
"""

from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

class SelectorKind(IntEnum):
    SEL_FIFO = 0
    SEL_UCB1 = 1
    SEL_THOMPSON = 2
    SEL_THOMPSON_SAMPLED = 3
    SEL_GREEDY = 4
    SEL_ADAPTIVE = 5

class ManageKind(IntEnum):
    MANAGE_EVERY_TICK = 0
    MANAGE_FIXED_INTERVAL = 1
    MANAGE_COMPLETION_BASED = 2

class TermStrategy(IntEnum):
    TERM_FIRST_SUCCESS = 0
    TERM_ALL_COMPLETE = 1
    TERM_ALL_SUCCEED = 2

class OnExhausted(IntEnum):
    EXHAUSTED_FAIL = 0
    EXHAUSTED_SUCCESS = 1
    EXHAUSTED_WAIT = 2

class Verdict(IntEnum):
    V_RUNNING = 0
    V_SUCCESS = 1
    V_EXHAUSTED = 2
    V_TIMEOUT = 3
    V_MAX_ERRORS = 4
    V_INCOMPLETE = 5
    V_STOPPED = 6

class NodeState(IntEnum):
    NODE_OPEN = 0
    NODE_ASSIGNED = 1
    NODE_DONE_OK = 2
    NODE_DONE_FAIL = 3

class WorkerResult(IntEnum):
    W_IDLE = 0
    W_ACTED = 1
    W_CONTINUING = 2
    W_NEEDS_GUIDANCE = 3
    W_ESCALATE = 4
    W_DONE = 5

class Status(IntEnum):
    ST_OK = 0
    ST_NEED_ROOM = 1

# the enums' members, also as plain module-level ints
SEL_FIFO: int
SEL_UCB1: int
SEL_THOMPSON: int
SEL_THOMPSON_SAMPLED: int
SEL_GREEDY: int
SEL_ADAPTIVE: int
MANAGE_EVERY_TICK: int
MANAGE_FIXED_INTERVAL: int
MANAGE_COMPLETION_BASED: int
TERM_FIRST_SUCCESS: int
TERM_ALL_COMPLETE: int
TERM_ALL_SUCCEED: int
EXHAUSTED_FAIL: int
EXHAUSTED_SUCCESS: int
EXHAUSTED_WAIT: int
V_RUNNING: int
V_SUCCESS: int
V_EXHAUSTED: int
V_TIMEOUT: int
V_MAX_ERRORS: int
V_INCOMPLETE: int
V_STOPPED: int
NODE_OPEN: int
NODE_ASSIGNED: int
NODE_DONE_OK: int
NODE_DONE_FAIL: int
W_IDLE: int
W_ACTED: int
W_CONTINUING: int
W_NEEDS_GUIDANCE: int
W_ESCALATE: int
W_DONE: int
ST_OK: int
ST_NEED_ROOM: int
LIMITS: dict[str, int]

_Arrays = dict[str, npt.NDArray[Any]]

class Kernel:
    n_actions: int
    n_workers: int
    max_ticks: int
    granular: bool
    selector: int
    env_state: npt.NDArray[np.int32]
    n_nodes: int
    n_groups: int
    n_active: int
    n_open: int
    n_assigned: int
    tick: int
    verdict: int
    task_done: bool
    env_completes: bool
    total_visits: int
    total_fail: int
    consec_errors: int
    seed: int
    run_index: int
    record_events: bool
    n_events: int
    def __init__(self, *, n_actions: int, succ_ptr: npt.ArrayLike, succ_act: npt.ArrayLike,
                 is_terminal: npt.ArrayLike, var_ptr: npt.ArrayLike, var_val: npt.ArrayLike,
                 start_act: npt.ArrayLike, start_tgt: npt.ArrayLike, start_arg: npt.ArrayLike,
                 n_workers: int, max_ticks: int, term_strategy: int, on_exhausted: int,
                 max_consec_errors: int, max_retries: int, escalate_after: int, manage_kind: int,
                 manage_param: int, granular: bool, selector: int, ucb1_c: float, learning_weight: float,
                 greedy_weight: float, maturity_threshold: int, error_rate_threshold: float,
                 bonus3: npt.ArrayLike | None, env_kind: int, env_params: npt.ArrayLike,
                 env_ops: npt.ArrayLike, env_max_disc: int, record_events: bool,
                 node_capacity: int = ..., event_capacity: int = ...,
                 act_kind: npt.ArrayLike | None = ..., env_args: npt.ArrayLike | None = ...,
                 env_completes: bool = ...) -> None: ...
    # room and learned tables
    def make_room(self) -> None: ...
    def set_prior(self, target: npt.ArrayLike | None = ..., arg: npt.ArrayLike | None = ...) -> None: ...
    def set_bonus(self, bonus3: npt.ArrayLike | None) -> None: ...
    # runs
    def reset(self, seed: int) -> None: ...
    def step(self, n_ticks: int) -> int: ...
    def run_batch(self, seeds: npt.NDArray[np.uint64], start: int, resume: bool,
                  out_success: npt.NDArray[np.uint8], out_verdict: npt.NDArray[np.int8],
                  out_ticks: npt.NDArray[np.int64], out_actions: npt.NDArray[np.int64],
                  out_failed: npt.NDArray[np.int64], out_wall: npt.NDArray[np.float64],
                  out_by_action: npt.NDArray[np.int64], time_budget: float = ...,
                  out_done: npt.NDArray[np.uint8] | None = ...) -> tuple[int, int]: ...
    # a tick split around Python (the LLM hooks)
    def plan_tick(self) -> int: ...
    def act_tick(self) -> bool: ...
    def commit_native(self, env_done: bool) -> None: ...
    def assignments(self) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32],
                                   npt.NDArray[np.int32], npt.NDArray[np.int32]]: ...
    def commit_tick(self, outcome: npt.ArrayLike, disc_ptr: npt.ArrayLike, disc: npt.ArrayLike,
                    duration_ms: npt.ArrayLike, env_done: bool,
                    disc_kind: npt.ArrayLike | None = ...) -> None: ...
    def set_waiting(self, worker: int, waiting: bool) -> None: ...
    def mark_fallback(self, worker: int) -> None: ...
    def group_nodes(self, group: int, limit: int = ...) -> list[int]: ...
    def node_key(self, node: int) -> tuple[int, int, int]: ...
    def assign_node(self, worker: int, node: int, source: int = 1) -> bool: ...
    def stop(self) -> None: ...
    def force_verdict(self, verdict: int) -> None: ...
    # introspection
    def take_events(self) -> _Arrays: ...
    def nodes(self) -> _Arrays: ...
    def groups(self) -> _Arrays: ...
    def selector_scores(self, limit: int = ...) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
    def action_stats(self, cumulative: bool = ...) -> _Arrays: ...
    def workers(self) -> _Arrays: ...
    def memory_bytes(self) -> dict[str, int]: ...
