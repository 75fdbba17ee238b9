"""Text <-> tokens for the in-process backend: tokenization, token pieces (the
bytes a token adds), the piece -> token index the decision candidates are
found through, end-of-generation tokens, and the model's chat template.

Separate from the invoker because none of it touches the context or the KV
cache: it reads only the (immutable) vocabulary and the template.
"""

from __future__ import annotations

import ctypes
from typing import Any

from swarm_engine.errors import LlmPermanentError

__all__ = ["Vocab", "PieceIndex"]

# (piece -> tokens, end-of-generation tokens, the longest piece's length)
PieceIndex = tuple[dict[bytes, list[int]], list[int], int]


class Vocab:
    """One model's vocabulary and chat template (``template`` None: prompts go in raw)."""

    def __init__(self, lib: Any, model: Any, template: bytes | None) -> None:
        self._L = lib
        self.vocab = lib.llama_model_get_vocab(model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.template = template
        self._pieces: dict[int, bytes] = {}
        self._index: PieceIndex | None = None

    def is_eog(self, tok: int) -> bool:
        """An end-of-generation token (end of turn, end of text)."""
        return bool(self._L.llama_vocab_is_eog(self.vocab, tok))

    def chat(self, messages: list[tuple[str, str]], raw: str) -> str:
        """``messages`` ((role, text) pairs) through the chat template, ending
        with the assistant's turn; ``raw`` when there is no template.

        Raises
        ------
        LlmPermanentError
            llama.cpp does not support the model's template.
        """
        if self.template is None:
            return raw
        L = self._L
        enc = [(role.encode(), text.encode("utf-8")) for role, text in messages]
        chat = (L.llama_chat_message * len(enc))(*[L.llama_chat_message(role=r, content=c) for r, c in enc])
        size = 2 * sum(len(c) for _, c in enc) + 256
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = L.llama_chat_apply_template(self.template, chat, len(enc), True, buf, size)
            if n < 0:
                raise LlmPermanentError("the model's chat template is not supported by llama.cpp")
            if n <= size:
                return buf.raw[:n].decode("utf-8", "replace")
            size = n
        raise LlmPermanentError("the chat template output does not fit")  # pragma: no cover

    def tokenize(self, text: str) -> list[int]:
        """The prompt's tokens (special tokens parsed, BOS added when the model wants it).

        Raises
        ------
        LlmPermanentError
            An empty prompt, or one llama.cpp cannot tokenize.
        """
        b = text.encode("utf-8")
        n_max = len(b) + 8
        buf = (self._L.llama_token * n_max)()
        n = self._L.llama_tokenize(self.vocab, b, len(b), buf, n_max, True, True)
        if n < 0:
            raise LlmPermanentError(f"cannot tokenize the prompt ({-n} tokens)")
        if n == 0:
            raise LlmPermanentError("the prompt is empty")
        return list(buf[:n])

    def piece(self, tok: int) -> bytes:
        """The bytes token ``tok`` adds to the text (cached)."""
        p = self._pieces.get(tok)
        if p is None:
            buf = ctypes.create_string_buffer(64)
            n = self._L.llama_token_to_piece(self.vocab, tok, buf, 64, 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._L.llama_token_to_piece(self.vocab, tok, buf, -n, 0, False)
            p = self._pieces[tok] = buf.raw[:n]
        return p

    def piece_index(self) -> PieceIndex:
        """(piece -> tokens, EOG tokens, longest piece), built on first use
        (~0.1 s for a 49k vocabulary)."""
        if self._index is None:
            by_piece: dict[bytes, list[int]] = {}
            eog: list[int] = []
            for tok in range(self.n_vocab):
                if self.is_eog(tok):
                    eog.append(tok)
                    continue
                piece = self.piece(tok)
                if piece:
                    by_piece.setdefault(piece, []).append(tok)
            self._index = (by_piece, eog, max(map(len, by_piece), default=1))
        return self._index
