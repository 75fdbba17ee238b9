"""``swarm eval``: run scenarios N times, print a table, write the JSON report."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from swarm_engine.cli import options
from swarm_engine.cli.cluster_eval import Runner, eval_runner
from swarm_engine.cli.eval_files import EvalFiles, expand
from swarm_engine.core.hooks import Hook
from swarm_engine.errors import ConfigError, ScenarioError, SwarmError
from swarm_engine.eval.jobs import resolve_jobs
from swarm_engine.eval.loader import Scenario, list_variants, load_scenario
from swarm_engine.eval.memory import check_memory, estimate, memory_limit
from swarm_engine.eval.report import SCHEMA_VERSION, build_report
from swarm_engine.eval.runner import EvalResult, run_eval
from swarm_engine.fsio import write_json
from swarm_engine.inputs import limits, parse_toml, read_text
from swarm_engine.learn.eval_session import LearningSession
from swarm_engine.settings import load_settings

__all__ = ["register", "SnapshotHook", "llm_lines", "LlmColumn"]

console = Console()
err_console = Console(stderr=True)


def warn(line: str) -> None:
    """One warning line on stderr."""
    err_console.print(f"warning: {line}", style="yellow", highlight=False, markup=False, soft_wrap=True)


class LlmColumn(ProgressColumn):
    """The model's work while an LLM eval runs: calls in flight, applied
    decisions/s, failed decisions (read live from the runner's LlmStats)."""

    def __init__(self, stats) -> None:
        super().__init__()
        self.stats = stats

    def render(self, task) -> Text:
        st = self.stats
        rate = st.rate()
        text = f"llm {st.in_flight} in flight, {st.applied} applied ({rate or 0:.1f}/s)"
        if st.failed:
            text += f", {st.failed} failed"
        return Text(text, style="red" if st.failed else "cyan")


def _counts(by: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))


def llm_lines(llm: dict) -> tuple[str, str | None]:
    """The printed ``llm:`` line of an eval and its warning line (None: nothing to warn about)."""
    if llm.get("available") is False:
        return ("llm: unavailable, ran on the bandit alone: 0 calls, 0 decisions applied",
                f"the LLM was unavailable: {llm.get('unavailable_reason', '')}")
    line = (f"llm: {llm['invocations']} calls, {llm['errors']} errors, {llm['retries']} retries; decisions "
            f"{llm.get('applied', llm.get('llm_decisions', 0))} applied, {llm.get('unsure', 0)} unsure, "
            f"{llm.get('taken', 0)} taken, {llm.get('failed', 0)} failed, {llm.get('single', 0)} single "
            f"({llm['fallbacks']} fallbacks); {llm['decisions_per_sec'] or 0:.2f} applied decisions/s; "
            f"latency p50 {llm['latency_ms_p50'] or 0:.0f} ms p95 {llm['latency_ms_p95'] or 0:.0f} ms; "
            f"waited on the model {llm.get('wait_seconds', 0):.1f} s; prompt tokens {llm['prompt_tokens']} "
            f"(cached {llm['cached_prompt_tokens']})")
    failed = llm.get("failed", 0)
    if not failed:
        return line, None
    first = llm.get("first_failure") or {}
    where = (f"; first in run {first.get('run')} (seed {first.get('seed')}) at tick {first.get('tick')}: "
             f"{first.get('message', '')}") if first else ""
    return line, (f"{failed} LLM decisions failed ({_counts(llm.get('failed_by_cause', {}))}); those workers "
                  f"fell back to the bandit{where}")


