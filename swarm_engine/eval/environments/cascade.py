"""Cascade outage: one failing upstream, several degraded services, one fix.

Made so that reading pays: the root service and the fix it needs are written
in the log of every degraded service (a victim's log names the upstream it
fails to call and that upstream's error; the root's own log names its error),
and nowhere in the graph the explorer sees. CheckStatus discovers the degraded
services, root and victims alike, in service order; ApplyFix has one node per
(degraded service, fix). A bandit has to try those pairs; a model that reads
the last observation can copy the service and the fix from it.

Hidden state (from the seed): ``root`` (uniform over the services), its error
``fix`` (uniform over the fixes), and ``degraded`` - 1 victims (uniform over
the other services). Text observations are rendered here, lazily, from the
hidden state; the kernel never builds a string.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_engine._native import _envs
from swarm_engine.eval.environments.base import EnvironmentFace, ParamSpec
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["CASCADE", "SERVICES", "FIXES", "ERRORS", "hidden", "hint"]

SERVICES = ("edge-proxy", "web-frontend", "checkout", "payments", "inventory", "ledger-db", "session-cache",
            "message-queue")
# The error each fix cures, as the logs print it (fix i cures ERRORS[i]).
FIXES = ("grow_connection_pool", "renew_certificate", "purge_disk", "rollback_deploy", "raise_memory_limit",
         "flush_dns_cache", "raise_rate_limit", "reload_config")
ERRORS = ("connection pool exhausted (200/200 in use)", "TLS certificate expired",
          "disk full: no space left on /var", "crash loop after deploy v2.3.1",
          "OutOfMemoryError: heap limit reached", "DNS lookup failed: NXDOMAIN",
          "429 rate limit exceeded on every call", "config checksum mismatch after a partial reload")
OPS = ("CheckStatus", "ReadLogs", "ApplyFix")


def hidden(seed: int, params: dict) -> dict:
    """The hidden state of a run: the root service, its fix, the degraded services."""
    st = CASCADE.hidden_state(seed, params)
    n = int(st[0])
    return {"services": n, "root": int(st[1]), "fix": int(st[2]), "fixes": int(st[5]),
            "degraded": st[6:6 + n].tolist()}


def hint(seed: int, params: dict) -> tuple[str, str]:
    """(service, fix) names that a degraded service's log points to: the answer."""
    h = hidden(seed, params)
    return SERVICES[h["root"]], FIXES[h["fix"]]


def _name(t: int, params: dict) -> str:
    return SERVICES[t] if 0 <= t < len(SERVICES) else ""


def _default_graph(actions: Sequence[str], params: dict) -> DependencyGraph:
    """CheckStatus -> ReadLogs | ApplyFix(service, fix) for every fix."""
    n = max(1, min(int(params["fixes"]), len(FIXES)))
    return DependencyGraph(
        actions=list(actions),
        edges=[("CheckStatus", "ReadLogs", 0.9), ("CheckStatus", "ApplyFix", 0.7)],
        start=["CheckStatus"], terminal=["ApplyFix"],
        param_variants={"ApplyFix": ("fix", list(FIXES[:n]))})


def _render(event: dict, seed: int, params: dict) -> str:
    h = hidden(seed, params)
    op, t, outcome = event["op"], event["target"], event["outcome"]
    if outcome == 2:
        return f"{OPS[op]}: monitoring API busy (503), retry"
    if op == 0:
        return "; ".join(f"{SERVICES[i]}: {'Degraded' if d else 'Running'}" for i, d in enumerate(h["degraded"]))
    if not 0 <= t < h["services"]:
        return f"{OPS[op]}: unknown service id {t}"
    svc, root, fix = SERVICES[t], SERVICES[h["root"]], FIXES[h["fix"]]
    if op == 1:
        if not h["degraded"][t]:
            return f"{svc} logs: no errors in the last 1000 lines"
        if t == h["root"]:
            return f"{svc} logs: ERROR {ERRORS[h['fix']]}. Fix: ApplyFix {root} {fix}"
        return f"{svc} logs: ERROR call to {root} failed: {ERRORS[h['fix']]}. Fix: ApplyFix {root} {fix}"
    applied = event.get("arg_name") or "fix"
    if outcome == 1:
        return f"{applied} applied to {svc}: outage resolved, every service Running"
    return f"{applied} applied to {svc}: no effect, the outage goes on"


CASCADE = EnvironmentFace(
    name="cascade",
    kind=_envs.ENV_CASCADE,
    ops=OPS,
    params={
        "services": ParamSpec(8, int, 1, 8, "number of services"),
        "degraded": ParamSpec(4, int, 1, 8, "services that look degraded: the failing root and its victims"),
        "fixes": ParamSpec(6, int, 1, 8, "fixes to choose from (each cures one error); ApplyFix tries one"),
        "error_rate": ParamSpec(0.0, float, 0.0, 1.0, "probability that an action fails transiently"),
    },
    default_graph=_default_graph,
    target_name=_name,
    render=_render,
    description="Find the failing upstream of a cascade outage and apply its fix",
    arg_names=FIXES,
)
