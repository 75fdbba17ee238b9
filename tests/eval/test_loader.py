"""Scenario loading: the shipped scenario loads, and every kind of bad input
met so far is one ScenarioError line naming the file, the line and the field.

Each broken file in tests/data/ is tests/data/minimal.toml changed in one
place; the line the loader must point to carries the comment ``# <- error``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from swarm_engine import ScenarioError, SwarmError, Verdict, load_scenario
from swarm_engine.eval.loader import deep_merge, list_variants, parse_scenario
from tests.paths import DATA, SCENARIOS

MARKER = "# <- error"


def marked_line(path: Path) -> int | None:
    """1-based line carrying the ``# <- error`` marker (skipping the header comment)."""
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.rstrip().endswith(MARKER):
            return lineno
    return None


def load_error(path: Path, **kwargs) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, **kwargs)
    return info.value


# ----------------------------------------------------------------------------- good files


class TestTroubleshooting:
    def test_loads(self, troubleshooting, troubleshooting_path):
        sc = troubleshooting
        assert sc.name == "Service Troubleshooting"
        assert sc.id == "user:troubleshooting:v2"
        assert sc.actions == ["CheckStatus", "ReadLogs", "AnalyzeMetrics", "Diagnose", "Restart"]
        assert sc.binding.name == "troubleshooting" and sc.binding.native
        params = sc.binding.extra["params"]
        assert {k: params[k] for k in ("services", "error_rate", "noise")} == {"services": 4, "error_rate": 0.02,
                                                                              "noise": 0.25}
        assert sc.path == str(troubleshooting_path)
        assert sc.sha256 == hashlib.sha256(troubleshooting_path.read_bytes()).hexdigest()
        assert sc.variant is None

    def test_config(self, troubleshooting):
        cfg = troubleshooting.config
        assert (cfg.workers, cfg.max_ticks, cfg.tick_duration_ms) == (1, 100, 0.0)
        assert cfg.selector.strategy == "ucb1"
        assert cfg.selector.granularity == "action_target"
        assert cfg.management.kind == "every_tick"
        assert cfg.termination.strategy == "first_success"

    def test_graph(self, troubleshooting):
        g = troubleshooting.graph
        assert g.start == ["CheckStatus"] and g.terminal == ["Restart"]
        assert ("Diagnose", "Restart", 1.0) in g.edges
        assert len(g.edges) == 5
        assert g.find_cycle() is None

    def test_runs(self, troubleshooting):
        assert troubleshooting.swarm(seed=1).run().verdict == Verdict.SUCCESS

    def test_overrides(self, troubleshooting_path):
        sc = load_scenario(troubleshooting_path, overrides={"agents": {"workers": 4},
                                                            "app_config": {"selection": {"strategy": "fifo"}}})
        assert sc.config.workers == 4
        assert sc.config.selector.strategy == "fifo"
        assert sc.config.max_ticks == 100                       # untouched siblings survive

    def test_parse_text(self, troubleshooting_path):
        sc = parse_scenario(troubleshooting_path.read_text(encoding="utf-8"))
        assert sc.path is None and sc.name == "Service Troubleshooting"




def _shipped_variants() -> list[tuple[str, str | None]]:
    import tomllib

    out = []
    for path in sorted(SCENARIOS.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        out += [(path.name, None)] + [(path.name, name) for name, _ in list_variants(raw)]
    return out


@pytest.mark.parametrize(("name", "variant"), _shipped_variants(),
                         ids=[f"{n.removesuffix('.toml')}-{v or 'default'}" for n, v in _shipped_variants()])
def test_shipped_scenarios_load_and_run(name, variant):
    sc = load_scenario(SCENARIOS / name, variant)
    assert sc.variant == variant
    assert sc.swarm(seed=1).run().verdict != Verdict.RUNNING


def test_minimal_loads():
    sc = load_scenario(DATA / "minimal.toml")
    assert sc.actions == ["CheckStatus", "ReadLogs", "Diagnose", "Restart"]
    assert sc.swarm(seed=3).run().success


def test_static_graph_is_the_environments_own(troubleshooting_path):
    text = troubleshooting_path.read_text(encoding="utf-8")
    static = text[:text.index("[dependency_graph]")] + '[dependency_graph]\ntype = "static"\n'
    sc = parse_scenario(static, "static.toml")
    custom = load_scenario(troubleshooting_path)
    assert sc.graph.start == custom.graph.start
    assert sc.graph.terminal == custom.graph.terminal
    assert sorted(sc.graph.edges) == sorted(custom.graph.edges)


def test_worker_templates_add_up():
    text = (DATA / "minimal.toml").read_text(encoding="utf-8")
    sc = parse_scenario(text + "\n[[agents.workers]]\ncount = 2\n\n[[agents.workers]]\ncount = 3\n")
    assert sc.config.workers == 5


# ----------------------------------------------------------------------------- variants


class TestVariants:
    PATH = DATA / "variants.toml"

    def test_default(self):
        sc = load_scenario(self.PATH)
        assert (sc.config.workers, sc.config.max_ticks, sc.variant) == (2, 400, None)

    @pytest.mark.parametrize(("variant", "workers", "max_ticks", "block_rate"),
                             [("crowd", 8, 400, 0.1), ("maze", 2, 30, 0.4)])
    def test_overrides_merge(self, variant, workers, max_ticks, block_rate):
        sc = load_scenario(self.PATH, variant)
        assert sc.variant == variant
        assert (sc.config.workers, sc.config.max_ticks) == (workers, max_ticks)
        params = sc.binding.extra["params"]
        assert params["block_rate"] == block_rate
        assert params["width"] == 12                            # merged, not replaced

    def test_unknown_variant(self):
        err = load_error(self.PATH, variant="nope")
        assert err.field == "variants"
        assert str(self.PATH) in str(err)
        assert "unknown variant 'nope'" in str(err)
        assert "crowd, maze, typo" in str(err)

    def test_variant_overrides_are_validated(self):
        err = load_error(self.PATH, variant="typo")
        assert err.field == "app_config.max_tick"
        assert "unknown field" in str(err)

    def test_list_variants(self):
        import tomllib

        raw = tomllib.loads(self.PATH.read_text(encoding="utf-8"))
        assert [name for name, _ in list_variants(raw)] == ["crowd", "maze", "typo"]
        assert list_variants({}) == []


def test_deep_merge():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    over = {"a": {"y": [3], "z": {"k": 1}}, "c": 3}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [3], "z": {"k": 1}}, "b": 2, "c": 3}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}          # inputs untouched


