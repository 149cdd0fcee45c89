"""The old thread default vs the thread policy, on a quiet machine and beside a competing CPU-bound process (issue 15).

    .venv/bin/python benchmarks/bench_load.py [--parts synthetic,generation,analysis] [--steps 20]
        [--prompts 32] [--batch-size 32] [--new-tokens 64] [--responses 3000] [--one-thread-everywhere]

Three workloads, each timed in a fresh process per setting (OpenMP reads its
wait policy once, when torch loads it):

- synthetic: the issue's transformer-shaped loop, 30 layers of
  32x576 @ 576x1536 -> SiLU -> @ 1536x576 (the shape of smollm2-135m), in steps/s;
- generation: ``smollm2-135m-instruct`` answering --prompts prompts in batches
  of --batch-size, --new-tokens new tokens, greedy (bench_generation's prompts);
- analysis: ``run_analysis`` without the judge over --responses responses from a
  cold embedding cache (bench_analysis's synthetic database, built once).

Settings: "old default" (torch's own thread count, OMP_WAIT_POLICY unset: the
spin-waiting threads of every release before the policy), "policy" (what the
CLI now applies) and, for the synthetic loop (everywhere with
--one-thread-everywhere), "1 thread", so the best setting measured is known.
Each runs (a) quiet and (b) beside a competitor this script starts and kills at
the end: a second python multiplying 1024x1024 matrices with torch's default
settings, as a second audit or a CI job would. The table gives each result
and its ratio to the best setting of the same workload and condition.
Targets (issue 15): under load, the policy within 1.3x of the best setting;
quiet, the policy no more than 5% slower than the old default.

A quick check that it runs (seconds, not minutes):

    .venv/bin/python benchmarks/bench_load.py --steps 2 --prompts 2 --new-tokens 4 --responses 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARTS = ("synthetic", "generation", "analysis")
SETTINGS = {"default": "old default", "policy": "policy", "one": "1 thread"}
# what a setting's child must not inherit: this script's own environment would otherwise choose for it
THREAD_VARIABLES = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
                    "DISTILL_AUDIT_THREADS")
COMPETITOR = """
import torch
a = torch.randn(1024, 1024)
print("ready", flush=True)
while True:
    a @ a
"""
LAYERS, ROWS, WIDTH, HIDDEN = 30, 32, 576, 1536


# ---------------------------------------------------------------------------
# Children: one workload under one setting, printing one JSON line
# ---------------------------------------------------------------------------


def run_child(args) -> None:
    """Apply the setting before torch loads, run the workload, print what it measured."""
    from audit import threads

    if args.setting != "default":
        threads.apply(threads.choose(1 if args.setting == "one" else None))
    seconds, amount, unit = WORKLOADS[args.child](args)
    import torch

    print(json.dumps({"seconds": seconds, "amount": amount, "unit": unit, "torch_threads": torch.get_num_threads(),
                      "wait": os.environ.get("OMP_WAIT_POLICY", "unset")}))


def synthetic_workload(args) -> tuple[float, int, str]:
    import torch

    torch.manual_seed(0)
    x = torch.randn(ROWS, WIDTH)
    layers = [(torch.randn(WIDTH, HIDDEN) / WIDTH ** 0.5, torch.randn(HIDDEN, WIDTH) / HIDDEN ** 0.5)
              for _ in range(LAYERS)]

    def step():
        h = x
        for up, down in layers:
            h = torch.nn.functional.silu(h @ up) @ down
        return h

    with torch.inference_mode():
        step()  # warm-up: first-call allocations
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
    return time.perf_counter() - started, args.steps, "steps"


def generation_workload(args) -> tuple[float, int, str]:
    from bench_generation import PROMPTS, timed_generation

    from audit.models import GenParams, load_model

    model = load_model(args.model, device="cpu")
    model.generate(PROMPTS[:2], GenParams(max_new_tokens=4, batch_size=2))  # warm-up
    prompts = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[:args.prompts]
    seconds, tokens = timed_generation(model, GenParams(max_new_tokens=args.new_tokens, batch_size=args.batch_size),
                                       prompts)
    return seconds, tokens, "tokens"


def analysis_workload(args) -> tuple[float, int, str]:
    from audit.analyze import run_analysis
    from audit.store import Store

    path = Path(tempfile.mkdtemp(prefix="bench-load-")) / "audit.db"
    shutil.copy(args.template_db, path)  # a fresh copy: the embedding cache starts cold every time
    try:
        started = time.perf_counter()
        run_analysis(path, use_judge=False, quiet=True)
        seconds = time.perf_counter() - started
        with Store.open(path) as store:
            responses = len(store.responses())
    finally:
        shutil.rmtree(path.parent)
    return seconds, responses, "responses"


WORKLOADS = {"synthetic": synthetic_workload, "generation": generation_workload, "analysis": analysis_workload}


# ---------------------------------------------------------------------------
# The parent: settings x conditions, a competitor, the table
# ---------------------------------------------------------------------------


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}


def measure(part: str, setting: str, args, template_db: Path | None) -> dict:
    """One workload under one setting in a fresh process; a failure or timeout is a row that says so."""
    command = [sys.executable, __file__, "--child", part, "--setting", setting, *size_flags(args)]
    if template_db is not None:
        command += ["--template-db", str(template_db)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=clean_environment(),
                             timeout=args.child_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.child_timeout} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1][:100]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def size_flags(args) -> list[str]:
    return ["--steps", str(args.steps), "--model", args.model, "--prompts", str(args.prompts),
            "--batch-size", str(args.batch_size), "--new-tokens", str(args.new_tokens)]


class Competitor:
    """A second torch process with default settings, busy multiplying matrices until this one ends."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", COMPETITOR], stdout=subprocess.PIPE, text=True,
                                        env=clean_environment())
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the competing process did not start")
        time.sleep(1.0)  # let it reach its steady state
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def settings_for(part: str, args) -> list[str]:
    return ["default", "policy", "one"] if part == "synthetic" or args.one_thread_everywhere else ["default", "policy"]


