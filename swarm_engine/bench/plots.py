"""PNG plots of a ``run_suites`` report (``swarm-bench --plot DIR``).

matplotlib is an optional extra (``pip install 'swarm-engine[bench]'``) and
runs on the Agg backend (no display). Points are medians; error bars span
the min-max of the repeats. Figures are 800 px wide, small enough to commit
(docs/img/bench/).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from swarm_engine.errors import ConfigError

__all__ = ["available", "require", "write_plots"]

_W, _H, _DPI = 8.0, 3.4, 100


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def require() -> None:
    """ConfigError (one line) when matplotlib is missing."""
    if not available():
        raise ConfigError("--plot needs matplotlib: pip install 'swarm-engine[bench]'")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _med(s: dict) -> float:
    return s["median"]


def _err(values: list[dict]):
    """Asymmetric error bars (median - min, max - median)."""
    return [[v["median"] - v["min"] for v in values], [v["max"] - v["median"] for v in values]]


def _line(ax, xs, spreads, label, marker="o", **kw):
    ax.errorbar(xs, [_med(s) for s in spreads], yerr=_err(spreads), label=label, marker=marker, capsize=3,
                markersize=4, **kw)


def _finish(fig, path: Path, title: str) -> Path:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    _plt().close(fig)
    return path


def _loglog(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _eval(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(_W, _H))
    rows = r["rows"]
    xs = [row["runs"] for row in rows]
    _line(ax, xs, [row["native"]["actions_per_s"] for row in rows], "native, kernel")
    _line(ax, xs, [row["native"]["eval_actions_per_s"] for row in rows], "native, whole run_eval call")
    _line(ax, xs, [row["reference"]["actions_per_s"] for row in rows], "reference (first seeds)")
    _loglog(ax, "runs in the eval", "actions/s")
    return _finish(fig, path, f"Troubleshooting eval: actions/s vs runs ({rows[0]['scenario_id']})")


def _jobs(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(_W, _H))
    rows = r["rows"]
    xs = [row["jobs"] for row in rows]
    _line(a, xs, [row["speedup"] for row in rows], "speed-up (median, min-max)")
    a.plot(xs, xs, linestyle="--", color="grey", label="ideal")
    a.set_xlabel("jobs (threads)")
    a.set_ylabel("speed-up over 1 job")
    a.grid(True, alpha=0.3)
    a.legend(fontsize=8)
    b.plot(xs, [100 * row["efficiency_best"] for row in rows], marker="o", label="efficiency, best times")
    b.axhline(100 * r["efficiency_floor"], linestyle="--", color="grey", label="the bar")
    b.set_xlabel("jobs (threads)")
    b.set_ylabel("%")
    b.set_ylim(0, 110)
    b.grid(True, alpha=0.3)
    b.legend(fontsize=8)
    return _finish(fig, path, f"Eval of {r['runs']:,} runs on 1..N threads ({r['cores']} usable cores, load "
                              f"{r['load_before'][0] if r['load_before'] else '?'})")


def _workers(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(_W, _H))
    rows = r["rows"]
    xs = [row["workers"] for row in rows]
    _line(a, xs, [{k: v * 1e3 for k, v in row["tick_p50_s"].items() if k != "samples"} for row in rows], "tick p50")
    _line(a, xs, [{k: v * 1e3 for k, v in row["tick_p99_s"].items() if k != "samples"} for row in rows], "tick p99")
    _loglog(a, "workers", "ms per tick")
    _line(b, xs, [row["ns_per_action"] for row in rows], "ns per action")
    b.plot(xs, [row["bytes_per_worker"] for row in rows], marker="s", label="bytes per worker")
    _loglog(b, "workers", "ns / bytes")
    b.set_yscale("linear")
    b.set_ylim(bottom=0)
    return _finish(fig, path, f"Cost vs workers ({r['grid']}x{r['grid']} grid, spread start, first "
                              f"{r['max_ticks']} ticks)")


def _millions(s: dict) -> dict:
    return {k: s[k] / 1e6 for k in ("median", "min", "max")}


def _graph(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(_W, _H))
    rows = r["rows"]
    xs = [row["nodes"] for row in rows]
    _line(a, xs, [_millions(row["actions_per_s_per_tick"]) for row in rows], "step(1) per tick")
    _line(a, xs, [_millions(row["actions_per_s_one_call"]) for row in rows], "one native call")
    _loglog(a, "nodes in the graph", "million actions/s")
    a.set_yscale("linear")
    a.set_ylim(bottom=0)
    b.plot(xs, [row["bytes_per_node"] for row in rows], marker="o", label="bytes per node (memory_bytes)")
    b.plot(xs, [row["bytes_per_node_slot"] for row in rows], marker="s", label="bytes per node slot")
    _loglog(b, "nodes in the graph", "bytes")
    b.set_yscale("linear")
    b.set_ylim(bottom=0)
    return _finish(fig, path, f"Cost vs graph size ({r['workers']:,} workers, whole runs)")


def _bars(ax, groups: list[str], series: dict[str, list[float | None]]) -> None:
    n = len(series)
    width = 0.8 / n
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        vals = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, vals, width, label=label)
        for bar, v in zip(bars, values):
            if v:
                ax.annotate(_short(v), (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_yscale("log")
    top = max((v for vals in series.values() for v in vals if v), default=1.0)
    ax.set_ylim(top=top * 8)                # room for the legend above the bars
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(4, n), loc="upper center")


def _short(x: float) -> str:
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _selectors(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(_W, _H))
    rows = r["selectors"]
    _bars(ax, [row["selector"] for row in rows],
          {"native": [_med(row["native_actions_per_s"]) for row in rows],
           "reference": [_med(row["reference_actions_per_s"]) for row in rows]})
    ax.set_ylabel("actions/s")
    return _finish(fig, path, "Every selector: native vs reference (16 services, 4 workers)")


def _peers(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(_W, _H))
    ws = r["workloads"]
    series: dict[str, list[float | None]] = {
              "native (kernel)": [_med(w["native"]["actions_per_s"]) for w in ws],
              "native (whole eval call)": [_med(w["native"]["eval_actions_per_s"]) for w in ws],
              "reference (pure Python)": [_med(w["reference"]["actions_per_s"]) for w in ws]}
    if all("skipped" not in w["mesa"] for w in ws):
        series[f"Mesa {ws[0]['mesa']['version']}"] = [_med(w["mesa"]["actions_per_s"]) for w in ws]
    _bars(ax, [f"{w['workload']}\n{w['services']} services, {w['workers']} worker(s)" for w in ws], series)
    ax.set_ylabel("actions/s")
    return _finish(fig, path, "The same workload: native vs pure-Python reference vs Mesa")


def _pyenv(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(_W, _H))
    rows = r["rows"]
    xs = [row["workers"] for row in rows]
    for kind, label in (("python", "numpy environment (Python, per tick)"),
                        ("native-per-tick", "native environment, per tick"),
                        ("native-fused", "native environment, fused")):
        _line(ax, xs, [row["actions_per_s"][kind] for row in rows], label)
    _loglog(ax, "workers (actions per tick)", "actions/s")
    return _finish(fig, path, f"Python environment vs native ({r['grid']}x{r['grid']} grid)")


def _learn(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(_W, _H))
    rows = r["rows"]
    xs = [row["sessions"] for row in rows]
    for key, label in (("learn_once_s", "learn once"), ("rebuild_s", "rebuild stats from every session"),
                       ("list_sessions_s", "list sessions"), ("load_stats_s", "load stats.json")):
        _line(ax, xs, [row[key] for row in rows], label)
    _loglog(ax, "stored sessions", "seconds")
    return _finish(fig, path, f"learn once vs stored sessions ({r['train_runs']:,} training runs)")


def _llm(r: dict, path: Path) -> Path:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(_W, _H))
    srv = r["server"]
    labels = [row["label"].replace("-", "\n") for row in srv["prefill"]["rows"]]
    _bars(a, labels, {w: [row["decisions_per_s"] for row in srv[w]["rows"]] for w in ("prefill", "cached")})
    a.set_ylabel("decisions/s")
    a.set_title("llama-server", fontsize=9)
    ip = r["inprocess"]
    if "skipped" not in ip and "failed" not in ip:
        rows = list(ip["decisions_per_s"])
        _bars(b, [x.replace("-", "\n") for x in rows], {"decisions/s": [_med(ip["decisions_per_s"][x]) for x in rows]})
        b.set_title("in process (llama-cpp-python)", fontsize=9)
    return _finish(fig, path, "LLM decisions/s (SmolLM2-135M, CPU)")


def write_plots(report: dict, directory: str | Path) -> list[Path]:
    """One PNG per measured curve of ``report``; returns the paths written."""
    require()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    res, out = report["suites"], []
    ex = res.get("exploration", {})
    parts = (("troubleshooting", _eval, "exploration_eval.png"), ("jobs", _jobs, "exploration_jobs.png"),
             ("selectors", _selectors, "exploration_selectors.png"),
             ("workers", _workers, "exploration_workers.png"), ("graph", _graph, "exploration_graph.png"))
    for part, fn, name in parts:
        if part in ex:
            out.append(fn(ex[part], d / name))
    if "peers" in res:
        out.append(_peers(res["peers"], d / "peers.png"))
    if "python-env" in res:
        out.append(_pyenv(res["python-env"], d / "python_env.png"))
    if "learn" in res:
        out.append(_learn(res["learn"], d / "learn.png"))
    if "llm" in res and "skipped" not in res["llm"] and "failed" not in res["llm"]["server"]:
        out.append(_llm(res["llm"], d / "llm.png"))
    return out
