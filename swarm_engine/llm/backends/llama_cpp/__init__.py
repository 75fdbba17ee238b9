"""In-process inference with llama-cpp-python's low-level API, batched across workers.

The package: :mod:`.invoker` (:class:`LlamaCppInvoker`, the C API driver),
:mod:`.sampling` (candidates, choice, confidence, shared prefix: numpy only,
tested without a model), :mod:`.lora` (adapters), :mod:`.batch` (the
``llama_batch`` struct and the sequences), :mod:`.decisions` (a finished
sequence as a Decision), :mod:`.library` (loading llama-cpp-python once, its
log).

llama-cpp-python has no batch API above ``llama_decode``, so this backend
drives the C API through its ctypes bindings (0.3.36 names):

- ``llama_model_load_from_file`` / ``llama_init_from_model`` with
  ``n_seq_max`` sequences over one unified KV cache (``kv_unified``; without
  it each sequence gets n_ctx / n_seq_max cells);
- one ``decide()`` call is one batch: every request becomes a sequence (seq_id
  0..n-1, in waves of ``n_seq_max``). The token prefix the wave's prompts share
  is decoded once into sequence 0 and shared with ``llama_memory_seq_cp`` (with
  a unified cache the cells are shared, not copied); the rest of each prompt is
  prefilled in chunks of at most ``n_batch`` tokens (``llama_decode`` aborts the
  process on a larger batch), then every step decodes one token per live
  sequence in one ``llama_decode``;
- each sequence owns a GBNF grammar sampler (``llama_sampler_init_grammar``,
  grammar from ``gbnf_for(choices)``), applied with ``llama_sampler_apply`` to
  a short candidate list rather than the whole 49k vocabulary (4.7 ms per
  token on SmolLM2): for decisions, the tokens whose text continues one of the
  canonical answers (found through a piece -> token index; the grammar's
  language is exactly those answers, so the list is the allowed set, exact);
  for ``complete_json``, the tokens within ``WINDOW`` nats of the best logit
  (the same greedy choice). Selection (greedy, or temperature/top-k/top-p from a
  seeded numpy generator) and the confidence are computed here, then
  ``llama_sampler_accept`` advances the grammar. The confidence is the chosen
  answer's probability under the grammar-constrained distribution: per step,
  the mass of the allowed tokens that keep the same answers reachable (one
  answer has several tokenizations, ``{"`` or ``{`` then ``"``: a product of
  the chosen tokens' probabilities gave 0.42 for a single-choice request),
  multiplied over the steps;
- the prefix stays in sequence 0 between calls (``keep_prefix``), so the rules
  every worker shares are decoded once per run, not once per tick;
- LoRA adapters (``llama_adapter_lora_init``) are switched with
  ``llama_set_adapters_lora``; the KV memory is cleared on every switch because
  cached keys/values computed under the old set would silently be reused.

Threads: ``decide`` runs the whole batch in ``asyncio.to_thread`` under one
lock per context; the context is never used from two threads at once.

Measured (SmolLM2-135M Q4_1, 2-vCPU machine, 1 thread): prefill ~180 tok/s
whether 8 prompts share a batch or not, generation 56-63 tok/s for one
sequence and 80-90 tok/s for 8; the CPU is compute-bound (each generated token
pays the 49k x 576 output layer), so batching gains 1.3-1.8x where generation
dominates and nothing where per-worker prefill does (see
benchmarks/test_llm_inprocess.py). Logits depend slightly on how tokens are
grouped into ``llama_decode`` calls (splitting one prompt's prefill in two
moved them by up to 0.5 on this build): batched and one-at-a-time answers
agree in the tests, but are not guaranteed bit-identical near a tie.
"""

from swarm_engine.llm.backends.llama_cpp.invoker import LlamaCppInvoker

__all__ = ["LlamaCppInvoker"]
