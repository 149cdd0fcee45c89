"""What a distillation run is asked to do, in one frozen value every stage reads.

Its own module so that each stage (teacher, targets, examples, training) can
take the options without importing the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OBJECTIVES = ("sft", "kd", "sft+kd")


@dataclass(frozen=True)
class DistillOptions:
    """What `distill-audit distill` takes; the fields that change the result form the run's identity."""

    teacher: str
    student: str
    db_path: Path
    out_dir: Path
    train_queries: int | None = None
    suite: str = "bbi-probes-v1"
    private_seed_env: str | None = None
    max_new_tokens: int = 128
    seed: int = 0
    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 2e-4
    epochs: int = 2
    max_length: int = 256
    batch_size: int = 4
    checkpoint_every: int = 20
    overwrite: bool = False
    device: str = "auto"
    dtype: str = "auto"
    concurrency: int = 8
    quiet: bool = False
    command: str | None = None  # the command line, recorded in the marker for reproduction
    objective: str = "sft"  # sft, kd or sft+kd (OBJECTIVES)
    exposure: str | None = None  # what the teacher exposes (audit.exposure); None: the objective's own
    top_logprobs: int | None = None  # with train_queries: also record the teacher's top-k distributions

    def identity(self) -> dict[str, Any]:
        """The settings a checkpoint must share with this run to be resumed by it."""
        keys = ("teacher", "student", "seed", "rank", "alpha", "target_modules", "learning_rate", "epochs",
                "max_length", "batch_size", "objective")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k in keys}