# ----------------------------------------------------------------------------- bad files

BROKEN = [
    # file, field path, what the message says
    ("bad_syntax.toml", None, "TOML syntax error"),
    ("unknown_key.toml", "app_config.max_tick", "unknown field `max_tick`"),
    ("wrong_type.toml", "app_config.max_ticks", "Expected `int`, got `str`"),
    ("missing_goal.toml", "task.goal", "missing required field `goal`"),
    ("unknown_edge_action.toml", "dependency_graph.edges[2].to", "unknown action 'Reboot'"),
    ("unknown_env_type.toml", "environment.env_type", "unknown env_type 'kitchen'"),
    ("unknown_env_param.toml", "environment.params.nois", "unknown parameter 'nois'"),
    ("bad_env_param.toml", "environment.params.services", "outside 1.."),
    ("unreachable_terminal.toml", "dependency_graph.terminal[0]", "cannot be reached"),
    ("cycle.toml", "dependency_graph.edges", "cycle: CheckStatus -> ReadLogs -> Diagnose -> CheckStatus"),
    ("unknown_metric.toml", "conditions.success[0].metric", "unknown metric 'environment.finished'"),
    ("string_condition.toml", "conditions.success[0].value", "must be a number or a boolean"),
    ("duplicate_action.toml", "actions.actions[2].name", "'ReadLogs' is defined twice"),
    ("unsupported_action.toml", "actions.actions[4].name", "'Reboot' is not supported by environment"),
    ("unknown_strategy.toml", "app_config.selection.strategy", "'random'"),
    ("bad_python_env.toml", "environment.env_type", "cannot import module 'no_such_module_xyz'"),
    ("llm_graph.toml", "dependency_graph.type", "needs an [llm] provider"),
]


@pytest.mark.parametrize(("name", "field", "fragment"), BROKEN, ids=[b[0].removesuffix(".toml") for b in BROKEN])
def test_broken_file(name, field, fragment):
    path = DATA / name
    line = marked_line(path)
    assert line is not None, f"{name} has no '{MARKER}' marker"
    err = load_error(path)
    text = str(err)
    assert err.path == str(path)
    assert err.line == line
    assert err.field == field
    assert text.startswith(f"{path}:{line}:")
    if field:
        assert field in text
    assert fragment in text
    assert "\n" not in text
    assert isinstance(err, SwarmError)


def test_every_broken_file_is_tested():
    tested = {name for name, _, _ in BROKEN}
    on_disk = {p.name for p in DATA.glob("*.toml")} - {"minimal.toml", "variants.toml", "vault.toml"}
    assert on_disk == tested


def test_file_not_found():
    path = DATA / "no_such_scenario.toml"
    err = load_error(path)
    assert str(err) == f"{path}: file not found"
    assert err.line is None and err.field is None


def test_directory_is_not_a_scenario(tmp_path):
    err = load_error(tmp_path)
    assert str(tmp_path) in str(err) and "cannot read" in str(err)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[meta]\nname = \"caf\xe9\"\n".encode("latin-1"))
    err = load_error(path)
    assert str(path) in str(err) and "\n" not in str(err)


@pytest.mark.parametrize(("replace", "by", "field"), [
    ('type = "custom"\n', "", "dependency_graph.type"),
    ("max_ticks = 50", "max_ticks = true", "app_config.max_ticks"),
    ("max_ticks = 50", "max_ticks = 50\ntick_duration_ms = -1", "app_config.tick_duration_ms"),
    ('to = "ReadLogs"', 'to = "ReadLogs"\nconfidence = 2.0', "dependency_graph.edges[0].confidence"),
    ('name = "ReadLogs"', 'name = "ReadLogs"\ncolour = "red"', "actions.actions[1].colour"),
    ('op = "eq"', 'op = "=="', "conditions.success[0].op"),
    ("services = 3", "services = 2.5", "environment.params.services"),
    ('start = ["CheckStatus"]', "start = []", "dependency_graph.start"),
], ids=["no-graph-type", "bool-for-int", "negative-tick", "confidence", "unknown-action-field", "bad-op",
        "float-for-int", "no-start"])
def test_schema_errors_name_field_and_line(replace, by, field):
    text = (DATA / "minimal.toml").read_text(encoding="utf-8")
    assert replace in text
    broken = text.replace(replace, by, 1)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(broken, "inline.toml")
    err = info.value
    assert err.field == field
    assert err.line is not None
    assert str(err).startswith(f"inline.toml:{err.line}: ")
    assert "\n" not in str(err)


def test_empty_text():
    with pytest.raises(ScenarioError, match="missing required field `meta`"):
        parse_scenario("", "empty.toml")
