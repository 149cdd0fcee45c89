"""LoRA distillation of a student on a teacher's recorded responses.

This is how the tool makes its own positive control: a student that provably
descends from the teacher, so an audit can show what distillation does to
similarity and to distinguishability. It trains only on the teacher's answers
to a *training* split of probes, recorded in the audit database with
``purpose="train"``; the store refuses to let the same probes be evaluated,
because an audit on training prompts would measure memory, not imitation.

The run is resumable: every few steps the adapter, optimizer and scheduler
state go atomically into ``ADAPTER_DIR/.checkpoint``; the finished adapter is
written to a sibling temporary folder and renamed into place together with a
``training_complete.json`` marker, so a directory without the marker is never
a finished adapter.

Three objectives (``--objective``): ``sft``, cross-entropy on the teacher's
answer text; ``kd``, logit distillation: the forward KL divergence from the
teacher's recorded top-k distribution at each answer token (after the
``--exposure`` policy, ``audit.exposure``), its tail mass 1 - sum(top-k) as
one extra bucket, to the student's distribution collapsed to the same k+1
buckets; ``sft+kd``, the sum of the two with weight 1 each (both are means
over the same answer tokens, in nats, so neither scale dominates by
construction). KD trains on the teacher's own generated token ids, so it
needs the student to share the teacher's tokenizer (compared by vocabulary
fingerprint), and refuses otherwise.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit import __version__
from audit.errors import AuditError
from audit.models.transformers_backend import prompt_ids  # the very ids an audit will ask the student in
from audit.store import Store, content_hash

if TYPE_CHECKING:
    from audit.exposure import Exposed, Policy

COMPLETE_MARKER = "training_complete.json"
TRAINING_LOG = "training_log.csv"
CHECKPOINT_DIR = ".checkpoint"
CHECKPOINT_FILE = "state.pt"
LOG_FIELDS = ("step", "epoch", "loss", "learning_rate", "tokens", "tokens_per_s", "elapsed_s")
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


def run_distill(options: DistillOptions) -> str:
    """Train the adapter (resuming a checkpoint if one matches) and return a short summary."""
    if options.top_logprobs and not options.train_queries:
        raise AuditError(f"--top-logprobs {options.top_logprobs}: the teacher's distributions are recorded as it "
                         "answers --train-queries N; without it nothing is asked")
    _check_adapter_dir(options.out_dir, options.overwrite)
    with Store.open(options.db_path) as store:
        plan = training_plan(store, options)
        if options.overwrite:
            _remove_adapter_dir(options.out_dir)
        checkpoint = _load_checkpoint(options.out_dir, plan.config)
        teacher_id = store.model(plan.audit_id, "teacher")["id"]
        run_id = store.start_distill_run(plan.audit_id, teacher_id=teacher_id, student_spec=options.student,
                                         adapter_dir=str(options.out_dir.resolve()), config=plan.config)
        try:
            summary = _train(store, run_id, options, plan.config, plan.rows, checkpoint, plan.targets)
        except BaseException:
            store.finish_distill_run(run_id, status="interrupted")
            raise
        store.finish_distill_run(run_id, status="complete")
    resumed = f", resumed at step {summary['resumed_at_step']}" if summary["resumed_at_step"] else ""
    return (f"adapter written to {options.out_dir} ({options.objective} on exposure {plan.policy.name}, "
            f"{summary['examples']} examples, {summary['steps']} steps"
            f"{resumed}, loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f}, "
            f"{summary['tokens_per_s']:.0f} tokens/s); use it as peft:{options.student}+{options.out_dir}")


@dataclass(frozen=True)
class TrainingPlan:
    """What a run trains on, decided before any training: the teacher's responses, the (fitted) exposure and what
    it exposes of each response, and the config that identifies the run (its checkpoint and marker carry it)."""

    audit_id: str
    rows: list[dict]
    policy: "Policy"
    targets: "dict[str, Exposed] | None"
    config: dict


def training_plan(store: Store, options: DistillOptions) -> TrainingPlan:
    """The plan of the run ``options`` describe, asking the teacher first when --train-queries is given."""
    audit_id, rows = teacher_training_responses(store, options)
    policy, targets = exposed_targets(store, audit_id, rows, options)
    config = {**options.identity(), "exposure": policy.recorded(),
              "data_hash": content_hash(sorted(r["query_id"] for r in rows))}
    return TrainingPlan(audit_id, rows, policy, targets, config)


def finished_adapter(out: Path, config: dict) -> dict | None:
    """The marker of the finished adapter in OUT when it was trained by exactly this plan's config; None when OUT
    holds no finished adapter; an error when it holds another run's (other settings, data or fitted exposure)."""
    marker = out / COMPLETE_MARKER
    if not marker.exists():
        return None
    recorded = json.loads(marker.read_text())
    if recorded.get("config") != json.loads(json.dumps(config)):
        raise AuditError(f"{out}: holds a finished adapter of other settings or data than this run's; move it "
                         "away or choose another folder")
    return recorded


