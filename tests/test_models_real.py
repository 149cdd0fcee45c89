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


@pytest.mark.parametrize("alias", ["smollm2-135m-instruct", "gemma3-270m"])
def test_converted_tokenizer_read_directly_matches_the_model_class(alias):
    """The fast path of `_load_tokenizer` must tokenize, decode and template exactly as AutoTokenizer does."""
    from transformers import AutoTokenizer

    from audit.probes import load_suite

    checkpoint = checkpoints.resolve_checkpoint(parse_spec(alias))
    fast = checkpoints._load_tokenizer(checkpoint)
    reference = AutoTokenizer.from_pretrained(checkpoint.directory)
    texts = [p.text for p in load_suite("bbi-probes-v1").probes[::10]]
    texts.append("<start_of_turn>user\nhi<end_of_turn><|im_start|>x<|im_end|><eos><pad>")  # special tokens as text
    assert [fast(t)["input_ids"] for t in texts] == [reference(t)["input_ids"] for t in texts]
    ids = reference(texts[3])["input_ids"]
    assert fast.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)
    assert fast.decode(ids) == reference.decode(ids)
    for attribute in ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template", "all_special_ids",
                      "model_max_length"):
        assert getattr(fast, attribute) == getattr(reference, attribute), attribute
    assert {i: str(t) for i, t in fast.added_tokens_decoder.items()} == {
        i: str(t) for i, t in reference.added_tokens_decoder.items()}
    if reference.chat_template:
        message = [{"role": "user", "content": texts[7]}]
        assert (fast.apply_chat_template(message, tokenize=False, add_generation_prompt=True)
                == reference.apply_chat_template(message, tokenize=False, add_generation_prompt=True))
