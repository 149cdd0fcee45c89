"""The top-k next-token distributions of a response, recorded compactly (one blob per response).

``collect --top-logprobs K`` records, for every generated token, the k most
likely tokens and their log-probabilities: what a logit-distilling student
trains on (``distill --objective kd``) and what an exposure policy
(``audit.exposure``) transforms. A row per token would make a database of
an audit a hundred times larger, so each response gets one blob:

    b"DATK1" | u32 header length | header (canonical JSON) | u32 vocab index per entry | f32 log p per entry

The header holds ``counts`` (entries per position: an endpoint may give
fewer than k), ``chosen`` (the vocab index of the generated token at each
position), ``vocab`` (each distinct token's decoded text) and ``vocab_ids``
(its token id; null for endpoints, which give text only). Float32 keeps
log-probabilities to 7 digits, far below what any training or estimate
resolves. The blob's sha256 goes into the response's content hash, so the
signed Merkle root covers it. A blob read from a database is hostile: every
length and index is checked before use.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from audit.errors import StoreError

MAGIC = b"DATK1"
_LENGTH = struct.Struct("<I")


@dataclass
class TopK:
    """Per generated token: the top-k alternatives (ids where the backend has them, texts, log p) and the token
    generated."""

    tokens: list[list[str]]
    logprobs: list[list[float]]
    ids: list[list[int]] | None = None  # None: the backend gives texts only
    chosen_tokens: list[str] | None = None
    chosen_ids: list[int] | None = None

    @property
    def positions(self) -> int:
        return len(self.logprobs)

    @property
    def most_given(self) -> int:
        """The most alternatives any position holds (an endpoint may give fewer than asked)."""
        return max((len(lp) for lp in self.logprobs), default=0)

    def as_dicts(self) -> list[dict[str, float]]:
        """{token text: log p} per position, the likelier kept where two ids decode alike (the judge's form)."""
        out = []
        for tokens, values in zip(self.tokens, self.logprobs):
            top: dict[str, float] = {}
            for token, value in zip(tokens, values):
                top.setdefault(token, value)
            out.append(top)
        return out

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, probabilities) as (positions, k) arrays, -1 and 0 where a position has fewer entries.

        Needs token ids: a distribution over texts cannot be compared with a
        student's vocabulary.
        """
        if self.ids is None:
            raise ValueError("these top-k distributions have no token ids (recorded from an endpoint)")
        k = max(1, self.most_given)
        ids = np.full((self.positions, k), -1, dtype=np.int64)
        probs = np.zeros((self.positions, k), dtype=np.float64)
        for row, (token_ids, values) in enumerate(zip(self.ids, self.logprobs)):
            ids[row, :len(token_ids)] = token_ids
            probs[row, :len(values)] = np.exp(values)
        return ids, probs

    # ---- the blob ------------------------------------------------------------

    def pack(self) -> bytes:
        keyed = self.ids is not None
        vocab: dict = {}

        def index(token_id, text) -> int:
            return vocab.setdefault(token_id if keyed else text, (len(vocab), text, token_id))[0]

        entries: list[int] = []
        for row, tokens in enumerate(self.tokens):
            row_ids = self.ids[row] if keyed else [None] * len(tokens)
            entries.extend(index(token_id, text) for token_id, text in zip(row_ids, tokens))
        chosen = None
        if self.chosen_tokens is not None:
            chosen_ids = self.chosen_ids if keyed and self.chosen_ids is not None else [None] * len(self.chosen_tokens)
            chosen = [index(token_id, text) for token_id, text in zip(chosen_ids, self.chosen_tokens)]
        ordered = sorted(vocab.values())
        header = json.dumps({"counts": [len(lp) for lp in self.logprobs], "chosen": chosen,
                             "vocab": [text for _, text, _ in ordered],
                             "vocab_ids": [int(i) for _, _, i in ordered] if keyed else None},
                            sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        values = [v for lp in self.logprobs for v in lp]
        return (MAGIC + _LENGTH.pack(len(header)) + header + np.asarray(entries, dtype="<u4").tobytes()
                + np.asarray(values, dtype="<f4").tobytes())

    @classmethod
    def unpack(cls, blob: bytes) -> "TopK":
        """The distributions a blob holds; a malformed one is a ``StoreError`` in one line."""
        try:
            return cls._unpack(bytes(blob))
        except (ValueError, KeyError, TypeError, IndexError, struct.error, RecursionError) as exc:
            raise StoreError(f"a recorded top-k distribution is malformed ({type(exc).__name__}: "
                             f"{str(exc)[:80]})") from exc

    @classmethod
    def _unpack(cls, blob: bytes) -> "TopK":
        if not blob.startswith(MAGIC):
            raise ValueError("not a top-k blob")
        (length,) = _LENGTH.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + _LENGTH.size
        header = json.loads(blob[start:start + length].decode("utf-8", "surrogatepass"))
        counts, vocab, vocab_ids = header["counts"], header["vocab"], header["vocab_ids"]
        if not all(isinstance(c, int) and c >= 0 for c in counts) or not all(isinstance(t, str) for t in vocab):
            raise ValueError("bad counts or vocabulary")
        if vocab_ids is not None and (len(vocab_ids) != len(vocab) or not all(isinstance(i, int) for i in vocab_ids)):
            raise ValueError("bad vocabulary ids")
        n = sum(counts)
        body = blob[start + length:]
        if len(body) != 8 * n:
            raise ValueError(f"{len(body)} bytes for {n} entries")
        entries = np.frombuffer(body[:4 * n], dtype="<u4").tolist()
        values = np.frombuffer(body[4 * n:], dtype="<f4").astype(float).tolist()
        if any(e >= len(vocab) for e in entries):
            raise ValueError("an entry outside the vocabulary")
        chosen = header["chosen"]
        if chosen is not None and (len(chosen) != len(counts) or not all(
                isinstance(c, int) and 0 <= c < len(vocab) for c in chosen)):
            raise ValueError("bad chosen tokens")
        tokens, logprobs, ids, at = [], [], [] if vocab_ids is not None else None, 0
        for count in counts:
            row = entries[at:at + count]
            tokens.append([vocab[e] for e in row])
            logprobs.append(values[at:at + count])
            if ids is not None:
                ids.append([vocab_ids[e] for e in row])
            at += count
        return cls(tokens=tokens, logprobs=logprobs, ids=ids,
                   chosen_tokens=[vocab[c] for c in chosen] if chosen is not None else None,
                   chosen_ids=[vocab_ids[c] for c in chosen] if chosen is not None and vocab_ids is not None else None)
