"""The behavioral probe suites: the prompt distribution D every audit claim holds over.

Public API:
  load_suite(name_or_path)        the built-in ``bbi-probes-v1`` or a user JSONL/CSV file
  build_private_suite(seed)       a fresh split of the same shape from a secret seed (only its hash is kept)
  sample_probes(suite, q, seed)   a stratified, deterministic choice of q probes
  list_suites()                   the built-in suites with their sizes and hashes
  check_reference(ref, response)  does a response satisfy a probe's checkable reference?
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from audit.errors import SuiteError
from audit.probes.checkers import check_reference
from audit.probes.generate import (SUITE_NAME, SUITE_VERSION, generate_probes, private_seed, private_seed_hash,
                                   suite_hash)
from audit.probes.loading import builtin_names, load_builtin, load_file
from audit.probes.neardup import normalize
from audit.probes.sampling import sample_probes
from audit.probes.types import Probe, Suite

__all__ = ["Probe", "Suite", "build_private_suite", "check_reference", "list_suites", "load_suite", "sample_probes"]


@lru_cache(maxsize=None)
def _builtin(name: str) -> Suite:
    return load_builtin(name)


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, else a user suite file (JSONL or CSV with at least ``text`` and ``category``)."""
    if name_or_path in builtin_names():
        cached = _builtin(name_or_path)
        return Suite(name=cached.name, version=cached.version, hash=cached.hash, probes=list(cached.probes),
                     source=cached.source)
    return load_file(Path(name_or_path))


def build_private_suite(secret_seed: str) -> Suite:
    """A private split: the built-in suite's generator and shape, prompts chosen by a secret seed.

    No prompt of the public suite is repeated, so a model tuned on the public
    suite has seen none of these; the suite records only the seed's sha256.
    """
    if not secret_seed:
        raise SuiteError("private split: the secret seed is empty; set it to a long random string")
    public = {normalize(p.text) for p in _builtin(SUITE_NAME).probes}
    probes = generate_probes(private_seed(secret_seed), split="private", exclude=public)
    return Suite(name=f"{SUITE_NAME}-private", version=SUITE_VERSION, hash=suite_hash(probes), probes=probes,
                 source="private", private_seed_hash=private_seed_hash(secret_seed))


def list_suites() -> list[dict]:
    """The built-in suites: name, version, number of probes and sha256."""
    return [{"name": s.name, "version": s.version, "n": len(s.probes), "hash": s.hash}
            for s in map(_builtin, builtin_names())]
