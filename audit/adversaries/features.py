"""Style features of a response: the habits a distilled student inherits from its teacher.

A student trained on a teacher's transcripts picks up more than content: how
long it answers, whether it reaches for bullet lists, headers and bold, how it
opens ("Sure!"), how it refuses, its punctuation and casing. These are cheap
to measure, hard to fake consistently, and complement the sentence embedding
(which sees meaning, not layout). Each feature is a rate or a log-count so no
single long response dominates a standardised model.
"""

from __future__ import annotations

import math
import re

import numpy as np

_LIST_LINE = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+")
_HEADER_LINE = re.compile(r"^\s*#{1,6}\s")
_NUMBERED_LINE = re.compile(r"^\s*\d+[.)]\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_URL = re.compile(r"https?://")
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_REFUSAL = re.compile(
    r"\b(?:i(?:'m| am) (?:sorry|unable|not able)|i can(?:'t|not)|i won't|as an ai|i'm just an ai|"
    r"i do not have|i don't have|unfortunately|cannot (?:help|assist|provide))",
    re.IGNORECASE,
)
_OPENER = re.compile(r"^\s*(?:sure|certainly|of course|absolutely|great question|okay|ok)\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(?:might|may|perhaps|possibly|likely|generally|typically|usually)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:i|me|my|i'm|i've|i'd)\b", re.IGNORECASE)

FEATURE_NAMES = (
    "log_chars", "log_words", "log_lines", "mean_line_chars", "blank_line_rate", "list_line_rate",
    "numbered_line_rate", "header_line_rate", "code_fences", "inline_code_rate", "bold_rate",
    "period_rate", "comma_rate", "question_rate", "exclamation_rate", "colon_rate", "semicolon_rate",
    "paren_rate", "quote_rate", "dash_rate", "upper_rate", "title_word_rate", "digit_rate",
    "non_ascii_rate", "emoji_count", "mean_word_len", "type_token_ratio", "repeated_line_rate",
    "refusal", "opener", "hedge_rate", "first_person_rate", "url_count", "ends_with_punct",
    "truncated_sentence", "starts_upper",
)


def style_features(text: str) -> list[float]:
    """The FEATURE_NAMES values of one response (empty text gives zeros)."""
    chars = max(len(text), 1)
    lines = text.split("\n")
    nonblank = [ln for ln in lines if ln.strip()]
    n_lines = max(len(nonblank), 1)
    words = _WORD.findall(text)
    n_words = max(len(words), 1)
    stripped = text.rstrip()

    def rate(count: float, per: float = chars) -> float:
        return count / per

    return [
        math.log1p(len(text)),
        math.log1p(len(words)),
        math.log1p(len(nonblank)),
        math.log1p(sum(len(ln) for ln in nonblank) / n_lines),
        rate(len(lines) - len(nonblank), max(len(lines), 1)),
        rate(sum(1 for ln in nonblank if _LIST_LINE.match(ln)), n_lines),
        rate(sum(1 for ln in nonblank if _NUMBERED_LINE.match(ln)), n_lines),
        rate(sum(1 for ln in nonblank if _HEADER_LINE.match(ln)), n_lines),
        float(text.count("```")),
        rate(text.count("`") - 3 * text.count("```")),
        rate(text.count("**")),
        rate(text.count(".")),
        rate(text.count(",")),
        rate(text.count("?")),
        rate(text.count("!")),
        rate(text.count(":")),
        rate(text.count(";")),
        rate(text.count("(")),
        rate(text.count('"') + text.count("\u201c") + text.count("'")),
        rate(text.count(" - ") + text.count("\u2014") + text.count("\u2013")),
        rate(sum(1 for c in text if c.isupper())),
        rate(sum(1 for w in words if w[:1].isupper()), n_words),
        rate(sum(1 for c in text if c.isdigit())),
        rate(sum(1 for c in text if ord(c) > 127)),
        float(len(_EMOJI.findall(text))),
        sum(len(w) for w in words) / n_words,
        len({w.lower() for w in words}) / n_words,
        1.0 - len(set(nonblank)) / n_lines,
        float(bool(_REFUSAL.search(text))),
        float(bool(_OPENER.match(text))),
        rate(len(_HEDGE.findall(text)), n_words),
        rate(len(_FIRST_PERSON.findall(text)), n_words),
        float(len(_URL.findall(text))),
        float(stripped[-1:] in (".", "!", "?", ")", "`", '"')),
        float(bool(stripped) and stripped[-1:].isalnum()),
        float(stripped[:1].isupper()),
    ]


def style_matrix(texts: list[str]) -> np.ndarray:
    """Rows of style features, one per text, as float32."""
    return np.asarray([style_features(t) for t in texts], dtype=np.float32).reshape(len(texts), len(FEATURE_NAMES))
