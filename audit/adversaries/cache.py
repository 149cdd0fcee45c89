"""One cache for what the adversaries compute per text: computed once, kept in the audit database.

The embedder (a vector per response) and the teacher's scorer (a response's
log-likelihood under the teacher) are both costly, both deterministic given
their settings, and both read many times: by every comparison a response is
in, by every rerun of the analysis, by budget curves and sequential rounds.
Each goes through ``Cached``, which looks every key up in the audit
database's cache under the computer's name (its settings are part of the
name, so values made with other settings are never reused), computes only
what is missing, in the batches the computer asks for, and commits each batch
as it ends: a killed analysis keeps what it finished. A cached value that is
not a finite number (a received database's, altered) stops the analysis with
one line rather than flow into every claim. A value computed now is
returned as the cache keeps it (float32), so a first run and a rerun that
reads it back see the same numbers. The computers keep
their own cost accounting; the cache knows nothing of models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from audit.errors import AuditError
from audit.store import Store

Item = tuple[str, Any]  # (cache key, what the computer needs to make its value)


class Cached:
    """``compute`` (a batch of items -> {key: values}) behind the audit database's cache under ``name``."""

    def __init__(self, store: Store, name: str, compute: Callable[[list[Item]], dict[str, list[float]]],
                 batches: Callable[[list[Item]], Iterable[list[Item]]], label: str):
        self.store, self.name, self.compute, self.batches, self.label = store, name, compute, batches, label

    def values(self, items: dict[str, Any], bar=None, width: int = 1) -> dict[str, list[float]]:
        """Every key's values: cached ones read, missing ones computed batch by batch and cached.

        ``width``: the fewest values a use needs; a cached entry with fewer (kept
        by an earlier version that computed less) counts as missing and is
        computed again, in full.
        """
        known = {k: v for k, v in self.store.cached(self.name, sorted(items)).items() if len(v) >= width}
        broken = next((k for k, v in known.items() if not np.isfinite(v).all()), None)
        if broken is not None:
            raise AuditError(f"{self.store.path}: its {self.label} cache holds a value that is not a finite number "
                             f"(key {broken[:12]}): the database was altered or damaged")
        missing = [(key, payload) for key, payload in items.items() if key not in known]
        if not missing:
            return known
        task = bar.add_task(self.label, total=len(missing), status="") if bar is not None else None
        for batch in self.batches(missing):
            fresh = {k: np.asarray(v, dtype=np.float32).tolist() for k, v in self.compute(batch).items()}
            self.store.cache(self.name, fresh)
            known.update(fresh)
            if task is not None:
                bar.update(task, advance=len(batch))
        return known


def in_chunks(size: int, key: Callable[[Item], Any] | None = None) -> Callable[[list[Item]], Iterator[list[Item]]]:
    """Batches of ``size`` items, sorted by ``key`` first when given (texts of similar length pad little)."""
    def batches(items: list[Item]) -> Iterator[list[Item]]:
        ordered = sorted(items, key=key) if key is not None else items
        for start in range(0, len(ordered), size):
            yield ordered[start:start + size]
    return batches


def grouped_by(group: Callable[[Item], Any]) -> Callable[[list[Item]], Iterator[list[Item]]]:
    """One batch per group (e.g. every response to one probe, scored in one pass), in first-seen order."""
    def batches(items: list[Item]) -> Iterator[list[Item]]:
        groups: dict[Any, list[Item]] = {}
        for item in items:
            groups.setdefault(group(item), []).append(item)
        yield from groups.values()
    return batches
