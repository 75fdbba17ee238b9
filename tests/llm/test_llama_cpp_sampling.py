"""The in-process backend's arithmetic (llm/backends/llama_cpp/sampling.py),
without a model and without llama-cpp-python: candidates, the choice, the
confidence, the shared prefix."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from swarm_engine.llm.backends.llama_cpp.sampling import (
    MASS_FLOOR,
    WINDOW,
    answer_mass,
    answer_prefixes,
    answer_tokens,
    cells_needed,
    choose,
    common_prefix_len,
    reachable,
    shared_prefix,
    softmax,
    window,
)
from swarm_engine.llm.protocol import Sampling

GREEDY = Sampling()


# --- the distribution over the allowed tokens -------------------------------------------------

def test_softmax_is_over_the_candidates_only():
    x = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    p = softmax(x)
    assert p.dtype == np.float64 and p.sum() == pytest.approx(1.0)
    log_z = math.log(sum(math.exp(v) for v in (1.0, 2.0, 3.0)))
    assert np.log(p) == pytest.approx([1.0 - log_z, 2.0 - log_z, 3.0 - log_z])   # log-softmax


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([1000.0, 1001.0, -1e30]))
    assert np.isfinite(p).all()
    assert p == pytest.approx([1 / (1 + math.e), math.e / (1 + math.e), 0.0])


def test_greedy_takes_the_best_and_a_tie_goes_to_the_first_candidate():
    j, p = choose(np.array([0.5, 2.0, 1.0]), GREEDY, None)
    assert j == 1 and p == pytest.approx(softmax(np.array([0.5, 2.0, 1.0])))
    assert choose(np.array([1.0, 3.0, 3.0, 2.0]), GREEDY, None)[0] == 1
    assert choose(np.array([3.0, 3.0]), GREEDY, None)[0] == 0
    # a temperature without a generator is greedy too
    assert choose(np.array([1.0, 3.0, 3.0]), Sampling(temperature=1.0), None)[0] == 1


def test_sampling_is_seeded_and_follows_the_tempered_distribution():
    logits = np.array([2.0, 1.0, 0.0, -1.0])
    sp = Sampling(temperature=1.0, top_k=0, top_p=1.0)
    draws = [choose(logits, sp, np.random.default_rng(7))[0] for _ in range(3)]
    assert len(set(draws)) == 1                                   # same seed, same draw
    rng = np.random.default_rng(0)
    counts = np.bincount([choose(logits, sp, rng)[0] for _ in range(4000)], minlength=4) / 4000
    assert counts == pytest.approx(softmax(logits), abs=0.03)
    # a lower temperature sharpens it
    rng = np.random.default_rng(0)
    cold = np.bincount([choose(logits, Sampling(temperature=0.25, top_k=0, top_p=1.0), rng)[0]
                        for _ in range(2000)], minlength=4) / 2000
    assert cold[0] > 0.95


def test_top_k_and_top_p_cut_the_tail():
    logits = np.array([0.0, 3.0, 2.9, 1.0])
    rng = np.random.default_rng(1)
    assert {choose(logits, Sampling(temperature=1.0, top_k=1), rng)[0] for _ in range(50)} == {1}
    assert {choose(logits, Sampling(temperature=1.0, top_k=2, top_p=1.0), rng)[0] for _ in range(200)} == {1, 2}
    # the smallest head whose mass reaches top_p: token 1 alone holds < 0.5, so 1 and 2
    assert {choose(logits, Sampling(temperature=1.0, top_k=0, top_p=0.5), rng)[0] for _ in range(200)} == {1, 2}
    assert {choose(logits, Sampling(temperature=1.0, top_k=0, top_p=0.01), rng)[0] for _ in range(50)} == {1}


# --- candidates -------------------------------------------------------------------------------

def test_window_without_a_grammar_is_every_finite_token_near_the_top():
    lg = np.array([0.0, -20.0, 5.0, -np.inf, 5.0 - WINDOW, 5.0 - WINDOW - 0.01])
    assert window(lg).tolist() == [0, 2, 4]
    assert window(np.full(4, -np.inf)) is None


def test_window_widens_to_the_best_allowed_token():
    lg = np.array([10.0, 9.0, -5.0, -6.0, -30.0])

    def allowed_from(ok):
        return lambda ids: ids[np.isin(ids, ok)]

    assert window(lg, allowed_from([1, 3])).tolist() == [1]                  # within the first window
    # nothing allowed near the top: everything within WINDOW of the best allowed one (-5) is checked
    assert window(lg, allowed_from([2, 3])).tolist() == [2, 3]
    assert window(lg, allowed_from([4])).tolist() == [4]
    assert window(lg, allowed_from([])) is None


def test_answer_tokens_continue_an_answer_and_end_a_complete_one():
    by_piece = {b'{"': [1], b"{": [2], b'"': [3], b"a": [4], b"ab": [5], b"b": [6], b'"}': [7], b"}": [8]}
    eog = [0]
    answers = {b'{"a"}', b'{"ab"}'}
    assert answer_tokens(b"", answers, by_piece, eog, 2).tolist() == [1, 2]
    assert answer_tokens(b'{"', answers, by_piece, eog, 2).tolist() == [4, 5]
    assert answer_tokens(b'{"a', answers, by_piece, eog, 2).tolist() == [3, 6, 7]
    assert answer_tokens(b'{"a"}', answers, by_piece, eog, 2).tolist() == [0]   # complete: only the end
    assert answer_tokens(b"x", answers, by_piece, eog, 2).tolist() == []
    assert answer_prefixes([b"ab"]) == {b"", b"a"}


def test_reachable_answers():
    answers = {b'{"a"}', b'{"ab"}', b'{"b"}'}
    assert reachable(b'{"', b"a", answers) == {b'{"a"}', b'{"ab"}'}
    assert reachable(b"", b'{"b', answers) == {b'{"b"}'}
    assert reachable(b'{"a"}', None, answers) == {b'{"a"}'}           # the end token after a complete answer
    assert reachable(b'{"a', None, answers) == frozenset()


# --- the confidence ---------------------------------------------------------------------------

def test_answer_mass_adds_the_tokenizations_of_the_same_answers():
    p = np.array([0.5, 0.3, 0.2])
    reach = [frozenset({b"A", b"B"}), frozenset({b"A", b"B"}), frozenset({b"C"})].__getitem__
    assert answer_mass(p, 0, reach) == pytest.approx(0.8)
    assert answer_mass(p, 2, reach) == pytest.approx(0.2)
    assert answer_mass(p, 0, None) == 0.5                               # no answer list: the token alone
    tiny = np.array([0.9, MASS_FLOOR / 2, 0.1])
    assert answer_mass(tiny, 0, lambda i: frozenset({b"A"})) == 1.0    # capped; the tiny one not looked at


VOCAB = {1: b'{"', 2: b"{", 3: b'"', 4: b"a", 5: b"b", 6: b'"}', 7: b"}"}
EOG = 0


def decode(answers: set[bytes], logits: dict[int, float]) -> tuple[bytes, float]:
    """Greedy decoding of ``answers`` over VOCAB with fixed per-token logits,
    the way the invoker runs it: candidates, choice, mass per step."""
    by_piece: dict[bytes, list[int]] = {}
    for tok, piece in VOCAB.items():
        by_piece.setdefault(piece, []).append(tok)
    text, logprob = b"", 0.0
    while True:
        idx = answer_tokens(text, answers, by_piece, [EOG], 2)
        j, p = choose(np.array([logits[int(t)] for t in idx]), GREEDY, None)
        alive = {a for a in answers if a.startswith(text)}

        def reach(i: int, text=text, idx=idx, alive=alive) -> frozenset[bytes]:
            tok = int(idx[i])
            return reachable(text, None if tok == EOG else VOCAB[tok], answers if tok == EOG else alive)

        logprob += math.log(answer_mass(p, j, reach))
        tok = int(idx[j])
        if tok == EOG:
            return text, math.exp(logprob)
        text += VOCAB[tok]


def test_a_single_answer_has_confidence_one_whatever_its_tokenization():
    # '{"' and '{' then '"' both spell the only answer: their probabilities add up
    logits = {EOG: 0.0, 1: 0.3, 2: 0.1, 3: 0.0, 4: 0.0, 5: 0.0, 6: 0.2, 7: 0.0}
    text, confidence = decode({b'{"a"}'}, logits)
    assert text == b'{"a"}' and confidence == pytest.approx(1.0)


def test_the_confidence_is_the_answers_probability_under_the_constrained_distribution():
    logits = {EOG: 0.0, 1: 1.0, 2: 0.0, 3: 0.0, 4: 1.5, 5: 0.5, 6: 0.0, 7: 0.0}
    text, confidence = decode({b'{"a"}', b'{"b"}'}, logits)
    # the one decision point is 'a' against 'b'; every other step keeps both or is forced
    assert text == b'{"a"}' and confidence == pytest.approx(softmax(np.array([1.5, 0.5]))[0])


# --- prefixes ---------------------------------------------------------------------------------

def test_common_and_shared_prefixes():
    assert common_prefix_len([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([], [1]) == 0 and common_prefix_len([5], [6]) == 0
    # every sequence keeps at least its last token to start generation from
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 9, 9]]) == 3
    assert shared_prefix([[7], [7, 8]]) == 0 and shared_prefix([]) == 0
    # the prefix once, then each tail and its answer budget
    assert cells_needed([[1, 2, 3, 4], [1, 2, 3, 9, 9]], [10, 20]) == 3 + (1 + 10) + (2 + 20)
    with pytest.raises(ValueError):
        cells_needed([[1, 2]], [1, 2])


def test_the_arithmetic_needs_no_llama_cpp(subprocess_env):
    code = ("import sys; sys.modules['llama_cpp'] = None\n"
            "import numpy as np\n"
            "from swarm_engine.llm.backends.llama_cpp import sampling\n"
            "from swarm_engine.llm.protocol import Sampling\n"
            "assert sampling.choose(np.array([0.0, 1.0]), Sampling(), None)[0] == 1\n"
            "from swarm_engine.llm.backends.llama_cpp import LlamaCppInvoker\n"   # importable; loads lazily
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=subprocess_env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
