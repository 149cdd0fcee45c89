"""Near-duplicate detection by word 5-gram Jaccard, exact and fast.

A suite padded with near-copies of one prompt measures that prompt many
times and pretends to measure many; the generator refuses such copies and a
test re-checks the shipped suite. The join is exact (no MinHash error):
prefix filtering guarantees that two sets with Jaccard >= t share a token
among their first ``|s| - ceil(t*|s|) + 1`` tokens in any fixed global order,
so only those candidates are compared.
"""

from __future__ import annotations

import math
from collections import defaultdict

SHINGLE_WORDS = 5
THRESHOLD = 0.9


def normalize(text: str) -> str:
    """Whitespace collapsed and lower-cased: the form in which two prompts count as the same prompt."""
    return " ".join(text.split()).lower()


def shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[tuple[str, ...]]:
    """The word n-grams of the normalised text (a text shorter than n words is one shingle)."""
    tokens = normalize(text).split()
    if len(tokens) < n:
        return frozenset([tuple(tokens)])
    return frozenset(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b)


class NearDuplicateIndex:
    """Sets added one by one; ``similar`` finds every earlier set with Jaccard above the threshold.

    The global token order is Python's ``hash``: it varies between processes,
    which changes only which candidates are examined, never the answer.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._sets: list[frozenset] = []
        self._postings: dict[object, list[int]] = defaultdict(list)

    def _prefix(self, s: frozenset) -> list:
        keep = len(s) - math.ceil(self.threshold * len(s) - 1e-9) + 1
        return sorted(s, key=hash)[:keep]

    def similar(self, s: frozenset) -> list[tuple[int, float]]:
        """(position, jaccard) of each added set more similar to ``s`` than the threshold."""
        candidates = {pos for token in self._prefix(s) for pos in self._postings.get(token, ())}
        low, high = self.threshold * len(s), len(s) / self.threshold
        found = []
        for pos in sorted(candidates):
            other = self._sets[pos]
            if low <= len(other) <= high:
                score = jaccard(s, other)
                if score > self.threshold:
                    found.append((pos, score))
        return found

    def add(self, s: frozenset) -> int:
        pos = len(self._sets)
        self._sets.append(s)
        for token in self._prefix(s):
            self._postings[token].append(pos)
        return pos


def near_duplicate_pairs(texts: list[str], threshold: float = THRESHOLD) -> list[tuple[int, int, float]]:
    """Every pair (i, j, jaccard) with i < j whose 5-gram Jaccard exceeds ``threshold``."""
    index = NearDuplicateIndex(threshold)
    pairs = []
    for j, text in enumerate(texts):
        s = shingles(text)
        pairs.extend((i, j, score) for i, score in index.similar(s))
        index.add(s)
    return pairs
