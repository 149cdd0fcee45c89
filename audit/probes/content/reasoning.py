"""reasoning: arithmetic, word problems, sequences, dates, ordering logic; every answer computed here."""

from __future__ import annotations

import random

from audit.probes.content.common import Subcategory, contains_any, framed, number, one

CATEGORY = "reasoning"

NAMES = ["Ava", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kira", "Luis", "Maya",
         "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Xavier", "Yara", "Zoe"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "stamps", "shells", "cards", "coins",
         "balloons", "oranges", "candles", "postcards", "buttons", "seashells", "tickets", "plums"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TRAITS = [("taller", "shortest", "tallest"), ("older", "youngest", "oldest"), ("faster", "slowest", "fastest"),
          ("heavier", "lightest", "heaviest"), ("richer", "poorest", "richest")]
SHOW_WORK = ["", " Show your working.", " Give only the final number.", " Think step by step.",
             " Put the final answer on its own line.", " Answer with a number."]


def arithmetic_question(rng: random.Random):
    """An arithmetic question and its exact answer (robustness reuses it as a base prompt)."""
    op = rng.choice("+-*/")
    if op == "/":
        b = rng.randint(2, 25)
        a = b * rng.randint(2, 60)
        value = a // b
    else:
        a, b = rng.randint(11, 999), rng.randint(2, 999 if op != "*" else 99)
        value = a + b if op == "+" else a - b if op == "-" else a * b
    word = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}[op]
    symbol = {"+": "+", "-": "-", "*": "×", "/": "÷"}[op]
    form = rng.choice(["What is {a} {w} {b}?", "Compute {a} {s} {b}.", "Calculate {a} {s} {b}.", "{a} {s} {b} = ?",
                       "What do you get from {a} {w} {b}?", "Work out {a} {w} {b}."])
    return form.format(a=a, b=b, w=word, s=symbol), number(value)


def _arithmetic(rng: random.Random):
    question, ref = arithmetic_question(rng)
    return one(framed(rng, question + rng.choice(SHOW_WORK)), ref)


def word_problem(rng: random.Random):
    name, other = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    a, b, c = rng.randint(5, 60), rng.randint(2, 30), rng.randint(2, 9)
    kind = rng.randrange(4)
    if kind == 0:
        text = f"{name} has {a} {item}. {other} gives {name} {b} more, then {name} gives away {c}. How many {item} does {name} have now?"
        return text, number(a + b - c)
    if kind == 1:
        text = f"{name} buys {c} bags of {item} with {b} {item} in each bag. How many {item} is that in total?"
        return text, number(b * c)
    if kind == 2:
        total = c * b
        text = f"{name} shares {total} {item} equally among {c} friends. How many {item} does each friend get?"
        return text, number(b)
    price = rng.randint(2, 15)
    text = (f"One {item[:-1]} costs {price} dollars. {name} buys {c} of them and pays with a {price * c + b}-dollar "
            f"bill. How much change does {name} get, in dollars?")
    return text, number(b)


def _word_problems(rng: random.Random):
    text, ref = word_problem(rng)
    return one(framed(rng, text + rng.choice(SHOW_WORK)), ref)


def _sequences(rng: random.Random):
    start, step, length = rng.randint(1, 40), rng.randint(2, 12), rng.randint(4, 6)
    if rng.random() < 0.6:
        terms = [start + step * i for i in range(length + 1)]
    else:
        ratio, first = rng.randint(2, 4), rng.randint(1, 6)
        terms = [first * ratio ** i for i in range(length + 1)]
    shown = ", ".join(map(str, terms[:-1]))
    form = rng.choice(["What comes next in the sequence {s}, ...?", "Continue the pattern: {s}, ?",
                       "Find the next number: {s}.", "Which number follows {s}?"])
    return one(framed(rng, form.format(s=shown) + rng.choice(SHOW_WORK)), number(terms[-1]))


def _dates(rng: random.Random):
    start = rng.randrange(7)
    shift = rng.randint(1, 60)
    later = rng.random() < 0.6
    target = WEEKDAYS[(start + (shift if later else -shift)) % 7]
    when = "after" if later else "before"
    form = rng.choice(["If today is {d}, what day of the week is it {n} days {w} today?",
                       "Today is {d}. Which weekday falls {n} days {w} today?",
                       "Starting from a {d}, count {n} days {w}. What day of the week is it?"])
    text = form.format(d=WEEKDAYS[start], n=shift, w=when)
    return one(framed(rng, text), contains_any(target))


def _ordering(rng: random.Random):
    people = rng.sample(NAMES, rng.randint(3, 5))
    comparative, least, most = rng.choice(TRAITS)
    facts = [f"{people[i]} is {comparative} than {people[i + 1]}." for i in range(len(people) - 1)]
    rng.shuffle(facts)
    ask_most = rng.random() < 0.5
    question = f"Who is the {most if ask_most else least}?" + rng.choice(["", " Answer with just the name.",
                                                                           " Reply with one name."])
    answer = people[0] if ask_most else people[-1]
    return one(framed(rng, " ".join(facts) + " " + question), contains_any(answer))


def _percentages(rng: random.Random):
    kind = rng.randrange(3)
    if kind == 0:
        pct, base = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80]), rng.randint(2, 80) * 20
        return one(framed(rng, f"What is {pct}% of {base}?" + rng.choice(SHOW_WORK)), number(pct * base / 100))
    if kind == 1:
        price, pct = rng.randint(2, 50) * 10, rng.choice([10, 20, 25, 30, 50])
        text = f"A jacket costs {price} euros and is discounted by {pct}%. What is the new price in euros?"
        return one(framed(rng, text + rng.choice(SHOW_WORK)), number(price * (100 - pct) / 100))
    km = rng.randint(1, 90)
    unit, factor = rng.choice([("metres", 1000), ("centimetres", 100000)])
    return one(framed(rng, f"How many {unit} are in {km} kilometres?" + rng.choice(SHOW_WORK)), number(km * factor))


def _comparisons(rng: random.Random):
    a, b = rng.sample(range(100, 9999), 2)
    x, y = round(a / 100, 2), round(b / 100, 2)
    form = rng.choice(["Which is larger, {x} or {y}?", "Which number is bigger: {x} or {y}?",
                       "Which is smaller, {x} or {y}?", "Pick the smaller of {x} and {y}."])
    smaller = "smaller" in form
    text = form.format(x=x, y=y) + rng.choice([" Reply with just that number.", " Answer with the number only.",
                                               " Only write the number."])
    return one(framed(rng, text), number(min(x, y) if smaller else max(x, y)))


SUBCATEGORIES = [
    Subcategory("arithmetic", 90, _arithmetic),
    Subcategory("word-problems", 90, _word_problems),
    Subcategory("sequences", 50, _sequences),
    Subcategory("weekdays", 50, _dates),
    Subcategory("ordering-logic", 50, _ordering),
    Subcategory("percentages-units", 50, _percentages),
    Subcategory("comparisons", 40, _comparisons),
]
