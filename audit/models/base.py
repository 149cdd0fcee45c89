"""The one small interface every model backend implements.

An audit asks models three things: answer prompts (``generate``), say how
likely a given continuation is (``score``, token log-probabilities; optional
because hosted APIs rarely give it; ``score_next_token`` batches it for the
judge, with a default), and say exactly what they are (``describe``, with a
fingerprint that goes into the signed report). A backend subclasses ``Model``
to inherit the defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from audit.topk import TopK

NOTES_KEY = "distill_audit"  # the key of a recorded raw body that says what the auditor changed in the response
STOPPED_AT_DEADLINE = "deadline"  # finish_reason of a prompt the --max-seconds deadline stopped unanswered
RAW_SLACK_CHARS = 65536  # what a raw body may hold beside the response text (ids, usage, finish reasons)


def response_char_limit(max_new_tokens: int) -> int:
    """The most characters of one response an audit records: max(4096, 64 x max_new_tokens).

    Tokens average about four characters, and the longest in common
    vocabularies (runs of spaces, dashes or indentation) stay under 64, so
    no model that honours the length limit comes near this bound; a response
    past it comes from an endpoint that ignores ``max_tokens``, and is cut so
    that it cannot choose what storing and featurising the audit costs (two
    5 MB responses to 16 tokens made an analysis 121 s instead of 22 s). The
    4096 floor leaves room for endpoints that count tokens their own way.
    """
    return max(4096, 64 * max_new_tokens)


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters; recorded with every query so a response can be reproduced."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0  # a run's settings hold the audit's seed; a recorded query holds its own (collect.query_seed)
    batch_size: int = 8
    logprobs: bool = False  # ask for the chosen tokens' log-probabilities too
    top_logprobs: int = 0  # also the k most likely tokens at each step (a judge reads its verdict from them)

    def recorded(self) -> dict[str, Any]:
        """What goes into ``queries.params_json``: everything but the batch size, which changes nothing."""
        d = asdict(self)
        d.pop("batch_size")
        return d


@dataclass
class Generation:
    """One response to one prompt, or the reason there is none (``error``)."""

    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str = ""  # "stop" (EOS or stop string), "length", "error"
    latency_s: float = 0.0  # wall seconds attributed to this prompt (batch time / batch size)
    device_s: float = 0.0  # accelerator seconds attributed to this prompt (0 on CPU)
    logprobs: list[float] | None = None  # log p of each generated token, when asked and available
    tokens: list[str] | None = None  # the generated tokens, aligned with ``logprobs``
    top_logprobs: list[dict[str, float]] | None = None  # per generated token: {token: log p} of the k most likely
    top_k: TopK | None = None  # the same top-k with token ids where known, recorded as one blob (audit.topk)
    request: dict[str, Any] | None = None  # the raw request (HTTP backends), never with secrets
    raw: dict[str, Any] | None = None  # the raw response body (HTTP backends)
    error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # what the auditor changed (redacted, replaced, truncated)

    @property
    def stopped(self) -> bool:
        """The deadline stopped this prompt before a response came: nothing is recorded for it, a rerun asks it."""
        return self.error is not None and self.finish_reason == STOPPED_AT_DEADLINE

    def bounded(self, max_new_tokens: int) -> "Generation":
        """This response as an audit records it, whatever the backend: text cut at ``response_char_limit``, and the
        raw body kept only while it is of a like size (else dropped); each cut is noted.

        A cut response ends with ``finish_reason`` "length": the length limit
        stopped it, as ``max_tokens`` should have.
        """
        if self.error is not None:
            return self
        limit = response_char_limit(max_new_tokens)
        notes, text, finish, raw = dict(self.notes), self.text, self.finish_reason, self.raw
        if len(text) > limit:
            notes["truncated_by_auditor"] = {"chars": len(text), "kept": limit}
            text, finish = text[:limit], "length"
        if raw is not None and (size := len(json.dumps(raw, ensure_ascii=False))) > 2 * limit + RAW_SLACK_CHARS:
            notes["raw_dropped_by_auditor"] = {"chars": size}
            raw = None
        return replace(self, text=text, finish_reason=finish, raw=raw, notes=notes)

    def as_response(self) -> dict[str, Any]:
        """The fields ``Store.record_responses`` takes."""
        if self.error is not None:
            return {"error": self.error, "latency_s": self.latency_s}
        return {
            "text": self.text,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "finish_reason": self.finish_reason,
            "latency_s": self.latency_s,
            "device_s": self.device_s,
            "logprobs": self._logprobs_record(),
            "request": self.request,
            "raw": self._raw_record(),
            "top_logprobs": self.top_k.pack() if self.top_k is not None else None,
        }

    def _raw_record(self) -> dict[str, Any] | None:
        """The raw body with the auditor's notes under ``NOTES_KEY``; an endpoint's own key of that name is
        replaced, so what the key says was written by the auditor."""
        if not self.notes and (self.raw is None or NOTES_KEY not in self.raw):
            return self.raw
        return {**(self.raw or {}), NOTES_KEY: self.notes}

    def _logprobs_record(self) -> dict[str, Any] | None:
        if self.logprobs is None:
            return None
        record: dict[str, Any] = {"tokens": self.tokens, "logprobs": self.logprobs}
        if self.top_logprobs is not None and self.top_k is None:  # with ids, the blob holds them compactly
            record["top_logprobs"] = self.top_logprobs
        return record


@dataclass
class Description:
    """What a spec resolved to; ``fingerprint`` is the weights' sha256 or endpoint + model id."""

    spec: str
    backend: str
    fingerprint: str
    param_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "backend": self.backend, "fingerprint": self.fingerprint,
                "param_count": self.param_count, **self.details}


