"""Scenarios, environments, conditions, the eval runner and its reports."""

from swarm_engine.eval.loader import Scenario, load_scenario, parse_scenario
from swarm_engine.eval.report import build_report, write_json_atomic
from swarm_engine.eval.runner import EvalResult, run_eval

__all__ = ["Scenario", "load_scenario", "parse_scenario", "build_report", "write_json_atomic",
           "EvalResult", "run_eval"]
