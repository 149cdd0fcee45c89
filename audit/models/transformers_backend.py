"""Local models through transformers: checkpoint folders, GGUF files, bundled models, LoRA adapters.

All four are one class: they differ only in how the checkpoint is found
(``checkpoints.py``); generating and scoring are the same code.

Speed on a CPU comes from batching: prompts are sorted by length so a batch
wastes little on padding, padded on the left so every row's next token sits
in the last column, and decoded together under ``torch.inference_mode``.

Sampling never depends on the batch: HF's sampling draws every row from one
global random stream, so a row's response would change with the prompts beside
it. Each row draws instead from a ``torch.Generator`` of its own, seeded with
its prompt's seed (``RowSampler``), and ``generate`` runs greedy over the
scores that sampler leaves, so a response is reproduced by asking its prompt
alone with the same seed.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass

from audit.models.base import Description, Generation, GenParams, Model, prompt_seeds
from audit.models.checkpoints import Checkpoint, load_checkpoint, resolve_device
from audit.models.spec import ModelSpec
from audit.topk import TopK


class TransformersModel(Model):
    """A causal LM answering user messages (chat template when the tokenizer has one, plain text otherwise)."""

    def __init__(self, spec: ModelSpec, checkpoint: Checkpoint, *, device: str = "auto", dtype: str = "auto"):
        self.spec = spec.text
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        self.model, self.tokenizer = load_checkpoint(checkpoint, device=self.device, dtype=dtype, merge=True)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.context = getattr(self.model.config, "max_position_embeddings", None)

    # ---- the Model interface -------------------------------------------------

    def generate(self, prompts: list[str], params: GenParams, seeds: list[int] | None = None,
                 samples: list[int] | None = None) -> list[Generation]:
        """Answer in batches of ``params.batch_size`` (1 really means one prompt at a time), longest first;
        each prompt sampled with its own seed (``samples`` changes nothing here)."""
        seeds = prompt_seeds(prompts, params, seeds)
        encoded = [self.prompt_ids(p) for p in prompts]
        results: list[Generation | None] = [None] * len(prompts)
        fitting = []
        for i, ids in enumerate(encoded):
            if self.context and len(ids) + params.max_new_tokens > self.context:
                results[i] = Generation(tokens_in=len(ids), finish_reason="error", error=(
                    f"prompt of {len(ids)} tokens + {params.max_new_tokens} new exceeds the context of {self.context}"))
            else:
                fitting.append(i)
        fitting.sort(key=lambda i: len(encoded[i]), reverse=True)
        size = max(1, params.batch_size)
        for start in range(0, len(fitting), size):
            batch = fitting[start:start + size]
            rows = self._generate_batch([encoded[i] for i in batch], params, [seeds[i] for i in batch])
            for i, generation in zip(batch, rows):
                results[i] = generation
        return results

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        """log p of each continuation token after the formatted prompt: one forward pass, right padding.

        Right padding keeps every row's positions natural (the prompt is the
        same for all rows), and only the logits over the continuation span
        are computed, which matters with a 262k-token vocabulary.
        """
        import torch

        prompt_ids = self.prompt_ids(prompt)
        conts = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        span = max((len(c) for c in conts), default=0)
        if span == 0:
            return [[] for _ in conts]
        if all(len(c) == 1 for c in conts):
            return self._score_next_token(prompt_ids, [c[0] for c in conts])
        width = len(prompt_ids) + span
        input_ids = torch.full((len(conts), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, cont in enumerate(conts):
            ids = prompt_ids + cont
            input_ids[row, :len(ids)] = torch.tensor(ids)
            attention[row, :len(ids)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                                logits_to_keep=span + 1).logits[:, :span].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        targets = input_ids[:, len(prompt_ids):].to(self.device)
        picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
        return [picked[row, :len(cont)].tolist() for row, cont in enumerate(conts)]

    def score_next_token(self, prompts: list[str], choices: list[str]) -> list[list[float]]:
        """log p of each one-token choice as the next token after each prompt, shared openings computed once.

        A judge's prompts begin alike: its instruction and reference texts,
        then the same probe in both A/B orders. Consecutive prompts sharing a
        long token prefix form a run (``prefix_runs``); the run's prefix goes
        through the model once, and each prompt feeds only its remainder on a
        copy of that prefix's key/value cache. Choices that are not single
        tokens are scored prompt by prompt through ``score``.
        """
        import torch

        token_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        if any(len(ids) != 1 for ids in token_ids):
            return super().score_next_token(prompts, choices)
        wanted = [ids[0] for ids in token_ids]
        encoded = [self.prompt_ids(p) for p in prompts]
        out: list[list[float]] = [[] for _ in prompts]
        with torch.inference_mode():
            for shared, members in prefix_runs(encoded):
                cache = self._prefix_cache(encoded[members[0]][:shared]) if shared else None
                for i in members:
                    logprobs = self._next_logprobs(encoded[i][shared:], copy.deepcopy(cache))
                    out[i] = [logprobs[t].item() for t in wanted]
        return out

    def _prefix_cache(self, ids: list[int]):
        return self.model(input_ids=self._one_row(ids), use_cache=True, logits_to_keep=1).past_key_values

    def _next_logprobs(self, ids: list[int], cache):
        """The next-token log-probabilities after ``ids``, continuing from ``cache`` (None: from nothing), on the CPU."""
        import torch

        logits = self.model(input_ids=self._one_row(ids), past_key_values=cache, use_cache=cache is not None,
                            logits_to_keep=1).logits[0, -1]
        return torch.log_softmax(logits.float(), dim=-1).cpu()

    def _one_row(self, ids: list[int]):
        import torch

        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def _score_next_token(self, prompt_ids: list[int], token_ids: list[int]) -> list[list[float]]:
        """One-token responses (a judge's "A"/"B") share one row: the prompt, read at its last position.

        Half the work of a row per response, and the same numbers: each
        response's log-probability comes from the same next-token distribution.
        """
        import torch

        with torch.inference_mode():
            logprobs = self._next_logprobs(prompt_ids, None)
        return [[logprobs[t].item()] for t in token_ids]

    def describe(self) -> Description:
        dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        return Description(
            spec=self.spec,
            backend="transformers",
            fingerprint=self.checkpoint.fingerprint,
            param_count=sum(p.numel() for p in self.model.parameters()),
            details={"kind": self.checkpoint.spec.kind, "architecture": self.model.config.model_type,
                     "dtype": dtype, "device": self.device, "chat_template": self.tokenizer.chat_template is not None,
                     "tokenizer": self.tokenizer_fingerprint,
                     **self.checkpoint.details},
        )

    @functools.cached_property
    def tokenizer_fingerprint(self) -> str:
        """Computed once: hashing a 262k-token vocabulary takes a second."""
        return tokenizer_fingerprint(self.tokenizer)

    # ---- helpers -------------------------------------------------------------

    def prompt_ids(self, prompt: str) -> list[int]:
        """The token ids the model sees for a user message."""
        return prompt_ids(self.tokenizer, prompt)

    def _generate_batch(self, batch: list[list[int]], params: GenParams, seeds: list[int]) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            attention[row, width - len(ids):] = 1
        recorder = StepRecorder(params.top_logprobs) if params.logprobs or params.top_logprobs > 0 else None
        processors = ([recorder] if recorder else []) + ([RowSampler(seeds, params)] if params.temperature > 0 else [])
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                generation_config=self._generation_config(params), logits_processor=LogitsProcessorList(processors),
            )
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = (time.perf_counter() - started) / len(batch)
        new_tokens = out.sequences[:, width:].cpu()
        steps = recorder.finish(new_tokens) if recorder else None
        return [self._generation(row, len(ids), new_tokens[row], steps, params, elapsed)
                for row, ids in enumerate(batch)]

    def _generation(self, row: int, tokens_in: int, new_tokens, steps, params: GenParams,
                    elapsed: float) -> Generation:
        ids = new_tokens.tolist()
        stop = next((k for k, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids if stop is None else ids[:stop + 1]
        text_ids = kept if stop is None else kept[:-1]
        generation = Generation(
            text=self.tokenizer.decode(text_ids, skip_special_tokens=True),
            tokens_in=tokens_in,
            tokens_out=len(kept),
            finish_reason="length" if stop is None else "stop",
            latency_s=elapsed,
            device_s=elapsed if self.device.startswith("cuda") else 0.0,
        )
        if steps is not None:
            self._attach_logprobs(generation, kept, steps.row(row, len(kept)), params)
        return generation

    def _attach_logprobs(self, generation: Generation, kept: list[int], row, params: GenParams) -> None:
        chosen, values, indices = row
        generation.tokens = [self.tokenizer.decode([t]) for t in kept]
        generation.logprobs = chosen.tolist()
        if params.top_logprobs > 0:
            ids = indices.tolist()
            texts = self._decoded_tokens({t for row in ids for t in row} | set(kept))
            generation.top_k = TopK(tokens=[[texts[t] for t in row] for row in ids], logprobs=values.tolist(), ids=ids,
                                    chosen_tokens=[texts[t] for t in kept], chosen_ids=kept)
            generation.top_logprobs = generation.top_k.as_dicts()

    def _decoded_tokens(self, ids: set[int]) -> dict[int, str]:
        """Each id's text, decoded once however often it appears among the top-k."""
        ordered = sorted(ids)
        return dict(zip(ordered, self.tokenizer.batch_decode([[t] for t in ordered])))

    def _generation_config(self, params: GenParams):
        """Greedy over the scores, built from scratch, so no checkpoint default (top_k=50, repetition penalty)
        changes the response; temperature and top-p are ``RowSampler``'s."""
        from transformers import GenerationConfig

        return GenerationConfig(max_new_tokens=params.max_new_tokens, eos_token_id=sorted(self.eos_ids),
                                pad_token_id=self.tokenizer.pad_token_id, return_dict_in_generate=True,
                                do_sample=False)


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The token ids a model with ``tokenizer`` sees for a user message: the chat template where the tokenizer
    has one, the plain prompt where it has none (distillation trains on these very ids)."""
    text = chat_prompt(tokenizer, prompt)
    if text is None:
        return tokenizer(prompt)["input_ids"]
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def chat_prompt(tokenizer, prompt: str) -> str | None:
    """A user message in the tokenizer's chat template, opened for the assistant's turn; None without a template.
    Distillation cuts the teacher's response turn after exactly this text, so both read it here."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)


class StepRecorder:
    """A logits processor that records log-probabilities as they are computed, from the scores it sees first
    (the model's own, before any sampler), and changes nothing.

    Each step keeps the top-k (log p, id) of every row and the step's
    log-probabilities until the next step shows which token was chosen; so
    nothing of size response length x vocabulary is ever held (HF's
    ``output_logits`` keeps every step's logits, 4 GB for 32 responses of 128
    tokens over a 262k vocabulary, and stacking them doubled it).
    """

    def __init__(self, k: int):
        self.k = k
        self.chosen, self.values, self.ids = [], [], []
        self._last = None

    def __call__(self, input_ids, scores):
        import torch

        logprobs = torch.log_softmax(scores.float(), dim=-1)
        if self._last is not None:
            self.chosen.append(self._picked(input_ids[:, -1]))
        if self.k:
            values, ids = logprobs.topk(min(self.k, logprobs.shape[-1]), dim=-1)
            self.values.append(values.cpu())
            self.ids.append(ids.cpu())
        self._last = logprobs
        return scores

    def _picked(self, tokens):
        return self._last.gather(-1, tokens.to(self._last.device).unsqueeze(-1)).squeeze(-1).cpu()

    def finish(self, new_tokens) -> "RecordedSteps":
        """The record of the whole batch, once ``new_tokens`` (batch, steps) shows the last step's choice."""
        import torch

        chosen = torch.stack(self.chosen + [self._picked(new_tokens[:, len(self.chosen)])], dim=1)
        if not self.k:
            return RecordedSteps(chosen, None, None)
        return RecordedSteps(chosen, torch.stack(self.values, dim=1), torch.stack(self.ids, dim=1))


@dataclass
class RecordedSteps:
    """(batch, steps) log p of the chosen tokens and, with top-k, (batch, steps, k) log p and ids."""

    chosen: object
    values: object | None
    ids: object | None

    def row(self, row: int, length: int):
        """One response's (chosen, top values, top ids), cut to its length."""
        cut = (lambda t: t[row, :length] if t is not None else None)
        return cut(self.chosen), cut(self.values), cut(self.ids)


class RowSampler:
    """A logits processor that draws each row's next token with that row's own generator.

    Each step takes one uniform number from the row's generator and inverts
    the cumulative distribution (temperature, then top-p) at it, so a row's
    draws depend on its seed and its own logits only, not on its batch or
    its position in it. The scores returned are -inf but at the drawn token,
    which greedy selection then picks; the raw logits ``generate`` returns
    (``output_logits``) are not touched, so the recorded log-probabilities
    stay the model's own, as under HF's sampling.
    """

    def __init__(self, seeds: list[int], params: GenParams):
        import torch

        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]  # on the CPU: same draws anywhere
        self.temperature, self.top_p = params.temperature, params.top_p

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores / self.temperature, dim=-1)
        if self.top_p < 1.0:
            probs = nucleus(probs, self.top_p)
        cumulative = probs.cumsum(dim=-1)
        total = cumulative[:, -1:]
        uniforms = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(scores.device)
        # below the total, even where rounding lifts the product to it: a token of probability 0 is never drawn
        targets = torch.minimum(uniforms[:, None] * total, total.nextafter(torch.zeros_like(total)))
        drawn = torch.searchsorted(cumulative, targets, right=True)
        return torch.full_like(scores, float("-inf")).scatter_(1, drawn, 0.0)


