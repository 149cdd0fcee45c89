"""long-tail: rare formats, unusual tokens, unicode oddities, character-level tasks whose answers are computed here."""

from __future__ import annotations

import base64
import json
import random

from audit.probes.content.common import Subcategory, constraints, contains_any, framed, number, one
from audit.probes.content.reasoning import NAMES
from audit.probes.content.robustness import base_question

CATEGORY = "long-tail"

WORDS = ["strawberry", "mississippi", "bookkeeper", "committee", "balloon", "parallel", "necessary", "embarrass",
         "accommodate", "occurrence", "possession", "millennium", "assassination", "successful", "bubblegum",
         "hippopotamus", "onomatopoeia", "rhythm", "banana", "cinnamon", "tomorrow", "address", "beekeeper",
         "grasshopper", "pepperoni", "referee", "abracadabra", "kaleidoscope", "raspberry", "coffee", "giraffe",
         "marshmallow", "peppermint", "toothpaste", "volleyball", "watermelon", "whippoorwill", "unbelievable",
         "zigzag", "puzzle", "lollipop", "barrel", "cheerleader", "dessert", "sheep", "typewriter", "quizzical", "jazz"]
RARE_WORDS = ["defenestration", "sesquipedalian", "petrichor", "callipygian", "susurrus", "apricity", "borborygmus",
              "crepuscular", "defalcate", "ebullient", "fuliginous", "gallimaufry", "hiraeth", "ineffable", "jentacular",
              "kakistocracy", "lachrymose", "mellifluous", "nudiustertian", "obfuscate", "perspicacious", "quixotic",
              "recalcitrant", "sonder", "tintinnabulation", "ultracrepidarian", "vellichor", "widdershins", "xeric",
              "yclept", "zephyr", "absquatulate", "bumbershoot", "cattywampus", "discombobulate", "flibbertigibbet",
              "gobbledygook", "hornswoggle", "lollygag", "snollygoster", "pulchritude", "syzygy", "palimpsest",
              "limerence", "logorrhea", "mondegreen", "serendipity", "effervescent", "ephemeral", "obsequious"]
MORSE = {"a": ".-", "b": "-...", "c": "-.-.", "d": "-..", "e": ".", "f": "..-.", "g": "--.", "h": "....", "i": "..",
         "j": ".---", "k": "-.-", "l": ".-..", "m": "--", "n": "-.", "o": "---", "p": ".--.", "q": "--.-", "r": ".-.",
         "s": "...", "t": "-", "u": "..-", "v": "...-", "w": ".--", "x": "-..-", "y": "-.--", "z": "--.."}
ROMAN = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
         (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}
EMOJI = ["🍎", "⭐", "🐟", "🎈", "🌵", "🍪", "🚗", "🐝", "💎", "🌸"]
CITIES = ["Lisbon", "Oslo", "Lagos", "Quito", "Hanoi", "Perth", "Tunis", "Riga", "Lima", "Osaka", "Cork", "Graz"]


def to_roman(n: int) -> str:
    out = ""
    for value, symbol in ROMAN:
        while n >= value:
            out, n = out + symbol, n - value
    return out


def _letter_counting(rng: random.Random):
    word = rng.choice(WORDS)
    letter = rng.choice(sorted(set(word)) + ["z", "q", "x"])
    form = rng.choice(["How many times does the letter '{l}' appear in '{w}'?", "Count the letter {l} in the word {w}.",
                       "In \"{w}\", how many {l}'s are there?", "How many '{l}' characters are in {w}?"])
    return one(framed(rng, form.format(l=letter, w=word)), number(word.count(letter)))


def _string_manipulation(rng: random.Random):
    word = rng.choice(WORDS + RARE_WORDS)
    kind = rng.randrange(3)
    if kind == 0:
        text = rng.choice(["Spell '{w}' backwards.", "Reverse the letters of {w}.", "Write the word {w} in reverse order."])
        return one(framed(rng, text.format(w=word)), contains_any(word[::-1]))
    if kind == 1:
        text = rng.choice(["Sort the letters of '{w}' alphabetically.", "Rearrange the letters of {w} in alphabetical order."])
        return one(framed(rng, text.format(w=word)), contains_any("".join(sorted(word))))
    text = rng.choice(["How many letters are in the word '{w}'?", "What is the length of the string \"{w}\"?"])
    return one(framed(rng, text.format(w=word)), number(len(word)))


def _roman(rng: random.Random):
    n = rng.randint(1, 3999)
    if rng.random() < 0.5:
        text = rng.choice(["Write {n} in Roman numerals.", "Convert {n} to a Roman numeral.", "What is {n} as a Roman numeral?"])
        return one(framed(rng, text.format(n=n)), {"type": "contains", "any": [to_roman(n)], "case_sensitive": True})
    text = rng.choice(["What number is the Roman numeral {r}?", "Convert {r} to an ordinary number.", "Which year is written {r}?"])
    return one(framed(rng, text.format(r=to_roman(n))), number(n))


