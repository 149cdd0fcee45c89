"""Which probes an audit's claims rest on: those every audited model answered, and what became of the rest.

A model that fails or refuses probes chooses its own exam, so every claim states its probe set, and above
``MATERIAL_UNANSWERED_SHARE`` of the selection left out, the claims are called inconclusive about the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.wording import capital, model_words

MATERIAL_UNANSWERED_SHARE = 0.05
"""Above this share of the selected probes missing from the common set, the claims are about a subset, not the suite.

A probe leaves the common set when any model failed it, answered it with
nothing, or was never asked it; which probes those are is up to the models
(a suspect's endpoint can fail exactly the probes where it resembles the
teacher most), so ε measured on what is left may say little about the suite.
Retried transient errors leave a percent or two; beyond 1 in 20 the subset is
large enough to move ε, so the report calls every claim inconclusive.
"""


_COUNTS = ("answered", "empty", "failed", "not_asked")


@dataclass(frozen=True)
class Coverage:
    """The probes the claims rest on (those every audited model answered) and, per model, what became of the rest."""

    selected: int
    common: int
    models: tuple[dict[str, Any], ...]  # {"model": name, "answered", "empty", "failed", "not_asked"}

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> "Coverage | None":
        """Read from a results row's details (hostile data: anything malformed is no coverage, never a crash)."""
        try:
            raw = details.get("coverage")
            models = tuple({"model": str(m["model"]), **{k: int(m.get(k) or 0) for k in _COUNTS}}
                           for m in raw["models"])
            return cls(int(raw["probes_selected"]), int(raw["probes_common"]), models)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return None

    def unanswered(self, model: dict[str, Any]) -> int:
        return max(self.selected - model["answered"], 0)

    @property
    def left_out(self) -> int:
        """Selected probes outside the common set."""
        return max(self.selected - self.common, 0)

    @property
    def material(self) -> bool:
        """Whether so many probes are left out that the claims are inconclusive about the whole suite."""
        return self.left_out > MATERIAL_UNANSWERED_SHARE * self.selected

    @property
    def suspect_chose(self) -> bool:
        """Whether the suspect alone left a material share unanswered: then the subset is of its choosing."""
        return any(m["model"] == "suspect" and self.unanswered(m) > MATERIAL_UNANSWERED_SHARE * self.selected
                   for m in self.models)

    def shortfalls(self) -> str:
        """Who did not answer how many, with why: 'the suspect did not answer 16 of the 24 selected probes (…)'."""
        parts = []
        for m in self.models:
            if self.unanswered(m):
                why = [f"{m[k]:,} {label}" for k, label in (("failed", "failed"), ("empty", "answered with nothing"),
                                                           ("not_asked", "never asked")) if m[k]]
                parts.append(f"{model_words(m['model'])} did not answer {self.unanswered(m):,} of the "
                             f"{self.selected:,} selected probes" + (f" ({', '.join(why)})" if why else ""))
        return "; ".join(parts) or "every model answered some samples of a probe that another did not"

    def finding(self) -> str:
        """What page 1 says next to the answer: which probes the claims cover, and what that allows."""
        if self.material:
            chosen = ("which the suspect chose by not answering the rest" if self.suspect_chose
                      else "a subset left by those failures, not one the audit chose")
            return (f"{capital(self.shortfalls())}. The claims below cover only the {self.common:,} probes every "
                    f"model answered, {chosen}: treat them as inconclusive about the whole suite.")
        if not self.left_out:
            return f"Every model answered all {self.selected:,} selected probes; every claim rests on all of them."
        return (f"{capital(self.shortfalls())}. Every claim rests on the {self.common:,} probes every model "
                f"answered; the {self.left_out:,} left out are within the "
                f"{MATERIAL_UNANSWERED_SHARE:.0%} of the suite above which this report calls the claims inconclusive.")

    def scope(self) -> str | None:
        """The claim's probe set, for its scope, when it is not the whole selection."""
        if not self.left_out:
            return None
        return f"on the {self.common:,} of {self.selected:,} selected probes every model answered"

    def caveat(self) -> str:
        """Appended to every claim on a material subset: what the subset leaves out, and what that allows."""
        return (f"That probe set leaves out {self.left_out:,} of the {self.selected:,} selected, so these numbers "
                "are inconclusive about the whole suite.")

    def predicate(self) -> dict[str, Any]:
        """The signed form: counts only, so it is recomputable from the database whatever the wording."""
        return {"probes_selected": self.selected, "probes_common": self.common,
                "models": [dict(m) for m in self.models]}
