"""What a probe and a suite are; shared by the suite generator, loaders, sampling and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Probe:
    """One prompt of the suite.

    ``id`` is a stable hash of the text, so the same prompt has the same id in
    every suite and every database; ``reference`` is a machine-checkable
    answer or constraint (see ``audit.probes.checkers``), or None.
    ``pair_of`` links a perturbation (typos, casing, paraphrase) to its
    original, so a consistency analysis can compare the two responses and the
    near-duplicate rule knows the pair is intended.
    """

    id: str
    category: str
    subcategory: str
    text: str
    reference: dict[str, Any] | None = None
    split: str = "public"  # "public" or "private"
    pair_of: str | None = None  # id of the probe this one paraphrases or perturbs (a declared near-duplicate)


@dataclass
class Suite:
    """A named, versioned, hashed list of probes: the prompt distribution D an audit's claims hold over."""

    name: str
    version: str
    hash: str  # sha256 of the canonical JSONL bytes
    probes: list[Probe] = field(default_factory=list)
    source: str = "builtin"  # "builtin", "private", or the path of a user file
    private_seed_hash: str | None = None  # sha256 of the secret seed of a private split; the seed itself is never stored
