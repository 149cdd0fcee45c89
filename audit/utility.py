"""Checkable-reference accuracy: the share of a model's responses that satisfy their probe's checkable reference.

Many probes carry a reference a machine can check (a number, phrases that
must or must not appear, a refusal expected or not, verifiable constraints;
``audit.probes.checkers``). Reading every recorded response of a model
against its probe's reference says how useful the model still is on those
probes: the utility a leakage run sets beside what a policy exposes, and
beside each student. The unit is the probe (all its samples together), so
the interval resamples probes. A reference read from a database is hostile
data: a malformed one is skipped and counted, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.errors import SuiteError
from audit.probes.checkers import check_reference
from audit.stats import Estimate, bootstrap_ci


@dataclass(frozen=True)
class Checked:
    """Per checkable probe, whether each of the model's responses to it satisfied the reference (1) or not (0)."""

    by_probe: dict[str, np.ndarray]
    malformed: int = 0  # probes whose reference failed validation, left out

    def accuracy(self, confidence: float, seed: int) -> Estimate:
        """The share of responses that satisfy their reference, with a bootstrap interval over probes."""
        return bootstrap_ci(list(self.by_probe.values()), "mean", confidence, seed=seed)


def check_responses(responses: list[dict], references: dict[str, dict | None]) -> Checked:
    """Each response (store rows: probe id, text) read against its probe's reference in ``references``."""
    by_probe: dict[str, list[float]] = {}
    malformed: set[str] = set()
    for row in responses:
        reference = references.get(row["probe_id"])
        if reference is None or row["probe_id"] in malformed:
            continue
        try:
            passed = check_reference(reference, row["text"] or "")
        except SuiteError:
            malformed.add(row["probe_id"])
            by_probe.pop(row["probe_id"], None)
            continue
        by_probe.setdefault(row["probe_id"], []).append(float(passed))
    return Checked({probe: np.asarray(values) for probe, values in by_probe.items()}, len(malformed))
