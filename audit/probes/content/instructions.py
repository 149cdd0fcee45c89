"""instruction-following: tasks with verifiable constraints, each stored in the reference so it can be checked."""

from __future__ import annotations

import random

from audit.probes.content.common import TOPICS, Subcategory, constraints, framed, one

CATEGORY = "instruction-following"

TASKS = [
    "Describe a sunrise over the sea", "Explain why sleep matters", "Write a short note to a new neighbour",
    "Describe your ideal weekend", "Explain how to make a paper boat", "Give advice to someone starting university",
    "Describe a busy market", "Write a product blurb for a reusable water bottle", "Explain what a library is for",
    "Describe the taste of a lemon", "Write a thank-you message to a teacher", "Explain why people keep pets",
    "Describe a thunderstorm", "Write a tiny story about a lost umbrella", "Explain how a train timetable works",
    "Describe a walk in the forest", "Write an invitation to a picnic", "Explain what makes a good friend",
    "Describe an old lighthouse", "Write a short review of an imaginary cafe", "Explain how to water a cactus",
    "Describe the sound of rain on a roof", "Write a motivational message for a runner", "Explain what recycling achieves",
    "Describe a snowy street at night", "Write a postcard from the mountains", "Explain how to tie a shoelace",
    "Describe the smell of fresh bread", "Write a welcome message for a new club member", "Explain why the moon has phases",
] + [f"Explain {topic}" for topic in TOPICS[:40]]
REQUIRED = ["river", "lantern", "velvet", "orbit", "whisper", "copper", "harvest", "compass", "meadow", "signal",
            "puzzle", "echo", "marble", "thunder", "garden", "anchor", "ribbon", "window", "journey", "candle",
            "silver", "pepper", "canyon", "bridge", "feather", "quartz", "rocket", "harbour", "saffron", "violin"]
LETTERS = ["e", "a", "o", "i", "s", "t", "n", "r", "u", "l"]
OPENERS = ["Indeed", "Honestly", "Once", "Today", "Listen", "Imagine", "First", "Well", "Picture", "Surprisingly"]
CLOSERS = ["That is all.", "The end.", "Thank you for reading.", "Over and out.", "Nothing more to add.",
           "See you soon.", "Enough said.", "And that is that."]


def _word_limit(rng: random.Random):
    if rng.random() < 0.5:
        n = rng.choice([15, 20, 25, 30, 40, 50, 60, 80])
        clause = rng.choice(["Use no more than {n} words.", "Use at most {n} words.", "Keep it under {n} words."])
        return clause.format(n=n), {"kind": "max_words", "value": n}
    n = rng.choice([50, 80, 100, 120, 150, 200])
    clause = rng.choice(["Write at least {n} words.", "Write no fewer than {n} words.", "The answer must be {n} words or longer."])
    return clause.format(n=n), {"kind": "min_words", "value": n}


def _required(rng: random.Random):
    words = rng.sample(REQUIRED, rng.randint(1, 3))
    listed = ", ".join(f"'{w}'" for w in words)
    clause = rng.choice(["You must use the word(s) {w}.", "Include {w} somewhere.", "Mention {w}."])
    return clause.format(w=listed), {"kind": "include_words", "words": words}


def _forbidden_letter(rng: random.Random):
    letter = rng.choice(LETTERS)
    clause = rng.choice(["Do not use the letter '{l}'.", "Do not use the letter {l} anywhere.",
                         "Avoid the letter '{l}' entirely (a lipogram)."])
    return clause.format(l=letter), {"kind": "forbid_letter", "letter": letter}


def _case(rng: random.Random):
    if rng.random() < 0.5:
        clause = rng.choice(["Write your whole answer in lowercase letters only.", "Use no capital letters at all."])
        return clause, {"kind": "lowercase"}
    return rng.choice(["Write your entire answer in CAPITAL LETTERS.", "Answer all in uppercase."]), {"kind": "uppercase"}


def _start_end(rng: random.Random):
    if rng.random() < 0.5:
        opener = rng.choice(OPENERS)
        clause = rng.choice(["Begin your answer with the word '{o}'.", "Your first word must be '{o}'."])
        return clause.format(o=opener), {"kind": "start_with", "text": opener}
    closer = rng.choice(CLOSERS)
    clause = rng.choice(['End your answer with the exact sentence "{c}"', 'Finish with "{c}"'])
    return clause.format(c=closer), {"kind": "end_with", "text": closer}


def _format(rng: random.Random):
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(["Do not use any commas.", "Write it without a single comma."]), {"kind": "no_commas"}
    if kind == 1:
        n = rng.randint(2, 4)
        return f"Write exactly {n} paragraphs separated by blank lines.", {"kind": "paragraphs", "value": n}
    if kind == 2:
        return "Wrap your entire answer in double quotation marks.", {"kind": "quoted"}
    word, times = rng.choice(REQUIRED), rng.randint(2, 5)
    return f"Use the word '{word}' exactly {times} times.", {"kind": "count_word", "word": word, "times": times}


SIMPLE = [_word_limit, _required, _forbidden_letter, _case, _start_end, _format]
JOINS = ["{t}. {c}", "{t}. Rule: {c}", "{c} Task: {t}.", "{t}.\n{c}", "Constraint: {c}\n{t}."]


def _single(make):
    def draw(rng: random.Random):
        clause, check = make(rng)
        return one(framed(rng, rng.choice(JOINS).format(t=rng.choice(TASKS), c=clause)), constraints(check))
    return draw


def _satisfiable(checks: list[dict]) -> bool:
    """A forbidden letter must not occur in a word or phrase another constraint demands."""
    letters = [c["letter"] for c in checks if c["kind"] == "forbid_letter"]
    demanded = " ".join(" ".join(c.get("words", [])) + c.get("text", "") + c.get("word", "") for c in checks)
    return not any(letter in demanded.lower() for letter in letters)


def _combined(rng: random.Random):
    """Two or three constraints from different families on one task (redrawn until they can all hold)."""
    drawn = [make(rng) for make in rng.sample(SIMPLE, rng.randint(2, 3))]
    while not _satisfiable([check for _, check in drawn]):
        drawn = [make(rng) for make in rng.sample(SIMPLE, rng.randint(2, 3))]
    rules = " ".join(f"({i + 1}) {clause}" for i, (clause, _) in enumerate(drawn))
    text = f"{rng.choice(TASKS)}. Follow these rules: {rules}"
    return one(framed(rng, text), constraints(*(check for _, check in drawn)))


SUBCATEGORIES = [
    Subcategory("word-limits", 70, _single(_word_limit)),
    Subcategory("required-words", 70, _single(_required)),
    Subcategory("forbidden-letters", 60, _single(_forbidden_letter)),
    Subcategory("case-constraints", 50, _single(_case)),
    Subcategory("start-end", 60, _single(_start_end)),
    Subcategory("format-constraints", 50, _single(_format)),
    Subcategory("combined", 60, _combined),
]
