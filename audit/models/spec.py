"""Model spec strings: parsed here without importing anything heavy.

One string names a model everywhere (CLI, config files, the database), so
parsing is strict: a typo becomes a ``SpecError`` naming the spec before any
model is loaded or any query is spent. Each backend parses its own specs
(``audit.models.registry``); this module finds the backend and holds what
they parse into.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from audit.errors import SpecError
from audit.models.registry import registry

if TYPE_CHECKING:
    from audit.models.local_backends import BundledModel


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: ``kind`` is the name of the backend that parsed it; the other fields depend on it."""

    text: str
    kind: str
    path: Path | None = None  # hf dir, gguf file, replay db
    bundled: BundledModel | None = None
    base: "ModelSpec | None" = None  # peft: the spec the adapter sits on
    adapter: Path | None = None  # peft: the LoRA adapter folder
    url: str = ""  # openai: base URL, e.g. http://host:8000/v1
    model: str = ""  # openai: the served model id
    key_env: str = "DISTILL_AUDIT_API_KEY"  # openai: the environment variable holding the key
    role: str = ""  # replay: teacher, suspect, control:NAME
    options: dict[str, str] = field(default_factory=dict)


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``spec`` (see DESIGN.md, Model specs); raise ``SpecError`` naming it if it is malformed."""
    text = spec.strip()
    prefix, sep, rest = text.partition(":")
    backend = registry().named(prefix) if sep else None
    if backend is not None:
        if not rest:
            raise SpecError(f"model spec {spec!r}: nothing after {prefix}:")
        return backend.parse(text, rest)
    backend = registry().by_alias(text)
    if backend is None:
        raise SpecError(f"model spec {spec!r}: unknown; expected one of {', '.join(registry().forms())}")
    return backend.parse(text, text)
