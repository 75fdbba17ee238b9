"""llama-cpp-python loaded once per process, and llama.cpp's log.

The backend is initialised once (``llama_backend_init``) and one process-wide
log callback is installed: it prints when some invoker asked for
``verbose``, and keeps the last error lines, because llama.cpp reports why a
model or adapter failed to load only in its log; :meth:`LogTap.reason`
turns the last one into the tail of a one-line error.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any

from swarm_engine.errors import LlmPermanentError

__all__ = ["lib", "LogTap"]

_GGML_LOG_ERROR = 3
_GGML_LOG_CONT = 5

_backend_lock = threading.Lock()
_backend_ready = False


def lib() -> Any:
    """llama_cpp with the backend initialised (once per process).

    Raises
    ------
    LlmPermanentError
        llama-cpp-python is not installed.
    """
    global _backend_ready
    try:
        import llama_cpp
    except ImportError as e:
        raise LlmPermanentError("in-process inference needs llama-cpp-python: pip install llama-cpp-python") from e
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            LogTap.install(llama_cpp)
            _backend_ready = True
    return llama_cpp


class LogTap:
    """The one llama.cpp log callback of the process (class state: there is one log)."""

    verbose = 0                       # how many live invokers asked for verbose
    errors: deque[str] = deque(maxlen=8)
    _last_level = 0
    _cb: Any = None                   # the ctypes callback must outlive the process's use of it

    @classmethod
    def install(cls, llama: Any) -> None:
        @llama.llama_log_callback
        def cb(level: int, text: bytes, _user: Any) -> None:
            lvl = cls._last_level if level == _GGML_LOG_CONT else level
            cls._last_level = lvl
            msg = text.decode("utf-8", "replace") if text else ""
            if lvl == _GGML_LOG_ERROR and msg.strip():
                cls.errors.append(msg.strip())
            if cls.verbose > 0:
                os.write(2, text or b"")
        cls._cb = cb
        llama.llama_log_set(cb, None)

    @classmethod
    def reason(cls) -> str:
        """``": <last error line>"``, or "" when llama.cpp logged no error."""
        return f": {cls.errors[-1]}" if cls.errors else ""
