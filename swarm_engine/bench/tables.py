"""Rich tables for a ``run_suites`` report (the CLI prints them; the JSON
report holds the same numbers unrounded)."""

from __future__ import annotations

from rich.table import Table

__all__ = ["machine_line", "troubleshooting_table", "exploration_table", "swarm_tables", "eval_curve_table",
           "jobs_table", "workers_table", "graph_table", "peers_table", "pyenv_table", "learn_table", "llm_tables",
           "skip_line", "suite_tables", "rate", "seconds", "nbytes"]


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def rate(x: float) -> str:
    """Actions per second, 3 significant digits with a unit prefix."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{_num(x / div)}{unit}"
    return _num(x)


def _time_unit(x: float) -> tuple[float, str]:
    for mul, unit in ((1e9, "ns"), (1e6, "us"), (1e3, "ms")):
        if abs(x) * mul < 1000:
            return mul, unit
    return 1.0, "s"


def seconds(x: float) -> str:
    """A duration in ns/us/ms/s (negative for a difference of noisy times)."""
    mul, unit = _time_unit(x)
    return f"{_num(x * mul)} {unit}"


def nbytes(x: float) -> str:
    """A byte count in B/KiB/MiB/GiB."""
    for div, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(x) >= div:
            return f"{_num(x / div)} {unit}"
    return f"{_num(x)} B"


def _spread(s: dict, fmt=rate) -> str:
    if fmt is seconds:      # one unit for the three numbers: "650 (646-654) us"
        mul, unit = _time_unit(s["median"])
        return f"{_num(s['median'] * mul)} ({_num(s['min'] * mul)}-{_num(s['max'] * mul)}) {unit}"
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def _ratio(s: dict) -> str:
    return f"{s['median']:.0f}x ({s['min']:.0f}-{s['max']:.0f})"


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...] = ()) -> Table:
    t = Table(title=title, title_justify="left", caption_justify="left")
    for col in columns:
        t.add_column(col, justify="left" if col in left else "right")
    return t


def machine_line(m: dict) -> str:
    """One line: CPU, cores, versions and the source commit."""
    src = m.get("source") or {}
    rev = f", source {src['commit'][:10]}{' (modified)' if src.get('dirty') else ''}" if src else ""
    return (f"{m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable); Python {m['python']}, "
            f"numpy {m['numpy']}, Cython {m['cython'] or '-'}, swarm-engine {m['swarm_engine']}{rev}")


def troubleshooting_table(r: dict) -> Table:
    """Native (run_eval) and reference rows, ratio in the caption."""
    t = _table(f"troubleshooting: {r['scenario_id']}, {r['workers']} worker(s), {r['selector']}; "
               f"median (min-max) of {r['repeat']}",
               ("Kernel", "Runs", "Actions", "Success", "Actions/s", "Runs/s"), left=("Kernel",))
    n, ref = r["native"], r["reference"]
    t.add_row("native", f"{r['runs']:,}", f"{n['actions']:,}", f"{100 * n['success_rate']:.2f}%",
              _spread(n["actions_per_s"]), _spread(n["runs_per_s"]))
    t.add_row("native, whole call", "", "", "", _spread(n["eval_actions_per_s"]), "")
    t.add_row("reference", f"{r['reference_runs']:,}", f"{ref['actions']:,}",
              f"{100 * ref['success_rate']:.2f}%", _spread(ref["actions_per_s"]), "")
    t.caption = (f"native = {n['path']} (kernel seconds; 'whole call' adds conditions and judging); "
                 f"reference = {ref['path']} on the first {r['reference_runs']:,} seeds.\n"
                 f"native / reference = {_ratio(r['ratio'])} in actions/s; per-run results identical "
                 f"on the {r['identical_runs']:,} common seeds.")
    return t


def exploration_table(r: dict) -> Table:
    """One row per selector kind."""
    t = _table("selectors: troubleshooting, 16 services, 4 workers, groups per (action, target), "
               "Kernel.run_batch; median (min-max)",
               ("Selector", "Runs", "Ref runs", "Actions/run", "Native actions/s", "Reference actions/s", "Ratio"),
               left=("Selector",))
    for row in r["selectors"]:
        t.add_row(row["selector"], f"{row['runs']:,}", f"{row['reference_runs']:,}", f"{row['actions_per_run']:.2f}",
                  _spread(row["native_actions_per_s"]), _spread(row["reference_actions_per_s"]),
                  _ratio(row["ratio"]))
    t.caption = "Per-run results identical on the reference's seeds, for every selector."
    return t


def swarm_tables(r: dict) -> list[Table]:
    """Throughput, latency and memory of the large swarm; the reference pairs."""
    head = ("Workers", "Start", "Selector")
    speed = _table(f"swarm: grid {r['grid']}x{r['grid']}, block rate {r['block_rate']}, no goal, "
                   f"one step(1) call per tick; median (min-max) of {r['repeat']}",
                   head + ("Ticks", "Actions/tick", "Actions/s", "One call", "vs ref"),
                   left=("Start", "Selector"))
    lat = _table("swarm: tick latency and memory", head + ("Tick p50", "Tick p99", "Tick max", "B/worker",
                                                          "B/node", "Empty call"), left=("Start", "Selector"))
    for row in r["native"]:
        key = (f"{row['workers']:,}", row["shape"], row["selector"])
        speed.add_row(*key, f"{row['ticks']:,}", f"{row['actions_per_tick']['mean']:,.0f}",
                      _spread(row["actions_per_s"]), rate(row["actions_per_s_one_call"]["median"]),
                      f"{row['ratio_to_small_reference']:.0f}x")
        lat.add_row(*key, _spread(row["tick_p50_s"], seconds), _spread(row["tick_p99_s"], seconds),
                    seconds(row["tick_max_s"]["median"]), f"{row['bytes_per_worker']:.0f}",
                    f"{row['bytes_per_node']:.1f}", seconds(row["step_call_s"]))
    speed.caption = ("One call: the same run in one native call (median), no Python per tick. "
                     "vs ref: this swarm's actions/s over the small reference run's (last table).")
    first = r["native"][0]
    lat.caption = (f"{first['nodes']:,} nodes in {first['node_capacity']:,} slots: "
                   f"{nbytes(first['memory_bytes']['nodes'])} ({first['bytes_per_node_slot']:.1f} B/slot, "
                   f"dedup index included). RSS {nbytes(r['rss_at_start_bytes'])} before the suite, peak "
                   f"{nbytes(r['peak_rss_bytes'])}. Empty call: a step(1) call on a finished run.")
    small = _table("swarm: native vs reference on the same small grid, one step(1) call per tick",
                   ("Grid", "Workers", "Start", "Selector", "Actions", "Native actions/s", "Reference actions/s",
                    "Ratio"), left=("Start", "Selector"))
    for p in r["reference"]:
        small.add_row(f"{p['grid']}x{p['grid']}", f"{p['workers']:,}", p["shape"], p["selector"],
                      f"{p['actions']:,}", _spread(p["native_actions_per_s"]),
                      _spread(p["reference_actions_per_s"]), _ratio(p["ratio"]))
    small.caption = "Final graph maps identical node for node (keys, parents, states, ticks)."
    return [speed, lat, small]


def eval_curve_table(r: dict) -> Table:
    """The eval at every size: native vs reference."""
    first = r["rows"][0]
    t = _table(f"troubleshooting eval vs runs: {first['scenario_id']}, {first['workers']} worker(s), "
               f"{first['selector']}; median (min-max) of {first['repeat']}",
               ("Runs", "Actions", "Success", "Native actions/s", "Runs/s", "Whole call", "Reference actions/s",
                "Ratio", "Peak RSS"))
    for row in r["rows"]:
        n, ref = row["native"], row["reference"]
        t.add_row(f"{row['runs']:,}", f"{n['actions']:,}", f"{100 * n['success_rate']:.2f}%",
                  _spread(n["actions_per_s"]), rate(n["runs_per_s"]["median"]),
                  rate(n["eval_actions_per_s"]["median"]), _spread(ref["actions_per_s"]), _ratio(row["ratio"]),
                  nbytes(row["peak_rss_bytes"]))
    t.caption = ("Native: run_eval -> Kernel.run_batch, kernel seconds; whole call adds judging the conditions. "
                 "Reference: the first min(runs, reference runs) seeds,\nper-run results identical. "
                 "Peak RSS: the process's, after the row.")
    return t


def jobs_table(r: dict) -> Table:
    """The eval's speed-up vs the jobs (threads) it runs on."""
    t = _table(f"jobs: troubleshooting eval of {r['runs']:,} runs on 1..N threads ({r['cores']} usable cores), "
               f"{r['scenario_id']}; median (min-max) of {r['repeat']}, interleaved",
               ("Jobs", "Runs/s", "Seconds", "Speed-up", "Best speed-up", "Efficiency"))
    for row in r["rows"]:
        low = row["jobs"] > 1 and row["efficiency_best"] < r["efficiency_floor"]
        t.add_row(f"{row['jobs']}", _spread(row["runs_per_s"]), _spread(row["seconds"], seconds),
                  f"{row['speedup']['median']:.2f}x ({row['speedup']['min']:.2f}-{row['speedup']['max']:.2f})",
                  f"{row['speedup_best']:.2f}x",
                  f"{100 * row['efficiency_best']:.0f}%" + (" (below the bar)" if low else ""))
    t.caption = (f"Seconds: the eval's engine time (threads' wall time, judging excluded). Speed-up: one job's "
                 f"best time / this row's; efficiency: best speed-up / jobs (bar {100 * r['efficiency_floor']:.0f}%)."
                 f"\nEvery row's runs identical to jobs=1 ({r['identical_runs']:,} runs). Load average "
                 f"{r['load_before']} before, {r['load_after']} after.")
    return t


