"""Peak memory (max RSS) and time of a collection over the three bundled models, in a fresh process.

    .venv/bin/python benchmarks/bench_collect_memory.py [--probes 24] [--max-new-tokens 32]

Runs `distill-audit collect` with teacher smollm2-135m-instruct, suspect the
demo's distilled adapter on gemma3-270m, and control gemma3-270m, as a child
process, and reads its peak resident memory from the kernel
(``RUSAGE_CHILDREN``), at the default batch size. Collection holds one model at a time, so the peak is
about the largest model plus the runtime, not the sum of the three.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADAPTER = Path(__file__).resolve().parent.parent / "examples" / "demo-adapter"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "audit", "collect", "--db", str(Path(tmp) / "audit.db"),
               "--teacher", "smollm2-135m-instruct", "--suspect", f"peft:gemma3-270m+{ADAPTER}",
               "--control", "gemma3-270m", "--probes", str(args.probes),
               "--max-new-tokens", str(args.max_new_tokens), "--device", "cpu", "--quiet"]
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"collection failed: {result.stderr.strip()}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(result.stdout.strip())
    print(f"\ncollection over 3 bundled models, {args.probes} probes each, {args.max_new_tokens} new tokens, "
          f"CPU float32: {seconds:.1f} s, peak memory (max RSS) {peak_kib / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
