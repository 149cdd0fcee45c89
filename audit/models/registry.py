"""Model backends, registered in one place: the built-in ones and those of other packages alike.

A spec names its backend by its prefix (``hf:``, ``openai:``, a plugin's
``NAME:``) or, without one, by an alias a backend claims (the bundled demo
models). Every backend is an entry point of the group ``distill_audit.backends``
naming a ``Backend`` object: the built-ins are listed here (and declared in
pyproject.toml, so an installed copy finds them the same way), and another
package adds one by declaring its own (README, Adding a backend). The first
entry point of a name wins, built-ins first, so a plugin cannot shadow a
built-in. Nothing is imported until a spec needs it: parsing ``hf:...``
imports the local backends' module, never httpx; loading it imports torch.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from audit.errors import SpecError

if TYPE_CHECKING:
    from audit.models.base import Description, Model
    from audit.models.spec import ModelSpec

GROUP = "distill_audit.backends"

BUILTIN = tuple(EntryPoint(name, f"audit.models.{target}", GROUP) for name, target in (
    ("bundled", "local_backends:BUNDLED_BACKEND"),
    ("hf", "local_backends:HF_BACKEND"),
    ("gguf", "local_backends:GGUF_BACKEND"),
    ("peft", "local_backends:PEFT_BACKEND"),
    ("openai", "openai_backend:BACKEND"),
    ("replay", "replay_backend:BACKEND"),
))


class Backend(ABC):
    """One kind of model: how its specs read, what is checked before weights are read, how it is loaded.

    ``name`` is the spec prefix and the entry point's name; ``ModelSpec.kind``
    of every spec it parses. A subclass implements ``parse``, ``check`` and
    ``load``; the rest has defaults.
    """

    name: str = ""
    aliases: tuple[str, ...] = ()  # whole specs it claims without a prefix
    local = False  # weights on this machine, read through transformers (training and token ids need them)
    adapter_base = False  # a LoRA adapter (peft:BASE+ADAPTER) may sit on its models

    def forms(self) -> Sequence[str]:
        """How its specs look, for the message that lists the known ones."""
        return (f"{self.name}:...",)

    @abstractmethod
    def parse(self, text: str, rest: str) -> ModelSpec:
        """The spec ``text`` (``rest``: what follows ``NAME:``, or the whole alias); ``SpecError`` if malformed."""

    @abstractmethod
    def check(self, spec: ModelSpec, deadline: float | None = None) -> Any:
        """Every check made before weights are read (paths, a GGUF's architecture, an endpoint's response);
        returns what ``load`` needs of it, so nothing is checked or resolved twice."""

    @abstractmethod
    def load(self, spec: ModelSpec, checked: Any, *, device: str = "auto", dtype: str = "auto",
             concurrency: int = 8, deadline: float | None = None) -> Model:
        """The model, ready to answer, from what ``check`` returned; options it has no use for are ignored."""

    def describe(self, spec: ModelSpec, *, device: str = "auto") -> Description:
        """What ``spec`` resolves to; by default it is loaded, to prove it can be."""
        return self.load(spec, self.check(spec), device=device).describe()


class Registry:
    """The backends by name, each imported the first time a spec needs it."""

    def __init__(self, points: Iterable[EntryPoint]):
        self.points: dict[str, EntryPoint] = {}
        for point in points:
            self.points.setdefault(point.name, point)
        self._loaded: dict[str, Backend] = {}

    def named(self, name: str) -> Backend | None:
        if name not in self.points:
            return None
        if name not in self._loaded:
            self._loaded[name] = _loaded_backend(self.points[name])
        return self._loaded[name]

    def by_alias(self, text: str) -> Backend | None:
        """The backend claiming ``text`` as an alias; in registration order, so a plugin is only imported
        for a spec no built-in knows."""
        return next((backend for backend in self.backends() if text in backend.aliases), None)

    def backends(self) -> Iterator[Backend]:
        for name in self.points:
            yield self.named(name)

    def forms(self) -> list[str]:
        return [form for backend in self.backends() for form in backend.forms()]


def _loaded_backend(point: EntryPoint) -> Backend:
    try:
        backend = point.load()
    except Exception as exc:  # a broken plugin is the user's to fix: one line naming it, not a traceback
        raise SpecError(f"model backend {point.name!r} ({point.value}) cannot be imported: "
                        f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(backend, Backend) or backend.name != point.name:
        raise SpecError(f"model backend {point.name!r} ({point.value}) is not an audit.models.registry.Backend "
                        f"named {point.name!r}")
    return backend


@functools.cache
def registry() -> Registry:
    """The built-ins, then every installed package's backends (read from their metadata once)."""
    return Registry([*BUILTIN, *entry_points(group=GROUP)])


def backend_for(spec: str | ModelSpec) -> Backend:
    """The backend of a spec (parsed first when given as text)."""
    from audit.models.spec import parse_spec

    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return registry().named(parsed.kind)
