"""code: write, explain, fix, predict output, concepts. Snippets are generated with fresh names and constants."""

from __future__ import annotations

import random

from audit.probes.content.common import Subcategory, contains_any, framed, number, one

CATEGORY = "code"

# what the function does, its snake_case name
TASKS = [
    ("returns the factorial of a non-negative integer n", "factorial"),
    ("checks whether a string is a palindrome, ignoring case", "is_palindrome"),
    ("returns the n-th Fibonacci number", "fibonacci"), ("reverses the words in a sentence", "reverse_words"),
    ("counts the vowels in a string", "count_vowels"), ("returns the largest element of a list of numbers", "max_value"),
    ("removes duplicate items from a list while keeping their order", "dedupe"),
    ("checks whether a number is prime", "is_prime"), ("merges two sorted lists into one sorted list", "merge_sorted"),
    ("computes the greatest common divisor of two integers", "gcd"), ("converts Celsius to Fahrenheit", "celsius_to_fahrenheit"),
    ("flattens a list of lists by one level", "flatten"), ("counts how often each word occurs in a text", "word_counts"),
    ("returns the median of a list of numbers", "median"), ("checks whether two strings are anagrams", "are_anagrams"),
    ("capitalises the first letter of every word", "title_case"), ("performs binary search on a sorted list", "binary_search"),
    ("returns the sum of the digits of an integer", "digit_sum"), ("splits a list into chunks of size k", "chunk"),
    ("validates that a string looks like an email address", "looks_like_email"),
    ("rotates a list to the right by k positions", "rotate_right"), ("transposes a matrix given as a list of rows", "transpose"),
    ("returns the second largest distinct number in a list", "second_largest"),
    ("converts a Roman numeral string to an integer", "roman_to_int"), ("computes the running total of a list", "running_sum"),
    ("finds the first non-repeating character in a string", "first_unique_char"),
    ("checks whether brackets in a string are balanced", "balanced_brackets"),
    ("groups a list of words by their first letter", "group_by_initial"),
    ("computes the average of a list, returning 0 for an empty list", "safe_mean"),
    ("returns all even numbers from a list", "evens"),
]
LANGUAGES = ["Python", "JavaScript", "TypeScript", "Go", "Rust", "Java", "C", "C++", "Ruby", "Kotlin", "C#", "Swift"]
CAMEL_CASE = {"JavaScript", "TypeScript", "Go", "Java", "Kotlin", "C#", "Swift"}
EXTRAS = ["", " Include a short docstring or comment.", " Add two example calls.", " Handle edge cases.",
          " Keep it under 15 lines.", " Avoid external libraries.", " Explain the time complexity afterwards.",
          " Write a unit test for it too."]
NAMES = ["items", "values", "data", "nums", "xs", "records", "scores", "readings", "entries", "batch", "arr", "seq"]
FUNCS = ["process", "transform", "compute", "helper", "run", "handle", "calc", "step", "apply_rule", "mystery"]
CONCEPTS = [
    "recursion", "memoisation", "Big-O notation", "a hash map", "a linked list", "a binary heap", "dependency injection",
    "immutability", "closures", "generators", "async/await", "unit testing", "continuous integration", "git rebase",
    "git merge", "a REST API", "idempotency", "SQL joins", "database indexes", "regular expressions", "Unicode normalisation",
    "floating-point rounding errors", "type inference", "pattern matching", "the observer pattern", "event loops",
    "lazy evaluation", "tail calls", "code review", "semantic versioning",
]


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _write(rng: random.Random):
    description, name = rng.choice(TASKS)
    language = rng.choice(LANGUAGES)
    name = _camel(name) if language in CAMEL_CASE else name
    form = rng.choice(["Write a {l} function named {n} that {d}.", "In {l}, implement `{n}`, which {d}.",
                       "Please write {n} in {l}: it {d}.", "I need a {l} function `{n}` that {d}."])
    text = form.format(l=language, n=name, d=description) + rng.choice(EXTRAS)
    return one(framed(rng, text), contains_any(name))


