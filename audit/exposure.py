"""What a teacher exposes of its next-token distributions: named policies, applied before anyone trains.

A vendor choosing whether to expose log-probabilities, or testing a defence,
compares students distilled under different exposures of the same recorded
teacher answers. A policy maps the recorded top-k distribution of every
generated token (``audit.topk``) to what the teacher exposes, written as
steps joined by ``+``:

- ``text``: the generated token alone, with probability 1 (what a text API
  gives; KD on it is cross-entropy on the teacher's tokens);
- ``top-k:K``: the K most likely tokens and their probabilities, the rest of
  the mass as one tail bucket (K at most the recorded k);
- ``temperature:T``: every bucket (the tail as one) raised to 1/T and
  renormalised; over the k+1 buckets, not the full vocabulary, which the
  record no longer has;
- ``noise:SIGMA``: Gaussian noise of standard deviation SIGMA added to each
  bucket's log-probability, renormalised; drawn from the policy's seed and the
  response's query id, so a response's noise never depends on the others;
- ``round:D``: probabilities rounded to D decimals, scaled down to sum 1 where
  rounding up pushed them past it; the tail takes what is left.

Each step is one class with one method, ``apply(exposed, rng)``, registered
under its name with ``register_step``: a vendor adds its own defence by
registering a class, and names it in ``--exposure`` like the built-in ones.
A policy string is recorded with every distillation run, with its seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from audit.errors import AuditError
from audit.store import content_hash
from audit.topk import TopK


@dataclass(frozen=True)
class Exposed:
    """Per generated token: exposed token ids and probabilities, (positions, k) with -1 / 0 where a position has
    fewer; the mass not on them (``tail``) is one bucket. ``chosen`` is the token the teacher generated."""

    ids: np.ndarray
    probs: np.ndarray
    chosen: np.ndarray

    @classmethod
    def recorded(cls, top: TopK) -> "Exposed":
        """The recorded distribution itself, unchanged: the start of every policy."""
        if top.chosen_ids is None:
            raise ValueError("the recorded distributions have no generated token ids")
        ids, probs = top.dense()
        return cls(ids=ids, probs=probs, chosen=np.asarray(top.chosen_ids, dtype=np.int64))

    @property
    def tail(self) -> np.ndarray:
        return np.clip(1.0 - self.probs.sum(axis=1), 0.0, 1.0)

    def top1(self) -> np.ndarray:
        """The most likely exposed token at each position."""
        return self.ids[np.arange(len(self.ids)), self.probs.argmax(axis=1)]

    def buckets(self) -> np.ndarray:
        """(positions, k + 1) probabilities: the exposed tokens, then the tail."""
        return np.concatenate([self.probs, self.tail[:, None]], axis=1)

    def with_buckets(self, buckets: np.ndarray) -> "Exposed":
        """These ids with new bucket probabilities (the last column is the tail, implied by the rest)."""
        probs = np.where(self.ids >= 0, buckets[:, :-1], 0.0)
        return replace(self, probs=probs)


class Step(Protocol):
    """One transformation of what is exposed; ``rng`` is the response's own generator."""

    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        ...


@dataclass(frozen=True)
class Registered:
    make: Callable[[str | None], Step]
    argument: str | None  # what the step's argument means ("K"), or None for a step without one


STEPS: dict[str, Registered] = {}


def register_step(name: str, argument: str | None = None):
    """Class decorator: ``name`` (with ``:ARGUMENT`` when ``argument`` is given) becomes a policy step; the
    class is built from the argument's text (``cls(text)``, or ``cls()`` without one)."""

    def register(cls):
        STEPS[name] = Registered(make=(lambda text: cls(text)) if argument else (lambda _text: cls()),
                                 argument=argument)
        return cls

    return register


def known_steps() -> str:
    return ", ".join(f"{name}:{entry.argument}" if entry.argument else name for name, entry in sorted(STEPS.items()))


