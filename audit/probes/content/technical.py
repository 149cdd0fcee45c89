"""domain-technical: terminology-heavy questions in medicine, law, finance, chemistry, systems programming, statistics."""

from __future__ import annotations

import random

from audit.probes.content.common import Subcategory, framed, one

CATEGORY = "domain-technical"

TERMS = {
    "medicine": [
        "ACE inhibitors", "beta blockers", "statins", "the glomerular filtration rate", "HbA1c", "troponin",
        "atrial fibrillation", "sepsis", "the Glasgow Coma Scale", "anaphylaxis", "pharmacokinetics",
        "the blood-brain barrier", "antibiotic resistance", "type 1 diabetes", "type 2 diabetes", "hypertension",
        "a randomised controlled trial", "the number needed to treat", "herd immunity", "an MRI scan", "a CT scan",
        "anticoagulants", "the Apgar score", "iron-deficiency anaemia", "osteoporosis", "the placebo effect",
        "informed consent", "triage", "an electrocardiogram", "insulin resistance",
    ],
    "law": [
        "habeas corpus", "mens rea", "the burden of proof", "a tort", "negligence", "consideration in contract law",
        "force majeure", "an injunction", "precedent", "statute of limitations", "intellectual property",
        "fair use", "a non-disclosure agreement", "due process", "judicial review", "an affidavit",
        "strict liability", "the presumption of innocence", "a class action", "arbitration", "defamation",
        "an easement", "joint and several liability", "a power of attorney", "probate", "the GDPR",
        "copyright versus trademark", "an indemnity clause", "restitution", "double jeopardy",
    ],
    "finance": [
        "compound interest", "the time value of money", "net present value", "internal rate of return",
        "a bond's yield to maturity", "duration", "diversification", "the efficient market hypothesis",
        "an index fund", "an exchange-traded fund", "a balance sheet", "an income statement", "free cash flow",
        "EBITDA", "working capital", "leverage", "a margin call", "short selling", "options", "a call option",
        "a put option", "inflation", "quantitative easing", "the yield curve", "a credit default swap",
        "dollar-cost averaging", "the price-to-earnings ratio", "liquidity", "amortisation", "depreciation",
    ],
    "chemistry": [
        "covalent bonds", "ionic bonds", "electronegativity", "oxidation and reduction", "pH", "buffer solutions",
        "Le Chatelier's principle", "activation energy", "catalysts", "enthalpy", "entropy", "Gibbs free energy",
        "isotopes", "molarity", "stoichiometry", "chirality", "polymerisation", "hydrogen bonding",
        "the ideal gas law", "titration", "chromatography", "spectroscopy", "valence electrons", "alkanes",
        "esters", "reaction kinetics", "equilibrium constants", "electrolysis", "the mole", "van der Waals forces",
    ],
    "systems-programming": [
        "virtual memory", "page faults", "a mutex", "a semaphore", "a deadlock", "a race condition",
        "the stack versus the heap", "system calls", "context switching", "cache lines", "false sharing",
        "memory-mapped files", "file descriptors", "copy-on-write", "the TLB", "interrupts", "DMA",
        "lock-free data structures", "memory ordering", "a use-after-free bug", "buffer overflows (conceptually)",
        "epoll", "garbage collection", "reference counting", "the linker", "dynamic libraries",
        "endianness", "alignment and padding", "the scheduler", "zero-copy I/O",
    ],
    "statistics": [
        "a p-value", "a confidence interval", "statistical power", "Type I and Type II errors", "the central limit theorem",
        "the bootstrap", "Bayes' theorem", "a prior distribution", "maximum likelihood estimation", "overfitting",
        "cross-validation", "regression to the mean", "multicollinearity", "heteroscedasticity", "the standard error",
        "effect size", "multiple-testing correction", "the Bonferroni correction", "the false discovery rate",
        "a permutation test", "a chi-squared test", "a t-test", "survival analysis", "censored data",
        "Simpson's paradox", "a Markov chain", "variance versus bias", "a random effect", "stratified sampling",
        "the law of large numbers",
    ],
}
TEMPLATES = [
    "What is meant by {x}?", "Explain {x}{a}.", "Define {x} precisely, then give an example.", "Why does {x} matter in practice?",
    "What are common misunderstandings about {x}?", "How would you explain {x}{a}?",
    "What is the difference between {x} and {y}?", "How are {x} and {y} related?",
    "Give a one-paragraph technical summary of {x}.", "When would a professional need to think about {x}?",
    "What are the limitations of {x}?", "Describe a realistic scenario that involves {x}.",
    "Compare {x} with {y} in a few sentences.", "What should a newcomer to the field know about {x}?",
]
AUDIENCES = ["", " to a first-year student", " to a colleague from another field", " to a journalist",
             " in plain language", " rigorously", " to an interviewer", " to a patient or client", " with an analogy"]


def _domain(domain: str):
    def draw(rng: random.Random):
        x, y = rng.sample(TERMS[domain], 2)
        return one(framed(rng, rng.choice(TEMPLATES).format(x=x, y=y, a=rng.choice(AUDIENCES))))
    return draw


SUBCATEGORIES = [Subcategory(domain, 70, _domain(domain)) for domain in TERMS]