def workers_table(r: dict) -> Table:
    """Cost of a tick vs the number of workers."""
    t = _table(f"scaling: workers on a {r['grid']}x{r['grid']} grid ({r['cells']:,} cells), spread start, "
               f"{r['selector']}, first {r['max_ticks']} ticks; median (min-max)",
               ("Workers", "Ticks", "Actions/tick", "Busy", "Tick p50", "Tick p99", "ns/action", "Actions/s",
                "B/worker", "RSS added"))
    for row in r["rows"]:
        t.add_row(f"{row['workers']:,}", f"{row['ticks']:,}", f"{row['actions_per_tick']:,.0f}",
                  f"{100 * row['busy_share']:.0f}%", _spread(row["tick_p50_s"], seconds),
                  _spread(row["tick_p99_s"], seconds), f"{row['ns_per_action']['median']:.0f}",
                  _spread(row["actions_per_s"]), f"{row['bytes_per_worker']:.0f}", nbytes(row["rss_added_bytes"]))
    t.caption = ("One timed step(1) call per tick; ns/action = summed tick latency / actions. B/worker: "
                 "Kernel.memory_bytes()['workers'] / workers.\nRSS added: resident memory after the runs minus "
                 "before building the kernel (node buffers for every cell are allocated, touched as used).")
    return t


