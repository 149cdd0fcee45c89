"""LoRA distillation of a student on a teacher's recorded responses.

This is how the tool makes its own positive control: a student that provably
descends from the teacher, so an audit can show what distillation does to
similarity and to distinguishability. It trains only on the teacher's responses
to a *training* split of probes, recorded in the audit database with
``purpose="train"``; the store refuses to let the same probes be evaluated,
because an audit on training prompts would measure memory, not imitation.

The run is resumable: every few steps the adapter, optimizer and scheduler
state go atomically into ``ADAPTER_DIR/.checkpoint``; the finished adapter is
written to a sibling temporary folder and renamed into place together with a
``training_complete.json`` marker, so a directory without the marker is never
a finished adapter.

Three objectives (``--objective``): ``sft``, cross-entropy on the teacher's
response text; ``kd``, logit distillation: the forward KL divergence from the
teacher's recorded top-k distribution at each response token (after the
``--exposure`` policy, ``audit.exposure``), its tail mass 1 - sum(top-k) as
one extra bucket, to the student's distribution collapsed to the same k+1
buckets; ``sft+kd``, the sum of the two with weight 1 each (both are means
over the same response tokens, in nats, so neither scale dominates by
construction). KD trains on the teacher's own generated token ids, so it
needs the student to share the teacher's tokenizer (compared by vocabulary
fingerprint), and refuses otherwise.

The stages, one module each, in the order a run meets them: ``options``
(what is asked), ``teacher`` (its responses to the training probes),
``targets`` (what a KD objective trains toward), ``plan`` (both, and the
run's identity), ``examples`` (token ids and batches), ``loss`` (the
objectives), ``train`` (the loop) and ``adapter`` (the folder: refuse to
clobber, checkpoint, publish, read back). Importing the package imports no
torch, transformers or peft; each stage imports them when it runs.
"""

from __future__ import annotations

from audit.distill.adapter import (COMPLETE_MARKER, check_adapter_dir, finished_adapter, load_checkpoint, read_marker,
                                   remove_adapter_dir, training_probe_ids)
from audit.distill.examples import build_examples, build_kd_examples, response_ids
from audit.distill.loss import kd_loss
from audit.distill.options import OBJECTIVES, DistillOptions
from audit.distill.plan import TrainingPlan, training_plan
from audit.distill.targets import exposed_targets
from audit.distill.teacher import teacher_training_responses
from audit.distill.train import train_adapter
from audit.errors import AuditError
from audit.store import Store

__all__ = ["COMPLETE_MARKER", "OBJECTIVES", "DistillOptions", "TrainingPlan", "build_examples", "build_kd_examples",
           "exposed_targets", "finished_adapter", "kd_loss", "read_marker", "response_ids", "run_distill",
           "teacher_training_responses", "training_plan", "training_probe_ids"]


def run_distill(options: DistillOptions) -> str:
    """Train the adapter (resuming a checkpoint if one matches) and return a short summary."""
    if options.top_logprobs and not options.train_queries:
        raise AuditError(f"--top-logprobs {options.top_logprobs}: the teacher's distributions are recorded as it "
                         "answers --train-probes N; without it nothing is asked")
    check_adapter_dir(options.out_dir, options.overwrite)
    with Store.open(options.db_path) as store:
        plan = training_plan(store, options)
        if options.overwrite:
            remove_adapter_dir(options.out_dir)
        checkpoint = load_checkpoint(options.out_dir, plan.config)
        teacher_id = store.model("teacher")["id"]
        run_id = store.start_distill_run(teacher_id=teacher_id, student_spec=options.student,
                                         adapter_dir=str(options.out_dir.resolve()), config=plan.config)
        try:
            summary = train_adapter(store, run_id, options, plan.config, plan.rows, checkpoint, plan.targets)
        except BaseException:
            store.finish_distill_run(run_id, status="interrupted")
            raise
        store.finish_distill_run(run_id, status="complete")
    resumed = f", resumed at step {summary['resumed_at_step']}" if summary["resumed_at_step"] else ""
    return (f"adapter written to {options.out_dir} ({options.objective} on exposure {plan.policy.name}, "
            f"{summary['examples']} examples, {summary['steps']} steps"
            f"{resumed}, loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f}, "
            f"{summary['tokens_per_s']:.0f} tokens/s); use it as peft:{options.student}+{options.out_dir}")
