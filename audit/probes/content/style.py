"""style-format: lists, JSON, tables, length limits, tone, markdown versus plain text."""

from __future__ import annotations

import random

from audit.probes.content.common import TOPICS, Subcategory, constraints, framed, one

CATEGORY = "style-format"

LIST_SUBJECTS = ["facts about {}", "common misconceptions about {}", "questions a student might ask about {}",
                 "key terms related to {}", "reasons to learn about {}", "fun facts about {}", "ways to explain {} to a child"]
ACTIVITY_LISTS = ["tips for {}", "common mistakes when {}", "tools that help with {}", "habits that make {} easier"]
ACTIVITIES = [
    "saving money", "sleeping better", "learning to cook", "running a meeting", "packing for a trip",
    "studying for exams", "writing an email", "staying focused", "keeping houseplants alive", "public speaking",
    "organising a closet", "reducing food waste", "training a puppy", "moving to a new city", "taking better photos",
    "reading more books", "drinking more water", "learning to swim", "planning a birthday party", "decluttering a desk",
    "writing a cover letter", "caring for a cat", "baking cookies", "hiking safely", "starting a podcast",
]
STEP_TASKS = [
    "save money on groceries", "fall asleep faster", "run a productive meeting", "pack for a weekend trip",
    "study for an exam", "write a polite complaint email", "repot a houseplant", "train a puppy to sit",
    "reduce food waste at home", "take a good photo with a phone", "plan a birthday party", "clean a cast-iron pan",
    "change a flat bicycle tyre", "make a cup of tea", "set up a new email account", "plant a tree",
    "write a thank-you note", "clean a laptop keyboard", "boil an egg", "back up a phone", "fold a paper plane",
    "prepare for a job interview",
]
JSON_ENTITIES = [
    "a fictional novel", "the planet Mars", "a made-up city", "a kitchen appliance", "a famous painting",
    "an imaginary animal", "a hiking trail", "a board game", "a musical instrument", "a coffee shop",
    "a smartphone", "a tropical fruit", "a sports team", "a historical invention", "a national park",
    "a pair of running shoes", "a software library", "a bird species", "a holiday destination", "a pizza",
]
JSON_KEYS = ["name", "summary", "year", "category", "tags", "rating", "color", "size", "origin", "price",
             "author", "language", "weight", "features", "location", "status"]
COMPARISONS = [
    ("cats", "dogs"), ("tea", "coffee"), ("trains", "planes"), ("Python", "JavaScript"), ("e-books", "paper books"),
    ("renting", "buying a home"), ("solar power", "wind power"), ("running", "swimming"), ("SQL", "NoSQL databases"),
    ("summer", "winter"), ("cities", "the countryside"), ("email", "instant messaging"), ("bikes", "scooters"),
    ("laptops", "tablets"), ("jazz", "classical music"), ("oceans", "lakes"), ("Mars", "Venus"),
    ("podcasts", "audiobooks"), ("chess", "checkers"), ("apples", "oranges"), ("butter", "olive oil"),
    ("film cameras", "digital cameras"), ("museums", "zoos"), ("wool", "cotton"),
]
TONES = [
    "formal", "casual", "enthusiastic", "deadpan", "academic", "friendly", "pirate-like", "Shakespearean",
    "sports-commentator", "news-anchor", "bedtime-story", "sarcastic but kind", "motivational", "poetic",
    "very polite", "noir detective", "childlike", "grumpy", "corporate", "whispered-secret",
]
AUDIENCES = ["", " for a ten-year-old", " for a busy manager", " for a beginner", " for an expert",
             " for my grandmother", " for a high-school class", " for a tourist"]


def _bulleted(rng: random.Random):
    n = rng.randint(3, 9)
    if rng.random() < 0.4:
        what = rng.choice(ACTIVITY_LISTS).format(rng.choice(ACTIVITIES))
    else:
        what = rng.choice(LIST_SUBJECTS).format(rng.choice(TOPICS))
    form = rng.choice(["List {n} {w} as a bulleted list.", "Give me exactly {n} {w}, one bullet point each.",
                       "Write a bulleted list of {n} {w}.", "Bullet points only: {n} {w}."])
    return one(framed(rng, form.format(n=n, w=what)), constraints({"kind": "bullets", "value": n}))


