"""Run `distill-audit leakage` on the bundled same-tokenizer pair, time it, and print its curves.

    .venv/bin/python benchmarks/bench_leakage.py [--sizes 100,400] [--eval-probes 48] [--max-new-tokens 64]
                                                 [--epochs 1] [--keep DIR]

Teacher: the demo's distilled adapter on gemma3-270m (``peft:gemma3-270m+examples/demo-adapter``); student
base: ``gemma3-270m`` itself, so teacher and students share a tokenizer and KD applies. Policies: ``text``,
``top-k:20`` and the learned defence ``top-k:20+purify:0.5``. The real command runs once, in a fresh process
(with --keep, run again to finish a killed run: it resumes). Then, from its database: each distillation's wall
time (its training steps, and its whole distill call with loading and saving), every stage's and the whole
run's wall time, each curve point (ε of the headline adversary and similarity, with intervals and n), each
model's KL to the teacher and top-1 agreement read on the teacher's responses (and each policy's paired
difference from its reference policy's student), each policy's CMI estimate and utility, and the report's
plain-words answer.

Start with a small setting (``--sizes 8,16 --eval-probes 4 --max-new-tokens 16``) to check the whole path, and
size the real one from its timings; the machine's two cores are shared with anything else running.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEACHER = f"peft:gemma3-270m+{ROOT / 'examples' / 'demo-adapter'}"
STUDENT = "gemma3-270m"
POLICIES = ("text", "top-k:20", "top-k:20+purify:0.5")


def run(folder: Path, args) -> tuple[float, str]:
    """The real command in a fresh process: its wall seconds and its output."""
    command = [sys.executable, "-m", "audit", "leakage", "--teacher", TEACHER,
               "--student", STUDENT, *[flag for p in POLICIES for flag in ("--policy", p)],
               "--train-sizes", args.sizes, "--eval-probes", str(args.eval_probes),
               "--max-new-tokens", str(args.max_new_tokens), "--epochs", str(args.epochs),
               "--db", str(folder / "leak.db"), "--out", str(folder / "out"), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - started, done.stdout


def tables(db_path: Path) -> str:
    """Markdown: the students' training, the curve points, the policies' CMI estimates; then the answer."""
    from audit.report.leakage import gather
    from audit.store import Store

    with Store.open(db_path, create=False) as store:
        ctx = gather(store, keyid=None, tool_digest="")
    lines = ["| policy | examples | ε (headline) [interval] (n) | similarity [interval] (n) | training steps s "
             "| whole distill s |", "|---|---|---|---|---|---|"]
    for policy, points in ctx.curves.items():
        for p in points:
            t = p.training or {}
            lines.append(f"| {policy} | {p.size} | {_cell(p.epsilon)} | {_cell(p.similarity)} | "
                         f"{_seconds(t.get('wall_s'))} | {_seconds(t.get('process_wall_s'))} |")
    lines += ["", "| policy | examples | KL to the teacher, nats/token [interval] (n probes) | top-1 agreement "
              "[interval] | KL minus the reference policy's student [paired interval] |", "|---|---|---|---|---|"]
    lines += [f"| {policy} | {p.size} | {_cell(p.kl)} | {_cell(p.agreement)} | "
              f"{_cell(p.kl_difference) + ' vs ' + p.reference if p.reference else '-'} |"
              for policy, points in ctx.curves.items() for p in points]
    lines += ["", "| policy | CMI nats/token [interval] (n probes) | top-1 agreement [interval] |", "|---|---|---|"]
    lines += [f"| {e.policy} | {_cell(e.cmi, 3)} | {_cell(e.utility, 3)} |" for e in ctx.exposures]
    lines += ["", "stage seconds (last invocation): " + ", ".join(
        f"{k} {v:.1f}" for k, v in ctx.plan.get("stage_seconds", {}).items()), "", *ctx.answer]
    return "\n".join(lines)


def _cell(claim, digits: int = 3) -> str:
    if claim is None:
        return "-"
    if claim.ci_low is None or claim.ci_high is None:
        return f"{claim.estimate:+.{digits}f} [no interval] (n={claim.n})"
    return f"{claim.estimate:+.{digits}f} [{claim.ci_low:+.{digits}f}, {claim.ci_high:+.{digits}f}] (n={claim.n})"


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,400", help="Training examples per student (default: 100,400).")
    parser.add_argument("--eval-probes", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it (a rerun resumes).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        wall, output = run(folder, args)
        print(f"leakage, sizes {args.sizes}, {args.eval_probes} evaluation probes, {args.max_new_tokens} new tokens, "
              f"{args.epochs} epoch(s): whole command {wall:.1f} s (fresh process)")
        print(next(line for line in output.splitlines() if line.startswith("stage seconds")))
        print()
        print(tables(folder / "leak.db"))


if __name__ == "__main__":
    main()
