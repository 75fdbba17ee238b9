"""Type stubs for the native environments (see _envs.pyx)."""

import numpy as np
import numpy.typing as npt

ENV_PYTHON: int
ENV_TROUBLESHOOTING: int
ENV_GRID: int
OUT_FAIL: int
OUT_OK: int
OUT_ERROR: int

def hidden_state(kind: int, params: npt.NDArray[np.float64], seed: int) -> npt.NDArray[np.int32]: ...
def grid_blocked(params: npt.NDArray[np.float64], seed: int, cell: int) -> bool: ...
