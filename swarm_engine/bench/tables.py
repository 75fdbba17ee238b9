"""Rich tables for a ``run_suites`` report (the CLI prints them; the JSON
report holds the same numbers unrounded)."""

from __future__ import annotations

from rich.table import Table

__all__ = ["machine_line", "troubleshooting_table", "exploration_table", "swarm_tables", "rate", "seconds",
           "nbytes"]


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
    t = _table("exploration: troubleshooting, 16 services, 4 workers, groups per (action, target), "
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
