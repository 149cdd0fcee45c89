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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from audit.models.base import Description, Generation, GenParams, Model
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
                samples: int = 1) -> Store:
    """An audit database whose models (``teacher``, ``suspect``, ``control:NAME``) answered with ``sources``.

    A source that returns None for a probe failed it: the query is recorded as an error, as collect does.
    """
    store = Store.open(path)
    digest = hashlib.sha256(json.dumps([p.id for p in probes]).encode()).hexdigest()
    suite = Suite("synthetic", "1", digest, probes, "test")
    store.add_suite(suite)
    store.ensure_audit({"teacher": "fake:teacher", "suspect": "fake:suspect"}, suite_name="synthetic",
                       suite_version="1", suite_hash=digest, seed=0)
    store.select_probes([p.id for p in probes])
    families = {"teacher": "llama", "suspect": "llama"}
    for name, source in sources.items():
        role = name.split(":")[0]
        model_id = store.add_model(name=name, role=role, spec=f"fake:{name}",
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
        store.record_responses(model_id, answers)
    return store


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


class LengthTeacher(Model):
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


class ObedientJudge(Model):
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


# ---- simulated audits with a known true advantage (the coverage checks) -------------------------------------


@dataclass
class SimulatedWorld:
    """How a simulated audit's features were drawn, so every fitted adversary's true advantage is computable.

    A response of model m to a probe of category c is x = p + s[m][c]·u + e:
    p ~ N(0, probe_sd²·I) is the probe's own effect, shared by every model's
    response to it (so responses to one probe are dependent, as in a real
    audit), u a fixed unit direction, e ~ N(0, I). Its mean log-likelihood
    under the teacher is a + e′ − s[m][c] with a ~ N(0, probe_sd²) per probe.
    The teacher's shifts are 0; a shift of 0 everywhere is a model that
    cannot be told from the teacher at all.
    """

    shifts: dict[str, np.ndarray]  # model -> shift per category (in CATEGORIES order)
    direction: np.ndarray
    probe_sd: float
    categories: np.ndarray  # per unit: index into CATEGORIES

    def shift(self, model: str) -> np.ndarray:
        """Per unit: the model's shift along the direction."""
        return self.shifts[model][self.categories]


def shift_for(advantage: float) -> float:
    """The shift at which the best paired adversary (the Bayes rule) has this advantage: 2Φ(s/√2) − 1."""
    from scipy.stats import norm

    return float(math.sqrt(2.0) * norm.ppf((1.0 + advantage) / 2.0))


def simulated_audit(n_probes: int, shifts: dict[str, float | tuple], rng: np.random.Generator, *, dim: int = 16,
                    samples: int = 1, probe_sd: float = 1.0):
    """(comparisons, log-likelihoods, world): teacher vs each model of ``shifts`` (``suspect`` first) on n probes.

    A shift may be one number or one per category of CATEGORIES (e.g. a
    suspect close to the teacher on two categories and far on the others).
    """
    from audit.adversaries.comparison import Comparison

    probes = make_probes(n_probes)
    probe_ids = np.repeat(np.array([p.id for p in probes], dtype=object), samples)
    category_index = np.repeat(np.arange(n_probes) % len(CATEGORIES), samples)
    direction = np.zeros(dim)
    direction[:4] = 0.5
    world = SimulatedWorld({"teacher": np.zeros(len(CATEGORIES)),
                            **{m: np.broadcast_to(np.asarray(s, dtype=float), (len(CATEGORIES),)).copy()
                               for m, s in shifts.items()}},
                           direction, probe_sd, category_index)
    n = len(probe_ids)
    probe_effect = np.repeat(rng.normal(0.0, probe_sd, (n_probes, dim)), samples, axis=0)
    probe_loglik = np.repeat(rng.normal(0.0, probe_sd, n_probes), samples)
    features, loglik = {}, {}
    for model in world.shifts:
        features[model] = probe_effect + world.shift(model)[:, None] * direction + rng.normal(0.0, 1.0, (n, dim))
        loglik[model] = probe_loglik + rng.normal(0.0, 1.0, n) - world.shift(model)
    order = ["suspect"] + sorted(m for m in shifts if m != "suspect")
    empty = [""] * n
    comparisons = [Comparison(f"teacher-vs-{m}", m, probe_ids, np.tile(np.arange(samples), n_probes),
                              np.array(CATEGORIES, dtype=object)[category_index], np.full(n, "public", dtype=object),
                              empty, empty, empty, empty, empty, features["teacher"], features[m],
                              np.zeros((n, 0)), np.zeros((n, 0))) for m in order]
    return comparisons, loglik, world


def true_contributions(outcome, world: SimulatedWorld) -> np.ndarray:
    """Per unit of ``outcome``: the expected contribution of the fold model that judged it, on fresh responses.

    Averaged over probes like the observed contributions (``outcome._advantages``),
    this is the true advantage of the adversary as trained in this audit: the
    quantity its interval must cover.
    """
    design, other = outcome.refit.design, outcome.refit.other
    n = len(design.probe_ids)
    truth = np.zeros(2 * n if design.kind == "single" else n)
    spread = math.sqrt(1.0 + world.probe_sd**2)  # a single response: probe effect and noise
    for test, said_teacher in _fitted_rules(design, other, world, spread):
        if design.kind == "paired":
            truth[test] = 2.0 * said_teacher(test, None) - 1.0
        else:
            truth[test] = said_teacher(test, "teacher")
            truth[n + test] = -said_teacher(test, other)
    return truth[outcome.units]


def _fitted_rules(design, other: str, world: SimulatedWorld, spread: float):
    """Per fold: (test units, P[the fold's rule says "teacher"] for a unit's fresh response by a model)."""
    from scipy.linalg import cho_solve
    from scipy.stats import norm

    from audit.adversaries.likelihood import best_threshold

    if not hasattr(design, "folds"):  # the teacher-likelihood threshold, chosen per half
        for k in (0, 1):
            train, test = design.half != k, np.flatnonzero(design.half == k)
            values = np.r_[design.loglik["teacher"][train], design.loglik[other][train]]
            thr, sign = best_threshold(values, np.r_[np.ones(train.sum()), np.zeros(train.sum())])
            yield test, (lambda units, model, thr=thr, sign=sign:
                         norm.cdf(sign * (-world.shift(model)[units] - thr) / spread))
        return
    for fold in design.folds:
        z = {m: (design.features[m] - fold.center) / fold.scale for m in ("teacher", other)}
        if design.kind == "paired":
            w = cho_solve(fold.factor, (z["teacher"] - z[other])[fold.train].mean(axis=0)) / fold.scale
            along = w @ world.direction
            norm_w = math.sqrt(2.0) * np.linalg.norm(w)
            yield fold.test, (lambda units, _m, along=along, norm_w=norm_w:
                              norm.cdf(world.shift(other)[units] * -along / norm_w) if norm_w else 0.5)
            continue
        means = [z[m][fold.train].mean(axis=0) for m in ("teacher", other)]
        w = cho_solve(fold.factor, means[0] - means[1])
        offset = (means[0] + means[1]) / 2.0 @ w + fold.center @ (w / fold.scale)
        v = w / fold.scale
        yield fold.test, (lambda units, model, v=v, offset=offset:
                          norm.cdf((world.shift(model)[units] * (v @ world.direction) - offset)
                                   / (spread * np.linalg.norm(v))) if np.linalg.norm(v) else 0.5)


LEARNED = ("discriminator-single", "discriminator-paired", "teacher-likelihood")


def simulated_outcomes(comparisons, loglik, seed: int = 0) -> dict[str, dict]:
    """The learned adversaries' outcomes on every comparison, as the analysis builds them."""
    from audit.adversaries import discriminator, likelihood

    single, paired = (discriminator.Design.of(kind, comparisons) for kind in ("single", "paired"))
    scored = likelihood.LikelihoodDesign(loglik, comparisons[0].probe_ids, seed)
    return {c.name: {"discriminator-single": discriminator.single_outcome(single, c),
                     "discriminator-paired": discriminator.paired_outcome(paired, c),
                     "teacher-likelihood": likelihood.likelihood_outcome(scored, c)} for c in comparisons}


def true_advantage(outcome, world: SimulatedWorld) -> float:
    return float(outcome._advantages(true_contributions(outcome, world)[None, :])[0])


def simulated_claims(n_probes: int, suspect_shift, rng: np.random.Generator, *, control_shift=None,
                     dim: int = 16, samples: int = 1, seed: int = 0, categories: bool = True,
                     confidence: float = 0.95) -> list[tuple[str, object, float]]:
    """Every interval one simulated audit states, with the truth it must cover: (what, Estimate, truth).

    What: each learned adversary's overall row, its category rows (plain, and
    the Holm-corrected interval with the Holm p-value), the headline
    (Bonferroni over the adversaries; truth: the selected one's), and with a
    control the provenance gaps (Bonferroni over the adversaries).
    """
    from dataclasses import replace

    from audit.adversaries.outcome import provenance_gap
    from audit.stats import bonferroni, correct_pvalues, headline_bound, holm_interval

    shifts = {"suspect": suspect_shift, **({"control:c": control_shift} if control_shift is not None else {})}
    comparisons, loglik, world = simulated_audit(n_probes, shifts, rng, dim=dim, samples=samples)
    outcomes = simulated_outcomes(comparisons, loglik, seed)
    main = outcomes["teacher-vs-suspect"]
    estimates = {name: o.estimate(confidence, seed) for name, o in main.items()}
    truths = {name: true_advantage(o, world) for name, o in main.items()}
    claims = [(name, estimates[name], truths[name]) for name in main]
    head = headline_bound(estimates, confidence)
    claims.append(("headline", head, truths[head.details["selected"]]))
    for name, outcome in main.items() if categories else ():
        parts = [outcome.subset(outcome.categories == c) for c in CATEGORIES]
        plain = [p.estimate(confidence, seed) for p in parts]
        holm, _ = correct_pvalues([e.p_value for e in plain])
        for part, est, p_holm in zip(parts, plain, holm):
            truth = true_advantage(part, world)
            claims.append((f"{name} per category", est, truth))
            claims.append((f"{name} per category, Holm", replace(holm_interval(est, p_holm), p_value=p_holm), truth))
    if control_shift is not None:
        control = outcomes["teacher-vs-control:c"]
        gaps = {name: provenance_gap(main[name], control[name], confidence, seed) for name in main}
        for name, gap in bonferroni(gaps, confidence).items():
            claims.append((f"provenance {name}", gap, true_advantage(control[name], world) - truths[name]))
    return claims


def simulated_judge(n_probes: int, right: float, tie: float, rng: np.random.Generator, *, samples: int = 1):
    """(the judge's outcome, its true advantage): each verdict right, a tie, or wrong with the given chances.

    ``tie = 0`` and one sample per probe is the consistent-pairs judge (a
    binomial count); ties are what the unfiltered judge scores half.
    """
    from audit.adversaries.outcome import Outcome

    probes = make_probes(n_probes)
    pids = np.repeat(np.array([p.id for p in probes], dtype=object), samples)
    cats = np.repeat(np.array([p.category for p in probes], dtype=object), samples)
    draw = rng.random(len(pids))
    score = np.where(draw < right, 1.0, np.where(draw < right + tie, 0.5, 0.0))
    name = "judge" if tie == 0 else "judge-unfiltered"
    outcome = Outcome(name, "paired", pids, cats, np.full(len(pids), "public", dtype=object), score=score)
    return outcome, right - (1.0 - right - tie)
