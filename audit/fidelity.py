"""How close a student's next-token distributions are to the teacher's, read on the teacher's own held-out responses.

A leakage run asks whether a student trained on more of the teacher's
outputs gets closer to the teacher. The adversaries answer it from the
student's generated text, which needs a student that generates well; a
student midway through training may not (an early end of turn on half the
probes, with a template-less base) and then every adversary's probe set
shrinks. This answers the same question from distributions, as the
distillation literature measures fidelity: feed each model the teacher's
response to every evaluation probe (teacher forcing: its prompt, then the
teacher's own token ids) and, at each response position, compare the model's
next-token distribution with the teacher's recorded top-k distribution
there.

- ``kl-to-teacher``: KL(teacher ‖ model) on the k+1 buckets of the record
  (the top-k tokens and the tail), nats per token: exactly the KD training
  objective, here on probes no student trained on;
- ``top1-agreement``: the fraction of positions where the model's most
  likely token is the teacher's.

Both are means over tokens with probes as the bootstrap's unit (a probe's
tokens are dependent), each with a studentized bootstrap interval
(``audit.stats.pooled_mean_ci``): the expanded BCa interval of the similarity
rows covered only 89-93% of simulated audits for means this skewed. Two
students are compared on the very same tokens, so their difference is
paired: its interval resamples probes of per-token differences, and is much
narrower than the two intervals side by side. The
teacher's own distributions were recorded at generation; reading them back
needs no teacher, and a model never sees more than its prompt and the
teacher's tokens before each position it is scored at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.cmi import Recorded, by_probe
from audit.errors import AuditError
from audit.results import ResultRow
from audit.stats import Estimate, pooled_mean_ci
from audit.vocabulary import KL_DIFFERENCE, KL_TO_TEACHER, TEACHER_FORCED, TOP1_AGREEMENT, comparison_name, student_pair

BATCH = 8  # responses per forward pass: 8 x 64 positions x a 262k vocabulary is about 0.5 GB of float32 logits


@dataclass(frozen=True)
class Fidelity:
    """One model's per-token divergence from the teacher and top-1 agreement, in the order of the teacher's
    responses, with the probe each token belongs to (the bootstrap's unit)."""

    divergence: np.ndarray
    agreement: np.ndarray
    ends: np.ndarray  # cumulative token counts, one per teacher response
    probes: list[str]
    tokens_read: int = 0  # prompt and response tokens fed, the compute t of the reading
    wall_s: float = 0.0  # the reading's wall seconds, loading the model included

    def estimates(self, confidence: float, seed: int) -> tuple[Estimate, Estimate]:
        """(KL to the teacher, top-1 agreement), each a mean over tokens with a bootstrap interval over probes:
        KL's on the log scale (a positive, right-skewed mean), agreement's on the logit (a share)."""
        return tuple(pooled_mean_ci(by_probe(values, self.ends, self.probes), confidence, seed=seed, scale=scale)
                     for values, scale in ((self.divergence, "log"), (self.agreement, "logit")))

    def paired_difference(self, reference: "Fidelity", confidence: float, seed: int) -> Estimate:
        """This model's KL to the teacher minus ``reference``'s, token by token on the same teacher responses
        (negative: this one is closer), with a bootstrap interval over probes."""
        if len(self.divergence) != len(reference.divergence) or self.probes != reference.probes:
            raise ValueError("paired differences need the same teacher responses, read the same way")
        return pooled_mean_ci(by_probe(self.divergence - reference.divergence, self.ends, self.probes), confidence,
                              seed=seed)


def teacher_forced(spec: str, responses: list[dict], recorded: list[Recorded], *, device: str = "auto",
                   dtype: str = "auto", max_length: int = 1024) -> Fidelity:
    """Model ``spec`` read on the teacher's ``responses`` (store rows: probe text, query id) against ``recorded``
    (the teacher's distributions on each of them, same order)."""
    import time

    import torch

    from audit.distill.examples import build_kd_examples, make_batch, padding_id
    from audit.distill.loss import kd_divergence, response_scores
    from audit.exposure import Exposed
    from audit.models import load_hf

    started = time.perf_counter()
    model, tokenizer = load_hf(spec, device=device, dtype=dtype)
    model.eval()
    targets = {r.query_id: Exposed.recorded(r.top) for r in recorded}
    examples = build_kd_examples(tokenizer, responses, targets, max_length)
    if len(examples) != len(responses):
        raise AuditError(f"{spec}: {len(responses) - len(examples)} of the teacher's responses leave no response "
                         f"token within {max_length} tokens")
    pad_id = padding_id(tokenizer)
    device_of = next(model.parameters()).device
    divergence, agreement = [], []
    with torch.no_grad():
        for start in range(0, len(examples), BATCH):
            ids, labels, mask, first_response, kd = make_batch(examples[start:start + BATCH], pad_id)
            scores, _, (kd_ids, kd_probs) = response_scores(
                model, ids.to(device_of), labels.to(device_of), mask.to(device_of), first_response,
                tuple(t.to(device_of) for t in kd))
            divergence.append(kd_divergence(torch.log_softmax(scores, dim=-1), kd_ids, kd_probs).cpu().numpy())
            teacher_top1 = kd_ids.gather(-1, kd_probs.argmax(-1, keepdim=True)).squeeze(-1)
            agreement.append((scores.argmax(-1) == teacher_top1).float().cpu().numpy())
    lengths = [len(e["kd_ids"]) for e in examples]
    return Fidelity(divergence=np.concatenate(divergence).astype(np.float64),
                    agreement=np.concatenate(agreement).astype(np.float64), ends=np.cumsum(lengths),
                    probes=[e["probe_id"] for e in examples], tokens_read=sum(len(e["input_ids"]) for e in examples),
                    wall_s=time.perf_counter() - started)


def fidelity_rows(read: dict[str, Fidelity], pairs: list[tuple[str, str, dict]], *, confidence: float,
                  seed: int) -> list[ResultRow]:
    """Result rows: each model's KL to the teacher and top-1 agreement (comparison teacher-vs-MODEL), and each
    (model, reference) pair's paired KL difference (comparison MODEL-vs-REFERENCE). q counts the teacher's
    responses read (no model was queried); t the tokens fed and the reading's wall seconds."""
    rows = []
    for name, fidelity in read.items():
        details = {"teacher_responses": len(fidelity.ends), "tokens": len(fidelity.divergence),
                   "read": "teacher forcing on the teacher's held-out responses to the evaluation probes"}
        for metric, estimate in zip((KL_TO_TEACHER, TOP1_AGREEMENT), fidelity.estimates(confidence, seed)):
            rows.append(ResultRow.of(estimate, adversary=TEACHER_FORCED, comparison=comparison_name(name),
                                     metric=metric, q=len(fidelity.ends), t=_t(fidelity), details=details))
    for model, reference, details in pairs:
        difference = read[model].paired_difference(read[reference], confidence, seed)
        t = {key: _t(read[model])[key] + _t(read[reference])[key] for key in ("tokens_in", "wall_s")}
        rows.append(ResultRow.of(difference, adversary=TEACHER_FORCED, comparison=student_pair(model, reference),
                                 metric=KL_DIFFERENCE, q=len(read[model].ends), t=t,
                                 details={**details, "model": model, "reference": reference,
                                          "paired": "the same teacher tokens read by both models"}))
    return rows


def _t(fidelity: Fidelity) -> dict:
    return {"tokens_in": fidelity.tokens_read, "wall_s": round(fidelity.wall_s, 2)}