def prompt_seeds(prompts: list[str], params: GenParams, seeds: list[int] | None) -> list[int]:
    """Each prompt's sampling seed: its own from ``seeds``, else ``params.seed``."""
    if seeds is None:
        return [params.seed] * len(prompts)
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    return list(seeds)


@runtime_checkable
class Model(Protocol):
    spec: str

    def generate(self, prompts: list[str], params: GenParams, seeds: list[int] | None = None,
                 samples: list[int] | None = None) -> list[Generation]:
        """Answer each prompt (a user message; the backend applies the chat template), in input order.

        ``seeds`` gives each prompt its own sampling seed (default
        ``params.seed`` for all): a prompt's response depends on its prompt,
        ``params`` and its seed only, never on the prompts it is batched
        with, so a recorded response is reproduced by asking its prompt alone
        with its recorded params. The transformers backend draws each prompt's
        tokens from a generator of its own, the HTTP backend sends the seed
        as the request's ``seed``, the replay backend ignores it. ``samples``
        says which sample (0..k-1) of its probe each prompt is: the replay
        backend returns the response recorded for that sample, the others
        ignore it.

        A failure of one prompt is returned as a ``Generation`` with
        ``error`` set; a failure of the whole backend (unreachable, 401)
        raises ``BackendError``.
        """
        ...

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        """log p(token) of each continuation's tokens after the chat-formatted prompt, one batched pass.

        Raises ``ScoringUnsupported`` where the backend cannot do it.
        """
        ...

    def score_next_token(self, prompts: list[str], choices: list[str]) -> list[list[float]]:
        """log p of each choice (its tokens' log-probabilities summed) after each prompt: a judge's verdict.

        By default one ``score`` per prompt, so it raises ``ScoringUnsupported``
        where ``score`` does; a backend that can share work between prompts
        overrides it (the transformers backend computes common openings once).
        """
        return [[sum(logprobs) for logprobs in self.score(prompt, choices)] for prompt in prompts]

    def describe(self) -> Description:
        ...
