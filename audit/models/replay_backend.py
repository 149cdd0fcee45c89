"""Replay: answer with what an earlier audit database recorded for one of its models.

Lets an audit be re-run against responses collected elsewhere (another
machine, a paid API that should not be asked twice) without the model. The
responses are looked up by probe text and sample index; a prompt the earlier
audit never asked is an error ``Generation``, never an invented response.

The source database may come from elsewhere (a report folder, the other
party), so it is opened read-only and as it is: a file that is not an audit
database is refused, and a signed copy keeps its hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from audit.errors import ScoringUnsupported, SpecError, StoreError
from audit.models.base import Description, Generation, GenParams, Model
from audit.models.cache import sha256_file
from audit.models.registry import Backend
from audit.models.spec import ModelSpec
from audit.topk import TopK

Read = TypeVar("Read")


class ReplayBackend(Backend):
    """``replay:/path/to/audit.db#role``: checked by finding the role in the database, loaded by reading its
    responses (once)."""

    name = "replay"

    def parse(self, text: str, rest: str) -> ModelSpec:
        path, _, role = rest.rpartition("#")
        if not path or not role:
            raise SpecError(f"model spec {text!r}: expected replay:/path/to/audit.db#role "
                            "(teacher, suspect, control:NAME)")
        return ModelSpec(text, self.name, path=Path(path).expanduser(), role=role)

    def check(self, spec: ModelSpec, deadline: float | None = None) -> None:
        _read_source(spec, _source_model)

    def load(self, spec: ModelSpec, checked: None, *, device: str = "auto", dtype: str = "auto",
             concurrency: int = 8, deadline: float | None = None) -> "ReplayModel":
        return ReplayModel(spec)


BACKEND = ReplayBackend()


class ReplayModel(Model):
    """The recorded responses of model ``spec.role`` in the audit database ``spec.path``."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec.text
        self.role = spec.role
        self.path = spec.path
        self._recorded, self.source = _read_source(spec, _recorded_responses)
        self.db_sha256 = sha256_file(self.path)

    def generate(self, prompts: list[str], params: GenParams, seeds: list[int] | None = None,
                 samples: list[int] | None = None) -> list[Generation]:
        """The recorded response to each (prompt, sample); without ``samples`` the n-th repeat of a prompt is sample n.

        ``seeds`` changes nothing: what was recorded is what was answered.
        """
        if samples is None:
            seen: Counter[str] = Counter()
            samples = []
            for prompt in prompts:
                samples.append(seen[prompt])
                seen[prompt] += 1
        return [self._replayed(prompt, sample) for prompt, sample in zip(prompts, samples)]

    def recorded_prompts(self) -> set[str]:
        """The prompts this replay can answer: a sequential audit draws its order from these alone."""
        return {prompt for prompt, _ in self._recorded}

    def score(self, prompt: str, continuations: list[str]) -> list[list[float]]:
        raise ScoringUnsupported(f"{self.spec}: a replayed model has only its recorded responses, no probabilities")

    def describe(self) -> Description:
        return Description(
            spec=self.spec,
            backend="replay",
            fingerprint=f"sha256:{self.db_sha256}#{self.role}",
            param_count=self.source.get("param_count"),
            details={"database": str(self.path), "role": self.role, "answers": len(self._recorded),
                     "recorded_spec": self.source.get("spec"), "recorded_fingerprint": self.source.get("fingerprint")},
        )

    def _replayed(self, prompt: str, sample: int) -> Generation:
        row = self._recorded.get((prompt, sample))
        if row is None:
            why = f"replay: {self.path} has no response of {self.role} to this prompt (sample {sample})"
            return Generation(finish_reason="error", error=why)
        logprobs = row["logprobs"] or {}
        return Generation(
            text=row["text"],
            tokens_in=row["tokens_in"] or 0,
            tokens_out=row["tokens_out"] or 0,
            finish_reason=row["finish_reason"] or "stop",
            latency_s=row["latency_s"] or 0.0,
            logprobs=logprobs.get("logprobs"),
            tokens=logprobs.get("tokens"),
            top_logprobs=row["top_k"].as_dicts() if row["top_k"] else logprobs.get("top_logprobs"),
            top_k=row["top_k"],
        )


def _read_source(spec: ModelSpec, read: Callable[..., Read]) -> Read:
    """``read(store, spec)`` on the source database, opened read-only as it is (never migrated, never
    written); a missing file or one that is not an audit database is a ``SpecError`` naming the spec."""
    from audit.store import Store

    if not spec.path.is_file():
        raise SpecError(f"model spec {spec.text!r}: {spec.path} does not exist")
    try:
        with Store.open_readonly(spec.path) as store:
            return read(store, spec)
    except StoreError as exc:
        raise SpecError(f"model spec {spec.text!r}: {exc}") from exc


def _source_model(store, spec: ModelSpec) -> tuple[dict, dict]:
    """(the source's audit, its model ``spec.role``)."""
    audit = store.require_audit()
    model = store.model(spec.role)
    if model is None:
        names = ", ".join(m["name"] for m in store.models()) or "none"
        raise SpecError(f"model spec {spec.text!r}: the audit in {spec.path} has no model {spec.role!r} (it has: {names})")
    return audit, model


def _recorded_responses(store, spec: ModelSpec) -> tuple[dict[tuple[str, int], dict], dict]:
    audit, model = _source_model(store, spec)
    recorded: dict[tuple[str, int], dict] = {}
    blobs = store.top_distributions(model["id"])
    for row in store.responses(model["id"]):
        row["top_k"] = TopK.unpack(blobs[row["query_id"]]) if row["query_id"] in blobs else None
        recorded.setdefault((row["probe_text"], row["sample"]), row)
    return recorded, model