class SnapshotHook(Hook):
    """-v: one block per tick: who did what, frontier size, best selector scores."""

    def __init__(self, scenario: Scenario, out: Console, top: int = 4) -> None:
        self.scenario = scenario
        self.out = out
        self.top = top

    def on_action(self, swarm, events) -> None:
        b = self.scenario.binding
        name = b.target_names or str
        arg_names = self.scenario.planned_rules().args
        self.out.print(f"[bold]tick {swarm.tick - 1}[/]  frontier {swarm.kernel.n_open}  "
                       f"actions {swarm.kernel.total_visits}", highlight=False)
        for row in (events.rows() if events is not None else []):
            target = name(row["target"]) if row["target"] >= 0 else ""
            arg = arg_names.name(row["arg"]) if row["arg"] >= 0 else ""
            text = ""
            if b.renderer is not None:
                text = b.renderer({"op": int(b.ops[row["action"]]), "target": row["target"],
                                   "arg": row["arg"], "arg_name": arg,
                                   "outcome": {"fail": 0, "ok": 1, "error": 2}[row["outcome"]]},
                                  swarm.seed)
            args = ", ".join(x for x in (target, arg) if x)
            self.out.print(f"  w{row['worker']} {self.scenario.actions[row['action']]}({args}) "
                           f"-> {row['outcome']}  {text}", highlight=False, soft_wrap=True, markup=False)
        scores = swarm.frontier_scores()[: self.top]
        if scores:
            self.out.print("  next: " + ", ".join(f"{a}({t or ''})={s:.3f}" for a, t, _, s in scores),
                           highlight=False, markup=False)


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def error_line(line: str) -> None:
    """One error line on stderr (a file a many-file eval could not run; the eval goes on)."""
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _variants(f: Path) -> None:
    raw = parse_toml(read_text(f, limit=limits.MAX_SCENARIO_BYTES, error=ScenarioError), str(f), ScenarioError)
    variants = list_variants(raw)
    console.print(f"[bold]{f}[/]: " + ("" if variants else "no variants"), highlight=False)
    for name, desc in variants:
        console.print(f"  {name}  {desc}", highlight=False, markup=False)


def _write_output(output: Path, reports: list[dict], files: EvalFiles) -> None:
    if len(files.files) == 1 and len(reports) == 1:
        write_json(output, reports[0])
        return
    doc: dict = {"schema_version": reports[0]["schema_version"] if reports else SCHEMA_VERSION,
                 "scenarios": reports}
    if files.errors:
        doc["errors"] = files.report()
    write_json(output, doc)


def _fmt_ci(lo: float, hi: float) -> str:
    return f"{100 * lo:.1f}-{100 * hi:.1f}%"


def _si(x: float) -> str:
    """7496138 -> 7.50M: compact enough for an 80-column table."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"      # LLM-managed runs: 0.45, not 0


def _row(result: EvalResult, report: dict) -> list[str]:
    s = report["summary"]
    aps = s["actions_per_sec"]
    return [result.scenario.name + (f" [{result.scenario.variant}]" if result.scenario.variant else ""),
            f"{s['runs']}", f"{100 * s['success_rate']:.1f}%", _fmt_ci(*s["success_rate_ci95"]),
            f"{s['ticks']['mean']:.1f}/{s['ticks']['p95']:.0f}" if s["runs"] else "-",
            f"{s['actions']['mean']:.1f}/{s['actions']['p95']:.0f}" if s["runs"] else "-",
            _si(aps) if aps else "-", f"{s['wall_seconds']:.3f}"]


def _table(rows: list[list[str]], title: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
              caption="ticks, actions: mean/p95 per run; Act/s, Secs: engine time, start-up excluded",
              caption_justify="left")
    t.add_column("Scenario", justify="left", min_width=12, ratio=1)
    for col in ("Runs", "Success", "95% CI", "Ticks", "Actions", "Act/s", "Secs"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(*r)
    return t


def _run_one(scenario: Scenario, runs: int, seed: int, quiet: bool, trace: Path | None,
             recorder=None, llm_fallback: bool = False, jobs: int = 1,
             run_eval: Runner = run_eval, watched=None) -> EvalResult:
    """One eval with its progress bar (none when ``quiet``); ``watched``: the
    dashboard's view of it (``--gui``), fed by the same progress callback."""
    from swarm_engine.llm.stats import LlmStats

    stats = LlmStats() if scenario.llm_managed else None
    feed = (lambda done, ok: watched.progress(done, ok, stats)) if watched is not None else None
    if quiet:
        return run_eval(scenario, runs, seed, trace=trace, recorder=recorder, llm_fallback=llm_fallback,
                        llm_stats=stats, warn=warn, jobs=jobs, progress=feed)
    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("ok {task.fields[ok]}")]
    if stats is not None:
        columns.append(LlmColumn(stats))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(scenario.name, total=runs, ok=0)

        def progress(done: int, ok: int) -> None:
            bar.update(task, completed=done, ok=ok)
            if feed is not None:
                feed(done, ok)

        return run_eval(scenario, runs, seed, trace=trace, recorder=recorder, llm_fallback=llm_fallback,
                        llm_stats=stats, warn=warn, jobs=jobs, progress=progress)