def _numbered(rng: random.Random):
    n = rng.randint(3, 8)
    task = rng.choice(STEP_TASKS)
    form = rng.choice(["Give {n} steps to {t}, as a numbered list.", "How do I {t}? Answer with exactly {n} numbered steps.",
                       "Write a numbered list of {n} steps for how to {t}.", "In {n} numbered steps, explain how to {t}."])
    return one(framed(rng, form.format(n=n, t=task)), constraints({"kind": "numbered_items", "value": n}))


def _json(rng: random.Random):
    keys = rng.sample(JSON_KEYS, rng.randint(2, 4))
    listed = ", ".join(f'"{k}"' for k in keys)
    entity = rng.choice(JSON_ENTITIES)
    form = rng.choice([
        "Return a JSON object with the keys {k} describing {e}. Output only JSON.",
        "Describe {e} as JSON with exactly these keys: {k}.",
        "Respond with valid JSON only. Keys: {k}. Subject: {e}.",
        "I need machine-readable output: a JSON object about {e} with keys {k}.",
    ])
    return one(framed(rng, form.format(k=listed, e=entity)), constraints({"kind": "json_keys", "keys": keys}))


def _table(rng: random.Random):
    a, b = rng.choice(COMPARISONS)
    n = rng.randint(3, 6)
    form = rng.choice(["Make a markdown table comparing {a} and {b} on {n} aspects.",
                       "Compare {a} with {b} in a markdown table with {n} rows.",
                       "Use a markdown table to contrast {a} and {b} across {n} criteria.",
                       "Put the differences between {a} and {b} into a table ({n} rows, markdown)."])
    return one(framed(rng, form.format(a=a, b=b, n=n)), constraints({"kind": "markdown_table"}))


def _length(rng: random.Random):
    n = rng.choice([10, 15, 20, 25, 30, 40, 50, 60, 75, 100])
    topic = rng.choice(TOPICS)
    form = rng.choice(["In at most {n} words, explain {t}.", "Explain {t} in {n} words or fewer.",
                       "Summarise {t}{a}. Stay under {n} words.", "Describe {t}{a} using no more than {n} words."])
    text = form.format(n=n, t=topic, a=rng.choice(AUDIENCES))
    return one(framed(rng, text), constraints({"kind": "max_words", "value": n}))


def _tone(rng: random.Random):
    form = rng.choice(["Explain {t} in a {tone} tone.", "Describe {t}{a}, written in a {tone} style.",
                       "Write two sentences about {t} in a {tone} voice.", "Tell me about {t}; make it sound {tone}."])
    return one(framed(rng, form.format(t=rng.choice(TOPICS), tone=rng.choice(TONES), a=rng.choice(AUDIENCES))))


def _plain_or_markdown(rng: random.Random):
    topic = rng.choice(TOPICS)
    audience = rng.choice(AUDIENCES)
    if rng.random() < 0.5:
        form = rng.choice(["Explain {t}{a} in plain text: no markdown, no bullet points, no headings.",
                           "Describe {t}{a}. Plain prose only, without any markdown formatting.",
                           "Write about {t}{a} as plain paragraphs; do not use lists, bold or headers."])
        return one(framed(rng, form.format(t=topic, a=audience)), constraints({"kind": "no_markdown"}))
    form = rng.choice(["Explain {t}{a} using markdown, with a heading for each section.",
                       "Write a short markdown document about {t}{a}, with headings.",
                       "Describe {t}{a}; format it as markdown with at least one # heading."])
    return one(framed(rng, form.format(t=topic, a=audience)), constraints({"kind": "markdown_heading"}))


SUBCATEGORIES = [
    Subcategory("bulleted-list", 70, _bulleted),
    Subcategory("numbered-list", 50, _numbered),
    Subcategory("json-output", 70, _json),
    Subcategory("markdown-table", 60, _table),
    Subcategory("length-limit", 60, _length),
    Subcategory("tone", 60, _tone),
    Subcategory("plain-vs-markdown", 50, _plain_or_markdown),
]
