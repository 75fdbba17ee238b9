"""Type stubs for the exploration kernel (see _kernel.pyx / _kernel.pxd)."""

from typing import Any

import numpy as np
import numpy.typing as npt

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
W_IDLE: int
W_ACTED: int
W_CONTINUING: int
W_NEEDS_GUIDANCE: int
W_ESCALATE: int
W_DONE: int
ST_OK: int
ST_NEED_ROOM: int
LIMITS: dict[str, int]

Arrays = dict[str, npt.NDArray[Any]]

class Kernel:
    n_actions: int
    n_workers: int
    max_ticks: int
    granular: bool
    selector: int
    n_nodes: int
    n_groups: int
    n_active: int
    n_open: int
    n_assigned: int
    tick: int
    verdict: int
    task_done: bool
    total_visits: int
    total_fail: int
    consec_errors: int
    seed: int
    run_index: int
    record_events: bool
    n_events: int
    env_state: Any
    def __init__(self, **kwargs: Any) -> None: ...
    def reset(self, seed: int) -> None: ...
    def step(self, n_ticks: int) -> int: ...
    def run_batch(self, seeds: npt.NDArray[np.uint64], start: int, resume: bool,
                  out_success: npt.NDArray[np.uint8], out_verdict: npt.NDArray[np.int8],
                  out_ticks: npt.NDArray[np.int64], out_actions: npt.NDArray[np.int64],
                  out_failed: npt.NDArray[np.int64], out_wall: npt.NDArray[np.float64],
                  out_by_action: npt.NDArray[np.int64], time_budget: float = ...,
                  out_done: npt.NDArray[np.uint8] | None = ...) -> tuple[int, int]: ...
    def plan_tick(self) -> int: ...
    def act_tick(self) -> bool: ...
    def commit_native(self, env_done: bool) -> None: ...
    def assignments(self) -> tuple[npt.NDArray[np.int32], ...]: ...
    def commit_tick(self, outcome: Any, disc_ptr: Any, disc: Any, duration_ms: Any, env_done: bool) -> None: ...
    def make_room(self) -> None: ...
    def set_bonus(self, bonus3: Any) -> None: ...
    def set_prior(self, target: Any = None, arg: Any = None) -> None: ...
    def stop(self) -> None: ...
    def force_verdict(self, verdict: int) -> None: ...
    def take_events(self) -> Arrays: ...
    def nodes(self) -> Arrays: ...
    def groups(self) -> Arrays: ...
    def selector_scores(self) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
    def action_stats(self, cumulative: bool = ...) -> Arrays: ...
    def workers(self) -> Arrays: ...
    def memory_bytes(self) -> dict[str, int]: ...
