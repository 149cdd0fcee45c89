"""A comparison: the teacher's and one other model's responses to the same probes, aligned.

Every adversary reads the same shape: one row per (probe, sample) with the two
texts side by side. Building it once keeps the adversaries from each
re-deriving (and possibly disagreeing about) which responses are paired.

Every comparison of an audit is built on one common set: the (probe, sample)
pairs that *every* audited model (teacher, suspect, each control) answered
with some text. Intersecting per comparison would let a model that fails or
refuses probes choose its own exam, and would make the teacher-vs-suspect and
teacher-vs-control gaps compare different probes. A blank response counts as
unanswered: otherwise a suspect could refuse in-band (an empty 200 reply)
instead of failing, and grade itself on blanks it picked. ``probe_coverage``
says, per model, what that set left out, so the report can say it in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.errors import AuditError
from audit.store import Store
from audit.vocabulary import AUDITED_ROLES, comparison_name


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

    def subset(self, mask: np.ndarray) -> "Comparison":
        """The rows where ``mask`` holds (features too, where attached)."""
        rows = np.flatnonzero(mask).tolist()
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        take = lambda xs: [xs[i] for i in rows]  # noqa: E731
        return Comparison(self.name, self.other, self.probe_ids[mask], self.samples[mask], self.categories[mask],
                          self.splits[mask], take(self.probe_texts), take(self.teacher_texts), take(self.other_texts),
                          take(self.teacher_query_ids), take(self.other_query_ids), pick(self.teacher_emb),
                          pick(self.other_emb), pick(self.teacher_style), pick(self.other_style))

    def category_of(self) -> dict[str, str]:
        return dict(zip(self.probe_ids.tolist(), self.categories.tolist()))


def audited_models(store: Store) -> list[str]:
    """The teacher, the suspect, then the controls by name: the models whose responses every claim rests on."""
    names = {m["name"]: m["role"] for m in store.models() if m["role"] in AUDITED_ROLES}
    order = {"teacher": 0, "suspect": 1, "control": 2}
    return sorted(names, key=lambda n: (order[names[n]], n))


def load_comparisons(store: Store) -> tuple[list[Comparison], dict[str, list[dict]]]:
    """Teacher vs suspect first, then teacher vs each control, all on the common set; plus every model's responses."""
    by_model: dict[str, list[dict]] = {}
    for row in store.responses():
        by_model.setdefault(row["model_name"], []).append(row)
    if not by_model.get("teacher"):
        raise AuditError(f"{store.path}: no teacher responses recorded (run `distill-audit collect` first)")
    if not by_model.get("suspect"):
        raise AuditError(f"{store.path}: no suspect responses recorded (run `distill-audit collect` first)")
    names = audited_models(store)
    common = common_keys(by_model, names)
    if not common:
        silent = [n for n in names if not any(_spoke(r) for r in by_model.get(n, []))]
        why = f"{', '.join(silent)} answered none" if silent else "each answered some, none the same ones"
        raise AuditError(f"{store.path}: no probe was answered by every model ({why}), so there is nothing to "
                         "compare them on; rerun `distill-audit collect` to retry the failed queries")
    others = [name for name in names if name != "teacher"]
    return [_align(by_model["teacher"], by_model[name], name, common) for name in others], by_model


def common_keys(by_model: dict[str, list[dict]], names: list[str]) -> set[tuple[str, int]]:
    """The (probe, sample) pairs that every one of ``names`` answered with some text."""
    answered = [{(r["probe_id"], r["sample"]) for r in by_model.get(name, []) if _spoke(r)} for name in names]
    return set.intersection(*answered) if answered else set()


def _spoke(row: dict) -> bool:
    return bool((row["text"] or "").strip())


def probe_coverage(store: Store, by_model: dict[str, list[dict]]) -> dict:
    """Per audited model, what became of the selected evaluation probes; and how many every model answered.

    A probe counts as answered when at least one of its samples got some
    text, as empty when every response to it was blank (a refusal by silence),
    as failed when its queries recorded only errors, and as not asked when no
    query was recorded (collection stopped before it); the four add up to
    the probes selected.
    """
    names = audited_models(store)
    name_of = {m["id"]: m["name"] for m in store.models()}
    failed: dict[str, set[str]] = {name: set() for name in names}
    for query in store.query_errors():
        if query["purpose"] == "eval" and name_of.get(query["model_id"]) in failed:
            failed[name_of[query["model_id"]]].add(query["probe_id"])
    replied = {name: {r["probe_id"] for r in by_model.get(name, [])} for name in names}
    selected = {p["id"] for p in store.selected_probes()}.union(*replied.values(), *failed.values())
    models = []
    for name in names:
        answered = {r["probe_id"] for r in by_model.get(name, []) if _spoke(r)}
        models.append({"model": name, "answered": len(answered), "empty": len(replied[name] - answered),
                       "failed": len(failed[name] - replied[name]),
                       "not_asked": len(selected - replied[name] - failed[name])})
    common = {probe for probe, _ in common_keys(by_model, names)}
    return {"probes_selected": len(selected), "probes_common": len(common), "models": models}


def _align(teacher_rows: list[dict], other_rows: list[dict], other: str, common: set[tuple[str, int]]) -> Comparison:
    teacher = {(r["probe_id"], r["sample"]): r for r in teacher_rows}
    other_by_key = {(r["probe_id"], r["sample"]): r for r in other_rows}
    keys = sorted(common)
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
