"""Fixtures of the dashboard tests: a world to show (scenarios, one of them
broken, reports, a report that is not ours, a learning key with two model
versions, a llama log), the app over it, and the app served for real."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the 'gui' extra: pip install -e '.[gui]'")
pytest.importorskip("uvicorn", reason="the dashboard needs the 'gui' extra: pip install -e '.[gui]'")

from swarm_engine.eval.loader import load_scenario  # noqa: E402
from swarm_engine.eval.report import build_report  # noqa: E402
from swarm_engine.eval.runner import run_eval  # noqa: E402
from swarm_engine.fsio import write_json, write_text  # noqa: E402
from swarm_engine.gui.app import GuiState, create_app  # noqa: E402
from swarm_engine.gui.catalog import Catalog  # noqa: E402
from swarm_engine.learn.model import OfflineModel, RecommendedPath  # noqa: E402
from swarm_engine.learn.store import LearningStore  # noqa: E402
from tests.cli.conftest import swarm_exe  # noqa: E402,F401  (the console script, for test_command.py)
from tests.paths import TROUBLESHOOTING  # noqa: E402

BROKEN = "[meta]\nname = \"Broken\"\n[task]\ngoal = 3\n"
KEY = "user_troubleshooting"


def make_world(root: Path) -> dict[str, Path]:
    scen = root / "scenarios"
    scen.mkdir(parents=True)
    write_text(scen / "broken.toml", BROKEN)
    reports = root / "reports"
    sc = load_scenario(TROUBLESHOOTING)
    write_json(reports / "baseline.json", build_report(run_eval(sc, 400, 42)))
    hard = load_scenario(TROUBLESHOOTING, "complex")
    write_json(reports / "complex.json", build_report(run_eval(hard, 400, 42)))
    write_json(reports / "not-ours.json", {"hello": "world"})
    learning = root / "learning"
    store = LearningStore(learning)
    for weight, rate in ((0.3, 0.91), (0.5, 0.95)):
        with store.model_lock(KEY):
            store.save_model(KEY, OfflineModel(
                created="2026-12-01T10:00:00Z", episodes=800, parameters=_params(weight),
                recommended_paths=[RecommendedPath(path=["CheckStatus", "ReadLogs", "Diagnose", "Restart"],
                                                   success_rate=rate, support=120)],
                validation={"heldout_runs": 2000, "heldout": {
                    "in_use": {"success_rate": 0.9, "mean_actions_to_success": 7.5},
                    "new": {"success_rate": rate, "mean_actions_to_success": 6.1}}}))
    home = root / "home"
    write_text(home / "logs" / "llama-default.log", "main: server is listening on http://127.0.0.1:8080\n"
                                                     "slot launch_slot_: id 0 | task 1 | processing task\n")
    return {"scenarios": scen, "reports": reports, "learning": learning, "home": home, "root": root}


def _params(weight: float):
    from swarm_engine.learn.model import Parameters

    return Parameters(learning_weight=weight, ngram_weight=1.0)


def make_state(world: dict[str, Path]) -> GuiState:
    catalog = Catalog([world["scenarios"]], cwd=world["root"], user=world["root"] / "no-user-scenarios")
    return GuiState(catalog=catalog, reports_dir=world["reports"], learning_root=world["learning"],
                    engine_home=world["home"], default_runs=500)


@pytest.fixture
def world(tmp_path) -> dict[str, Path]:
    return make_world(tmp_path)


@pytest.fixture
def client(world):
    from starlette.testclient import TestClient

    state = make_state(world)
    with TestClient(create_app(state)) as c:
        yield c
    state.shutdown()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The dashboard served by uvicorn on a free 127.0.0.1 port, as ``swarm gui`` serves it."""
    from swarm_engine.gui.server import serve_in_background
    from tests.conftest import wait_for

    world = make_world(tmp_path_factory.mktemp("gui"))
    state = make_state(world)
    served = serve_in_background(state)
    wait_for(lambda: served.server.started, "the dashboard server to start", timeout=30)
    yield {"url": served.url, "world": world, "state": state}
    served.stop()
