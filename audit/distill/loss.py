"""The objectives' losses: cross-entropy on the response (SFT), forward KL to the exposed top-k (KD), or both.

Both are means over the same response tokens, in nats, so ``sft+kd`` sums them
with weight 1 each and neither scale dominates by construction. Kept apart
from the training loop so the divergence can be checked on its own.
"""

from __future__ import annotations


def objective_loss(model, ids, labels, mask, first_response: int, kd=None, objective: str = "sft"):
    """The objective's loss over response tokens (mean cross-entropy, mean KD divergence, or their sum),
    computing logits only from the first response position on."""
    import torch
    import torch.nn.functional as F

    if objective == "sft":
        logits, targets = _response_logits(model, ids, labels, mask, first_response)
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=-100)
    scores, response_tokens, (kd_ids, kd_probs) = response_scores(model, ids, labels, mask, first_response, kd)
    divergence = kd_loss(torch.log_softmax(scores, dim=-1), kd_ids, kd_probs)
    return divergence if objective == "kd" else divergence + F.cross_entropy(scores, response_tokens)


def response_scores(model, ids, labels, mask, first_response: int, kd):
    """The model's float32 logits at every response position, (positions, vocab), row by row and in order; the
    response's tokens there; and the KD targets (ids, probs) at the same positions."""
    logits, targets = _response_logits(model, ids, labels, mask, first_response)
    in_response = targets != -100
    start = ids.shape[1] - targets.shape[1]
    return logits[:, :-1].float()[in_response], targets[in_response], tuple(t[:, start:][in_response] for t in kd)


def _response_logits(model, ids, labels, mask, first_response: int):
    """Logits from the position before the first response token on, and the labels they predict."""
    keep = ids.shape[1] - max(first_response - 1, 0)
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
    start = ids.shape[1] - keep + 1  # the first position whose token the kept logits predict
    return logits, labels[:, start:]


def kd_loss(student_logprobs, ids, probs):
    """Mean over positions of KL(teacher || student) on k+1 buckets (``kd_divergence``)."""
    return kd_divergence(student_logprobs, ids, probs).mean()


def kd_divergence(student_logprobs, ids, probs):
    """KL(teacher || student) at each position, on k+1 buckets: the exposed tokens, then the tail.

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
    return head + tail
