"""Models by spec string: parse (cheap), load (checks first, then weights), describe.

Importing this package imports nothing heavy; each backend imports torch,
transformers or httpx when a spec of its kind is loaded.
"""

from __future__ import annotations

from audit.models.base import Description, Generation, GenParams, Model
from audit.models.spec import BUNDLED, ModelSpec, parse_spec

__all__ = ["BUNDLED", "Description", "GenParams", "Generation", "Model", "ModelSpec",
           "check_spec", "describe_spec", "load_hf", "load_model", "parse_spec"]


def load_model(spec: str, *, device: str = "auto", dtype: str = "auto", concurrency: int = 8,
               deadline: float | None = None) -> Model:
    """The model ``spec`` names, ready to answer; raises ``SpecError``/``BackendError`` (one line) if it cannot be.

    ``deadline`` (a ``time.monotonic()`` value) bounds an HTTP endpoint's
    requests and retries; a local model is stopped between batches instead.
    """
    parsed = parse_spec(spec)
    if parsed.kind == "openai":
        from audit.models.openai_backend import OpenAIModel

        return OpenAIModel(parsed, concurrency=concurrency, deadline=deadline)
    if parsed.kind == "replay":
        from audit.models.replay_backend import ReplayModel

        return ReplayModel(parsed)
    from audit.models.checkpoints import resolve_checkpoint
    from audit.models.transformers_backend import TransformersModel

    return TransformersModel(parsed, resolve_checkpoint(parsed), device=device, dtype=dtype)


def check_spec(spec: str, deadline: float | None = None) -> None:
    """Every check ``load_model`` makes before it reads weights; a local GGUF is converted here once.

    Collection checks all its specs first and loads one model at a time
    afterwards, so a bad control fails before the teacher answers anything
    and only one model's weights are in memory at once.
    """
    parsed = parse_spec(spec)
    if parsed.kind in ("openai", "replay"):
        load_model(spec, deadline=deadline)  # cheap: a connection check, or opening a database
        return
    from audit.models.checkpoints import resolve_checkpoint

    resolve_checkpoint(parsed)


def describe_spec(spec: str, device: str = "auto") -> str:
    """A few readable lines: what ``spec`` resolves to, its size and fingerprint (loads it, to prove it can)."""
    return format_description(load_model(spec, device=device).describe())


def format_description(description: Description) -> str:
    head = f"{description.spec}: {description.backend}"
    if description.param_count:
        head += f", {description.param_count / 1e6:.1f}M parameters"
    lines = [head, f"  fingerprint {description.fingerprint}"]
    lines += [f"  {key} {value}" for key, value in sorted(description.details.items())]
    return "\n".join(lines)


def load_hf(spec: str, *, device: str = "auto", dtype: str = "auto"):
    """(torch model, tokenizer) of a local spec, for training code (a peft spec keeps its adapter unmerged)."""
    from audit.models.checkpoints import load_hf as _load_hf

    return _load_hf(spec, device=device, dtype=dtype)
