"""The one shape in which every number about an adversary leaves the stats package.

Every number the audit states about an adversary is an `Estimate`: a point
estimate, its interval, n, the confidence level, the interval method and,
where a test applies, a p-value. **One procedure per row**: a row's p-value
is the inversion of its own interval, the smallest α at which the two-sided
interval excludes 0 (the interval is the set of values its test does not
reject). So p < α exactly when the interval excludes 0 (`excludes`), and a
reader never sees the two disagree; `at_confidence` restates an interval at
another level by the very procedure that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


# shared by the bootstrap, the sign-flip null and the MMD permutations
_BOOT_CHUNK = 256  # resamples drawn at once: bounds memory at ~chunk x groups x 4 bytes


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval: the only shape in which an advantage leaves this package.

    `restate`, where the procedure allows it, gives the same estimate with its
    interval (and its p-value, unchanged) at another confidence level: the
    headline and the multiplicity corrections need each interval at a
    stricter level, computed by the very procedure that made it.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float
    method: str
    p_value: float | None = None
    details: dict = field(default_factory=dict)
    restate: Callable[[float], "Estimate"] | None = field(default=None, repr=False, compare=False)


def excludes(low: float | None, high: float | None, null: float = 0.0) -> bool:
    """Whether an interval lies wholly on one side of ``null``: what its p-value below α must mean."""
    return low is not None and high is not None and (low > null or high < null)


def at_confidence(est: Estimate, confidence: float) -> Estimate:
    """The same estimate with its interval recomputed, by its own procedure, at another level.

    Multiplicity corrections (the headline bound, provenance gaps, split gaps)
    need each interval at a stricter level. An estimate whose procedure cannot
    be rerun at another level (a bootstrap of a statistic without a test) is
    refused rather than approximated.
    """
    if est.restate is None:
        raise ValueError(f"an estimate by {est.method!r} cannot restate its interval at another level")
    return est.restate(confidence)
