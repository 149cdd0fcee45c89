"""Teacher responses as token ids for the student: the prompt it will be audited with, then the response to learn.

The prompt's ids are the very ids an audit will ask the student in
(``prompt_ids``), masked out of the loss; the response is the teacher's text
(SFT) or its own generated token ids with the exposed distribution at each
position (KD). Batches are right-padded tensors in a fixed shuffle per
(seed, epoch), so a resumed run sees exactly the batches a straight one does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.models.transformers_backend import chat_prompt, prompt_ids  # the very text and ids an audit asks in

if TYPE_CHECKING:
    from audit.exposure import Exposed


def response_ids(tokenizer, prompt: str, response: str, finished: bool) -> list[int]:
    """The assistant turn's ids, closed the way the student's template closes a turn (its EOS without one).

    A response cut at the teacher's token limit gets no end of turn, so the
    student does not learn to stop where the teacher was merely stopped.
    """
    opened = chat_prompt(tokenizer, prompt) if finished else None
    if opened is not None:
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False)
        if full.startswith(opened):
            return tokenizer(full[len(opened):], add_special_tokens=False)["input_ids"]
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if finished and tokenizer.eos_token_id is not None else ids


def build_examples(tokenizer, rows: list[dict], max_length: int) -> list[dict]:
    """Token ids and labels per teacher response (its text, closed when the teacher stopped on its own)."""
    examples = []
    for row in rows:
        finished = row.get("finish_reason") != "length"
        response = response_ids(tokenizer, row["probe_text"], row["text"], finished=finished)
        example = _example(prompt_ids(tokenizer, row["probe_text"]), response, max_length, row["probe_id"])
        if example is not None:
            examples.append(example)
    return examples


def build_kd_examples(tokenizer, rows: list[dict], targets: dict[str, "Exposed"], max_length: int) -> list[dict]:
    """Per teacher response: the prompt, then the teacher's own generated token ids (its end of turn included
    when it stopped), each response position with the exposed distribution the teacher gave there."""
    examples = []
    for row in rows:
        exposed = targets[row["query_id"]]
        prompt = prompt_ids(tokenizer, row["probe_text"])
        example = _example(prompt, exposed.chosen.tolist(), max_length, row["probe_id"])
        if example is not None:
            learned = len(example["input_ids"]) - len(prompt)
            examples.append({**example, "kd_ids": exposed.ids[:learned], "kd_probs": exposed.probs[:learned]})
    return examples


def _example(prompt: list[int], response: list[int], max_length: int, probe_id: str) -> dict | None:
    """Prompt then response, cut at ``max_length``, the prompt masked (-100) so only the response is learned; None
    when the prompt alone fills ``max_length``, so nothing of the response would be learned."""
    ids = (prompt + response)[:max_length]
    if len(ids) <= len(prompt):
        return None
    return {"input_ids": ids, "labels": [-100] * len(prompt) + ids[len(prompt):], "probe_id": probe_id}


def padding_id(tokenizer) -> int:
    """The token right-padding fills batches with: the tokenizer's pad token, else its end of sequence (the
    mask keeps either out of every loss and score)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def make_batch(examples: list[dict], pad_id: int):
    """Right-padded tensors, the KD targets aligned with the labels (None for SFT); the first response position
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
    first_response = min(next(i for i, t in enumerate(e["labels"]) if t != -100) for e in examples)
    return ids, labels, mask, first_response, _kd_batch(examples, width)


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


def batch_order(n_examples: int, epoch: int, seed: int) -> list[int]:
    """A fixed shuffle per (seed, epoch), so a resumed run sees exactly the batches it would have seen."""
    import numpy as np

    return np.random.default_rng([seed, epoch]).permutation(n_examples).tolist()
