"""Troubleshooting: find the faulty service, gather evidence, diagnose, restart.

Hidden state (from the seed): ``services`` services, each Running, Degraded or
Down; one faulty service with one of five problems; healthy services are
Degraded with probability ``noise`` (red herrings). Evidence: each problem
shows in the logs, the metrics, or both. Text observations are rendered here,
lazily, from the hidden state; the kernel never builds a string.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm_engine._native import _envs
from swarm_engine.eval.environments.base import EnvironmentFace, ParamSpec
from swarm_engine.exploration.rules import DependencyGraph

__all__ = ["TROUBLESHOOTING", "SERVICES", "PROBLEMS", "service_name", "hidden"]

SERVICES = ("api-gateway", "auth-service", "user-service", "payment-service", "order-service",
            "inventory-service", "notification-service", "search-service")
STATUS = ("Running", "Degraded", "Down")
PROBLEMS = ("MemoryLeak", "CpuSpike", "DiskFull", "NetworkTimeout", "DatabaseConnection")
DESCRIPTIONS = (
    "Memory leak detected - gradual memory increase over time",
    "CPU spike detected - sustained high CPU usage",
    "Disk full - no space left on device",
    "Network timeout - upstream calls time out",
    "Database connection failure - connection pool cannot reach the database",
)
LOG_EVIDENCE = (
    "WARN  heap usage 91% after GC; OutOfMemoryError in worker thread (3 in 10 min)",
    None,
    "ERROR write failed: No space left on device (/var/lib/{svc})",
    "ERROR upstream request timed out after 30000 ms (5 of last 20 calls)",
    "ERROR could not acquire DB connection: pool exhausted, connection refused by db:5432",
)
METRIC_EVIDENCE = (
    "memory 94% and rising ~2%/min since deploy; GC pause p99 1.8 s",
    "cpu 99% for 14 min on all cores; request latency p99 12 s",
    "disk /var 100% used (0 B free); write errors 120/min",
    None,
    None,
)
OPS = ("CheckStatus", "ReadLogs", "AnalyzeMetrics", "Diagnose", "Restart")
_EVIDENCE_BITS = (3, 2, 3, 1, 1)   # must match TS_EVIDENCE in _envs.pyx


def service_name(i: int, params: dict | None = None) -> str:
    if i < 0:
        return ""
    return SERVICES[i] if i < len(SERVICES) else f"service-{i}"


def hidden(seed: int, params: dict) -> dict:
    """The hidden state of a run: statuses, faults and their problems, noisy logs."""
    st = TROUBLESHOOTING.hidden_state(seed, params)
    n = int(st[0])
    cols = st[5:].reshape(5, n)
    return {"services": n, "faults": int(st[1]), "first_fault": int(st[4]),
            "status": cols[0].tolist(), "problem": cols[1].tolist(), "noisy": cols[4].tolist()}


def _default_graph(actions: Sequence[str], params: dict) -> DependencyGraph:
    """CheckStatus -> ReadLogs | AnalyzeMetrics -> Diagnose -> Restart (op names)."""
    return DependencyGraph(
        actions=list(actions),
        edges=[("CheckStatus", "ReadLogs", 0.9), ("CheckStatus", "AnalyzeMetrics", 0.8),
               ("ReadLogs", "Diagnose", 0.9), ("AnalyzeMetrics", "Diagnose", 0.8),
               ("Diagnose", "Restart", 1.0)],
        start=["CheckStatus"], terminal=["Restart"])


def _render(event: dict, seed: int, params: dict) -> str:
    h = hidden(seed, params)
    op, t, outcome = event["op"], event["target"], event["outcome"]
    svc = service_name(t)
    if outcome == 2:
        return f"{OPS[op]} {svc}: transient error (timeout talking to the host), retry later".replace("  ", " ")
    if op == 0:
        return "; ".join(f"{service_name(i)}: {STATUS[s]}" for i, s in enumerate(h["status"]))
    if not 0 <= t < h["services"]:
        return f"{OPS[op]}: unknown service id {t}"
    problem = h["problem"][t]
    if op == 1:
        line = LOG_EVIDENCE[problem] if problem >= 0 else None
        if line:
            return f"{svc} logs: " + line.format(svc=svc)
        if h["noisy"][t]:
            return (f"{svc} logs: WARN slow query 1200 ms; WARN retrying request to peer (attempt 2); "
                    "INFO config reloaded (routine noise, no fault signature)")
        return f"{svc} logs: no errors or warnings in the last 1000 lines"
    if op == 2:
        line = METRIC_EVIDENCE[problem] if problem >= 0 else None
        return f"{svc} metrics: " + (line or "cpu 23%, memory 41%, disk 38%, latency p99 120 ms (normal)")
    if op == 3:
        if outcome == 1:
            return f"Diagnosis for {svc}: {PROBLEMS[problem]} - {DESCRIPTIONS[problem]}"
        return f"Diagnosis for {svc}: inconclusive (no evidence of a fault gathered for this service)"
    if outcome == 1:
        return f"{svc} restarted; the fault is cleared and the service is Running"
    return f"{svc} restarted but nothing changed: it was not a diagnosed faulty service"


TROUBLESHOOTING = EnvironmentFace(
    name="troubleshooting",
    kind=_envs.ENV_TROUBLESHOOTING,
    ops=OPS,
    params={
        "services": ParamSpec(4, int, 1, 1 << 20, "number of services"),
        "error_rate": ParamSpec(0.0, float, 0.0, 1.0, "probability that an action fails transiently"),
        "noise": ParamSpec(0.25, float, 0.0, 1.0, "probability that a healthy service shows Degraded"),
        "faults": ParamSpec(1, int, 1, 1 << 20, "faulty services; the task is done when all are restored"),
        "log_noise": ParamSpec(0.0, float, 0.0, 1.0,
                               "probability that a Degraded healthy service has warnings in its logs"),
        "fault_skew": ParamSpec(0.0, float, 0.0, 8.0,
                                "0 = the fault hits any service alike; s > 0 = service i is hit with weight "
                                "1/(1 + (5i+2) mod n)^s, a few services fail far more often (learnable)"),
    },
    default_graph=_default_graph,
    target_name=service_name,
    render=_render,
    description="Diagnose and fix a service outage",
)
