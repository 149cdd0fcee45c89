"""The deterministic generator of the built-in suite and of private (secret-seeded) splits.

One function builds both: the public suite from a fixed seed, a private split
from a secret one, so the two have exactly the same shape (categories,
subcategories, counts, templates) and differ only in the random choices.
Each subcategory draws from its own ``random.Random`` stream, so editing one
subcategory does not reshuffle the others. Candidates that repeat a prompt
(after normalising whitespace and case), or come within 5-gram Jaccard 0.9
of one, are redrawn; a perturbation is exempt only from its own original.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from pathlib import Path

from audit.probes.content import (code, creative, factual, identity, instructions, longtail, multilingual,
                                  reasoning, robustness, safety, style, technical)
from audit.probes.content.common import Draft, Subcategory
from audit.probes.neardup import NearDuplicateIndex, normalize, shingles
from audit.probes.types import Probe

SUITE_NAME = "bbi-probes-v1"
SUITE_VERSION = "1.0"
SUITE_SIZE = 5000
PUBLIC_SEED = "bbi-probes-v1/public"
CATEGORY_MODULES = [style, robustness, technical, factual, reasoning, code, instructions, safety, identity,
                    multilingual, creative, longtail]
MAX_DRAWS_PER_PROBE = 400


def probe_id(text: str) -> str:
    """Stable id of a prompt: the same text (up to whitespace and case) has the same id everywhere."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:16]


def private_seed_hash(secret_seed: str) -> str:
    return hashlib.sha256(secret_seed.encode("utf-8")).hexdigest()


def private_seed(secret_seed: str) -> str:
    """The generator seed of a private split; derived, so no secret can reproduce the public suite."""
    return "bbi-probes-v1/private/" + private_seed_hash(secret_seed)


def layout() -> list[tuple[str, Subcategory]]:
    """(category, subcategory) in suite order: the shape every split shares."""
    return [(module.CATEGORY, sub) for module in CATEGORY_MODULES for sub in module.SUBCATEGORIES]


class _Accepted:
    """The prompts accepted so far, with the exact and near-duplicate indexes that guard new ones."""

    def __init__(self, exclude: set[str]) -> None:
        self.seen = set(exclude)
        self.index = NearDuplicateIndex()

    def admits(self, unit: list[Draft]) -> bool:
        """A unit's prompts are new and far from every accepted one; within a pair they may be close."""
        texts = [normalize(d.text) for d in unit]
        if len(set(texts)) < len(texts) or any(t in self.seen for t in texts):
            return False
        return not any(self.index.similar(shingles(d.text)) for d in unit)

    def add(self, probe: Probe) -> None:
        self.seen.add(normalize(probe.text))
        self.index.add(shingles(probe.text))


def _probes(unit: list[Draft], category: str, subcategory: str, split: str) -> list[Probe]:
    first = probe_id(unit[0].text)
    return [
        Probe(id=probe_id(d.text), category=category, subcategory=subcategory, text=d.text,
              reference=d.reference, split=split, pair_of=first if i else None)
        for i, d in enumerate(unit)
    ]


def _fill(category: str, sub: Subcategory, seed: str, split: str, accepted: _Accepted) -> list[Probe]:
    rng = random.Random(f"{seed}/{category}/{sub.name}")
    out: list[Probe] = []
    for _ in range(sub.count * MAX_DRAWS_PER_PROBE):
        if len(out) == sub.count:
            return out
        unit = sub.draw(rng)
        if len(out) + len(unit) > sub.count or not accepted.admits(unit):
            continue
        for probe in _probes(unit, category, sub.name, split):
            accepted.add(probe)
            out.append(probe)
    if len(out) < sub.count:
        raise RuntimeError(f"{category}/{sub.name}: only {len(out)} of {sub.count} distinct prompts; widen its templates")
    return out


def generate_probes(seed: str = PUBLIC_SEED, split: str = "public", exclude: set[str] = frozenset()) -> list[Probe]:
    """All probes of one split, in suite order; ``exclude`` holds normalised texts that must not appear."""
    accepted = _Accepted(exclude)
    probes: list[Probe] = []
    for category, sub in layout():
        probes.extend(_fill(category, sub, seed, split, accepted))
    return probes


def canonical_line(probe: Probe) -> str:
    """One probe as a canonical JSON line (sorted keys, no spaces, UTF-8, absent optionals left out)."""
    record = {"id": probe.id, "category": probe.category, "subcategory": probe.subcategory,
              "text": probe.text, "split": probe.split}
    if probe.reference is not None:
        record["reference"] = probe.reference
    if probe.pair_of is not None:
        record["pair_of"] = probe.pair_of
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def canonical_jsonl(probes: list[Probe]) -> bytes:
    """The bytes a suite is hashed over, whatever format it was read from."""
    return "".join(canonical_line(p) for p in probes).encode("utf-8")


def suite_hash(probes: list[Probe]) -> str:
    return hashlib.sha256(canonical_jsonl(probes)).hexdigest()



def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
