"""The training loop: a fresh LoRA adapter on the student, AdamW steps over fixed batches, resumable, published.

Every step is logged to the audit database as it ends; every
``--checkpoint-every`` steps the adapter, optimizer and scheduler state are
saved so an interrupted run resumes exactly where a straight one would be;
at the end the adapter is published with a marker that records how it was
made. Out-of-memory and peft's refusals become one-line errors.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from audit import __version__
from audit.distill.adapter import publish_adapter, save_checkpoint
from audit.distill.examples import batch_order, build_examples, build_kd_examples, make_batch, padding_id
from audit.distill.loss import objective_loss
from audit.distill.options import DistillOptions
from audit.errors import AuditError
from audit.store import Store

if TYPE_CHECKING:
    from audit.exposure import Exposed


def train_adapter(store: Store, run_id: str, options: DistillOptions, config: dict, rows: list[dict],
                  checkpoint: dict | None, targets: dict[str, "Exposed"] | None = None) -> dict:
    """Train the student's adapter on the teacher's responses (from CHECKPOINT's step when given), publish it
    in ``options.out_dir`` with its marker, and return the run's summary."""
    from audit.progress import console

    model, tokenizer = _load_student(options)
    chat_format = "template" if getattr(tokenizer, "chat_template", None) else "plain"
    if chat_format == "plain":
        console.print(f"note: {options.student} has no chat template; training on plain prompts, as audits ask it")
    examples = _examples(tokenizer, rows, targets, options.max_length)
    pad_id = padding_id(tokenizer)
    log_rows, elapsed = _train_steps(store, run_id, options, config, model, examples, pad_id, checkpoint)
    summary = {**_summary(examples, log_rows, elapsed),
               "resumed_at_step": checkpoint["step"] if checkpoint is not None else None}
    first = next(model.parameters())
    marker = {"tool_version": __version__, "config": config, "command": options.command,
              "teacher": options.teacher, "student": options.student, "device": str(first.device),
              "dtype": str(first.dtype).removeprefix("torch."), "chat_format": chat_format,
              "training_probes": sorted({e["probe_id"] for e in examples}), "run_id": run_id, **summary}
    publish_adapter(model, options.out_dir, marker, log_rows)
    return summary


def _examples(tokenizer, rows: list[dict], targets: dict[str, "Exposed"] | None, max_length: int) -> list[dict]:
    """The SFT examples, or the KD ones when there are targets; an error when none has a response token left."""
    examples = (build_examples(tokenizer, rows, max_length) if targets is None
                else build_kd_examples(tokenizer, rows, targets, max_length))
    if not examples:
        raise AuditError(f"--max-length {max_length} leaves no response tokens after the prompts; raise it")
    return examples


def _train_steps(store: Store, run_id: str, options: DistillOptions, config: dict, model, examples: list[dict],
                 pad_id: int, checkpoint: dict | None) -> tuple[list[dict], float]:
    """Every step from the checkpoint's (or the first) to the last, each logged as it ends, the state saved every
    --checkpoint-every steps: the log's rows and the steps' seconds in all."""
    from peft import get_peft_model_state_dict

    from audit.progress import add_task, progress

    steps_per_epoch = math.ceil(len(examples) / options.batch_size)
    total = steps_per_epoch * options.epochs
    params, optimizer, scheduler = _schedule(model, options, total)
    step, elapsed, log_rows = _resume(model, optimizer, scheduler, checkpoint)
    model.train()
    with progress(options.quiet) as bar:
        task = add_task(bar, "distill", total=total, status="resuming" if step else "")
        bar.update(task, completed=step)
        while step < total:
            epoch, index = divmod(step, steps_per_epoch)
            start = index * options.batch_size
            order = batch_order(len(examples), epoch, options.seed)
            chosen = [examples[i] for i in order[start:start + options.batch_size]]
            loss, tokens, seconds = _step(model, make_batch(chosen, pad_id), params, optimizer, scheduler, options)
            elapsed += seconds
            step += 1
            row = {"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": loss,
                   "learning_rate": scheduler.get_last_lr()[0], "tokens": tokens,
                   "tokens_per_s": tokens / seconds if seconds else 0.0, "elapsed_s": elapsed}
            log_rows.append(row)
            store.log_distill_steps(run_id, [row])
            bar.update(task, completed=step, status=f"loss {loss:.3f} · {row['tokens_per_s']:.0f} tok/s")
            if step % options.checkpoint_every == 0 and step < total:
                save_checkpoint(options.out_dir, {
                    "config": config, "step": step, "elapsed_s": elapsed, "log": log_rows,
                    "adapter": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()})
    return log_rows, elapsed


def _resume(model, optimizer, scheduler, checkpoint: dict | None) -> tuple[int, float, list[dict]]:
    """Where training starts: step 0, or the checkpoint's step with its adapter, optimizer and scheduler state
    (the step, the seconds spent so far, the log's rows)."""
    if checkpoint is None:
        return 0, 0.0, []
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, checkpoint["adapter"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    return checkpoint["step"], checkpoint["elapsed_s"], checkpoint["log"]


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

    ids, labels, mask, first_response, kd = batch
    device = next(model.parameters()).device
    started = time.perf_counter()
    try:
        loss = objective_loss(model, ids.to(device), labels.to(device), mask.to(device), first_response,
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


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _summary(examples: list[dict], log_rows: list[dict], elapsed: float) -> dict:
    """What the run took and reached: examples, steps, tokens, seconds, throughput, first and final loss (the
    mean of the last tenth of the steps, so one noisy batch does not decide it)."""
    tokens = sum(r["tokens"] for r in log_rows)
    tail = log_rows[-max(1, len(log_rows) // 10):]
    return {"examples": len(examples), "steps": len(log_rows), "tokens": tokens, "wall_s": round(elapsed, 2),
            "tokens_per_s": tokens / elapsed if elapsed else 0.0, "first_loss": log_rows[0]["loss"],
            "final_loss": sum(r["loss"] for r in tail) / len(tail)}