def graph_table(r: dict) -> Table:
    """Cost vs the size of the explored graph."""
    t = _table(f"scaling: graph size, {r['workers']:,} workers, spread start, {r['selector']}, whole runs; "
               f"median (min-max)",
               ("Nodes", "Grid", "Ticks", "Actions/s, per tick", "One call", "Tick p50", "Tick p99", "B/node",
                "B/slot", "RSS added"))
    for row in r["rows"]:
        t.add_row(f"{row['nodes']:,}", f"{row['grid']}x{row['grid']}", f"{row['ticks']:,}",
                  _spread(row["actions_per_s_per_tick"]), rate(row["actions_per_s_one_call"]["median"]),
                  _spread(row["tick_p50_s"], seconds), _spread(row["tick_p99_s"], seconds),
                  f"{row['bytes_per_node']:.1f}", f"{row['bytes_per_node_slot']:.1f}", nbytes(row["rss_added_bytes"]))
    t.caption = ("B/node: Kernel.memory_bytes()['nodes'] (columns + dedup index) / nodes created; B/slot: per "
                 "slot of node_capacity. Process peak RSS: " + nbytes(r["peak_rss_bytes"]) + ".")
    return t


def peers_table(r: dict) -> Table:
    """Native, reference and Mesa on the same workloads."""
    t = _table("peers: the same workload, native vs pure-Python reference vs Mesa; median (min-max)",
               ("Workload", "Implementation", "Runs", "Actions", "Actions/s", "Native is"),
               left=("Workload", "Implementation"))
    for w in r["workloads"]:
        label = f"{w['workload']} ({w['services']} services, {w['workers']} worker{'s' if w['workers'] > 1 else ''})"
        n = w["native"]
        t.add_row(label, "native (run_eval, kernel s)", f"{n['runs']:,}", f"{n['actions']:,}",
                  _spread(n["actions_per_s"]), "")
        t.add_row("", "native, whole run_eval call", "", "", _spread(n["eval_actions_per_s"]), "")
        ref = w["reference"]
        t.add_row("", "reference (pure Python)", f"{ref['runs']:,}", f"{ref['actions']:,}",
                  _spread(ref["actions_per_s"]), _ratio(w["ratio_reference"]))
        m = w["mesa"]
        if "skipped" in m:
            t.add_row("", "Mesa", "", "", f"skipped: {m['skipped']}", "")
        else:
            t.add_row("", f"Mesa {m['version']}", f"{m['runs']:,}", f"{m['actions']:,}", _spread(m["actions_per_s"]),
                      _ratio(w["ratio_mesa"]))
    w = r["workloads"][0]
    t.caption = (f"Same seeds from {w['seed']}; every run the slower implementations made is identical to the "
                 "native one (verdict, ticks, actions, failures, actions per kind).\n" +
                 "; ".join(f"{w['workload']}: first {w['common_runs']:,} runs: {w['common_successes']:,} successes, "
                           f"{w['common_actions']:,} actions in all three" for w in r["workloads"]))
    return t


