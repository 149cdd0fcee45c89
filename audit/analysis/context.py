"""What every part of the analysis shares: the store, the audit, the compute on record, and the models loaded.

Its own module so the adversaries' inputs, the q/t accounting and the row
builders can all take it without importing the stage entry (`audit.analyze`),
and so the one rule on loading models (only specs the user named) lives in
one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.errors import AuditError
from audit.store import Store

NEVER_RUN = "the database's spec is never run"  # specs read from a database are shown, never executed


@dataclass
class Context:
    """What every row builder needs: the store, the audit, and the compute already on record."""

    store: Store
    confidence: float
    seed: int
    by_model: dict[str, list[dict]]
    model_rows: dict[str, dict]
    model_costs: dict[str, dict]
    notes: list[str] = field(default_factory=list)
    loaded: dict[str, object] = field(default_factory=dict)
    per_probe: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> probe -> compute  # spec -> model: a teacher that also judges loads once
    named: frozenset[str] = frozenset()  # the specs the user gave (command line, config): the only ones ever loaded
    unnamed: list[str] = field(default_factory=list)  # adversaries skipped because the user named no model for them
    not_run: dict[str, str] = field(default_factory=dict)  # adversary -> why it could not be run (the headline says)
    checked: dict[str, object] = field(default_factory=dict)  # spec -> its check_spec, which loading does not repeat

    def load(self, spec: str):
        """The model ``spec`` names, loaded once; never a spec the user did not name (one read from the database)."""
        if spec not in self.named:
            raise AuditError(f"model spec {spec!r}: not named on the command line; {NEVER_RUN}")
        if spec not in self.loaded:
            from audit.models import load_model

            self.loaded[spec] = load_model(self.checked.get(spec, spec))
        return self.loaded[spec]