def eval_command(
    scenarios: list[Path] = typer.Argument(..., help="Scenario files or directories of them."),
    runs: int | None = options.RUNS,
    seed: int | None = options.SEED,
    jobs: int | None = options.JOBS,
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the JSON report here."),
    verbose: bool = options.VERBOSE,
    quiet: bool = options.QUIET,
    variant: str | None = options.VARIANT,
    list_variants_: bool = typer.Option(False, "--list-variants", help="List the variants and exit."),
    trace: Path | None = typer.Option(None, "--trace", help="Write one JSON line per action event."),
    fail_under: float | None = typer.Option(None, "--fail-under", min=0.0, max=1.0,
                                               help="Exit 1 when a success rate is below this."),
    provider: str | None = options.PROVIDER,
    model: str | None = options.MODEL,
    endpoint: str | None = options.ENDPOINT,
    learning: bool | None = options.LEARNING,
    learning_key_: str | None = options.LEARNING_KEY,
    no_learned_model: bool = options.NO_LEARNED_MODEL,
    llm_fallback: bool | None = options.LLM_FALLBACK,
    memory: str | None = options.MEMORY_LIMIT,
    cluster: str | None = options.CLUSTER,
    hosts_per_node: int = options.HOSTS_PER_NODE,
    chunk_cpus: int = options.CHUNK_CPUS,
    gui: bool = typer.Option(False, "--gui", help="Watch the eval in the dashboard (needs the gui extra): served "
                                                  "on 127.0.0.1 while it runs, up until Ctrl-C after it when "
                                                  "this is a terminal."),
    gui_port: int = typer.Option(0, "--gui-port", min=0, max=65535, help="The dashboard's port [0: a free one]."),
) -> None:
    """Run each scenario RUNS times with seeds SEED, SEED+1, ... and report.

    An LLM-managed scenario checks its backend before the first run; one that
    does not answer is an error (exit 1) unless --llm-fallback is given."""
    settings = load_settings()
    fallback = options.resolve_llm_fallback(llm_fallback, settings)
    runs = options.resolve_runs(runs, settings)
    seed = options.resolve_seed(seed, settings)
    n_jobs, asked = options.resolve_jobs(jobs, settings)
    n_jobs = resolve_jobs(n_jobs)
    learning = options.resolve_learning(learning, settings)
    files = expand(scenarios)
    for _, message in files.errors:
        error_line(message)
    if list_variants_:
        for f in files.files:
            files.attempt(f, error_line, _variants, f)
        if files.errors:
            raise typer.Exit(1)
        return
    options.check_seeds(seed, runs)
    overrides = options.scenario_overrides(provider, model, endpoint)
    # every file validated (and its memory estimated) before any runs; in a directory
    # eval a bad one is one line and the rest go on
    limit = memory_limit(memory)
    record = trace is not None or learning
    loaded = [(i, sc) for i, f in enumerate(files.files)
              if (sc := files.attempt(f, error_line, _load_checked, f, variant, overrides, memory, limit, runs,
                                      record, n_jobs)) is not None]
    rows, reports = [], []
    dash = _dashboard(files.files, gui_port) if gui and loaded else None
    try:
        with eval_runner(cluster, trace=trace, learning=learning, memory=memory,
                         hosts_per_node=hosts_per_node, chunk_cpus=chunk_cpus) as runner:
            for i, sc in loaded:
                ran = _eval_watched(files, dash, i, sc, runs, seed, quiet, verbose, trace, learning,
                                    learning_key_, no_learned_model, fallback, n_jobs, runner, output)
                if ran is None:
                    continue
                result, report = ran
                if asked and result.jobs.get("reason"):
                    warn(f"{result.scenario.name}: ran on one core: {result.jobs['reason']}")
                reports.append(report)
                rows.append(_row(result, report))
                if result.stopped:
                    by = " (Stop on the dashboard)" if dash and dash.watched[-1].stopped_from_page else ""
                    console.print(f"[yellow]stopped{by}: {result.runs} of {runs} runs finished[/]")
                    break
        if output:
            _write_output(output, reports, files)
        if dash is not None and not quiet and console.is_terminal and sys.stdin.isatty():
            _summary(rows, reports, output)
            rows = []
            dash.wait_for_ctrl_c(lambda line: console.print(line, highlight=False, markup=False))
    finally:
        if dash is not None:
            dash.close()
    _summary(rows, reports, output, quiet)
    if files.errors:
        err_console.print(f"{len(files.errors)} scenario file(s) or folder(s) could not be evaluated; "
                          "see the error lines above", highlight=False, soft_wrap=True)
    if fail_under is not None and any(r["summary"]["success_rate"] < fail_under for r in reports):
        raise typer.Exit(1)
    if any(r["summary"]["stopped"] for r in reports):
        raise typer.Exit(130)
    if files.errors:
        raise typer.Exit(1)


