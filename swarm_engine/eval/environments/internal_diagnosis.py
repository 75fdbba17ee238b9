"""Internal diagnosis: a proprietary config DSL with SW-xxxx error codes.

Made to need domain knowledge a small model lacks (the LoRA case): the right
fix for each SW code is not written in any observation; an explorer has to try
the fixes (param variants of ApplyFix), an LLM has to know them.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_engine._native import _envs
from swarm_engine.eval.environments.base import EnvironmentFace, ParamSpec
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["INTERNAL_DIAGNOSIS", "SECTIONS", "CODES", "FIXES", "hidden"]

SECTIONS = ("routing", "failover", "circuit_breaker", "worker_pool", "rate_limiter", "cache", "auth",
            "telemetry")
CODES = ("SW-1001", "SW-1002", "SW-1003", "SW-2001", "SW-2002", "SW-3001", "SW-3002", "SW-4001")
MEANINGS = ("routing config invalid", "failover target not found", "circuit breaker threshold exceeded",
            "worker pool exhausted", "rate limiter window misconfigured", "cache shard map stale",
            "auth token TTL out of range", "telemetry sink unreachable")
CAUSES = ("route 'api/*' points at undeclared upstream 'svc-b'", "failover.targets lists pool 'zone-b', "
          "which no [pool] declares", "breaker.threshold = 0.05 trips on normal error rates",
          "workers.max = 4 below the queue's steady load", "limiter.window = 0s makes every request exceed it",
          "cache.shards still lists the decommissioned node c3", "auth.ttl = 90d exceeds the 24h policy",
          "telemetry.sink resolves to a retired collector")
FIXES = ("rebuild_route_table", "register_failover_target", "raise_breaker_threshold", "grow_worker_pool",
         "reset_rate_window", "refresh_shard_map", "clamp_token_ttl", "repoint_telemetry_sink")
OPS = ("ParseConfig", "AnalyzeLog", "TraceError", "ApplyFix")


def hidden(seed: int, params: dict) -> dict:
    st = INTERNAL_DIAGNOSIS.hidden_state(seed, params)
    n = int(st[0])
    return {"sections": n, "faulty": int(st[1]), "noisy": st[5:5 + n].tolist()}


def _name(t: int, params: dict) -> str:
    return SECTIONS[t] if 0 <= t < len(SECTIONS) else ""


def _default_graph(actions: Sequence[str], params: dict) -> DependencyGraph:
    n = int(params["sections"])
    return DependencyGraph(
        actions=list(actions),
        edges=[("ParseConfig", "AnalyzeLog", 0.8), ("ParseConfig", "TraceError", 0.6),
               ("AnalyzeLog", "TraceError", 0.9), ("TraceError", "ApplyFix", 1.0)],
        start=["ParseConfig"], terminal=["ApplyFix"],
        param_variants={"ApplyFix": ("fix", list(FIXES[:n]))})


def _render(event: dict, seed: int, params: dict) -> str:
    h = hidden(seed, params)
    op, t, ok = event["op"], event["target"], event["outcome"] == 1
    if event["outcome"] == 2:
        return f"{OPS[op]}: control plane busy (503), retry"
    if op == 0:
        warned = [s for s in range(h["sections"]) if s == h["faulty"] or h["noisy"][s]]
        return "swarm.conf parsed; warnings in " + ", ".join(f"[{SECTIONS[s]}]" for s in warned)
    sec = _name(t, params)
    f = h["faulty"]
    if op == 1:
        if ok:
            return f"ERROR [{CODES[f]}] {MEANINGS[f]} (section {sec}); 37 occurrences in the last hour"
        return f"no [SW-xxxx] errors attributed to section {sec}"
    if op == 2:
        return f"[{CODES[f]}] traced to [{sec}]: {CAUSES[f]}" if ok else f"no error traces through [{sec}]"
    fix = event.get("arg_name") or "fix"
    return f"{fix} applied to [{sec}]: {CODES[f]} cleared" if ok else f"{fix} on [{sec}] did not clear the error"


INTERNAL_DIAGNOSIS = EnvironmentFace(
    name="internal_diagnosis",
    kind=_envs.ENV_DIAGNOSIS,
    ops=OPS,
    params={
        "sections": ParamSpec(8, int, 1, 8, "config sections (each with its own SW code and fix)"),
        "noise": ParamSpec(0.3, float, 0.0, 1.0, "probability that a healthy section has parse warnings"),
        "error_rate": ParamSpec(0.0, float, 0.0, 1.0),
        "fault_skew": ParamSpec(0.0, float, 0.0, 8.0,
                                "0 = any section breaks alike; s > 0 = section i breaks with weight "
                                "1/(1 + (5i+2) mod n)^s (learnable)"),
    },
    default_graph=_default_graph,
    target_name=_name,
    render=_render,
    description="Diagnose a proprietary config DSL from SW-xxxx error codes",
    arg_names=FIXES,
)
