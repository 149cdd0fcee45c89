"""What a KD objective trains toward: the teacher's recorded top-k distributions after the exposure policy.

SFT trains on text alone; KD needs, for every training response, the
teacher's distribution with token ids and a student that shares the
teacher's tokenizer. The checks and the fitting of a learned policy live
here, apart from the text the teacher answered (``teacher``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from audit.distill.options import OBJECTIVES, DistillOptions
from audit.errors import AuditError
from audit.store import Store

if TYPE_CHECKING:
    from audit.exposure import Exposed, Policy


def exposed_targets(store: Store, rows: list[dict],
                    options: DistillOptions) -> tuple["Policy", dict[str, "Exposed"] | None]:
    """The exposure policy and, for a KD objective, what it exposes of each training response (by query id).

    SFT trains on text: its policy is ``text`` and it takes no other. KD
    needs the teacher's recorded top-k distribution for every training
    response, with token ids, and a student of the teacher's tokenizer; the
    default policy exposes all k recorded. A learned step (``purify``) is
    fitted on every training distribution the teacher recorded in this
    database, the vendor's whole record, not only this run's responses: so
    students trained on fewer of them face the same defence.
    """
    from audit.exposure import Exposed, parse_policy
    from audit.topk import TopK

    if options.objective not in OBJECTIVES:
        raise AuditError(f"--objective {options.objective!r}: not one of {', '.join(OBJECTIVES)}")
    if options.objective == "sft":
        if options.exposure not in (None, "text"):
            raise AuditError(f"--exposure {options.exposure}: --objective sft trains on the teacher's text alone; "
                             "use --objective kd or sft+kd to train on what a policy exposes")
        return parse_policy("text", seed=options.seed), None
    if options.exposure is not None:
        parse_policy(options.exposure)  # an unknown policy fails before anything is loaded
    teacher = store.model("teacher")
    blobs = store.top_distributions(teacher["id"], purpose="train")
    missing = sum(r["query_id"] not in blobs for r in rows)
    if missing:
        raise AuditError(f"{store.path}: {missing} of {len(rows)} teacher training responses have no recorded top-k "
                         f"distributions, which --objective {options.objective} trains on; record them in a new --db "
                         "with --train-probes N --top-logprobs K")
    _check_same_tokenizer(teacher, options)
    tops = {qid: TopK.unpack(blob) for qid, blob in blobs.items()}
    if any(t.ids is None or t.chosen_ids is None for t in tops.values()):
        raise AuditError(f"{store.path}: the teacher's distributions were recorded as token texts without ids; "
                         f"--objective {options.objective} needs ids: use --objective sft")
    recorded = {qid: Exposed.recorded(top) for qid, top in tops.items()}
    recorded_k = min(tops[r["query_id"]].most_given for r in rows)
    policy = parse_policy(options.exposure or f"top-k:{recorded_k}", seed=options.seed).fitted(recorded)
    return policy, {r["query_id"]: policy.expose(recorded[r["query_id"]], r["query_id"]) for r in rows}


def _check_same_tokenizer(teacher: dict, options: DistillOptions) -> None:
    """KD over token ids means the same thing to both models only if they share a vocabulary."""
    from audit.models.checkpoints import load_tokenizer
    from audit.models.transformers_backend import tokenizer_fingerprint

    try:
        recorded = json.loads(teacher["describe_json"] or "{}").get("tokenizer")
    except (ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, str):
        raise AuditError(f"--objective {options.objective}: the recorded teacher {options.teacher} has no tokenizer "
                         "fingerprint (an endpoint, or recorded by an older distill-audit), so KD cannot check that "
                         "it shares the student's tokenizer; use --objective sft")
    student = tokenizer_fingerprint(load_tokenizer(options.student))
    if recorded != student:
        raise AuditError(f"--objective {options.objective}: the teacher {options.teacher} and the student "
                         f"{options.student} have different tokenizers (vocabulary {recorded[:12]} vs "
                         f"{student[:12]}); KD over token ids needs the same one: use --objective sft, or a student "
                         "of the teacher's tokenizer")
