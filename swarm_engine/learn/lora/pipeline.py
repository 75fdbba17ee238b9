"""``swarm learn lora`` as a library call: recorded decisions -> examples ->
trained adapter -> GGUF -> checked -> ``lora/vN/`` -> active.

One call, :func:`learn_lora`, does it all and returns a :class:`LoraResult`;
the CLI only draws progress and the summary. ``lora/vN/`` holds::

    adapter.gguf          the adapter llama.cpp loads (llama-server --lora, LlamaCppInvoker)
    adapter.safetensors   the same LoRA weights under PEFT's names
    train.jsonl           the training examples (chat JSONL, one per line)
    heldout.jsonl         the held-out examples (never trained on)
    metrics.json          config, data counts, losses, agreement, accuracy

The adapter only becomes active (``lora/active.json``) when its log-probs
under llama.cpp agree with the trained model's within ``tolerance`` nats; a
failed check keeps the folder for inspection and raises.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarm_engine.errors import ConfigError, LlmPermanentError
from swarm_engine.fsio import write_json
from swarm_engine.learn.lora import active as _active
from swarm_engine.learn.lora.config import TrainConfig
from swarm_engine.learn.lora.data import Example, build_examples, load_decisions, split_by_seed, summarize, write_jsonl
from swarm_engine.learn.lora.train import LoraTrainer

__all__ = ["LoraResult", "learn_lora", "stratified", "held_back", "AGREEMENT_TOLERANCE"]

# nats: the largest allowed difference of a whole answer's log-prob between the
# trained PEFT model and llama.cpp with the converted adapter, on a float32 copy
# of the base. Measured on SmolLM2-135M: <= 0.02 with a correct conversion, 1.7
# without the q/k RoPE permutation. (Against the Q4_1 file itself the base model
# alone is up to ~0.3 off: quantized activations; reported, not gated.)
AGREEMENT_TOLERANCE = 0.1

Status = Callable[[str], None]
Progress = Callable[[str, int, int, float | None], None]


@dataclass
class LoraResult:
    """What :func:`learn_lora` did (``metrics.json`` holds the same)."""

    key: str
    version: int
    folder: Path
    adapter: Path
    adapter_bytes: int
    activated: bool
    data: dict[str, Any]
    train: dict[str, Any]
    agreement: dict[str, Any]
    accuracy: dict[str, Any] | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    held_back: str | None = None       # why a checked adapter was not activated (worse on held-out decisions)

    def metrics(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"], d["adapter"] = str(self.folder), str(self.adapter)
        return d


def stratified(examples: Sequence[Example], n: int | None, seed: int = 0) -> list[Example]:
    """At most ``n`` examples (all when None), taken round-robin over the
    distinct answers (seeded order within each): every answer the data has is
    kept, and a frequent one cannot crowd out a rare one. In 60 recorded
    internal_diagnosis runs the most frequent fix had 11x the examples of the
    rarest."""
    if n is None or len(examples) <= n:
        return list(examples)
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(e.answer, []).append(e)
    queues = list(groups.values())
    for q in queues:
        rng.shuffle(q)
    rng.shuffle(queues)
    out: list[Example] = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


def held_back(accuracy: dict[str, Any] | None) -> str | None:
    """Why a measured adapter must not become active, or None: it decides the
    held-out decisions worse than the adapter in use (``"current"``, when one
    is active) or, without one, worse than the base model. Unmeasured is not worse."""
    if not accuracy or "adapter" not in accuracy:
        return None
    ref = "current" if accuracy.get("current") else "base"
    a, b = accuracy["adapter"], accuracy.get(ref) or {}
    if a.get("accuracy") is None or b.get("accuracy") is None or a["accuracy"] >= b["accuracy"]:
        return None
    whose = f"the active adapter v{b['version']}'s" if ref == "current" else "the base model's"
    return (f"held-out accuracy {a['accuracy']:.0%} ({a['correct']}/{a['n']}) is below {whose} "
            f"{b['accuracy']:.0%} ({b['correct']}/{b['n']})")


def _spread(examples: list[Example], n: int) -> list[Example]:
    """At most ``n`` examples, evenly spaced (deterministic, all actions kept in proportion)."""
    if len(examples) <= n:
        return list(examples)
    step = len(examples) / n
    return [examples[int(i * step)] for i in range(n)]


def _eval_progress(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    """``progress`` as the held-out evaluation of ``name`` reports it (done, total)."""
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(f"eval {name}", done, total, None)


def learn_lora(store: Any, key: str, *, config: TrainConfig = TrainConfig(), base_model: str | None = None,
               holdout: float = 0.2, max_examples: int | None = None, evaluate: bool = False,
               eval_max: int = 48, activate: bool = True, agreement_prompts: int = 3,
               tolerance: float = AGREEMENT_TOLERANCE, status: Status | None = None,
               progress: Progress | None = None) -> LoraResult:
    """Train a LoRA adapter for learning key ``key`` from its recorded decisions.

    Parameters
    ----------
    store:
        The :class:`~swarm_engine.learn.store.LearningStore`.
    key:
        The learning key (``sessions/*/decisions.jsonl`` are read).
    config:
        Training hyper-parameters.
    base_model:
        The GGUF model to adapt (default: SmolLM2-135M-Instruct).
    holdout:
        Fraction of seeds held out of training (for the agreement and accuracy checks).
    max_examples:
        Train on at most this many examples (:func:`stratified` over the answers).
    evaluate:
        Measure held-out decision accuracy with and without the adapter (llama.cpp).
    eval_max:
        Held-out decisions asked in that measurement (evenly spaced).
    activate:
        Point ``lora/active.json`` at the new adapter when it passes the check
        (and, when ``evaluate`` measured it, decides no worse than the active
        adapter, or than the base model when none is active).
    agreement_prompts, tolerance:
        Prompts in the llama.cpp vs PEFT log-prob check, and the allowed gap (nats).
    status, progress:
        ``status(line)``; ``progress(phase, done, total, loss)`` with phase
        ``"train"`` or ``"eval base"`` / ``"eval adapter"``.

    Raises
    ------
    ConfigError
        No decisions recorded, no usable example, or the ``train`` extra missing.
    LlmPermanentError
        The converted adapter disagrees with the trained model (not activated).
    """
    t0 = time.perf_counter()
    say = status or (lambda s: None)
    problems: list[str] = []
    records = load_decisions(store, key, on_problem=problems.append)
    if not records:
        raise ConfigError(f"no recorded LLM decisions for '{key}' under {store.scenario_dir(key)}/sessions: "
                          f"run an LLM-managed scenario with `swarm eval SCENARIO --learning` first")
    examples = build_examples(records)
    if not examples:
        raise ConfigError(f"'{key}': {len(records)} decisions recorded but no training example (needs successful "
                          f"runs whose decisions offered a candidate known to succeed)")
    train_all, held = split_by_seed(examples, holdout)
    train = stratified(train_all, max_examples, config.seed)
    if not train:
        raise ConfigError(f"'{key}': every example is held out; lower --holdout")
    say(f"{len(records)} decisions -> {len(examples)} examples: {len(train)} to train on, "
        f"{len(held)} held out ({summarize(held)['seeds']} seeds)")
    version, folder = _active.reserve_version(store, key)
    write_jsonl(folder / "train.jsonl", (e.to_json() for e in train))
    write_jsonl(folder / "heldout.jsonl", (e.to_json() for e in held))

    trainer = LoraTrainer(base_model, config, log=say)
    try:
        say(f"loaded in {trainer.load_seconds:.1f} s; training {config.steps} steps (rank {config.rank}, "
            f"{', '.join(config.targets)}, top {config.layers or trainer.n_layer} of {trainer.n_layer} blocks)")
        stats = trainer.train(train, progress=(lambda s, n, loss: progress("train", s, n, loss)) if progress else None)
        _, adapter, info = trainer.save(folder)
        check = (held or train)[:max(1, agreement_prompts)]
        seqs = [trainer.encode(e) for e in check]
        peft_lp = trainer.answer_logprobs(check)
        peft_base = trainer.answer_logprobs(check, adapter=False)
        model_path = trainer.model_path
    finally:
        trainer.close()
    say("checking the converted adapter: llama.cpp (float32 copy of the base) vs the trained model")
    from swarm_engine.learn.lora.convert import write_f32_model
    from swarm_engine.learn.lora.evaluate import agreement, decision_accuracy, llama_logprobs

    with tempfile.TemporaryDirectory(prefix="swarm-lora-") as tmp:
        reference = write_f32_model(model_path, Path(tmp) / "base-f32.gguf")
        llama_lp = llama_logprobs(seqs, model_path=reference, adapter=adapter)
        llama_base = llama_logprobs(seqs, model_path=reference)
    quant_lp = llama_logprobs(seqs, model_path=model_path, adapter=adapter, stepwise=True)
    quant_base = llama_logprobs(seqs, model_path=model_path, stepwise=True)
    agree: dict[str, Any] = dict(agreement(peft_lp, llama_lp))
    agree.update(tolerance=tolerance, ok=agree["max_seq"] <= tolerance, reference="float32 copy of the base",
                 base=agreement(peft_base, llama_base),
                 # the model as deployed: its quantized arithmetic alone moves log-probs this much
                 quantized={"adapter": agreement(peft_lp, quant_lp), "base": agreement(peft_base, quant_base)},
                 # answer log-probs per prompt (sums, nats): what was compared, and the base model's
                 peft=[float(x.sum()) for x in peft_lp], llama=[float(x.sum()) for x in llama_lp],
                 peft_base=[float(x.sum()) for x in peft_base], llama_base=[float(x.sum()) for x in llama_base],
                 llama_quantized=[float(x.sum()) for x in quant_lp])
    accuracy: dict[str, Any] | None = None
    if evaluate and held:
        sample = _spread(held, eval_max)
        accuracy = {"heldout_examples": len(held), "asked": len(sample)}
        current = _active.active_adapter(store, key)
        runs = [("base", None), ("adapter", adapter)]
        if current is not None and current.is_file() and current.resolve() != adapter.resolve():
            runs.insert(1, ("current", current))       # the adapter in use: the one to beat
        for name, path in runs:
            say(f"held-out decisions, {name}")
            res = decision_accuracy(sample, model_path=model_path, adapter=path,
                                    progress=_eval_progress(progress, name))
            res.pop("picks")
            if name == "current":
                res["version"] = _active.active_version(store, key)
            accuracy[name] = res
    elif evaluate:
        problems.append("no held-out seeds: accuracy not measured (record more runs or raise --holdout)")
    previous = _active.active_version(store, key)
    worse = held_back(accuracy) if activate and agree["ok"] else None
    if worse:
        problems.append(f"adapter v{version} is not activated: {worse}")
    activated = bool(activate and agree["ok"] and not worse)
    result = LoraResult(key=key, version=version, folder=folder, adapter=adapter,
                        adapter_bytes=adapter.stat().st_size, activated=activated,
                        data={"records": len(records), "examples": len(examples), "train": summarize(train),
                              "heldout": summarize(held), "holdout": holdout},
                        train={**stats.summary(), "load_seconds": round(trainer.load_seconds, 2),
                               "config": {**asdict(config), "targets": list(config.targets)},
                               "base_model": str(model_path), "adapter": {
                                   "rank": info.rank, "alpha": info.alpha, "targets": list(info.targets),
                                   "layers": list(info.layers)}},
                        agreement=agree, accuracy=accuracy, seconds=time.perf_counter() - t0, problems=problems,
                        held_back=worse)
    metrics = result.metrics()
    result.agreement["sequences"] = [{"ids": list(ids), "n_prompt": n} for ids, n in seqs]   # not in metrics.json
    write_json(folder / "metrics.json", {**metrics, "previous_active": previous,
                                                "created": datetime.now(UTC).isoformat(timespec="seconds")})
    if not agree["ok"]:
        raise LlmPermanentError(f"adapter v{version} disagrees with the trained model by {agree['max_seq']:.3f} nats "
                                f"(> {tolerance}): not activated; see {folder / 'metrics.json'}")
    if activated:
        _active.set_active(store, key, version)
    return result
