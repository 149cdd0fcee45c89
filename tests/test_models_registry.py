"""The backend registry: a third-party backend is found, parsed, checked, loaded and described like a built-in."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from audit.errors import ScoringUnsupported, SpecError
from audit.models import (Backend, Description, Generation, GenParams, Model, ModelSpec, check_spec, describe_spec,
                          load_model, parse_spec)
from audit.models import registry


class EchoModel(Model):
    """Answers every prompt with its word, as checked (upper case)."""

    def __init__(self, spec: ModelSpec, word: str):
        self.spec, self.word = spec.text, word

    def generate(self, prompts, params, seeds=None, samples=None):
        return [Generation(text=f"{self.word} {p}", finish_reason="stop") for p in prompts]

    def score(self, prompt, continuations):
        raise ScoringUnsupported(f"{self.spec}: echoes only")

    def describe(self) -> Description:
        return Description(self.spec, "echo", f"echo:{self.word}", details={"word": self.word})


class EchoBackend(Backend):
    """``echo:WORD``, as a plugin package would declare it."""

    name = "echo"

    def __init__(self):
        self.checked: list[str] = []

    def parse(self, text, rest):
        if not rest.isalpha():
            raise SpecError(f"model spec {text!r}: expected echo:WORD")
        return ModelSpec(text, self.name, options={"word": rest})

    def check(self, spec, deadline=None):
        self.checked.append(spec.text)
        return spec.options["word"].upper()

    def load(self, spec, checked, **options):
        return EchoModel(spec, checked)


ECHO = EchoBackend()


@pytest.fixture
def installed(monkeypatch):
    """Install entry points (name, "module:attribute") as if packages declaring them were installed."""

    def install(*points: tuple[str, str]):
        declared = [EntryPoint(name, target, registry.GROUP) for name, target in points]
        monkeypatch.setattr(registry, "entry_points", lambda group: declared if group == registry.GROUP else [])
        registry.registry.cache_clear()
        ECHO.checked.clear()

    yield install
    registry.registry.cache_clear()


def test_a_third_party_backend_is_parsed_checked_loaded_and_described(installed):
    installed(("echo", f"{__name__}:ECHO"))
    assert parse_spec("echo:hello").options == {"word": "hello"}
    model = load_model("echo:hello")
    assert model.generate(["there"], GenParams())[0].text == "HELLO there"
    assert describe_spec("echo:hello") == "echo:hello: echo\n  fingerprint echo:HELLO\n  word HELLO"
    checked = check_spec("echo:bye")
    assert load_model(checked).describe().fingerprint == "echo:BYE"
    assert ECHO.checked == ["echo:hello", "echo:hello", "echo:bye"]  # loading a checked spec checks it no more
    with pytest.raises(ScoringUnsupported):
        model.score_next_token(["p"], ["A", "B"])  # the interface's default, through the backend's score
    with pytest.raises(SpecError, match="expected echo:WORD"):
        parse_spec("echo:two words")
    with pytest.raises(SpecError, match=r"unknown; expected one of .*replay:\.\.\., echo:\.\.\."):
        parse_spec("nosuch")


def test_a_plugin_cannot_shadow_a_builtin(installed):
    installed(("hf", f"{__name__}:ECHO"))
    spec = parse_spec("hf:/models/m")
    assert (spec.kind, spec.path) == ("hf", Path("/models/m"))
    assert ECHO.checked == [] and registry.backend_for(spec).local


def test_a_broken_plugin_is_one_line_and_only_when_named(installed):
    installed(("broken", "no_such_module_anywhere:BACKEND"), ("misnamed", f"{__name__}:ECHO"))
    assert parse_spec("gemma3-270m").kind == "bundled"  # a built-in's alias never imports a plugin
    assert parse_spec("hf:/m").kind == "hf"
    with pytest.raises(SpecError, match=r"'broken' \(no_such_module_anywhere:BACKEND\) cannot be imported") as err:
        parse_spec("broken:x")
    assert "\n" not in str(err.value)
    with pytest.raises(SpecError, match="is not an audit.models.registry.Backend named 'misnamed'"):
        parse_spec("misnamed:x")


def test_the_builtin_backends_are_declared_as_entry_points_too():
    """Listed in code (found from a source checkout) and in pyproject.toml (found after install), the same."""
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"][registry.GROUP]
    assert declared == {point.name: point.value for point in registry.BUILTIN}
    assert [registry.registry().named(name).name for name in declared] == list(declared)
