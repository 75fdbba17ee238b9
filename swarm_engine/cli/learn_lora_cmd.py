"""``swarm learn lora``: train a LoRA adapter from a scenario's recorded LLM decisions.

Needs the ``train`` extra (``pip install torch==2.13.0`` first, then
``pip install 'swarm-engine[train]'``); the decisions come from
``swarm eval SCENARIO --learning`` on an LLM-managed scenario.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = ["register", "lora_command"]

console = Console()


def _fmt_acc(d: dict | None) -> str:
    if not d or d.get("accuracy") is None:
        return "-"
    return f"{d['accuracy']:.0%} ({d['correct']}/{d['n']})"


def _summary(res) -> Table:
    t = Table(title=f"swarm learn lora: {res.key} v{res.version}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    tr = res.train
    d = res.data
    t.add_row("data", f"{d['records']} decisions -> {d['examples']} examples; trained on {d['train']['examples']} "
                      f"({d['train']['pairs']} with a rejected answer), {d['heldout']['examples']} held out "
                      f"({d['heldout']['seeds']} seeds)")
    loss = (f"{tr['first_loss']:.3f} -> {tr['final_loss']:.3f}" if tr["first_loss"] is not None else "-")
    t.add_row("training", f"{tr['steps']} steps in {tr['seconds']:.0f} s (+{tr['load_seconds']:.0f} s loading); "
                          f"loss {loss}")
    a = tr["adapter"]
    t.add_row("adapter", f"{res.adapter} ({res.adapter_bytes / 1e6:.1f} MB; rank {a['rank']}, alpha {a['alpha']:g}, "
                         f"{', '.join(a['targets'])}, blocks {a['layers'][0]}-{a['layers'][-1]})")
    g = res.agreement
    q = g["quantized"]
    t.add_row("llama.cpp check", f"answer log-probs within {g['max_seq']:.3f} nats of the trained model "
                                 f"({g['n']} prompts, {g['reference']}; limit {g['tolerance']})")
    t.add_row("  quantized model", f"within {q['adapter']['max_seq']:.3f} nats with the adapter, "
                                   f"{q['base']['max_seq']:.3f} without (quantized arithmetic)")
    if res.accuracy:
        acc = res.accuracy
        cur = acc.get("current")
        t.add_row("held-out accuracy", f"base {_fmt_acc(acc.get('base'))}"
                                       + (f", active v{cur.get('version')} {_fmt_acc(cur)}" if cur else "")
                                       + f" -> adapter {_fmt_acc(acc.get('adapter'))} on {acc['asked']} decisions")
        for action in sorted(acc["adapter"]["by_action"]):
            b = acc["base"]["by_action"].get(action, {"n": 0, "correct": 0})
            x = acc["adapter"]["by_action"][action]
            t.add_row(f"  {action}", f"base {b['correct']}/{b['n']} -> adapter {x['correct']}/{x['n']}")
    why = "worse on held-out decisions than what is in use" if res.held_back else "--no-activate"
    t.add_row("active", f"v{res.version}" if res.activated else f"unchanged ({why})")
    t.add_row("total", f"{res.seconds:.0f} s")
    return t


def lora_command(
    target: str = typer.Argument(..., metavar="SCENARIO_OR_KEY", help="A scenario file or a learning key."),
    steps: int = typer.Option(250, "--steps", min=1, max=1_000_000, help="Optimizer steps."),
    rank: int = typer.Option(16, "--rank", min=1, max=1024, help="LoRA rank r."),
    alpha: float | None = typer.Option(None, "--alpha", min=0.0, max=1e6, help="LoRA alpha [2 x rank]."),
    targets: str = typer.Option("q,v,gate,up,down", "--targets", help="Adapted weights: q,k,v,o,gate,up,down "
                                                         "(or attn_q..., q_proj..., attn, mlp, all)."),
    layers: int = typer.Option(10, "--layers", min=0, max=10_000, help="Adapt the top N blocks (0 = all)."),
    lr: float = typer.Option(2e-3, "--lr", min=0.0, max=10.0, help="Learning rate."),
    batch: int = typer.Option(4, "--batch", min=1, max=4096, help="Examples per step."),
    holdout: float = typer.Option(0.2, "--holdout", min=0.0, max=0.9, help="Fraction of seeds held out."),
    max_examples: int = typer.Option(200, "--max-examples", min=1, max=10_000_000,
                                     help="Train on at most this many examples, balanced over the answers."),
    evaluate: bool = typer.Option(False, "--eval/--no-eval",
                                  help="Measure held-out decision accuracy with vs without the adapter."),
    eval_max: int = typer.Option(48, "--eval-max", min=1, max=1_000_000, help="Held-out decisions asked by --eval."),
    activate: bool = typer.Option(True, "--activate/--no-activate",
                                  help="Make the new adapter the active one "
                                       "(with --eval: only when no worse than the one in use)."),
    model: str | None = typer.Option(None, "-m", "--model", help="Base GGUF model [SmolLM2-135M-Instruct]."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Shuffling and initialisation seed."),
    threads: int | None = typer.Option(None, "--threads", min=1, max=1024, help="CPU threads for training."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Train a LoRA adapter on the recorded LLM decisions of a scenario, convert it to
    GGUF, check it against llama.cpp and make it the active adapter."""
    from swarm_engine.learn.daemon import resolve_target
    from swarm_engine.learn.lora.config import TrainConfig, parse_targets, require_train
    from swarm_engine.learn.lora.pipeline import learn_lora
    from swarm_engine.learn.store import LearningStore

    require_train()
    store = LearningStore()
    key, _ = resolve_target(target, store)
    config = TrainConfig(steps=steps, rank=rank, alpha=alpha if alpha else 2.0 * rank, targets=parse_targets(targets),
                         layers=layers, lr=lr, batch=batch, seed=seed, threads=threads)

    def say(line: str) -> None:
        if not quiet:
            console.print(f"[dim]{line}[/]", highlight=False)

    if quiet:
        res = learn_lora(store, key, config=config, base_model=model, holdout=holdout, max_examples=max_examples,
                         evaluate=evaluate, eval_max=eval_max, activate=activate)
    else:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int, loss: float | None) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total, info="")
                bar.update(tasks[phase], completed=done, info=f"loss {loss:.3f}" if loss is not None else "")

            res = learn_lora(store, key, config=config, base_model=model, holdout=holdout,
                             max_examples=max_examples, evaluate=evaluate, eval_max=eval_max, activate=activate,
                             status=say, progress=progress)
    for line in res.problems:
        console.print(line, style="yellow", highlight=False, markup=False)
    console.print(_summary(res))


def register(learn_app: typer.Typer) -> None:
    """Add ``lora`` to the ``swarm learn`` group."""
    learn_app.command("lora")(lora_command)
