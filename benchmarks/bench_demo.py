"""Time `distill-audit demo` as a user meets it, and print the table it measures.

    .venv/bin/python benchmarks/bench_demo.py [--keep DIR] [--beside-load]

Three runs of the real command, each in a fresh process:

1. first run: an empty model cache (GGUF de-quantisation and conversion included) and a new output folder;
2. second run: the cache now warm, a new output folder, so every stage does its work again;
3. rerun: the second run's folder again, so every stage finds its output current and is skipped;
4. with --beside-load: (2) again into another new folder, beside a competing CPU-bound process that
   bench_load.py's Competitor starts and kills (issue 15's target: within 2x of (2)).

Then the demo's evidence from the second run's database, teacher vs distilled student and teacher vs the
base model it was distilled into: the similarity baseline and each adversary's advantage, with intervals.
The demo is sized so that (1) stays under 8 minutes and (2) under 4 on a 2-core CPU; run this on a quiet
machine, since other processes share those two cores.
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
COMMAND = [str(Path(sys.executable).parent / "distill-audit"), "demo", "--quiet", "--out"]
ROWS = ("similarity", "headline", "discriminator-single", "discriminator-paired", "teacher-likelihood", "mmd",
        "judge")


def timed_demo(out: Path, cache: Path) -> float:
    env = {**os.environ, "DISTILL_AUDIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run([*COMMAND, str(out)], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def evidence_table(db_path: Path) -> str:
    """Markdown: one row per measure, a column per comparison, each cell the estimate [interval] (n).

    The provenance columns hold the advantage gap Adv(teacher, control) - Adv(teacher, suspect) (fixed-budget
    rows) or the teacher-likeness preference of the suspect over the control (a sequential audit's "(sequence)"
    rows): above zero, the suspect is closer to the teacher than a model known not to descend from it.
    """
    from audit.store import Store
    from audit.vocabulary import PROVENANCE, provenance_key

    with Store.open(db_path, create=False) as store:
        store.require_audit()
        cell = {}
        for split, suffix in (("all", ""), ("sequential", " (sequence)")):  # a sequential demo's claims too
            for r in store.results(category="all", split=split):
                comparison = provenance_key(r.control) if r.comparison == PROVENANCE else r.comparison
                cell[(("headline" if r.headline else r.adversary) + suffix, comparison)] = r
    comparisons = sorted({c for _, c in cell if c != "teacher-vs-teacher"},
                         key=lambda c: (c.startswith("provenance:"), c != "teacher-vs-suspect", c))
    lines = ["| measure | " + " | ".join(comparisons) + " |", "|---" * (len(comparisons) + 1) + "|"]
    for adversary in [*ROWS, *(f"{name} (sequence)" for name in ROWS)]:
        found = [cell.get((adversary, c)) for c in comparisons]
        if not any(found):
            continue
        metric = next(r.metric for r in found if r)
        texts = [_cell(r) for r in found]
        lines.append(f"| {adversary} ({metric}) | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def _cell(row) -> str:
    """The estimate with its interval, or with its p-value for a test that gives none (MMD)."""
    if row is None:
        return "-"
    if row.estimate is None:
        return f"no estimate (n={row.n})"
    if row.ci_low is None:
        return f"{row.estimate:+.4f}, p={row.p_value:.3f} (n={row.n})"
    return f"{row.estimate:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}] (n={row.n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it.")
    parser.add_argument("--beside-load", action="store_true",
                        help="Then a warm run into a new folder beside a competing CPU-bound process (bench_load's).")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "model-cache"
    first = timed_demo(work / "first", cache)
    second = timed_demo(work / "second", cache)
    rerun = timed_demo(work / "second", cache)
    print(f"first run (empty model cache): {first:6.1f} s   (budget 480 s)")
    print(f"second run (warm cache):       {second:6.1f} s   (budget 240 s)")
    print(f"rerun (every stage current):   {rerun:6.1f} s")
    if args.beside_load:
        from bench_load import Competitor

        with Competitor():
            loaded = timed_demo(work / "beside-load", cache)
        print(f"warm run beside a competitor:  {loaded:6.1f} s   ({loaded / second:.2f}x the quiet warm run; "
              f"target <= 2x)")
    print()
    print(evidence_table(work / "second" / "audit.db"))


if __name__ == "__main__":
    main()
