"""A comparison: the teacher's and one other model's responses to the same probes, aligned.

Every adversary reads the same shape: one row per (probe, sample) that both
models answered, with the two texts side by side. Building it once keeps the
adversaries from each re-deriving (and possibly disagreeing about) which
responses are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.errors import AuditError
from audit.store import Store


@dataclass
class Comparison:
    """Teacher vs ``other`` (``suspect`` or ``control:NAME``), one row per answered (probe, sample)."""

    name: str  # teacher-vs-suspect, teacher-vs-control:NAME
    other: str  # the other model's name in the audit
    probe_ids: np.ndarray
    samples: np.ndarray
    categories: np.ndarray
    splits: np.ndarray
    probe_texts: list[str]
    teacher_texts: list[str]
    other_texts: list[str]
    teacher_query_ids: list[str]
    other_query_ids: list[str]
    teacher_emb: np.ndarray | None = None
    other_emb: np.ndarray | None = None
    teacher_style: np.ndarray | None = None
    other_style: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.probe_ids)

    def teacher_features(self) -> np.ndarray:
        return np.hstack([self.teacher_emb, self.teacher_style])

    def other_features(self) -> np.ndarray:
        return np.hstack([self.other_emb, self.other_style])

    def __post_init__(self) -> None:
        # each row's probe as a small integer: masks over object arrays of ids are slow at 5,000 probes
        self.code_of = {p: i for i, p in enumerate(dict.fromkeys(self.probe_ids.tolist()))}
        self.probe_codes = np.array([self.code_of[p] for p in self.probe_ids.tolist()], dtype=np.int64)

    def mask_of(self, probe_ids) -> np.ndarray:
        """Rows whose probe is among ``probe_ids``."""
        wanted = np.zeros(len(self.code_of), dtype=bool)
        wanted[[self.code_of[p] for p in probe_ids if p in self.code_of]] = True
        return wanted[self.probe_codes]

    def category_of(self) -> dict[str, str]:
        return dict(zip(self.probe_ids.tolist(), self.categories.tolist()))


def comparison_name(other: str) -> str:
    return f"teacher-vs-{other}"


def load_comparisons(store: Store, audit_id: str) -> tuple[list[Comparison], dict[str, list[dict]]]:
    """Teacher vs suspect first, then teacher vs each control; plus every model's responses by name."""
    by_model: dict[str, list[dict]] = {}
    for row in store.responses(audit_id):
        by_model.setdefault(row["model_name"], []).append(row)
    if not by_model.get("teacher"):
        raise AuditError(f"{store.path}: no teacher responses recorded (run `distill-audit collect` first)")
    others = [name for name in by_model if name == "suspect"] + sorted(
        name for name in by_model if name.startswith("control:")
    )
    if "suspect" not in others:
        raise AuditError(f"{store.path}: no suspect responses recorded (run `distill-audit collect` first)")
    return [_align(by_model["teacher"], by_model[name], name) for name in others], by_model


def _align(teacher_rows: list[dict], other_rows: list[dict], other: str) -> Comparison:
    teacher = {(r["probe_id"], r["sample"]): r for r in teacher_rows}
    keys = sorted(k for k in {(r["probe_id"], r["sample"]) for r in other_rows} if k in teacher)
    other_by_key = {(r["probe_id"], r["sample"]): r for r in other_rows}
    t_rows = [teacher[k] for k in keys]
    o_rows = [other_by_key[k] for k in keys]
    return Comparison(
        name=comparison_name(other),
        other=other,
        probe_ids=np.array([k[0] for k in keys], dtype=object),
        samples=np.array([k[1] for k in keys], dtype=int),
        categories=np.array([r["category"] for r in t_rows], dtype=object),
        splits=np.array([r["split"] or "public" for r in t_rows], dtype=object),
        probe_texts=[r["probe_text"] for r in t_rows],
        teacher_texts=[r["text"] or "" for r in t_rows],
        other_texts=[r["text"] or "" for r in o_rows],
        teacher_query_ids=[r["query_id"] for r in t_rows],
        other_query_ids=[r["query_id"] for r in o_rows],
    )