def _summary(rows: list[list[str]], reports: list[dict], output: Path | None, quiet: bool = False) -> None:
    """The table, the LLM lines and where the report went (nothing when ``quiet`` or no rows)."""
    if quiet or not rows:
        return
    console.print(_table(rows, "swarm eval" if len(rows) == 1 else "swarm eval: comparison"))
    for r in reports:
        llm = r["summary"].get("llm")
        if llm:
            line, warning = llm_lines(llm)
            console.print(line, highlight=False, markup=False, soft_wrap=True)
            if warning:
                console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False,
                              soft_wrap=True)
    if output:
        console.print(f"report: {output}", highlight=False)


def _dashboard(paths: list[Path], port: int):
    """The dashboard of ``--gui``, serving now; one line when the gui extra is missing."""
    try:
        from swarm_engine.gui.watch import Dashboard
    except ImportError as exc:
        raise ConfigError(f"--gui needs the 'gui' extra: pip install 'swarm-engine[gui]' ({exc})",
                          path="--gui") from None
    dash = Dashboard.start(paths, port=port)
    err_console.print(f"swarm eval: watch it at {dash.url}", highlight=False, markup=False, soft_wrap=True)
    return dash


def _eval_watched(files: EvalFiles, dash, i: int, sc: Scenario, runs: int, seed: int, quiet: bool, verbose: bool,
                  trace: Path | None, learning: bool, learning_key: str | None, no_learned_model: bool,
                  fallback: bool, jobs: int, runner: Runner, output: Path | None) -> tuple[EvalResult, dict] | None:
    """One scenario's eval (one error line and None when it fails), shown on the dashboard when there is one."""
    many = len(files.files) > 1
    t = trace if not many or trace is None else trace.with_name(f"{trace.stem}.{i}{trace.suffix}")
    watched = dash.track(sc, runs, seed) if dash is not None else None
    if watched is not None:
        err_console.print(f"  {sc.name}: {dash.url}{watched.url_path}", highlight=False, markup=False,
                          soft_wrap=True)
    try:
        ran = files.attempt(sc.path or "", error_line, _eval_one, sc, runs, seed, quiet, verbose, t,
                            learning, learning_key, no_learned_model, fallback, jobs, runner, watched)
    except SwarmError as exc:
        if watched is not None:
            watched.fail(str(exc))
        raise
    if watched is not None:
        if ran is None:
            watched.fail(files.errors[-1][1] if files.errors else "the eval failed")
        else:
            single = output if output is not None and len(files.files) == 1 else None
            watched.finish(ran[0], ran[1], saved=single)
    return ran


def _eval_one(sc: Scenario, runs: int, seed: int, quiet: bool, verbose: bool, trace: Path | None,
              learning: bool, learning_key: str | None, no_learned_model: bool,
              fallback: bool, jobs: int = 1, runner: Runner = run_eval, watched=None) -> tuple[EvalResult, dict]:
    """One scenario's eval (after its -v walk-through of one run): the result and its report."""
    if verbose and not sc.llm_managed:
        sw = sc.swarm(seed)
        sw.add_hook(SnapshotHook(sc, console))
        res = sw.run()
        console.print(f"[bold]run seed {seed}:[/] {res.verdict.reason} in {res.ticks} ticks, "
                      f"{res.actions} actions", highlight=False)
    session = LearningSession.open(sc, learning=learning, key=learning_key, use_model=not no_learned_model,
                                   say=None if quiet else _say)
    result = _run_one(session.scenario, runs, seed, quiet, trace, session.recorder, fallback, jobs, runner, watched)
    report = build_report(result, lazy_runs=True, adapter_version=session.adapter)
    if trace is not None:              # the dashboard opens a run's events from here
        report["manifest"]["trace"] = str(trace.resolve())
    report["learning"] = session.close(result, seed, say=None if quiet else _say)
    return result, report


def _load_checked(f: Path, variant: str | None, overrides: dict, memory: str | None, limit: tuple[int | None, str],
                  runs: int, record: bool, jobs: int = 1) -> Scenario:
    """Load one scenario and refuse it when its eval would need more memory than the limit."""
    sc = load_scenario(f, variant, overrides, memory=memory)
    check_memory(estimate(sc.binding, sc.config, sc.rules, len(sc.actions), runs, record_events=record, jobs=jobs),
                 limit, source=sc.path)
    return sc


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
