"""What the audit's hashes cover and how they are taken: the only definition of each hashed record.

A response's and a judgement's content hash is written when the row is
recorded, checked again by ``verify``, and (as Merkle leaves) signed in the
report. Writing, checking and any test that forges a row all build the record
here, so the three can never disagree on what a hash covers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

# The judgement columns a judgement's content hash covers (the verdict and what it was asked about).
JUDGEMENT_HASHED = ("judge_id", "comparison", "probe_id", "sample", "order", "first_query_id", "second_query_id",
                    "verdict", "raw_output")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form every content hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    """sha256 of the UTF-8 bytes; a lone surrogate (which valid text never holds, and which collection replaces
    where text enters) is hashed as its own bytes ("surrogatepass"), so hashing any str never fails."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(value: Any) -> str:
    """sha256 of canonical JSON: the hash each transcript row carries."""
    return sha256_text(canonical_json(value))


def natural_key(*parts: Any) -> str:
    """A short stable id for a natural key: re-recording the same thing finds the same row."""
    return content_hash([str(p) for p in parts])[:24]


def transcript_record(model_id: str, probe_id: str, sample: int, purpose: str, params: dict, text: str,
                      top_logprobs: bytes | None) -> dict:
    """What a response's content hash covers: who was asked what, how, and what came back (with the sha256
    of its top-k blob when one was recorded; absent otherwise, so earlier databases keep their hashes)."""
    record = {"model_id": model_id, "probe_id": probe_id, "sample": sample, "purpose": purpose,
              "params": params, "text": text}
    if top_logprobs is not None:
        record["top_logprobs_sha256"] = hashlib.sha256(top_logprobs).hexdigest()
    return record


def judgement_record(row: dict) -> dict:
    """What a judgement's content hash covers: its ``JUDGEMENT_HASHED`` columns (None where absent)."""
    return {column: row.get(column) for column in JUDGEMENT_HASHED}


def merkle_root(leaves: Iterable[str]) -> str:
    """Merkle root (sha256, pairwise, last node promoted) over hex leaf hashes in the given order."""
    level = [bytes.fromhex(leaf) for leaf in leaves]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest())
            else:
                nxt.append(level[i])
        level = nxt
    return level[0].hex()