def _encodings(rng: random.Random):
    word = rng.choice(WORDS + RARE_WORDS)
    kind = rng.randrange(4)
    if kind == 0:
        encoded = base64.b64encode(word.encode()).decode()
        return one(framed(rng, f"Encode the word '{word}' in base64."), {"type": "contains", "any": [encoded], "case_sensitive": True})
    if kind == 1:
        encoded = base64.b64encode(word.encode()).decode()
        return one(framed(rng, f"Decode this base64 string: {encoded}"), contains_any(word))
    if kind == 2:
        short = word[:rng.randint(3, 6)]
        return one(framed(rng, f"What is the ASCII hex encoding of '{short}'?"), contains_any(short.encode().hex()))
    morse = " ".join(MORSE[c] for c in word[:8])
    return one(framed(rng, f"Decode this Morse code (letters separated by spaces): {morse}"), contains_any(word[:8]))


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _bold(text: str) -> str:
    return "".join(chr(0x1D400 + ord(c) - 65) if "A" <= c <= "Z" else chr(0x1D41A + ord(c) - 97) if "a" <= c <= "z" else c
                   for c in text)


def _zero_width(rng: random.Random, text: str) -> str:
    """Zero-width spaces every few characters: invisible to a reader, not to a tokenizer."""
    cuts, i = [], 0
    while i < len(text):
        step = rng.randint(2, 5)
        cuts.append(text[i:i + step])
        i += step
    return "\u200b".join(cuts)


def _unicode(rng: random.Random):
    text, ref = base_question(rng)
    kind = rng.randrange(6)
    if kind == 0:
        return one(_fullwidth(text), ref)
    if kind == 1:
        return one(_bold(text), ref)
    if kind == 2:
        return one(_zero_width(rng, text), ref)
    if kind == 3:
        return one("".join(HOMOGLYPHS.get(c, c) if rng.random() < 0.4 else c for c in text), ref)
    if kind == 4:
        return one("".join(c + ("\u0301" if c.isalpha() and rng.random() < 0.25 else "") for c in text), ref)
    emoji, n, m = rng.choice(EMOJI), rng.randint(2, 9), rng.randint(2, 9)
    return one(f"{emoji * n} + {emoji * m} = ? How many {emoji} in total?", number(n + m))


def _record(rng: random.Random) -> dict:
    return {"name": rng.choice(NAMES), "city": rng.choice(CITIES), "age": rng.randint(18, 90), "score": rng.randint(0, 100)}


def _rare_formats(rng: random.Random):
    kind = rng.randrange(5)
    records = [_record(rng) for _ in range(rng.randint(1, 3))]
    if kind == 0:
        target = rng.choice(["YAML", "TOML", "XML", "an S-expression", "an INI file", "a Lua table", "EDN"])
        return one(framed(rng, f"Convert this JSON to {target}: {json.dumps(records)}"))
    if kind == 1:
        rows = "\n".join(f"{r['name']},{r['city']},{r['age']}" for r in records)
        return one(f"Turn this CSV into a markdown table:\nname,city,age\n{rows}", constraints({"kind": "markdown_table"}))
    if kind == 2:
        n = rng.choice([5, 10, 15, 20, 30])
        return one(framed(rng, f"Write a crontab line that runs /usr/local/bin/backup.sh every {n} minutes."),
                   contains_any(f"*/{n} * * * *"))
    if kind == 3:
        key = rng.choice(["age", "score"])
        return one(framed(rng, f"Write a jq filter that prints the {key} of every object in this array: {json.dumps(records)}"))
    subject = rng.choice(["the quadratic formula", "Euler's identity", "the Pythagorean theorem", "Bayes' theorem",
                          "the area of a circle", "the sum of the first n integers", "Newton's second law"])
    return one(framed(rng, f"Write {subject} in LaTeX{rng.choice(['', ' as a display equation', ' inside $...$'])}."))


def _rare_words(rng: random.Random):
    word = rng.choice(RARE_WORDS)
    if rng.random() < 0.5:
        form = rng.choice(["Use the word '{w}' in a sentence.", "Write one sentence containing '{w}'.",
                           "Give an example sentence with {w}."])
        return one(framed(rng, form.format(w=word)), constraints({"kind": "include_words", "words": [word]}))
    form = rng.choice(["What does '{w}' mean?", "Define {w}.", "Is '{w}' a real English word? What does it mean?",
                       "Where does the word {w} come from?"])
    return one(framed(rng, form.format(w=word)))


SUBCATEGORIES = [
    Subcategory("letter-counting", 50, _letter_counting),
    Subcategory("string-manipulation", 50, _string_manipulation),
    Subcategory("roman-numerals", 40, _roman),
    Subcategory("encodings", 50, _encodings),
    Subcategory("unicode-oddities", 80, _unicode),
    Subcategory("rare-formats", 70, _rare_formats),
    Subcategory("rare-words", 60, _rare_words),
]
