"""``swarm learn once|show|status|rollback``: the offline model."""

from __future__ import annotations

import json

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from swarm_engine.cli import options
from swarm_engine.cli.cluster_eval import eval_runner
from swarm_engine.learn.model import OfflineModel
from swarm_engine.learn.offline import LearnError, learn_once, resolve_target
from swarm_engine.learn.score import rate
from swarm_engine.learn.store import LearningStore
from swarm_engine.settings import load_settings

__all__ = ["register"]

console = Console()

TARGET = typer.Argument(..., help="A scenario file, or a learning key (e.g. user_troubleshooting).")
KEY = typer.Option(None, "--learning-key", help="Learning store key (default: from the scenario's meta.id).")


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def _store() -> LearningStore:
    return LearningStore(on_problem=lambda line: console.print(f"[yellow]warning:[/] {line}", highlight=False,
                                                                soft_wrap=True))


def once_command(
    target: str = TARGET,
    key: str | None = KEY,
    train_runs: int = typer.Option(1000, "--train-runs", min=10, max=10**9, help="Simulated runs per candidate."),
    heldout_runs: int = typer.Option(2000, "--heldout-runs", min=10, max=10**9, help="Simulated runs to validate on."),
    budget: float = typer.Option(120.0, "--budget", min=0.0, max=1e7, help="Seconds the parameter search may take."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Learn and validate, but do not apply."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    jobs: int | None = options.JOBS,
    cluster: str | None = options.CLUSTER,
    chunk_cpus: int = options.CHUNK_CPUS,
) -> None:
    """Learn once: statistics, a parameter search by simulation, validation on held-out seeds."""
    store = _store()
    n_jobs, _asked = options.resolve_jobs(jobs, load_settings())
    with eval_runner(cluster, chunk_cpus=chunk_cpus) as evaluate, \
            console.status("learning...", spinner="dots") if not as_json else _null():
        out = learn_once(target, store=store, key=key, apply=not dry_run, train_runs=train_runs,
                         heldout_runs=heldout_runs, budget_seconds=budget,
                         progress=None if as_json else _say, jobs=n_jobs,
                         evaluate=None if cluster is None else evaluate)
    if as_json:
        print(json.dumps({"key": out.key, "applied": out.applied, "version": out.version,
                          "previous_version": out.previous_version, "lines": out.lines,
                          "validation": out.validation, "seconds": round(out.seconds, 3)}, indent=2))
        return
    for line in out.lines:
        _say(line)
    if out.model is not None and out.applied:
        _say(f"offline model: {out.model.summary()}  ->  {store.offline_model_path(out.key)}")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _model_or_exit(store: LearningStore, key: str) -> OfflineModel:
    m = store.load_model(key)
    if m is None:
        raise LearnError(f"learning key '{key}': no offline model yet; run: swarm learn once {key}")
    return m


def show_command(target: str = TARGET, key: str | None = KEY,
                 top: int = typer.Option(8, "--top", min=1, max=10_000,
                                         help="How many learned priors to list.")) -> None:
    """Show the offline model: parameters, recommended paths, learned priors, validation."""
    store = _store()
    k, _ = resolve_target(target, store, key)
    m = _model_or_exit(store, k)
    _say(f"{k}: offline model {m.summary()}, learned {m.created}")
    t = Table(title="Recommended paths", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("Path")
    t.add_column("Success", justify="right")
    t.add_column("Support", justify="right")
    for p in m.recommended_paths:
        t.add_row(" -> ".join(p.path), f"{100 * p.success_rate:.1f}%", str(p.support))
    console.print(t)
    rows = []
    for kind, table in (("target", m.prior.targets), ("arg", m.prior.args)):
        for a, per in table.items():
            for name, (ok, fail) in per.items():
                rows.append((rate(ok, fail), ok + fail, f"{a}({name})", kind, ok, fail))
    rows.sort(key=lambda r: (-r[0], -r[1]))
    if rows:
        t = Table(title="Learned priors (children tried first)", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
        for col in ("Child", "Kind", "Ok", "Fail", "Rate"):
            t.add_column(col, justify="left" if col in ("Child", "Kind") else "right")
        for r, _n, label, kind, ok, fail in rows[:top]:
            t.add_row(label, kind, str(ok), str(fail), f"{r:.2f}")
        console.print(t)
    v = m.validation.get("heldout")
    if v:
        _say(f"validated on {m.validation.get('heldout_runs')} held-out seeds: in use "
             f"{v['in_use']['mean_actions_to_success']} -> new {v['new']['mean_actions_to_success']} "
             f"actions to success; success {100 * v['in_use']['success_rate']:.1f}% -> "
             f"{100 * v['new']['success_rate']:.1f}%")
    for line in m.changes:
        _say(f"  {line}")


def status_command(target: str = TARGET, key: str | None = KEY) -> None:
    """Episodes, sessions, model versions and daemon state of one learning key."""
    store = _store()
    k, sc = resolve_target(target, store, key)
    stats = store.load_stats(k)
    sessions = store.sessions(k)
    m = store.load_model(k)
    _say(f"learning key: {k}  ({store.scenario_dir(k)})")
    _say(f"scenario: {sc.path if sc is not None else 'unknown (no session names an existing file)'}")
    _say(f"episodes: {stats.episodes} ({stats.success_episodes} successful) in {len(sessions)} sessions")
    _say(f"offline model: {m.summary() if m else 'none'}; versions kept: "
         f"{', '.join(f'v{v}' for v in store.model_versions(k)) or 'none'}")
    lora = store.scenario_dir(k) / "lora" / "active.json"
    if lora.is_file():
        _say(f"LoRA adapter: {lora.read_text(encoding='utf-8').strip()}")
    daemon = store.scenario_dir(k) / "daemon.json"
    if daemon.is_file():
        try:
            d = json.loads(daemon.read_text(encoding="utf-8"))
            alive = _alive(d.get("pid")) and d.get("state") not in ("stopped", "failed")
            _say(f"daemon: {d.get('state', '?')} (pid {d.get('pid')}, {'running' if alive else 'not running'}), "
                 f"trigger '{d.get('trigger')}', {d.get('learns', 0)} learns, "
                 f"{d.get('episodes_since_learn', 0)} episodes since the last")
            t = d.get("last_trigger") or {}
            if t:
                _say(f"  last trigger: {t.get('at')} ({t.get('reason')}, {t.get('episodes')} episodes)")
            r = d.get("last_result") or {}
            if r:
                what = (f"applied v{r.get('version')}" if r.get("applied") else
                        f"error: {r['error']}" if r.get("error") else "not applied")
                _say(f"  last result: {r.get('at')}: {what}")
            serving = d.get("serving") or {}
            if serving:
                _say(f"  serving: {serving.get('endpoint')} {serving.get('state')} ({serving.get('active_color')}, "
                     f"adapter v{serving.get('adapter_version')})")
        except (OSError, ValueError) as exc:
            _say(f"daemon: unreadable status file {daemon} ({exc})")
    else:
        _say("daemon: not started")


def _alive(pid) -> bool:
    import os

    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, TypeError, ValueError):
        return False


def rollback_command(target: str = TARGET, key: str | None = KEY,
                     to: int | None = typer.Option(None, "--to", min=0, max=2**31 - 1,
                                                      help="Version to go back to (0: no model).")) -> None:
    """Put the previous offline model version (or --to N) back in use; from the
    first version, back to the scenario's own settings."""
    store = _store()
    k, _ = resolve_target(target, store, key)
    before = store.load_model(k)
    done, m = store.rollback_model(k, to)
    kept = ", ".join(f"v{v}" for v in store.model_versions(k)) or "none"
    if not done:
        what = f"no model version {to} kept" if to else "no offline model in use"
        raise LearnError(f"learning key '{k}': {what} (kept: {kept})")
    was = f"v{before.version}" if before else "none"
    now = f"v{m.version} ({m.summary()})" if m else "no model (the scenario's own settings)"
    _say(f"{k}: offline model {was} -> {now}; kept: {kept}")


def register(app: typer.Typer) -> None:
    app.command("once")(once_command)
    app.command("show")(show_command)
    app.command("status")(status_command)
    app.command("rollback")(rollback_command)
