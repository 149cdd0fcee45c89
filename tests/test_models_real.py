"""The bundled demo models: they load, answer a probe, and a second load reads the converted cache."""

from __future__ import annotations

import pytest

from audit.models import GenParams, load_model, parse_spec
from audit.models import checkpoints

pytestmark = pytest.mark.real


@pytest.mark.parametrize("alias, prompt, expected", [
    ("smollm2-135m-instruct", "What is the capital of France?", "Paris"),
    ("gemma3-270m", "The capital of France is", "France"),  # a base model without chat template: plain text
])
def test_bundled_model_answers_and_reloads_from_cache(alias, prompt, expected, monkeypatch):
    first = load_model(alias)
    [answer] = first.generate([prompt], GenParams(max_new_tokens=24))
    assert answer.error is None and expected in answer.text
    description = first.describe()
    assert description.fingerprint == checkpoints.sha256_file(parse_spec(alias).bundled.gguf_path(checkpoints.cache_dir()))
    assert description.details["gguf_sha256"] == description.fingerprint

    def no_conversion(*args, **kwargs):
        raise AssertionError("the second load converted the GGUF again instead of reading the cache")

    monkeypatch.setattr(checkpoints, "_convert_gguf", no_conversion)
    second = load_model(alias)
    assert second.describe().fingerprint == description.fingerprint
    assert second.generate([prompt], GenParams(max_new_tokens=24))[0].text == answer.text