def pyenv_table(r: dict) -> Table:
    """A numpy environment vs the native one on the same swarm."""
    t = _table(f"python-env: numpy grid environment vs native, {r['grid']}x{r['grid']} grid, spread start, "
               f"{r['selector']}; median (min-max)",
               ("Workers", "Ticks", "Actions/tick", "Python env actions/s", "Native, per tick", "Native, fused",
                "Per tick / Python", "Fused / Python"))
    for row in r["rows"]:
        a = row["actions_per_s"]
        t.add_row(f"{row['workers']:,}", f"{row['ticks']:,}", f"{row['actions_per_tick']:,.0f}",
                  _spread(a["python"]), _spread(a["native-per-tick"]), _spread(a["native-fused"]),
                  f"{row['native_per_tick_over_python']['median']:.1f}x",
                  f"{row['native_fused_over_python']['median']:.1f}x")
    t.caption = ("All through Swarm. Python env: plan_tick, NumpyGrid.step, commit_tick per tick. Native, per "
                 "tick: the same loop with the native env (a no-op hook);\nnative, fused: Swarm.run() with many "
                 "ticks per native call. Final graphs identical node for node.")
    return t


def learn_table(r: dict) -> Table:
    """learn once vs stored sessions."""
    t = _table(f"learn: `learn once` vs stored sessions of {r['episodes_per_session']} episodes "
               f"({r['train_runs']:,} training / {r['heldout_runs']:,} held-out runs); median (min-max)",
               ("Sessions", "Episodes", "learn once", "load stats.json", "list sessions",
                "Rebuild from sessions", "Store on disk"))
    for row in r["rows"]:
        t.add_row(f"{row['sessions']:,}", f"{row['episodes']:,}", _spread(row["learn_once_s"], seconds),
                  _spread(row["load_stats_s"], seconds), _spread(row["list_sessions_s"], seconds),
                  _spread(row["rebuild_s"], seconds), nbytes(row["store_bytes"]))
    t.caption = (f"learn once reads the cumulative stats.json, not the sessions; it lists them once to find the "
                 f"newest scenario path. Rebuild: read and merge every session (not done by learn once; "
                 f"checked equal to stats.json).\nrecord_session: {seconds(r['record_session_s'])} per session "
                 f"(first {r['record_session_count']})"
                 + (f"; bulk-written sessions: {seconds(r['bulk_session_s'])} each." if r["bulk_count"] else "."))
    return t


def skip_line(name: str, reason: str) -> str:
    return f"{name}: skipped: {reason}"