def run_all(args) -> list[dict]:
    """Every (condition, part, setting), quiet first, then beside the competitor; printed as they finish."""
    template_db = build_template(args) if "analysis" in args.parts else None
    rows = []
    try:
        for condition in ("quiet", "under load"):
            with Competitor() if condition == "under load" else contextlib.nullcontext():
                for part in args.parts:
                    for setting in settings_for(part, args):
                        row = {"part": part, "condition": condition, "setting": setting,
                               **measure(part, setting, args, template_db if part == "analysis" else None)}
                        rows.append(row)
                        print(f"  {part:<10} {condition:<10} {SETTINGS[setting]:<12} {describe(row)}", flush=True)
    finally:
        if template_db is not None:
            shutil.rmtree(template_db.parent)
    return rows


def build_template(args) -> Path:
    from bench_analysis import build_database

    path = Path(tempfile.mkdtemp(prefix="bench-load-template-")) / "audit.db"
    build_database(path, max(1, -(-args.responses // 3)))  # three models answer each probe
    return path


def describe(row: dict) -> str:
    if "error" in row:
        return f"failed: {row['error']}"
    return (f"{row['amount'] / row['seconds']:8.1f} {row['unit']}/s ({row['seconds']:6.1f} s; "
            f"{row['torch_threads']} threads, OMP_WAIT_POLICY {row['wait']})")


def print_table(rows: list[dict]) -> None:
    """Each result with its ratio to the best setting of its workload and condition (1.00x: the best)."""
    best = {}
    for row in rows:
        if "error" not in row:
            key = (row["part"], row["condition"])
            best[key] = min(best.get(key, row["seconds"]), row["seconds"])
    print("\n| workload | condition | setting | result | time vs best |\n| --- | --- | --- | --- | --- |")
    for row in sorted(rows, key=lambda r: PARTS.index(r["part"])):  # stable: quiet before under load
        ratio = (f"{row['seconds'] / best[(row['part'], row['condition'])]:.2f}x" if "error" not in row else "—")
        print(f"| {row['part']} | {row['condition']} | {SETTINGS[row['setting']]} | {describe(row)} | {ratio} |")
    print_targets(rows, best)


def print_targets(rows: list[dict], best: dict) -> None:
    by_key = {(r["part"], r["condition"], r["setting"]): r for r in rows if "error" not in r}
    print()
    for part in dict.fromkeys(r["part"] for r in rows):
        loaded, quiet = by_key.get((part, "under load", "policy")), by_key.get((part, "quiet", "policy"))
        old_quiet, old_loaded = by_key.get((part, "quiet", "default")), by_key.get((part, "under load", "default"))
        if loaded:
            ratio = loaded["seconds"] / best[(part, "under load")]
            print(f"{part}: under load the policy takes {ratio:.2f}x the best setting's time "
                  f"(target <= 1.3x: {'met' if ratio <= 1.3 else 'MISSED'})"
                  + (f"; the old default {old_loaded['seconds'] / loaded['seconds']:.1f}x the policy's"
                     if old_loaded else ""))
        if quiet and old_quiet:
            slower = quiet["seconds"] / old_quiet["seconds"] - 1
            print(f"{part}: quiet, the policy is {slower:+.1%} vs the old default "
                  f"(target <= +5%: {'met' if slower <= 0.05 else 'MISSED'})")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=lambda s: [p for p in s.split(",") if p], default=list(PARTS),
                        help=f"comma-separated, of {','.join(PARTS)}")
    parser.add_argument("--steps", type=int, default=20, help="synthetic steps per measurement")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--responses", type=int, default=3000, help="responses the analysis reads (3 per probe)")
    parser.add_argument("--one-thread-everywhere", action="store_true",
                        help="also time generation and analysis with 1 thread")
    parser.add_argument("--child-timeout", type=int, default=900, help="seconds one measurement may take")
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--template-db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))} (choose from {', '.join(PARTS)})")
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        run_child(args)
        return
    from audit import threads

    print(f"{threads.usable_cpus()} usable CPUs ({os.cpu_count()} on the host), load average "
          f"{os.getloadavg()[0]:.2f} before starting; policy: {threads.choose(environ=clean_environment())}")
    started = time.perf_counter()
    print_table(run_all(args))
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