def nucleus(probs, top_p: float):
    """``probs`` with 0 outside each row's nucleus: the most likely tokens whose mass first reaches ``top_p``
    (the most likely token always stays)."""
    ordered, order = probs.sort(dim=-1, descending=True, stable=True)
    outside = ordered.cumsum(dim=-1) - ordered >= top_p
    outside[:, 0] = False
    return probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))


MIN_SHARED_TOKENS = 32  # a shorter common opening is not worth a cache copy


def prefix_runs(encoded: list[list[int]]) -> list[tuple[int, list[int]]]:
    """Consecutive prompts grouped as (length of their common token prefix, their indices).

    A run grows while the next prompt shares at least ``MIN_SHARED_TOKENS``
    and at least half of the run's common prefix: a judge's two A/B orders
    and the next probes of the same category (same instruction and
    references) join; a prompt with other references starts a new run. Every
    prompt keeps at least its last token out of the prefix, so it has logits
    of its own. A run of one has prefix 0: one plain forward pass.
    """
    runs: list[tuple[int, list[int]]] = []
    for i, ids in enumerate(encoded):
        if runs:
            shared, members = runs[-1]
            head = encoded[members[0]][:shared] if len(members) > 1 else encoded[members[0]][:-1]
            common = min(_common_prefix(head, ids), len(ids) - 1)
            if common >= MIN_SHARED_TOKENS and 2 * common >= len(head):
                runs[-1] = (common, members + [i])
                continue
        runs.append((0, [i]))
    return runs


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of the vocabulary (every token and its id) and the special tokens: two tokenizers with the same
    fingerprint split text alike, so a distribution over one's ids is a distribution over the other's
    (what logit distillation needs)."""
    from audit.store.integrity import content_hash

    return content_hash({"vocab": sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]),
                         "special": sorted(map(str, tokenizer.all_special_tokens))})


def _eos_ids(model, tokenizer) -> set[int]:
    """Every id that ends a response: the tokenizer's EOS and the checkpoint's generation EOS ids."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return {i for i in ids if i is not None}

