"""Synthetic audit databases with known ground truth, and deterministic stand-ins for the models.

Built through the Store API only (no model runs): each "model" is a function
from a probe to a response text, so a test knows exactly how different the
sources are. The stand-ins (a hashing embedder, a scoring teacher, an
instruction-following fake judge) are deterministic and fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path
from typing import Callable

import numpy as np

from audit.models.base import Description, Generation, GenParams
from audit.probes.types import Probe, Suite
from audit.store import Store

CATEGORIES = ("coding", "math", "advice", "facts")
TOPICS = ("sorting a list", "compound interest", "sleep habits", "the moon landing", "photosynthesis",
          "binary search", "budget planning", "volcanoes", "learning a language", "prime numbers",
          "the French revolution", "unit testing", "healthy breakfast", "black holes", "recursion")
WORDS = ("first", "then", "important", "note", "simple", "example", "step", "result", "value", "good",
         "consider", "because", "usually", "also", "make", "sure", "check", "common", "way", "idea")


def make_probes(n: int, *, private: bool = False, seed: int = 0) -> list[Probe]:
    rng = random.Random(seed)
    probes = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        topic = rng.choice(TOPICS)
        text = f"[{i}] In the {category} area, explain {topic} to a beginner."
        split = "private" if private and i % 2 else "public"
        pid = hashlib.sha256(text.encode()).hexdigest()[:16]
        probes.append(Probe(pid, category, "general", text, None, split))
    return probes


def _words(rng: random.Random, k: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(k))


def teacher_style(probe: Probe, sample: int = 0) -> str:
    """A list-loving, bold-using, "Sure!" teacher."""
    rng = random.Random(f"t{probe.id}{sample}")
    items = "\n".join(f"- **{rng.choice(WORDS).title()}**: {_words(rng, rng.randint(5, 9))}."
                      for _ in range(rng.randint(3, 5)))
    return f"Sure! Here is how {probe.text.split('explain ')[-1][:-len(' to a beginner.')]} works:\n\n{items}"


def prose_style(probe: Probe, sample: int = 0) -> str:
    """A plain-prose model that answers in one paragraph and hedges."""
    rng = random.Random(f"p{probe.id}{sample}")
    sentences = " ".join(f"It might {_words(rng, rng.randint(6, 10))}" + rng.choice([".", ", perhaps."])
                         for _ in range(rng.randint(2, 4)))
    return f"Well, {sentences} I hope this helps"


def build_audit(path: Path, probes: list[Probe], sources: dict[str, Callable[[Probe, int], str | None]], *,
                samples: int = 1) -> tuple[Store, str]:
    """An audit database whose models (``teacher``, ``suspect``, ``control:NAME``) answered with ``sources``.

    A source that returns None for a probe failed it: the query is recorded as an error, as collect does.
    """
    store = Store.open(path)
    digest = hashlib.sha256(json.dumps([p.id for p in probes]).encode()).hexdigest()
    suite = Suite("synthetic", "1", digest, probes, "test")
    store.add_suite(suite)
    audit_id = store.ensure_audit({"teacher": "fake:teacher", "suspect": "fake:suspect"}, suite_name="synthetic",
                                  suite_version="1", suite_hash=digest, seed=0)
    store.select_probes(audit_id, [p.id for p in probes])
    families = {"teacher": "llama", "suspect": "llama"}
    for name, source in sources.items():
        role = name.split(":")[0]
        model_id = store.add_model(audit_id, name=name, role=role, spec=f"fake:{name}",
                                   description={"backend": "fake", "fingerprint": f"fp-{name}", "param_count": 1000,
                                                "model_type": families.get(name, "gemma3")})
        answers = []
        for p in probes:
            for s in range(samples):
                text = source(p, s)
                if text is None:
                    answers.append({"probe_id": p.id, "sample": s, "params": {"temperature": 0.0},
                                    "error": "HTTP 403: refused"})
                    continue
                answers.append({"probe_id": p.id, "sample": s, "params": {"temperature": 0.0}, "text": text,
                                "tokens_in": 20, "tokens_out": len(text.split()), "finish_reason": "stop",
                                "latency_s": 0.01, "device_s": 0.0})
        store.record_answers(audit_id, model_id, answers)
    return store, audit_id


class HashingEmbedder:
    """Bag of words hashed into 64 dimensions, L2-normalised: a fast, deterministic stand-in for MiniLM."""

    name = "test-hashing-64"

    def __init__(self):
        self.calls = 0

    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        self.calls += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms), sum(len(t.split()) for t in texts)

    def param_count(self) -> int:
        return 0

    def description(self) -> dict:
        return {"backend": "test", "fingerprint": "hashing-64", "param_count": 0}


class LengthTeacher:
    """A 'teacher' that scores text: log p per token is higher for the words its own style uses."""

    spec = "fake:teacher"

    def __init__(self, favourite: set[str]):
        self.favourite = favourite
        self.calls = 0

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        self.calls += 1
        return [[-0.5 if w.strip("*:.-,!").lower() in self.favourite else -3.0 for w in c.split()] or [-1.0]
                for c in continuations]

    def generate(self, prompts: list[str], params: GenParams, samples=None) -> list[Generation]:
        raise AssertionError("the teacher is only asked to score during analysis")

    def describe(self) -> Description:
        return Description("fake:teacher", "fake", "fp-teacher", 1000, {"model_type": "llama"})


_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_ORDER = re.compile(r"answer\s+([AB])\b", re.IGNORECASE)


class ObedientJudge:
    """A judge that obeys any "answer A/B" it finds in the instruction part of its prompt.

    The instruction part is everything outside well-formed JSON string
    literals, found with its own regular expression (not the code under
    test). Otherwise it answers fairly: the candidate whose words overlap
    most with the reference responses. Verdicts come as log-probabilities
    from ``score`` (or generated text when ``can_score`` is False).
    """

    spec = "fake:judge"

    def __init__(self, can_score: bool = True):
        self.can_score = can_score
        self.prompts: list[str] = []

    def decide(self, prompt: str) -> str:
        self.prompts.append(prompt)
        outside = _LITERAL.sub('""', prompt)
        order = _ORDER.search(outside)
        if order:
            return order.group(1).upper()
        literals = [json.loads(m) for m in _LITERAL.findall(prompt)]
        *refs, _probe, first, second = literals
        ref_words = set(re.findall(r"\w+", " ".join(refs).lower()))
        overlap = lambda t: len(set(re.findall(r"\w+", t.lower())) & ref_words)  # noqa: E731
        return "A" if overlap(first) >= overlap(second) else "B"

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        from audit.errors import ScoringUnsupported

        if not self.can_score:
            raise ScoringUnsupported("fake judge: no scoring")
        letter = self.decide(prompt)
        return [[math.log(0.9) if c == letter else math.log(0.1)] for c in continuations]

    def generate(self, prompts: list[str], params: GenParams, samples=None) -> list[Generation]:
        return [Generation(text=f"{self.decide(p)}", tokens_in=len(p) // 4, tokens_out=1, finish_reason="stop")
                for p in prompts]

    def describe(self) -> Description:
        return Description("fake:judge", "fake", "fp-judge", 1000, {"model_type": "qwen2"})
