"""Type stubs for the native environments (see _envs.pyx).

tests/native/test_stubs.py checks that the names here are the module's public names.
"""

import numpy as np
import numpy.typing as npt

ENV_PYTHON: int
ENV_TROUBLESHOOTING: int
ENV_GRID: int
ENV_CODE: int
ENV_SEARCH: int
ENV_DIAGNOSIS: int
ENV_CASCADE: int
OUT_FAIL: int
OUT_OK: int
OUT_ERROR: int

def state_size(kind: int, params: npt.NDArray[np.float64]) -> int: ...
def max_discoveries(kind: int, params: npt.NDArray[np.float64]) -> int: ...
def hidden_state(kind: int, params: npt.NDArray[np.float64], seed: int) -> npt.NDArray[np.int32]: ...
def grid_blocked(params: npt.NDArray[np.float64], seed: int, cell: int) -> bool: ...