# ---------------------------------------------------------------------------
# The adapter directory: refuse to clobber, resume, publish atomically
# ---------------------------------------------------------------------------


def _is_ours(path: Path) -> bool:
    return any((path / name).exists() for name in (COMPLETE_MARKER, CHECKPOINT_DIR, "adapter_config.json"))


def _check_adapter_dir(out: Path, overwrite: bool) -> None:
    """Fail before any work when OUT would be clobbered; a bare checkpoint is resumed, not clobbered."""
    if not out.exists():
        return
    if not out.is_dir():
        raise AuditError(f"{out}: exists and is not a directory; choose another --out")
    if not any(out.iterdir()):
        return
    if not _is_ours(out):
        raise AuditError(f"{out}: exists and is not an adapter directory; refusing to touch it, choose another --out")
    if overwrite:
        return
    if (out / COMPLETE_MARKER).exists():
        raise AuditError(f"{out}: already holds a trained adapter; pass --overwrite to replace it")
    if not (out / CHECKPOINT_DIR).exists():
        raise AuditError(f"{out}: holds an adapter without {COMPLETE_MARKER}; pass --overwrite to replace it")


def _remove_adapter_dir(out: Path) -> None:
    if out.exists() and _is_ours(out):
        shutil.rmtree(out)


def _load_checkpoint(out: Path, config: dict) -> dict | None:
    """The saved training state when it belongs to this very run, else None (or an error if it is another run's)."""
    path = out / CHECKPOINT_DIR / CHECKPOINT_FILE
    if not path.exists():
        return None
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("config") != config:
        raise AuditError(f"{out}: holds a checkpoint of a different distillation (other settings or data); "
                         "pass --overwrite to start over")
    return state


def _save_checkpoint(out: Path, state: dict) -> None:
    """Write the training state to a temporary file and rename it: a crash never leaves half a checkpoint."""
    import torch

    folder = out / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT_FILE)


