"""Models by spec string: parse (cheap), load (checks first, then weights), describe.

Importing this package imports nothing heavy; each backend imports torch,
transformers or httpx when a spec of its kind is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.models.base import Description, Generation, GenParams, Model
from audit.models.registry import Backend, backend_for
from audit.models.spec import ModelSpec, parse_spec

__all__ = ["Backend", "Checked", "Description", "GenParams", "Generation", "Model", "ModelSpec", "backend_for",
           "check_spec", "describe_spec", "load_hf", "load_model", "parse_spec"]


@dataclass(frozen=True)
class Checked:
    """A spec that passed every check made before weights are read, with what the checks found (a resolved
    checkpoint), so that loading it checks nothing twice."""

    spec: ModelSpec
    backend: Backend
    found: Any = None


def check_spec(spec: str, deadline: float | None = None) -> Checked:
    """Every check ``load_model`` makes before it reads weights; a local GGUF is converted here once.

    Collection checks all its specs first and loads one model at a time
    afterwards, so a bad control fails before the teacher answers anything
    and only one model's weights are in memory at once. ``deadline`` (a
    ``time.monotonic()`` value) bounds an endpoint's check.
    """
    parsed = parse_spec(spec)
    backend = backend_for(parsed)
    return Checked(parsed, backend, backend.check(parsed, deadline))


def load_model(spec: str | Checked, *, device: str = "auto", dtype: str = "auto", concurrency: int = 8,
               deadline: float | None = None) -> Model:
    """The model ``spec`` names, ready to answer; raises ``SpecError``/``BackendError`` (one line) if it cannot be.

    A spec given as text is checked first; one ``check_spec`` returned is not
    checked again. ``deadline`` bounds an HTTP endpoint's requests and
    retries; a local model is stopped between batches instead.
    """
    checked = check_spec(spec, deadline) if isinstance(spec, str) else spec
    return checked.backend.load(checked.spec, checked.found, device=device, dtype=dtype, concurrency=concurrency,
                                deadline=deadline)


def describe_spec(spec: str, device: str = "auto") -> str:
    """A few readable lines: what ``spec`` resolves to, its size and fingerprint (as its backend describes it)."""
    parsed = parse_spec(spec)
    return format_description(backend_for(parsed).describe(parsed, device=device))


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
