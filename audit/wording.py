"""How the report writes names and numbers: one style everywhere (unicode minus, en dash ranges, readable
magnitudes), and an audited model, an adversary class or a comparison in words.

Shared by the claims (`audit.verdict`), the probe coverage (`audit.coverage`) and the report's templates, so
a number reads the same on page 1, in a table and in the signed statement's words.
"""

from __future__ import annotations

import math
from typing import Any

from audit.vocabulary import ADVERSARY_CLASSES, MAIN_COMPARISON


def model_words(name: str) -> str:
    """An audited model by its role: the claimed teacher, the suspect, control “x”."""
    if name == "teacher":
        return "the claimed teacher"
    if name == "suspect":
        return "the suspect"
    if name.startswith("control:"):
        return f"control “{name.split(':', 1)[1]}”"
    return f"model “{name}”"


def adversary_class(name: str) -> str:
    """The adversary class A in words; unknown names are shown as they are, never dropped."""
    return ADVERSARY_CLASSES.get(name, f"the adversary “{name}”")


def comparison_words(comparison: str) -> str:
    if comparison == MAIN_COMPARISON:
        return "the suspect from the claimed teacher"
    if comparison.startswith("teacher-vs-control:"):
        return f"control “{comparison.split(':', 1)[1]}” from the claimed teacher"
    if comparison.startswith("exposure:"):
        return f"the claimed teacher's exposure policy “{comparison.split(':', 1)[1]}”"
    return f"the models of “{comparison}”"


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    text = f"{x:.{digits}f}"
    if text.startswith("-") and float(text) != 0:
        return "−" + text[1:]
    return text.lstrip("-")


def fmt_interval(low: float | None, high: float | None, digits: int = 2) -> str:
    """0.22–0.40, or ‘−0.05 to 0.08’ when a sign would make an en dash ambiguous."""
    if low is None or high is None:
        return "no interval recorded"
    sep = " to " if (low < 0 or high < 0) else "–"
    return f"{fmt_num(low, digits)}{sep}{fmt_num(high, digits)}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_count(x: float | None) -> str:
    """12,345 / 1.2 M / 3.4 × 10¹³: readable magnitudes for tokens, seconds and FLOP."""
    if x is None:
        return "—"
    if abs(x) >= 1e9:
        exp = int(math.floor(math.log10(abs(x))))
        mant = x / 10**exp
        return f"{mant:.1f} × 10{str(exp).translate(_SUPERSCRIPT)}"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f} M"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.1f}"


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def fmt_t(t: dict[str, Any] | None) -> str:
    """The compute t of a claim in one phrase; says so when nothing was recorded."""
    if not t:
        return "t not recorded"
    parts = []
    tokens = (t.get("tokens_in") or 0) + (t.get("tokens_out") or 0)
    if tokens:
        parts.append(f"{fmt_count(tokens)} tokens")
    if t.get("wall_s"):
        parts.append(f"{fmt_count(t['wall_s'])} s wall")
    if t.get("device_s"):
        parts.append(f"{fmt_count(t['device_s'])} s device")
    if t.get("flops"):
        parts.append(f"{fmt_count(t['flops'])} FLOP")
    return ", ".join(parts) if parts else "t not recorded"


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]
