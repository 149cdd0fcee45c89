"""What a run trains on, decided before any model is loaded, and the config that identifies the run.

The plan is what ``leakage`` checks finished students against and what a
checkpoint or marker must match to be resumed or kept: the run's settings,
the fitted exposure, and a hash of the training responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from audit.distill.options import DistillOptions
from audit.distill.targets import exposed_targets
from audit.distill.teacher import teacher_training_responses
from audit.store import Store, content_hash

if TYPE_CHECKING:
    from audit.exposure import Exposed, Policy


@dataclass(frozen=True)
class TrainingPlan:
    """What a run trains on, decided before any training: the teacher's responses, the (fitted) exposure and what
    it exposes of each response, and the config that identifies the run (its checkpoint and marker carry it)."""

    rows: list[dict]
    policy: "Policy"
    targets: "dict[str, Exposed] | None"
    config: dict


def training_plan(store: Store, options: DistillOptions) -> TrainingPlan:
    """The plan of the run ``options`` describe, asking the teacher first when --train-probes is given."""
    rows = teacher_training_responses(store, options)
    policy, targets = exposed_targets(store, rows, options)
    config = {**options.identity(), "exposure": policy.recorded(),
              "data_hash": content_hash(sorted(r["query_id"] for r in rows))}
    return TrainingPlan(rows, policy, targets, config)
