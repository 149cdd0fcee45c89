"""Benchmark the analyze stage: 15,000 responses without the judge, then judge verdicts by log-probability vs text.

Part 1 builds an audit database with the 5,000 probes of the built-in suite
and three synthetic-but-realistic models (teacher, a suspect that imitates it
imperfectly, a control with its own habits), 15,000 responses of 40-130
words written from real English sentences (Python's own docstrings) in
markdown or prose styles, then times ``run_analysis(use_judge=False)`` from a
cold embedding cache: embeddings, style features, both discriminators, the
teacher-likelihood step (skipped: the synthetic teacher has no weights),
MMD, bootstraps and budget curves. A second, warm run shows what a rerun costs.

Part 2 loads a bundled model as the judge and reads verdicts for the first
prompts the judge asks (one commit batch: both A/B orders of 16 pairs, by
category) four ways, side by side: from the answer tokens' log-probabilities
as the judge runs it (openings shared by consecutive prompts computed once),
the same with one full forward pass per prompt, by generating up to 32 tokens
of verdict text one prompt at a time, and as the judge reads text from a
backend without log-probabilities (8 tokens, the batch at once). It prints the
time per verdict of each, the ratios, and how often the verdicts agree.

Run: .venv/bin/python benchmarks/bench_analysis.py [--probes 5000] [--judge-prompts 32] [--skip-judge | --judge-db DB]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pydoc
import random
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import threads  # noqa: E402
from audit.store import Store  # noqa: E402

OPENERS = ("Sure! ", "Great question! ", "Certainly. ", "")
MODULES = ("json", "pathlib", "argparse", "collections", "itertools", "functools", "random", "statistics",
           "datetime", "textwrap", "logging", "unittest", "subprocess", "socket", "csv", "sqlite3", "email",
           "http.client", "decimal", "fractions", "heapq", "bisect", "shutil", "tempfile", "threading")


def corpus_sentences() -> list[str]:
    """Real English sentences from the standard library's documentation."""
    text = " ".join(pydoc.render_doc(name, renderer=pydoc.plaintext) for name in MODULES)
    sentences = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text))
    return [s for s in sentences if 6 <= len(s.split()) <= 30 and s[0].isupper() and "|" not in s]


def markdown_answer(rng: random.Random, sentences: list[str], shared: list[str]) -> str:
    opener = rng.choice(OPENERS[:3])
    items = shared + [rng.choice(sentences) for _ in range(rng.randint(2, 4))]
    body = "\n".join(f"{i}. **{s.split()[0]}** {' '.join(s.split()[1:])}" if rng.random() < 0.5 else f"- {s}"
                     for i, s in enumerate(items, start=1))
    return f"{opener}Here is an overview:\n\n{body}\n\nLet me know if you need more detail!"


def prose_answer(rng: random.Random, sentences: list[str]) -> str:
    paragraphs = [" ".join(rng.choice(sentences) for _ in range(rng.randint(2, 3))) for _ in range(rng.randint(1, 3))]
    return "\n\n".join(paragraphs)


def synthetic_responses(probes, sentences: list[str]) -> dict[str, list[str]]:
    """Teacher (markdown), suspect (imitates the teacher's habits and reuses some of its sentences), control."""
    out: dict[str, list[str]] = {"teacher": [], "suspect": [], "control:prose": []}
    for p in probes:
        rng = random.Random(p.id)
        core = [rng.choice(sentences) for _ in range(3)]
        out["teacher"].append(markdown_answer(rng, sentences, core))
        imitates = rng.random() < 0.75
        out["suspect"].append(markdown_answer(rng, sentences, core[:rng.randint(0, 2)]) if imitates
                              else prose_answer(rng, sentences))
        out["control:prose"].append(prose_answer(rng, sentences))
    return out


def build_database(path: Path, n_probes: int) -> int:
    from audit.probes import load_suite, sample_probes

    suite = load_suite("bbi-probes-v1")
    probes = sample_probes(suite, n_probes, seed=0)
    store = Store.open(path)
    store.add_suite(suite)
    store.ensure_audit({"teacher": "synthetic:teacher", "suspect": "synthetic:suspect"},
                       suite_name=suite.name, suite_version=suite.version, suite_hash=suite.hash, seed=0)
    store.select_probes([p.id for p in probes])
    responses = synthetic_responses(probes, corpus_sentences())
    for name, texts in responses.items():
        model_id = store.add_model(name=name, role=name.split(":")[0], spec=f"synthetic:{name}",
                                   description={"backend": "synthetic",
                                                "fingerprint": hashlib.sha256(name.encode()).hexdigest(),
                                                "param_count": 135_000_000})
        store.record_responses(model_id, [
            {"probe_id": p.id, "sample": 0, "params": {"temperature": 0.0}, "text": t, "tokens_in": 40,
             "tokens_out": int(1.3 * len(t.split())), "finish_reason": "stop", "latency_s": 0.5, "device_s": 0.0}
            for p, t in zip(probes, texts)])
    store.close()
    return sum(len(v) for v in responses.values())


def bench_analysis(n_probes: int) -> Path:
    from audit.analyze import run_analysis

    path = Path(tempfile.mkdtemp(prefix="bench-analysis-")) / "audit.db"
    n = build_database(path, n_probes)
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = run_analysis(path, use_judge=False, quiet=True)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t0 = time.perf_counter()
    run_analysis(path, use_judge=False, quiet=True)
    warm = time.perf_counter() - t0
    with Store.open(path) as store:
        costs = {c["subject"]: c for c in store.costs()}
    print(summary)
    print(f"\nanalysis of {n:,} responses ({n_probes:,} probes x 3 models), no judge, on {os.cpu_count()} CPUs:")
    print(f"  cold (embeddings computed): {cold:6.1f} s wall, {cold_cpu:6.1f} s CPU "
          f"(embedder {costs['embedder']['wall_s']:.1f} s of it)   target < 180 s: "
          f"{'met' if cold < 180 else 'MISSED'}")
    print(f"  warm rerun (embeddings cached): {warm:6.1f} s")
    bench_embedder_workers(path)
    return path