def _publish_adapter(model, out: Path, marker: dict, log_rows: list[dict]) -> None:
    """Save the adapter beside OUT, then swap it in; OUT's checkpoint goes with the old folder."""
    partial = out.parent / f".{out.name}.partial"
    old = out.parent / f".{out.name}.old"
    for leftover in (partial, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    model.save_pretrained(partial)
    (partial / "README.md").write_text(_adapter_card(marker))
    with open(partial / TRAINING_LOG, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(log_rows)
    (partial / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    if out.exists():
        os.rename(out, old)
    os.rename(partial, out)
    shutil.rmtree(old, ignore_errors=True)


def _adapter_card(marker: dict) -> str:
    """A short README so the folder says what it is and how it was made."""
    return (f"# LoRA adapter distilled by distill-audit {marker['tool_version']}\n\n"
            f"- student (base model): `{marker['student']}`\n- teacher: `{marker['teacher']}`\n"
            f"- objective {marker['config']['objective']} on the exposure `{marker['config']['exposure']['policy']}`\n"
            f"- {marker['examples']} teacher responses to training probes, {marker['steps']} steps, "
            f"loss {marker['first_loss']:.3f} -> {marker['final_loss']:.3f}, {marker['wall_s']:.0f} s on "
            f"{marker['device']}\n- use it as the model spec `peft:{marker['student']}+<this folder>`\n\n"
            f"Command:\n\n    {marker['command'] or '(called from Python)'}\n\n"
            f"Per-step loss and throughput: `{TRAINING_LOG}`; settings and the training probes' ids: "
            f"`{COMPLETE_MARKER}`.\n")


def training_probe_ids(adapter_dir: Path) -> list[str]:
    """The probes a finished adapter was trained on (from its marker), so an audit can keep away from them."""
    marker = Path(adapter_dir) / COMPLETE_MARKER
    if not marker.exists():
        return []
    return list(json.loads(marker.read_text()).get("training_probes", []))


# ---------------------------------------------------------------------------
# The teacher's training responses
# ---------------------------------------------------------------------------


def teacher_training_responses(store: Store, options: DistillOptions) -> tuple[str, list[dict]]:
    """The teacher's recorded answers to training probes, first asking for them when --train-queries is given."""
    audit = store.audit()
    wanted: set[str] | None = None
    if options.train_queries:
        audit_id, probes = _ask_teacher_training_probes(store, audit, options)
        wanted = {p.id for p in probes}
    elif audit is None:
        raise AuditError(_no_responses_message(store.path))
    else:
        audit_id = audit["id"]
    teacher = store.model(audit_id, "teacher")
    if teacher is None:
        raise AuditError(_no_responses_message(store.path))
    if teacher["spec"] != options.teacher:
        raise AuditError(f"{store.path}: its teacher is {teacher['spec']!r}, not {options.teacher!r}; "
                         "use the same --teacher or another --db")
    rows = [r for r in store.responses(audit_id, teacher["id"], purpose="train")
            if r["text"].strip() and (wanted is None or r["probe_id"] in wanted)]
    if not rows:
        raise AuditError(_no_responses_message(store.path))
    return audit_id, rows


def _no_responses_message(db_path: Path) -> str:
    return (f"{db_path}: holds no teacher responses to training probes; pass --train-queries N "
            "to have the teacher answer N training probes first")


def exposed_targets(store: Store, audit_id: str, rows: list[dict],
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
    teacher = store.model(audit_id, "teacher")
    blobs = store.top_distributions(audit_id, teacher["id"], purpose="train")
    missing = sum(r["query_id"] not in blobs for r in rows)
    if missing:
        raise AuditError(f"{store.path}: {missing} of {len(rows)} teacher training responses have no recorded top-k "
                         f"distributions, which --objective {options.objective} trains on; record them in a new --db "
                         "with --train-queries N --top-logprobs K")
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


def _ask_teacher_training_probes(store: Store, audit: dict | None, options: DistillOptions) -> tuple[str, list]:
    """Select a training split disjoint from the audit's evaluation probes and record the teacher's answers."""
    from audit.collect import collect_role
    from audit.models import load_model
    from audit.models.base import GenParams
    from audit.progress import progress

    suite = _training_suite(audit, options)
    if audit is None:
        config = {"teacher": options.teacher, "suite": options.suite, "private_seed_env": options.private_seed_env,
                  "seed": options.seed}
        audit_id = store.ensure_audit(config, suite_name=suite.name, suite_version=suite.version,
                                      suite_hash=suite.hash, seed=options.seed,
                                      private_seed_hash=suite.secret_seed_hash)
    else:
        audit_id = audit["id"]
    store.add_suite(suite)
    probes = _training_split(store, audit_id, suite, options.train_queries, options.seed)
    known = store.model(audit_id, "teacher")
    if known is not None and known["spec"] == options.teacher:
        done = store.completed_queries(audit_id, known["id"], purpose="train")
        if all((p.id, 0) in done for p in probes):
            return audit_id, probes  # a rerun: the teacher already answered every training probe
    teacher = load_model(options.teacher, device=options.device, dtype=options.dtype,
                         concurrency=options.concurrency)
    teacher_id = store.add_model(audit_id, name="teacher", role="teacher", spec=options.teacher,
                                 description=teacher.describe().as_dict())
    params = GenParams(max_new_tokens=options.max_new_tokens, seed=options.seed, batch_size=options.batch_size,
                       top_logprobs=options.top_logprobs or 0)
    with progress(options.quiet) as bar:
        tally = collect_role(store, audit_id, teacher_id, "teacher", teacher, probes, params, purpose="train",
                             bar=bar)
    if tally.errors:
        raise AuditError(f"{options.teacher}: {tally.errors} of {len(probes)} training queries failed "
                         f"(first: {tally.error_samples[0]}); run the same command again to retry them")
    return audit_id, probes


def _training_suite(audit: dict | None, options: DistillOptions):
    """Where training probes come from: a private split when asked (no public-suite audit can ever evaluate
    on it), else the suite the audit in the database was collected on, else ``--suite``."""
    from audit.probes import build_private_suite, load_suite

    if options.private_seed_env:
        secret = os.environ.get(options.private_seed_env, "")
        if not secret:
            raise AuditError(f"--private-seed-env {options.private_seed_env}: that environment variable is unset "
                             "or empty")
        return build_private_suite(secret)
    return load_suite(json.loads(audit["config_json"]).get("suite", options.suite) if audit else options.suite)


def _training_split(store: Store, audit_id: str, suite, wanted: int, seed: int) -> list:
    """The first ``wanted`` training probes, topping up an earlier selection from probes nobody evaluates."""
    from audit.probes import sample_probes

    by_id = {p.id: p for p in suite.probes}
    chosen = [row["id"] for row in store.selected_probes(audit_id, "train")]
    if len(chosen) < wanted:
        taken = set(chosen) | {row["id"] for row in store.selected_probes(audit_id, "eval")}
        pool = dataclasses.replace(suite, probes=[p for p in suite.probes if p.id not in taken])
        fresh = [p.id for p in sample_probes(pool, wanted - len(chosen), seed)]
        store.select_probes(audit_id, fresh, purpose="train")
        chosen += fresh
    return [by_id[pid] for pid in chosen[:wanted] if pid in by_id]


# ---------------------------------------------------------------------------
# Examples: chat-formatted prompt, loss on the response tokens only
# ---------------------------------------------------------------------------


def answer_ids(tokenizer, prompt: str, response: str, finished: bool) -> list[int]:
    """The assistant turn's ids, closed the way the student's template closes a turn (its EOS without one).

    A response cut at the teacher's token limit gets no end of turn, so the
    student does not learn to stop where the teacher was merely stopped.
    """
    if finished and getattr(tokenizer, "chat_template", None):
        opened = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                               add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False)
        if full.startswith(opened):
            return tokenizer(full[len(opened):], add_special_tokens=False)["input_ids"]
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if finished and tokenizer.eos_token_id is not None else ids


def build_examples(tokenizer, rows: list[dict], max_length: int) -> list[dict]:
    """Token ids and labels per teacher response; prompt tokens are masked (-100) so only the answer is learned."""
    examples = []
    for row in rows:
        prompt = prompt_ids(tokenizer, row["probe_text"])
        answer = answer_ids(tokenizer, row["probe_text"], row["text"], finished=row.get("finish_reason") != "length")
        ids = (prompt + answer)[:max_length]
        if len(ids) <= len(prompt):
            continue  # the prompt alone fills max_length: nothing of the answer would be learned
        labels = [-100] * len(prompt) + ids[len(prompt):]
        examples.append({"input_ids": ids, "labels": labels, "probe_id": row["probe_id"]})
    return examples


def build_kd_examples(tokenizer, rows: list[dict], targets: dict[str, "Exposed"], max_length: int) -> list[dict]:
    """Per teacher response: the prompt, then the teacher's own generated token ids (its end of turn included
    when it stopped), each answer position with the exposed distribution the teacher gave there."""
    examples = []
    for row in rows:
        exposed = targets[row["query_id"]]
        prompt = prompt_ids(tokenizer, row["probe_text"])
        ids = (prompt + exposed.chosen.tolist())[:max_length]
        answered = len(ids) - len(prompt)
        if answered <= 0:
            continue
        examples.append({"input_ids": ids, "labels": [-100] * len(prompt) + ids[len(prompt):],
                         "probe_id": row["probe_id"], "kd_ids": exposed.ids[:answered],
                         "kd_probs": exposed.probs[:answered]})
    return examples


def _batch(examples: list[dict], pad_id: int):
    """Right-padded tensors, the KD targets aligned with the labels (None for SFT); the first answer position
    lets the forward pass skip logits of prompts."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        labels[i, :n] = torch.tensor(e["labels"])
        mask[i, :n] = 1
    first_answer = min(next(i for i, t in enumerate(e["labels"]) if t != -100) for e in examples)
    return ids, labels, mask, first_answer, _kd_batch(examples, width)


def _kd_batch(examples: list[dict], width: int):
    """(ids, probs) of the exposed distributions, (batch, width, k), -1 / 0 wherever there is no target."""
    import torch

    if "kd_ids" not in examples[0]:
        return None
    k = max(e["kd_ids"].shape[1] for e in examples)
    ids = torch.full((len(examples), width, k), -1, dtype=torch.long)
    probs = torch.zeros((len(examples), width, k), dtype=torch.float32)
    for i, e in enumerate(examples):
        start = len(e["input_ids"]) - len(e["kd_ids"])
        n, width_k = e["kd_ids"].shape
        ids[i, start:start + n, :width_k] = torch.from_numpy(e["kd_ids"])
        probs[i, start:start + n, :width_k] = torch.from_numpy(e["kd_probs"]).float()
    return ids, probs


def _order(n_examples: int, epoch: int, seed: int) -> list[int]:
    """A fixed shuffle per (seed, epoch), so a resumed run sees exactly the batches it would have seen."""
    import numpy as np

    return np.random.default_rng([seed, epoch]).permutation(n_examples).tolist()


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _loss(model, ids, labels, mask, first_answer: int, kd=None, objective: str = "sft"):
    """The objective's loss over answer tokens (mean cross-entropy, mean KD divergence, or their sum),
    computing logits only from the first answer position on."""
    import torch
    import torch.nn.functional as F

    keep = ids.shape[1] - max(first_answer - 1, 0)
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
    targets = labels[:, ids.shape[1] - keep + 1:]
    if objective == "sft":
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=-100)
    answer = targets != -100
    scores = logits[:, :-1].float()[answer]
    kd_ids, kd_probs = (t[:, ids.shape[1] - keep + 1:][answer] for t in kd)
    divergence = kd_loss(torch.log_softmax(scores, dim=-1), kd_ids, kd_probs)
    return divergence if objective == "kd" else divergence + F.cross_entropy(scores, targets[answer])


def kd_loss(student_logprobs, ids, probs):
    """Mean over positions of KL(teacher || student) on k+1 buckets: the exposed tokens, then the tail.

    ``student_logprobs`` (positions, vocab) are the student's log-probabilities;
    ``ids`` and ``probs`` (positions, k) the teacher's exposed tokens (-1 where
    none) and probabilities. The teacher's tail is 1 - sum(probs); the
    student's is the mass on every other token, a logsumexp over them (never
    1 - sum, which cancels to noise). Buckets of probability 0 add nothing.
    """
    import torch

    valid = ids >= 0
    safe = torch.where(valid, ids, ids[:, :1])  # a missing entry points at the first exposed token; masked below
    picked = student_logprobs.gather(-1, safe)
    p = torch.where(valid, probs, torch.zeros_like(probs))
    log_q_tail = torch.logsumexp(student_logprobs.scatter(-1, safe, float("-inf")), dim=-1)
    p_tail = (1.0 - p.sum(-1)).clamp(min=0.0)
    head = torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - picked), torch.zeros_like(p)).sum(-1)
    tail = torch.where(p_tail > 0, p_tail * (torch.log(p_tail.clamp_min(1e-30)) - log_q_tail),
                       torch.zeros_like(p_tail))
    return (head + tail).mean()


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _load_student(options: DistillOptions):
    """The student with a fresh LoRA adapter on the chosen modules; peft's errors become one line."""
    import torch
    from peft import LoraConfig, get_peft_model

    from audit.models import load_hf

    model, tokenizer = load_hf(options.student, device=options.device, dtype=options.dtype)
    torch.manual_seed(options.seed)
    lora = LoraConfig(r=options.rank, lora_alpha=options.alpha, target_modules=list(options.target_modules),
                      lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, lora)
    except ValueError as exc:
        raise AuditError(f"{options.student}: cannot attach LoRA to --target-modules "
                         f"{','.join(options.target_modules)} ({str(exc).splitlines()[0]})") from exc
    model.config.use_cache = False
    return model, tokenizer


def _schedule(model, options: DistillOptions, total: int):
    """AdamW on the LoRA weights with a short linear warm-up, then linear decay to zero at the last step."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=0.0)
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    return params, optimizer, scheduler


def _step(model, batch, params, optimizer, scheduler, options: DistillOptions) -> tuple[float, int, float]:
    """One optimizer step on one batch: (loss, tokens, seconds); out-of-memory becomes a one-line error."""
    import torch

    ids, labels, mask, first_answer, kd = batch
    device = next(model.parameters()).device
    started = time.perf_counter()
    try:
        loss = _loss(model, ids.to(device), labels.to(device), mask.to(device), first_answer,
                     kd and tuple(t.to(device) for t in kd), options.objective)
        loss.backward()
    except (RuntimeError, MemoryError) as exc:
        if isinstance(exc, MemoryError) or _is_oom(exc):
            raise AuditError(f"out of memory training {options.student} at --batch-size {options.batch_size}, "
                             f"--max-length {options.max_length}: lower either (with --overwrite to drop the "
                             "checkpoint)") from exc
        raise
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    value = loss.item()  # waits for the device, so the time below is the step's real time
    return value, int(mask.sum()), time.perf_counter() - started


def _train(store: Store, run_id: str, options: DistillOptions, config: dict, rows: list[dict],
           checkpoint: dict | None, targets: dict[str, "Exposed"] | None = None) -> dict:
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    from audit.progress import add_task, console, progress

    model, tokenizer = _load_student(options)
    if not getattr(tokenizer, "chat_template", None):
        console.print(f"note: {options.student} has no chat template; training on plain prompts, as audits ask it")
    examples = (build_examples(tokenizer, rows, options.max_length) if targets is None
                else build_kd_examples(tokenizer, rows, targets, options.max_length))
    if not examples:
        raise AuditError(f"--max-length {options.max_length} leaves no answer tokens after the prompts; raise it")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    steps_per_epoch = math.ceil(len(examples) / options.batch_size)
    total = steps_per_epoch * options.epochs
    params, optimizer, scheduler = _schedule(model, options, total)
    step, elapsed, log_rows, resumed_at = 0, 0.0, [], None
    if checkpoint is not None:
        set_peft_model_state_dict(model, checkpoint["adapter"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        step, elapsed, log_rows = checkpoint["step"], checkpoint["elapsed_s"], checkpoint["log"]
        resumed_at = step
    model.train()
    with progress(options.quiet) as bar:
        task = add_task(bar, "distill", total=total, status="resuming" if step else "")
        bar.update(task, completed=step)
        while step < total:
            epoch, index = divmod(step, steps_per_epoch)
            start = index * options.batch_size
            chosen = [examples[i] for i in _order(len(examples), epoch, options.seed)[start:start + options.batch_size]]
            loss, tokens, seconds = _step(model, _batch(chosen, pad_id), params, optimizer, scheduler, options)
            elapsed += seconds
            step += 1
            row = {"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": loss,
                   "learning_rate": scheduler.get_last_lr()[0], "tokens": tokens,
                   "tokens_per_s": tokens / seconds if seconds else 0.0, "elapsed_s": elapsed}
            log_rows.append(row)
            store.log_distill_steps(run_id, [row])
            bar.update(task, completed=step, status=f"loss {loss:.3f} · {row['tokens_per_s']:.0f} tok/s")
            if step % options.checkpoint_every == 0 and step < total:
                _save_checkpoint(options.out_dir, {
                    "config": config, "step": step, "elapsed_s": elapsed, "log": log_rows,
                    "adapter": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()})
    summary = {**_summary(examples, log_rows, elapsed), "resumed_at_step": resumed_at}
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    marker = {"tool_version": __version__, "config": config, "command": options.command,
              "teacher": options.teacher, "student": options.student, "device": str(next(model.parameters()).device),
              "dtype": dtype, "chat_format": "template" if getattr(tokenizer, "chat_template", None) else "plain",
              "training_probes": sorted({e["probe_id"] for e in examples}), "run_id": run_id, **summary}
    _publish_adapter(model, options.out_dir, marker, log_rows)
    return summary


def _summary(examples: list[dict], log_rows: list[dict], elapsed: float) -> dict:
    tokens = sum(r["tokens"] for r in log_rows)
    tail = log_rows[-max(1, len(log_rows) // 10):]
    return {"examples": len(examples), "steps": len(log_rows), "tokens": tokens, "wall_s": round(elapsed, 2),
            "tokens_per_s": tokens / elapsed if elapsed else 0.0, "first_loss": log_rows[0]["loss"],
            "final_loss": sum(r["loss"] for r in tail) / len(tail)}
