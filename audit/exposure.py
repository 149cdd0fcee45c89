"""What a teacher exposes of its next-token distributions: named policies, applied before anyone trains.

A vendor choosing whether to expose log-probabilities, or testing a defence,
compares students distilled under different exposures of the same recorded
teacher responses. A policy maps the recorded top-k distribution of every
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
  rounding up pushed them past it; the tail takes what is left;
- ``purify:STRENGTH``: a learned defence, fitted on the teacher's recorded
  distributions to lower the CMI estimate while keeping every top-1 token
  (``Purify``, which says what it is and is not).

Each step is one class with one method, ``apply(exposed, rng)``, registered
under its name with ``register_step``: a vendor adds its own defence by
registering a class, and names it in ``--exposure`` like the built-in ones.
A learned step also has ``fit(distributions, seed)``, which returns the
fitted step, and ``parameters()``, what was fitted: ``Policy.fitted`` fits
each learned step on what the steps before it expose. A policy string is
recorded with every distillation run, with its seed and fitted parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from audit.errors import AuditError
from audit.store.integrity import content_hash
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


def is_learned(step: Step) -> bool:
    """A step fitted on recorded distributions before it can be applied (``fit`` and ``parameters``)."""
    return hasattr(step, "fit")


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


@register_step("purify", "STRENGTH")
class Purify:
    """A learned purification of the exposed distributions, in the spirit of CMI-minimising anti-distillation.

    What it does. Each position's exposed buckets p_t are mixed toward the
    mean exposed distribution of the positions that share its top-1 token
    (its label y_t), seen through the position's own buckets:
    p'_t = (1 - w_t) p_t + w_t m_y restricted to p_t's exposed ids, the
    rest of m_y's mass joining the tail. The mixing weight is learned per
    position from the distribution itself, w_t = sigmoid(theta . (1,
    entropy of p_t, top-1 probability of p_t)), and theta is fitted by
    L-BFGS-B (no randomness, the same start) to minimise

        STRENGTH * CMI(p') + (1 - STRENGTH) * mean_t KL(p_t || p'_t)

    on the fit set, where CMI is the plug-in estimate of ``audit.cmi`` (mean
    divergence from the label-conditional mean) and the second term is the
    distortion honest users of the probabilities pay. The label means m_y
    are fitted on the same set; a label never seen there mixes toward
    certainty on the label itself. The top-1 token is kept at every
    position by construction, not by a penalty: every fit position labelled
    y has y as its most likely token, so m_y does too, and so does any
    mixture of p_t and m_y. The exposed ids do not change, so which tokens
    are in the top-k still carries information: STRENGTH 1 lowers the
    estimate a great deal, not to zero.

    What it is not. Fang et al. (arXiv 2602.03396) learn a transformation
    matrix over the full logits, trained with a CMI-inspired objective and a
    task-utility loss, inside the vendor's serving stack; Ye et al. (arXiv
    2507.00012, CMIM) train the model itself so that each label's cluster of
    output distributions collapses. This step sees only the recorded top-k
    buckets after the fact, has three parameters, and its utility term is
    distortion, not task accuracy (top-1 agreement is 1 by construction).
    It is the post-hoc cluster collapse those papers motivate, a defence a
    vendor could bolt onto an API's ``top_logprobs``, not their method.
    """

    FEATURES = ("bias", "entropy", "top-1 probability")

    def __init__(self, text: str, fitted: "PurifyFit | None" = None):
        self.text = text
        self.strength = _number(text, f"purify:{text}")
        if self.strength > 1:
            raise AuditError(f"exposure step purify:{text}: needs a number > 0 and <= 1 (the weight of the CMI "
                             "estimate against the distortion)")
        self.fitted = fitted

    def fit(self, distributions: list[Exposed], seed: int) -> "Purify":
        """This step with theta and the label means fitted on ``distributions`` (deterministic: ``seed`` is
        unused, the optimiser starts at 0 and draws nothing)."""
        from scipy.optimize import minimize

        flat = Flat.of(distributions)
        means = LabelMeans.of(flat)
        target = means.restricted(flat.ids, flat.labels)
        features = _purify_features(flat.probs)

        def cost(theta):
            mixed = _mixed(flat.probs, target, _weights(features, theta))
            return (self.strength * label_conditional_divergence(flat.ids, mixed, flat.labels).mean()
                    + (1 - self.strength) * _divergence(flat.probs, mixed).mean())

        result = minimize(cost, np.zeros(len(self.FEATURES)), method="L-BFGS-B", bounds=[(-8.0, 8.0)] * 3)
        theta = np.round(result.x, 6)
        mixed = _mixed(flat.probs, target, _weights(features, theta))
        summary = {"theta": theta.tolist(), "iterations": int(result.nit), "positions": len(flat.labels),
                   "labels": len(means.labels), "label_means_sha256": means.digest(),
                   "cmi_before": float(label_conditional_divergence(flat.ids, flat.probs, flat.labels).mean()),
                   "cmi_after": float(label_conditional_divergence(flat.ids, mixed, flat.labels).mean()),
                   "distortion": float(_divergence(flat.probs, mixed).mean())}
        return Purify(self.text, PurifyFit(theta=theta, means=means, summary=summary))

    def parameters(self) -> dict:
        if self.fitted is None:
            raise ValueError(f"purify:{self.text} has not been fitted")
        return {"step": f"purify:{self.text}", "features": list(self.FEATURES),
                **{k: _rounded(v) for k, v in self.fitted.summary.items()}}

    def apply(self, exposed: Exposed, rng: np.random.Generator) -> Exposed:
        if self.fitted is None:
            raise ValueError(f"purify:{self.text} must be fitted on recorded distributions first (Policy.fitted)")
        labels = exposed.top1()
        target = self.fitted.means.restricted(exposed.ids, labels)
        weights = _weights(_purify_features(exposed.probs), self.fitted.theta)
        return replace(exposed, probs=_mixed(exposed.probs, target, weights))


@dataclass(frozen=True)
class PurifyFit:
    theta: np.ndarray
    means: "LabelMeans"
    summary: dict


@dataclass(frozen=True)
class Flat:
    """Every position of several exposures stacked: ids and probabilities (N, k), -1 / 0 padded, and each
    position's label (its most likely exposed token)."""

    ids: np.ndarray
    probs: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(cls, exposed: list[Exposed]) -> "Flat":
        k = max((e.ids.shape[1] for e in exposed), default=1)
        ids = np.concatenate([_padded(e.ids, k, -1) for e in exposed]) if exposed else np.full((0, k), -1)
        probs = np.concatenate([_padded(e.probs, k, 0.0) for e in exposed]) if exposed else np.zeros((0, k))
        labels = np.concatenate([e.top1() for e in exposed]) if exposed else np.zeros(0, dtype=np.int64)
        return cls(ids=ids, probs=probs, labels=labels)