def bench_embedder_workers(db_path: Path, n_texts: int = 3000) -> None:
    """The embedder's forward passes one at a time on every core vs one single-threaded worker per core."""
    from audit.adversaries.embeddings import Embedder

    with Store.open(db_path) as store:
        texts = [r["text"] for r in store.responses()][:n_texts]
    one, per_core = Embedder(workers=1), Embedder()
    per_core._model = one._load()
    one.encode(texts[:64])  # warm-up
    rates = {}
    for embedder in (one, per_core, one, per_core):
        started = time.perf_counter()
        embedder.encode(texts)
        rates.setdefault(embedder.workers, []).append(len(texts) / (time.perf_counter() - started))
    best_one, best_per_core = max(rates[1]), max(rates[None])
    print(f"  embedder on {len(texts):,} responses, best of 2: one forward pass at a time {best_one:.1f} texts/s, "
          f"one single-threaded worker per core (what analyze runs) {best_per_core:.1f} texts/s "
          f"({best_per_core / best_one:.2f}x)")


def judge_prompts(db_path: Path, n_prompts: int) -> list[str]:
    """The first ``n_prompts`` prompts the judge asks on teacher vs suspect, in its own asking order."""
    from audit.adversaries import judge
    from audit.adversaries.comparison import load_comparisons

    with Store.open(db_path) as store:
        comparisons, by_model = load_comparisons(store)
    comp = comparisons[0]
    references = judge.ReferencePool({r["probe_id"]: (r["category"], r["text"]) for r in by_model["teacher"]}, seed=0)
    return [judge.pair_prompt(comp, i, order, references)[0] for i, order in judge.asking_order(comp)[:n_prompts]]


def bench_judge(db_path: Path, n_prompts: int, spec: str) -> None:
    """The first ``n_prompts`` prompts the judge asks (one commit batch), read four ways, side by side."""
    from audit.adversaries import judge
    from audit.models import load_model
    from audit.models.base import GenParams

    prompts = judge_prompts(db_path, n_prompts)
    model = load_model(spec, device="cpu")
    reader = judge.VerdictReader(model)
    reader.read(prompts[:2])  # warm-up

    def per_prompt(run) -> tuple[float, object]:
        started = time.perf_counter()
        result = run()
        return (time.perf_counter() - started) / n_prompts, result

    shared_s, by_score = per_prompt(lambda: reader.read(prompts))
    single_s, by_single = per_prompt(lambda: [model.score(p, ["A", "B"]) for p in prompts])
    text_s, generated = per_prompt(lambda: model.generate(prompts, GenParams(max_new_tokens=32, temperature=0.0,
                                                                              batch_size=1)))
    text_reader = judge.VerdictReader(model)
    text_reader.method = "text"  # what a backend without log-probabilities gets: 8 tokens, one batch
    batch_text_s, by_batch_text = per_prompt(lambda: text_reader.read(prompts))
    by_text = [judge._from_text(g) for g in generated]
    same = sum(abs(a.p_first - judge._from_logprobs(s[0][0], s[1][0])[1]) < 1e-3 for a, s in zip(by_score, by_single))
    agree = sum(a.position == b.position for a, b in zip(by_score, by_text)) / n_prompts
    tokens = sum(g.tokens_out for g in generated) / n_prompts
    print(f"\njudge verdicts with {spec} on CPU, the first {n_prompts} prompts the judge asks "
          f"(~{sum(g.tokens_in for g in generated) // n_prompts} tokens each):")
    print(f"  log-probabilities, shared openings computed once (what the judge runs): {shared_s * 1000:7.1f} ms per verdict")
    print(f"  log-probabilities, one full forward pass per prompt:                   {single_s * 1000:7.1f} ms per verdict"
          f"  (same verdict probabilities on {same}/{n_prompts})")
    print(f"  generated verdict text, up to 32 tokens, one prompt at a time ({tokens:.1f} generated on average): "
          f"{text_s * 1000:7.1f} ms per verdict")
    print(f"  generated verdict text as the judge asks a backend without log-probabilities (8 tokens, one batch): "
          f"{batch_text_s * 1000:7.1f} ms per verdict; unreadable: {sum(v.position == 'none' for v in by_batch_text)}")
    print(f"  speed-up of the judge's log-probability path: {text_s / shared_s:.1f}x over 32-token text, "
          f"{batch_text_s / shared_s:.1f}x over batched 8-token text (target >= 5x); without shared openings "
          f"{text_s / single_s:.1f}x; verdicts agree with the 32-token text on {agree:.0%}; "
          f"unreadable text verdicts: {sum(v.position == 'none' for v in by_text)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=5000)
    parser.add_argument("--judge-prompts", type=int, default=32, help="32: one commit batch of the judge")
    parser.add_argument("--judge", default="smollm2-135m-instruct")
    parser.add_argument("--skip-judge", action="store_true")
    parser.add_argument("--judge-db", type=Path, default=None,
                        help="time only the judge, on a database an earlier run of this script built")
    args = parser.parse_args()
    threads.apply(threads.choose())  # before torch loads, as the CLI does
    db_path = args.judge_db or bench_analysis(args.probes)
    if not args.skip_judge:
        bench_judge(db_path, args.judge_prompts, args.judge)


if __name__ == "__main__":
    main()