def _snippet(rng: random.Random) -> tuple[str, int, str]:
    """A small Python function, the value of one call to it, and that call."""
    f, xs = rng.choice(FUNCS), rng.choice(NAMES)
    x = xs[0] if xs[0] not in "xs" else "v"
    k = rng.randint(2, 9)
    data = [rng.randint(-9, 30) for _ in range(rng.randint(4, 7))]
    kind = rng.randrange(4)
    if kind == 0:
        body = f"def {f}({xs}):\n    total = 0\n    for {x} in {xs}:\n        if {x} % {k} == 0:\n            total += {x}\n    return total"
        value = sum(v for v in data if v % k == 0)
    elif kind == 1:
        body = f"def {f}({xs}):\n    return sum({x} * {k} for {x} in {xs} if {x} > 0)"
        value = sum(v * k for v in data if v > 0)
    elif kind == 2:
        body = f"def {f}({xs}):\n    best = {xs}[0]\n    for {x} in {xs}[1:]:\n        if {x} < best:\n            best = {x}\n    return best + {k}"
        value = min(data) + k
    else:
        body = f"def {f}({xs}):\n    return len([{x} for {x} in {xs} if {x} % 2 == {k % 2}])"
        value = len([v for v in data if v % 2 == k % 2])
    return body, value, f"{f}({data})"


def _predict(rng: random.Random):
    body, value, call = _snippet(rng)
    form = rng.choice(["What does `{c}` return?\n\n```python\n{b}\n```",
                       "Given this Python code:\n\n{b}\n\nwhat is the value of {c}?",
                       "```python\n{b}\n```\nPredict the output of print({c}).",
                       "Trace this function by hand and tell me what {c} evaluates to.\n\n{b}"])
    return one(form.format(b=body, c=call), number(value))


def _explain(rng: random.Random):
    body, _, _ = _snippet(rng)
    form = rng.choice(["Explain what this function does:\n\n```python\n{b}\n```", "What is the purpose of this code?\n\n{b}",
                       "```python\n{b}\n```\nDescribe this function line by line.", "Suggest a better name for this function and explain it:\n\n{b}",
                       "Rewrite this more idiomatically and explain the change:\n\n```python\n{b}\n```"])
    return one(form.format(b=body))


def _buggy(rng: random.Random) -> tuple[str, str]:
    f, xs = rng.choice(FUNCS), rng.choice(NAMES)
    n = rng.randint(2, 12)
    bugs = [
        (f"def {f}({xs}):\n    for i in range(len({xs}) + 1):\n        print({xs}[i])", "it crashes on the last iteration"),
        (f"def {f}({xs}, target):\n    lo, hi = 0, len({xs})\n    while lo < hi:\n        mid = (lo + hi) // 2\n"
         f"        if {xs}[mid] < target:\n            lo = mid\n        else:\n            hi = mid\n    return lo",
         "it never finishes for some inputs"),
        (f"def {f}({xs}=[]):\n    {xs}.append({n})\n    return {xs}", "the list keeps growing between calls"),
        (f"def {f}({xs}):\n    average = sum({xs}) / len({xs})\n    return round(average, {n % 4})", "it fails on an empty list"),
        (f"def {f}(n):\n    if n == 0:\n        return 1\n    return n * {f}(n)", "it raises RecursionError"),
        (f"def {f}({xs}):\n    for x in {xs}:\n        if x % {n} == 0:\n            {xs}.remove(x)\n    return {xs}",
         "some matching items are not removed"),
        (f"def {f}(a, b):\n    if a = b:\n        return {n}\n    return 0", "it is a syntax error"),
        (f"function {f}({xs}) {{\n  for (var i = 0; i <= {xs}.length; i++) {{\n    console.log({xs}[i] * {n});\n  }}\n}}",
         "it prints NaN at the end"),
    ]
    return rng.choice(bugs)


def _fix(rng: random.Random):
    code_text, symptom = _buggy(rng)
    form = rng.choice(["This code has a bug: {s}. Find and fix it.\n\n{c}", "Why does this fail? ({s})\n\n```\n{c}\n```",
                       "Debug this for me, {s}:\n\n{c}", "{c}\n\nMy colleague says {s}. What is wrong and how do I fix it?"])
    return one(form.format(c=code_text, s=symptom))


def _concepts(rng: random.Random):
    a, b = rng.sample(CONCEPTS, 2)
    form = rng.choice(["What is {a} in programming?", "Explain {a} with a short code example.", "When should I avoid {a}?",
                       "What is the difference between {a} and {b}?", "How would you teach {a} to a junior developer?",
                       "Give a real-world analogy for {a}.", "What are common mistakes with {a}?"])
    lang = rng.choice(["", "", f" Use {rng.choice(LANGUAGES)} if you show code."])
    return one(framed(rng, form.format(a=a, b=b) + lang))


SUBCATEGORIES = [
    Subcategory("write-function", 130, _write),
    Subcategory("explain-snippet", 70, _explain),
    Subcategory("predict-output", 60, _predict),
    Subcategory("fix-bug", 100, _fix),
    Subcategory("concepts", 60, _concepts),
]