_PAIR = np.int64(1 << 32)  # (label, token) as one int64: label * 2**32 + token; token ids are below 2**32


@dataclass(frozen=True)
class LabelMeans:
    """Per label, the mean probability of every token over the positions with that label (absent counts 0)."""

    labels: np.ndarray  # sorted distinct labels
    pairs: np.ndarray  # sorted label * 2**32 + token
    means: np.ndarray  # the mean of each pair

    @classmethod
    def of(cls, flat: Flat) -> "LabelMeans":
        labels, counts = np.unique(flat.labels, return_counts=True)
        present = (flat.ids >= 0) & (flat.probs > 0)
        codes = (flat.labels[:, None] * _PAIR + flat.ids)[present]
        pairs, index = np.unique(codes, return_inverse=True)
        sums = np.bincount(index, weights=flat.probs[present], minlength=len(pairs))
        return cls(labels=labels, pairs=pairs, means=sums / counts[np.searchsorted(labels, pairs // _PAIR)])

    def restricted(self, ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(N, k): each position's label mean on its own exposed ids; certainty on the label if never seen."""
        codes = labels[:, None] * _PAIR + ids
        at = np.minimum(np.searchsorted(self.pairs, codes), max(len(self.pairs) - 1, 0))
        found = (self.pairs[at] == codes) if len(self.pairs) else np.zeros(ids.shape, dtype=bool)
        seen = np.isin(labels, self.labels)[:, None]
        own = (ids == labels[:, None]).astype(float)
        return np.where(ids < 0, 0.0, np.where(seen, np.where(found, self.means[at], 0.0), own))

    def digest(self) -> str:
        return content_hash([self.pairs.tolist(), np.round(self.means, 12).tolist()])


def _purify_features(probs: np.ndarray) -> np.ndarray:
    """(N, 3): 1, the entropy of the buckets (nats), the top-1 probability."""
    buckets = np.concatenate([probs, np.clip(1.0 - probs.sum(axis=1), 0.0, 1.0)[:, None]], axis=1)
    entropy = -np.where(buckets > 0, buckets * np.log(np.where(buckets > 0, buckets, 1.0)), 0.0).sum(axis=1)
    return np.stack([np.ones(len(probs)), entropy, probs.max(axis=1, initial=0.0)], axis=1)


def _weights(features: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(features @ theta)))


def _mixed(probs: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(1 - w) p + w m per position; the tail (1 - sum) follows."""
    return (1.0 - weights[:, None]) * probs + weights[:, None] * target


def _divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per position over the same buckets (the tails included)."""
    p_tail, q_tail = (np.clip(1.0 - x.sum(axis=1), 0.0, 1.0) for x in (p, q))
    head = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(p > 0, q, 1.0)), 0.0).sum(axis=1)
    return head + np.where(p_tail > 0, p_tail * np.log(np.where(p_tail > 0, p_tail / np.maximum(q_tail, 1e-300), 1.0)),
                           0.0)


def _rounded(value):
    return round(value, 9) if isinstance(value, float) else value


def label_conditional_divergence(ids: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """KL(exposed_t || the mean exposed distribution of the positions labelled like t), one value per position.

    ``ids`` and ``probs`` (N, k) are the exposed tokens (-1 / 0 padded), the
    tail (1 - sum) one more bucket; the means are over ``labels``' groups,
    a token absent at a position counting 0 there. The plug-in estimate of
    ``audit.cmi`` is its mean, and ``Purify`` minimises it.
    """
    tail = np.clip(1.0 - probs.sum(axis=1), 0.0, 1.0)
    _, label_index, label_counts = np.unique(labels, return_inverse=True, return_counts=True)
    k = ids.shape[1]
    pair = label_index[:, None].astype(np.int64) * (int(ids.max(initial=0)) + 2) + (ids + 1)
    present = (ids >= 0) & (probs > 0)
    keys, pair_index = np.unique(pair[present], return_inverse=True)
    sums = np.bincount(pair_index, weights=probs[present], minlength=len(keys))
    mean = np.zeros_like(probs)
    mean[present] = sums[pair_index] / label_counts[label_index[:, None].repeat(k, 1)[present]]
    mean_tail = np.bincount(label_index, weights=tail) / label_counts
    head = np.where(present, probs * np.log(np.where(present, probs, 1.0) / np.where(present, mean, 1.0)), 0.0)
    tail_mean = mean_tail[label_index]
    tails = np.where(tail > 0, tail * np.log(np.where(tail > 0, tail, 1.0) / np.where(tail > 0, tail_mean, 1.0)), 0.0)
    return head.sum(axis=1) + tails


def _padded(values: np.ndarray, k: int, fill) -> np.ndarray:
    return np.pad(values, ((0, 0), (0, k - values.shape[1])), constant_values=fill)


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
    """A parsed exposure policy: its steps, in order, the seed its random steps draw from, and (once fitted)
    what its learned steps were fitted on."""

    name: str
    steps: tuple
    seed: int = 0
    fit_data: dict | None = None  # responses and the content hash of their query ids

    def expose(self, exposed: Exposed, key: str) -> Exposed:
        """What the teacher exposes for one response (``key``, its query id, seeds the response's draws)."""
        rng = self._rng(key)
        for step in self.steps:
            exposed = step.apply(exposed, rng)
        return exposed

    def _rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed & (2**63 - 1), int(content_hash([self.name, key])[:15], 16)])

    @property
    def learned(self) -> bool:
        return any(is_learned(step) for step in self.steps)

    def fitted(self, recorded: dict[str, Exposed]) -> "Policy":
        """This policy with every learned step fitted on ``recorded`` (raw distributions by query id), each on
        what the steps before it expose to those responses, with the same draws ``expose`` makes."""
        if not self.learned:
            return self
        keys = sorted(recorded)
        current, rngs = [recorded[key] for key in keys], [self._rng(key) for key in keys]
        steps = []
        for step in self.steps:
            if is_learned(step):
                step = step.fit(current, self.seed)
            current = [step.apply(exposed, rng) for exposed, rng in zip(current, rngs)]
            steps.append(step)
        return replace(self, steps=tuple(steps), fit_data={"responses": len(keys), "query_ids_sha256": content_hash(keys)})

    def recorded(self) -> dict:
        """The policy as a run records it: name and seed, and the fitted parameters of its learned steps."""
        record = {"policy": self.name, "seed": self.seed}
        if self.learned:
            record["fitted"] = {"on": self.fit_data,
                                "steps": [step.parameters() for step in self.steps if is_learned(step)]}
        return record


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


def reference_policy(policy: str, policies: list[str]) -> str | None:
    """What a leakage run compares a policy with: the longest other policy it extends (a defence against the
    policy it defends, ``top-k:20+purify:0.5`` against ``top-k:20``), else text alone (text: nothing)."""
    extended = [p for p in policies if policy.startswith(p + "+")]
    if extended:
        return max(extended, key=len)
    return "text" if policy != "text" and "text" in policies else None
