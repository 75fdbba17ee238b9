"""Names the docs use at the top level are exported there."""

from __future__ import annotations

import swarm_engine
from swarm_engine.eval import loader


def test_parse_scenario_is_exported():
    assert swarm_engine.parse_scenario is loader.parse_scenario
    assert "parse_scenario" in swarm_engine.__all__
    sc = swarm_engine.parse_scenario(
        '[meta]\nname = "t"\n[task]\ngoal = "g"\n[[actions.actions]]\nname = "Explore"\n'
        '[environment]\nenv_type = "grid"\n[environment.params]\nwidth = 3\nheight = 3\n', "inline.toml")
    assert sc.swarm(seed=1).run().success
