"""The results contract: one typed row that the analysis writes, the store keeps and the report reads.

A row states one estimate of one ``metric`` (an advantage, a cosine, an MMD
statistic, a gap...) with its interval, n, q and t, for one adversary on
one comparison, category and split. What used to hide in strings is data:
the headline is a flag on the row of the adversary it selected (not an
adversary called ``headline``), the control a row is about is a column (not
the tail of ``provenance:NAME``), and a judge row says which pairs it counts
(``judge_mode``). ``from_legacy`` reads a row in the shape distill-audit wrote
before schema step m006, for the migration and for an old database read as it
is (a received report's copy is never migrated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from audit.vocabulary import (ADVANTAGE, ALL, HEADLINE, JUDGE_MODES, PROVENANCE, control_of, provenance_key)

if TYPE_CHECKING:
    from audit.stats import Estimate

KEY = ("adversary", "comparison", "control", "category", "split", "metric", "headline")  # a row's natural key


@dataclass
class ResultRow:
    """One claim's numbers, as stored in ``results`` (t and details as canonical JSON there)."""

    adversary: str  # the adversary whose estimate this is; for the headline, the one selected
    comparison: str  # teacher-vs-suspect, teacher-vs-control:NAME, provenance, exposure:POLICY
    metric: str = ADVANTAGE
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    confidence: float | None = None
    ci_method: str | None = None
    p_value: float | None = None
    p_holm: float | None = None
    p_bh: float | None = None
    q: int | None = None
    category: str = ALL
    split: str = ALL
    headline: bool = False  # the strongest adversary's claim, its interval paid for the choice among candidates
    control: str | None = None  # the control a teacher-vs-control or provenance row is about
    judge_mode: str | None = None  # consistent-pairs or every-pair, for the judge's rows
    t: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        """The control and the judge mode follow from the comparison and the adversary: never left implicit."""
        if self.control is None:
            self.control = control_of(self.comparison)
        if self.judge_mode is None:
            self.judge_mode = JUDGE_MODES.get(self.adversary)

    @classmethod
    def of(cls, estimate: "Estimate", **fields_: Any) -> "ResultRow":
        """A row from an estimate; NaN (no estimate, no interval) becomes None: absent, never a number."""
        numbers = {"estimate": estimate.estimate, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high,
                   "n": estimate.n, "confidence": estimate.confidence, "p_value": estimate.p_value}
        details = {**estimate.details, **fields_.pop("details", {})}
        return cls(**{k: _finite(v) for k, v in numbers.items()}, ci_method=estimate.method, details=details,
                   **fields_)

    def key(self) -> tuple:
        return tuple(getattr(self, k) for k in KEY)

    def columns(self) -> dict[str, Any]:
        """The row's columns except the JSON ones, for the store."""
        values = asdict(self)
        values.pop("t"), values.pop("details")
        return {**values, "headline": int(self.headline)}

    @classmethod
    def from_columns(cls, row: dict[str, Any], t: dict, details: dict) -> "ResultRow":
        """A row read from a ``results`` table at schema m006 or later."""
        names = {f.name for f in fields(cls)} - {"t", "details"}
        values = {k: row[k] for k in names if k in row}
        return cls(**{**values, "headline": bool(values.get("headline"))}, t=t, details=details)

    @classmethod
    def from_legacy(cls, row: dict[str, Any], t: dict, details: dict) -> "ResultRow":
        """A row written before m006: ``advantage`` held every metric's estimate, the headline was the adversary
        ``headline`` (the selected one in details ``adversary``, else ``selected``), a provenance row's
        comparison was ``provenance:NAME``."""
        details = dict(details)
        headline = row["adversary"] == HEADLINE
        adversary = str(details.pop("adversary", None) or details.pop("selected", None) or HEADLINE) if headline \
            else row["adversary"]
        comparison = row["comparison"]
        control = control_of(comparison)
        if comparison == provenance_key(control or ""):
            comparison = PROVENANCE
        numbers = {k: row.get(k) for k in ("ci_low", "ci_high", "n", "confidence", "ci_method", "p_value", "p_holm",
                                            "p_bh", "q")}
        return cls(adversary=adversary, comparison=comparison, metric=row.get("metric") or ADVANTAGE,
                   estimate=row.get("advantage"), category=row.get("category") or ALL, split=row.get("split") or ALL,
                   headline=headline, control=control, t=t, details=details, **numbers)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value
