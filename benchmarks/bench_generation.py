"""Batched vs one-at-a-time generation, side by side in one run; and the second load of each bundled model.

    .venv/bin/python benchmarks/bench_generation.py [--model smollm2-135m-instruct] [--batch-size 16] [--loads-only]

Both passes answer the same prompts with the same model under greedy
decoding, so the only difference is batching. tokens/s counts generated
tokens (EOS included, padding not). The second-load figures come from fresh
processes (the converted cache already exists; one warm-up, then three timed): "load" is ``load_model``
alone, "with imports" adds importing torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain recursion to a ten-year-old.",
    "List three uses of a paperclip.",
    "Translate 'good morning' into Spanish and German.",
    "What is 17 times 23?",
    "Write a Python function that reverses a string.",
    "Give me a short motivational quote.",
    "Why is the sky blue?",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "What are the primary colours?",
    "Describe a cat to someone who has never seen one.",
    "How do I boil an egg?",
    "Name five planets in the solar system.",
    "What is photosynthesis?",
    "Write a limerick about a programmer who loves coffee.",
    "What is the difference between weather and climate?",
    "Suggest a name for a bakery.",
    "How many legs does a spider have?",
    "Explain what a database index is, briefly.",
    "Write a polite email declining a meeting invitation.",
    "What does HTTP stand for?",
    "Give two tips for better sleep.",
    "What is the boiling point of water at sea level?",
    "Write a SQL query that counts rows in a table named users.",
    "Who wrote Pride and Prejudice?",
    "Explain the rules of tic-tac-toe.",
    "What is a prime number? Give an example.",
    "Describe the taste of a lemon.",
    "What should I pack for a weekend hiking trip?",
    "Convert 100 degrees Fahrenheit to Celsius.",
    "Tell me a fun fact about octopuses.",
]

LOAD_SNIPPET = """
import json, os, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
started = time.perf_counter()
import torch, transformers  # noqa: F401
imported = time.perf_counter()
from audit.models import load_model
load_model(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"load_s": done - imported, "with_imports_s": done - started}))
"""


def timed_generation(model, params, prompts: list[str] = PROMPTS) -> tuple[float, int]:
    started = time.perf_counter()
    generations = model.generate(prompts, params)
    elapsed = time.perf_counter() - started
    assert all(g.error is None for g in generations), [g.error for g in generations if g.error]
    return elapsed, sum(g.tokens_out for g in generations)


def second_load(alias: str, repeats: int = 3) -> dict:
    """Load once (ensures the cache exists), then time ``repeats`` fresh processes loading it again."""
    runs = []
    for _ in range(repeats + 1):
        out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, alias], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    timed = runs[1:]
    return {key: sorted(r[key] for r in timed) for key in ("load_s", "with_imports_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[8, 16, 32], help="one or more batch sizes")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="threads (0: the audit's thread policy)")
    parser.add_argument("--skip-loads", action="store_true", help="only the generation figures")
    parser.add_argument("--loads-only", action="store_true", help="only the second-load figures")
    args = parser.parse_args()
    if args.loads_only:
        print_second_loads()
        return

    from audit import threads

    threads.apply(threads.choose(args.threads or None))  # before torch loads, as the CLI does
    import torch

    from audit.models import GenParams, load_model

    model = load_model(args.model)
    model.generate(PROMPTS[:2], GenParams(max_new_tokens=4, batch_size=2))  # warm-up: first-call allocations
    print(f"model {args.model}, {len(PROMPTS)} prompts, {args.max_new_tokens} new tokens, greedy, "
          f"torch threads {torch.get_num_threads()}")
    single_s, single_tokens = timed_generation(model, GenParams(max_new_tokens=args.max_new_tokens, batch_size=1))
    single_rate = single_tokens / single_s
    print(f"one at a time:  {single_tokens} tokens in {single_s:.1f} s = {single_rate:.1f} tokens/s")
    for size in args.batch_size:
        batched_s, batched_tokens = timed_generation(
            model, GenParams(max_new_tokens=args.max_new_tokens, batch_size=size))
        batched_rate = batched_tokens / batched_s
        print(f"batch {size:>2}:       {batched_tokens} tokens in {batched_s:.1f} s = {batched_rate:.1f} tokens/s, "
              f"speed-up {batched_rate / single_rate:.1f}x")
    if not args.skip_loads:
        print_second_loads()


def print_second_loads() -> None:
    for alias in ("smollm2-135m-instruct", "gemma3-270m"):
        figures = second_load(alias)
        loads, with_imports = figures["load_s"], figures["with_imports_s"]
        print(f"second load of {alias}, {len(loads)} fresh processes: median {statistics.median(loads):.2f} s, "
              f"slowest {loads[-1]:.2f} s (with imports: median {statistics.median(with_imports):.2f} s)")


if __name__ == "__main__":
    main()