def _number(text: str, what: str, *, whole: bool = False, zero_ok: bool = False) -> float:
    """A step's argument as a positive number (or zero, where ``zero_ok``), or one line saying what it must be."""
    try:
        value = int(text) if whole else float(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        kind = "a whole number" if whole else "a number"
        raise AuditError(f"exposure step {what}: needs {kind} {'>= 0' if zero_ok else '> 0'}, not {text!r}")
    return value


@register_step("text")
class Text:
    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        n = len(exposed.chosen)
        return replace(exposed, ids=exposed.chosen[:, None].copy(), probs=np.ones((n, 1)))


@register_step("top-k", "K")
class TopKStep:
    def __init__(self, text: str):
        self.k = int(_number(text, f"top-k:{text}", whole=True))

    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        recorded = exposed.ids.shape[1]
        if self.k > recorded:
            raise AuditError(f"exposure top-k:{self.k}: the teacher's distributions were recorded with only "
                             f"{recorded} tokens per position (collect with --top-logprobs {self.k} or more)")
        order = np.argsort(-exposed.probs, axis=1, kind="stable")[:, :self.k]
        return replace(exposed, ids=np.take_along_axis(exposed.ids, order, 1),
                       probs=np.take_along_axis(exposed.probs, order, 1))


@register_step("temperature", "T")
class Temperature:
    def __init__(self, text: str):
        self.t = _number(text, f"temperature:{text}")

    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        return exposed.with_buckets(_normalised(_log(exposed.buckets()) / self.t))


@register_step("noise", "SIGMA")
class Noise:
    def __init__(self, text: str):
        self.sigma = _number(text, f"noise:{text}", zero_ok=True)

    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        buckets = exposed.buckets()
        noisy = _log(buckets) + rng.normal(0.0, self.sigma, size=buckets.shape)
        return exposed.with_buckets(_normalised(noisy))


@register_step("round", "D")
class Round:
    def __init__(self, text: str):
        self.decimals = int(_number(text, f"round:{text}", whole=True, zero_ok=True))

    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        rounded = np.round(exposed.probs, self.decimals)
        total = rounded.sum(axis=1, keepdims=True)
        return replace(exposed, probs=np.where(total > 1.0, rounded / np.maximum(total, 1e-300), rounded))


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


def _normalised(logits: np.ndarray) -> np.ndarray:
    """softmax over each row; -inf (an empty bucket) stays at probability 0."""
    top = logits.max(axis=1, keepdims=True)
    weights = np.exp(logits - top)
    return weights / weights.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Policy:
    """A parsed exposure policy: its steps, in order, and the seed its random steps draw from."""

    name: str
    steps: tuple
    seed: int = 0

    def expose(self, exposed: Exposed, key: str) -> Exposed:
        """What the teacher exposes for one response (``key``, its query id, seeds the response's draws)."""
        rng = np.random.default_rng([self.seed & (2**63 - 1), int(content_hash([self.name, key])[:15], 16)])
        for step in self.steps:
            exposed = step.apply(exposed, rng)
        return exposed

    def recorded(self) -> dict:
        return {"policy": self.name, "seed": self.seed}


def parse_policy(text: str, seed: int = 0) -> Policy:
    """``top-k:20+noise:0.5`` as a Policy; an unknown step or a bad argument is one line."""
    steps = []
    for part in text.strip().split("+"):
        name, _, argument = part.strip().partition(":")
        entry = STEPS.get(name)
        if entry is None:
            raise AuditError(f"unknown exposure policy step {part.strip()!r} in {text!r}; known: {known_steps()}")
        if bool(entry.argument) != bool(argument):
            wanted = f"{name}:{entry.argument}" if entry.argument else name
            raise AuditError(f"exposure policy step {part.strip()!r} in {text!r}: write it as {wanted}")
        steps.append(entry.make(argument or None))
    canonical = "+".join(part.strip() for part in text.strip().split("+"))
    return Policy(name=canonical, steps=tuple(steps), seed=seed)