def llm_tables(r: dict) -> list[Table | str]:
    """llama-server rows per workload, client cost, in-process rows."""
    if "skipped" in r:
        return [skip_line("llm", r["skipped"])]
    out: list[Table | str] = []
    srv = r["server"]
    if "failed" in srv:
        out.append(f"llm: failed: {srv['failed']}")
    for workload in (() if "failed" in srv else ("prefill", "cached")):
        w = srv[workload]
        t = _table(f"llm: llama-server, {workload} workload, {srv['workers']} workers, {srv['slots']} slots, "
                   f"{srv['threads']} thread; decisions/s median (min-max) over ticks",
                   ("Row", "Decisions/s (total)", "Per tick", "Cache hit", "Prompt tok", "Gen tok"), left=("Row",))
        for row in w["rows"]:
            t.add_row(row["label"], f"{row['decisions_per_s']:.3g}",
                      _spread(row["tick_decisions_per_s"], _num) if row["tick_decisions_per_s"] else "",
                      f"{row['cache_hit_rate']:.2f}", f"{row['prompt_tokens'] / max(1, row['decisions']):.0f}",
                      f"{row['completion_tokens'] / max(1, row['decisions']):.1f}")
        t.caption = ("engine overhead (bare / invoker - 1): " +
                     ", ".join(f"{m} {v:+.1%}" for m, v in w["engine_overhead"].items()) +
                     "; batched / sequential: " +
                     ", ".join(f"{m} {v:.2f}x" for m, v in w["batched_over_sequential"].items()) +
                     f"; label answers: {w['label_over_json']:.2f}x JSON, overhead {w['label_engine_overhead']:+.1%}"
                     + (f", {w['label_of_limit']:.2f} of the server's own rate" if w.get("label_of_limit") else ""))
        out.append(t)
    cc = r["client_cost_us"]
    out.append("llm: client cost per decision (canned answers): " + ", ".join(
        f"{m}: invoker {v['invoker_us']:.0f} us, bare httpx {v['bare_us']:.0f} us" for m, v in cc.items()))
    ip = r["inprocess"]
    if "skipped" in ip:
        out.append(skip_line("llm in process", ip["skipped"]))
    elif "failed" in ip:
        out.append(f"llm: failed: {ip['failed']}")
    else:
        t = _table(f"llm: in process (llama-cpp-python, {ip['model']}, {ip['threads']} threads, {ip['workers']} "
                   f"workers, {ip['prompt_tokens_per_decision']:.0f} prompt tokens per decision of which "
                   f"{ip['tokens_after_system_prompt']:.0f} after the cached system prompt); decisions/s median "
                   "(min-max) over rounds", ("Row", "Decisions/s"), left=("Row",))
        for row, d in ip["decisions_per_s"].items():
            t.add_row(row, _spread(d, _num))
        t.caption = (f"label batched / bare llama_decode loop (of the limit): {ip['of_limit']['median']:.2f}; "
                     f"label batched / one call at a time: {ip['batched_over_sequential']['median']:.2f}x; "
                     f"label batched / JSON one call at a time: {ip['label_over_json_sequential']['median']:.1f}x; "
                     f"bare loop chose the same label {ip['bare_agreement']:.0%}")
        out.append(t)
    return out


def suite_tables(report: dict) -> list[Table | str]:
    """Every table of a report, in run order."""
    out: list[Table | str] = []
    res = report["suites"]
    ex = res.get("exploration", {})
    if "troubleshooting" in ex:
        out.append(eval_curve_table(ex["troubleshooting"]))
    if "jobs" in ex:
        out.append(jobs_table(ex["jobs"]))
    if "selectors" in ex:
        out.append(exploration_table(ex["selectors"]))
    if "swarm" in ex:
        out.extend(swarm_tables(ex["swarm"]))
    if "workers" in ex:
        out.append(workers_table(ex["workers"]))
    if "graph" in ex:
        out.append(graph_table(ex["graph"]))
    if "peers" in res:
        out.append(peers_table(res["peers"]))
    if "python-env" in res:
        out.append(pyenv_table(res["python-env"]))
    if "learn" in res:
        out.append(learn_table(res["learn"]))
    if "llm" in res:
        out.extend(llm_tables(res["llm"]))
    return out
