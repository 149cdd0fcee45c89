"""Maintainers' script: regenerate the shipped suite and its hash (``python -m audit.probes.rebuild``).

Run it after changing anything under ``audit/probes/content``; the test
suite fails until the shipped file matches the generator byte for byte.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from audit.probes.generate import SUITE_NAME, atomic_write, canonical_jsonl, generate_probes

DATA = Path(__file__).parent / "data"


def write_shipped(directory: Path = DATA) -> str:
    data = canonical_jsonl(generate_probes())
    digest = hashlib.sha256(data).hexdigest()
    atomic_write(directory / f"{SUITE_NAME}.jsonl", data)
    atomic_write(directory / f"{SUITE_NAME}.jsonl.sha256", f"{digest}  {SUITE_NAME}.jsonl\n".encode())
    return digest


if __name__ == "__main__":
    print(f"{write_shipped()}  {DATA / (SUITE_NAME + '.jsonl')}")
